package transparency

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// algEd25519 is the signed-note algorithm byte of an Ed25519 key.
const algEd25519 = 1

// NoteSigner returns a note.Signer that signs as name with key, whose
// public key must be an ed25519.PublicKey: a key in an HSM or a KMS
// plugs in as it does for certificates. Its key hash is the C2SP
// signed-note one, so verifiers made by note.NewVerifier from the key
// VerifierKey returns accept what it signs.
func NoteSigner(name string, key crypto.Signer) (note.Signer, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("omega: transparency: a note key must be Ed25519, not %T", key.Public())
	}
	if err := checkName(name, pub); err != nil {
		return nil, err
	}
	return &noteSigner{name: name, hash: keyHash(name, pub), key: key}, nil
}

// VerifierKey returns the C2SP signed-note verifier key of name and pub:
// "<name>+<hash>+<base64 key>", what note.NewVerifier reads.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(name, pub)
}

type noteSigner struct {
	name string
	hash uint32
	key  crypto.Signer
}

func (s *noteSigner) Name() string    { return s.name }
func (s *noteSigner) KeyHash() uint32 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) {
	return s.key.Sign(nil, msg, crypto.Hash(0))
}

// checkName applies the signed-note rules for key names (non-empty UTF-8,
// no space, no plus sign) as x/mod's note package does, by making the
// verifier it would read.
func checkName(name string, pub ed25519.PublicKey) error {
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err == nil {
		_, err = note.NewVerifier(vkey)
	}
	if err != nil {
		return fmt.Errorf("omega: transparency: %q is not a valid note key name: %w", name, err)
	}
	return nil
}

// keyHash is the signed-note key hash: the first four bytes, big-endian,
// of SHA-256(name || "\n" || algorithm byte || public key).
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Checkpoint is a C2SP tlog-checkpoint: the log's origin, its size and the
// root hash of its tree.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Checkpoint returns the checkpoint of the first size certificates of t
// under origin.
func (t *Tree) Checkpoint(origin string, size int64) (Checkpoint, error) {
	root, err := t.Root(size)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Origin: origin, Size: size, Root: root}, nil
}

// Sign returns c as a signed note, signed by each of signers (the log's
// first).
func (c Checkpoint) Sign(signers ...note.Signer) ([]byte, error) {
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\n") {
		return nil, fmt.Errorf("omega: transparency: origin %q is not one line", c.Origin)
	}
	text := log.Checkpoint{Origin: c.Origin, Size: uint64(c.Size), Hash: c.Root[:]}.Marshal()
	return note.Sign(&note.Note{Text: string(text)}, signers...)
}

// OpenCheckpoint verifies the signed checkpoint msg: signed by log, the
// log's verifier, with origin origin. It returns the checkpoint and the
// note, whose Sigs name every signature from log and from others that
// verified.
func OpenCheckpoint(msg []byte, origin string, logKey note.Verifier, others ...note.Verifier) (Checkpoint, *note.Note, error) {
	cp, _, n, err := log.ParseCheckpoint(msg, origin, logKey, others...)
	if err != nil {
		return Checkpoint{}, n, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if len(cp.Hash) != tlog.HashSize {
		return Checkpoint{}, n, fmt.Errorf("%w: a root hash of %d bytes", ErrBadCheckpoint, len(cp.Hash))
	}
	if cp.Size > 1<<62 {
		return Checkpoint{}, n, fmt.Errorf("%w: size out of range", ErrBadCheckpoint)
	}
	return Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Root: tlog.Hash(cp.Hash)}, n, nil
}
