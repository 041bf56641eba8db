package transparency

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/omega-sheaf/omega"
)

// CheckpointFile is the name of the file, beside cert.log, that holds the
// log's latest signed checkpoint.
const CheckpointFile = "checkpoint"

// Policy says when Log.Update signs a new checkpoint: once Every
// certificates were appended since the last one (0 or 1: after every
// certificate), or, when Interval is set, once Interval has passed since
// the last one and any certificate was appended. A checkpoint is never
// signed for a size already checkpointed. After OpenLog, the interval
// counts from when CheckpointFile was last written (its modification
// time), so that a program that opens the log for each update still
// meets it.
type Policy struct {
	Every    int
	Interval time.Duration
}

// Log is a certificate store seen as a transparency log: its tree and its
// signed checkpoints, the latest kept in CheckpointFile. Its methods are
// not safe for concurrent use.
type Log struct {
	dir      string
	origin   string
	certs    *omega.CertStore
	tree     *Tree
	signer   note.Signer
	verifier note.Verifier
	vkey     string // the verifier key of signer
	// rotations are the log's rotation statements, in order.
	rotations [][]byte
	policy    Policy
	cp        Checkpoint // the latest checkpoint signed
	signed    []byte     // and its signed note; nil before the first
	at        time.Time  // when it was signed, by Update's clock
}

// OpenLog opens the transparency log of the certificate store certs, in
// dir (the directory of its cert.log), whose checkpoints name origin and
// are signed by key (an Ed25519 crypto.Signer): the log's key, or the one
// its last rotation statement (see Rotate) leads to. A checkpoint already in
// CheckpointFile must verify under key and describe a prefix of the
// certificates: otherwise the store lost certificates that were
// checkpointed, or holds others, and OpenLog fails with ErrFork rather
// than sign a second history.
func OpenLog(dir, origin string, certs *omega.CertStore, key crypto.Signer, policy Policy) (*Log, error) {
	signer, err := NoteSigner(origin, key)
	if err != nil {
		return nil, err
	}
	vkey, err := VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	if policy.Every < 0 || policy.Interval < 0 {
		return nil, errors.New("omega: transparency: a Policy's Every and Interval must not be negative")
	}
	removeTemps(dir, CheckpointFile)
	rotations, err := loadRotations(dir, origin, vkey)
	if err != nil {
		return nil, err
	}
	tree, err := OpenTree(dir, certs)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, origin: origin, certs: certs, tree: tree, signer: signer, verifier: verifier, vkey: vkey, rotations: rotations, policy: policy}
	if err := l.loadCheckpoint(); err != nil {
		tree.Close()
		return nil, err
	}
	return l, nil
}

// loadCheckpoint reads CheckpointFile, when there is one, and checks it
// against the tree.
func (l *Log) loadCheckpoint() error {
	path := filepath.Join(l.dir, CheckpointFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("omega: transparency: %w", err)
	}
	cp, _, err := OpenCheckpoint(b, l.origin, l.verifier)
	resign := false
	if err != nil && len(l.rotations) > 0 {
		// Rotate stopped between its statement and the checkpoint signed
		// again: the checkpoint is the outgoing key's, at the rotation.
		r, old := lastRotation(l.rotations)
		if c, _, oerr := OpenCheckpoint(b, l.origin, old); oerr == nil && c.Size == r.Size && c.Root == r.Root {
			cp, err, resign = c, nil, true
		}
	}
	if err != nil {
		return fmt.Errorf("omega: transparency: %s: %w", path, err)
	}
	if cp.Size > l.tree.Size() {
		return fmt.Errorf("%w: %s covers %d certificates, the store holds %d", ErrFork, path, cp.Size, l.tree.Size())
	}
	if root, err := l.tree.Root(cp.Size); err != nil || root != cp.Root {
		return fmt.Errorf("%w: %s is not of the certificates the store holds (%v)", ErrFork, path, err)
	}
	l.cp, l.signed = cp, b
	if fi, err := os.Stat(path); err == nil {
		l.at = fi.ModTime() // the Interval counts on across opens
	}
	if resign {
		if l.signed, err = cp.Sign(l.signer); err != nil {
			return fmt.Errorf("omega: transparency: signing the checkpoint with the new key: %w", err)
		}
		return writeFile(path, l.signed)
	}
	return nil
}

// Update brings the tree up to the certificates the store holds and, when
// the policy says so, signs a checkpoint of them and writes it to
// CheckpointFile (a temporary file, synced, renamed). now is the time the
// policy's Interval is measured by. It reports whether it signed one.
func (l *Log) Update(now time.Time) (bool, error) {
	if err := l.tree.Update(l.certs); err != nil {
		return false, err
	}
	size := l.tree.Size()
	if size == l.cp.Size {
		return false, nil
	}
	if l.at.IsZero() {
		l.at = now // the interval of the first checkpoint since opening
	}
	due := size-l.cp.Size >= int64(max(l.policy.Every, 1)) ||
		l.policy.Interval > 0 && now.Sub(l.at) >= l.policy.Interval
	if !due {
		return false, nil
	}
	cp, err := l.tree.Checkpoint(l.origin, size)
	if err != nil {
		return false, err
	}
	signed, err := cp.Sign(l.signer)
	if err != nil {
		return false, fmt.Errorf("omega: transparency: signing the checkpoint of size %d: %w", size, err)
	}
	if err := writeFile(filepath.Join(l.dir, CheckpointFile), signed); err != nil {
		return false, err
	}
	l.cp, l.signed, l.at = cp, signed, now
	return true, nil
}

// Latest returns the latest checkpoint signed and its signed note; the
// note is nil before the first.
func (l *Log) Latest() (Checkpoint, []byte) { return l.cp, l.signed }

// Verifier returns the verifier of the log's checkpoints.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Tree returns the log's tree.
func (l *Log) Tree() *Tree { return l.tree }

// Prove returns the bundle of certificate index under the latest
// checkpoint.
func (l *Log) Prove(index int64) ([]byte, error) {
	if l.signed == nil {
		return nil, errors.New("omega: transparency: no checkpoint signed yet")
	}
	return l.tree.Prove(l.certs, index, l.signed, l.origin, l.verifier)
}

// Close closes the tree's file; the store stays open.
func (l *Log) Close() error { return l.tree.Close() }

// IndexOf returns the position in the log of the certificate whose
// cert_id is id.
func (l *Log) IndexOf(id omega.CertID) (int64, error) {
	i, ok := l.certs.Position(id)
	if !ok {
		return 0, fmt.Errorf("omega: transparency: no certificate %v in the store", id)
	}
	return int64(i), nil
}
