package transparency

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Key rotation. A log changes the key that signs its checkpoints by a
// rotation statement: a signed note whose text is
//
//	omega key rotation v1
//	<origin>
//	<size>
//	<base64 root hash>
//	<outgoing verifier key>
//	<incoming verifier key>
//
// signed by the outgoing key (its authority) and the incoming one (proof
// that the log holds it). Size and root are the log's latest checkpoint
// when it rotated, so the statement has its place in the log's history:
// a verifier that holds the outgoing key checks that place against the
// checkpoints it has seen, then trusts the incoming key for checkpoints
// from that size on, and the outgoing one up to it only. The log keeps its
// statements in RotationsDir beside cert.log, one file each, in order.

// RotationsDir is the directory, beside cert.log, of the log's rotation
// statements: <16 hex digits>.note, from 0000000000000001.
const RotationsDir = "rotations"

const rotationHeader = "omega key rotation v1"

// Rotation is what a rotation statement says.
type Rotation struct {
	Origin   string
	Size     int64
	Root     tlog.Hash
	Old, New string // verifier keys
}

func (r Rotation) text() string {
	return fmt.Sprintf("%s\n%s\n%d\n%s\n%s\n%s\n", rotationHeader, r.Origin, r.Size, base64.StdEncoding.EncodeToString(r.Root[:]), r.Old, r.New)
}

// OpenRotation verifies the rotation statement msg of origin: its
// outgoing key must be the one old verifies, and both keys must have
// signed it. It returns the statement and the incoming key's verifier.
func OpenRotation(msg []byte, origin string, old note.Verifier) (Rotation, note.Verifier, error) {
	text, _, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return Rotation{}, nil, fmt.Errorf("%w: not a signed note", ErrBadRotation)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 6 || lines[0] != rotationHeader {
		return Rotation{}, nil, fmt.Errorf("%w: not an omega key rotation v1 statement", ErrBadRotation)
	}
	r := Rotation{Origin: lines[1], Old: lines[4], New: lines[5]}
	size, err := strconv.ParseInt(lines[2], 10, 64)
	root, rerr := base64.StdEncoding.DecodeString(lines[3])
	if err != nil || size < 0 || lines[2] != strconv.FormatInt(size, 10) || rerr != nil || len(root) != tlog.HashSize {
		return Rotation{}, nil, fmt.Errorf("%w: bad size or root line", ErrBadRotation)
	}
	r.Size, r.Root = size, tlog.Hash(root)
	if r.Origin != origin {
		return Rotation{}, nil, fmt.Errorf("%w: a rotation of %q, want %q", ErrBadRotation, r.Origin, origin)
	}
	oldV, err := note.NewVerifier(r.Old)
	if err != nil || oldV.Name() != old.Name() || oldV.KeyHash() != old.KeyHash() {
		return Rotation{}, nil, fmt.Errorf("%w: the outgoing key is not the one trusted", ErrBadRotation)
	}
	newV, err := note.NewVerifier(r.New)
	if err != nil || newV.Name() != origin {
		return Rotation{}, nil, fmt.Errorf("%w: bad incoming key %q", ErrBadRotation, r.New)
	}
	n, err := note.Open(msg, note.VerifierList(old, newV))
	if err != nil {
		return Rotation{}, nil, fmt.Errorf("%w: %v", ErrBadRotation, err)
	}
	signedBy := func(v note.Verifier) bool {
		return slices.ContainsFunc(n.Sigs, func(s note.Signature) bool { return s.Name == v.Name() && s.Hash == v.KeyHash() })
	}
	if !signedBy(old) || !signedBy(newV) {
		return Rotation{}, nil, fmt.Errorf("%w: not signed by both the outgoing and the incoming key", ErrBadRotation)
	}
	return r, newV, nil
}

// Rotate has the log sign its checkpoints with key from now on: it signs a
// rotation statement at the latest checkpoint with the current key and
// key, keeps it in RotationsDir, and signs that checkpoint again with key.
// It returns the statement, which verifiers that hold the current key
// need (see Follower.Rotate).
func (l *Log) Rotate(key crypto.Signer) ([]byte, error) {
	if l.signed == nil {
		return nil, errors.New("omega: transparency: no checkpoint to rotate at yet")
	}
	signer, err := NoteSigner(l.origin, key)
	if err != nil {
		return nil, err
	}
	vkey, err := VerifierKey(l.origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	if verifier.KeyHash() == l.verifier.KeyHash() {
		return nil, errors.New("omega: transparency: rotating to the key in use")
	}
	r := Rotation{Origin: l.origin, Size: l.cp.Size, Root: l.cp.Root, Old: l.vkey, New: vkey}
	stmt, err := note.Sign(&note.Note{Text: r.text()}, l.signer, signer)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: signing the rotation: %w", err)
	}
	signed, err := l.cp.Sign(signer)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: signing the checkpoint with the new key: %w", err)
	}
	dir := filepath.Join(l.dir, RotationsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	if err := syncDir(l.dir); err != nil { // the directory's entry
		return nil, err
	}
	// The statement first: a log whose checkpoint is signed by a key its
	// statements do not lead to would not open.
	if err := writeFile(filepath.Join(dir, fmt.Sprintf("%016x.note", len(l.rotations)+1)), stmt); err != nil {
		return nil, err
	}
	// The statement is durable: the log's key is the new one from here,
	// whether or not the checkpoint signed again reaches the disk (an
	// open finishes that).
	l.rotations = append(l.rotations, stmt)
	l.signer, l.verifier, l.vkey = signer, verifier, vkey
	if err := writeFile(filepath.Join(l.dir, CheckpointFile), signed); err != nil {
		return nil, err
	}
	l.signed = signed
	return stmt, nil
}

// Rotations returns the log's rotation statements, in order.
func (l *Log) Rotations() [][]byte { return slices.Clone(l.rotations) }

// loadRotations reads RotationsDir and follows its statements from the
// first outgoing key to the last incoming one, which must be vkey. It
// returns the statements.
func loadRotations(dir, origin, vkey string) ([][]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, RotationsDir, "*.note"))
	if err != nil || len(names) == 0 {
		return nil, err
	}
	slices.Sort(names)
	var stmts [][]byte
	var cur note.Verifier
	var last Rotation
	for i, name := range names {
		if filepath.Base(name) != fmt.Sprintf("%016x.note", i+1) {
			return nil, fmt.Errorf("omega: transparency: %s: rotation statements are not numbered 1 to %d", name, len(names))
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("omega: transparency: %w", err)
		}
		if cur == nil {
			// The first statement names the log's first key.
			text, _, _ := bytes.Cut(b, []byte("\n\n"))
			lines := strings.Split(string(text), "\n")
			if len(lines) != 6 {
				return nil, fmt.Errorf("omega: transparency: %s: not a rotation statement", name)
			}
			if cur, err = note.NewVerifier(lines[4]); err != nil {
				return nil, fmt.Errorf("omega: transparency: %s: %w", name, err)
			}
		}
		r, next, err := OpenRotation(b, origin, cur)
		if err != nil {
			return nil, fmt.Errorf("omega: transparency: %s: %w", name, err)
		}
		if i > 0 && r.Size < last.Size {
			return nil, fmt.Errorf("omega: transparency: %s: a rotation at size %d after one at %d", name, r.Size, last.Size)
		}
		stmts, cur, last = append(stmts, b), next, r
	}
	if last.New != vkey {
		return nil, fmt.Errorf("omega: transparency: the log's last rotation leads to %s, not to the key given (%s)", last.New, vkey)
	}
	return stmts, nil
}

// lastRotation returns what the last of stmts (checked by loadRotations)
// says, and its outgoing key's verifier.
func lastRotation(stmts [][]byte) (Rotation, note.Verifier) {
	text, _, _ := bytes.Cut(stmts[len(stmts)-1], []byte("\n\n"))
	lines := strings.Split(string(text), "\n")
	size, _ := strconv.ParseInt(lines[2], 10, 64)
	root, _ := base64.StdEncoding.DecodeString(lines[3])
	old, _ := note.NewVerifier(lines[4])
	return Rotation{Origin: lines[1], Size: size, Root: tlog.Hash(root), Old: lines[4], New: lines[5]}, old
}
