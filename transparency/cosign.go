package transparency

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note algorithm byte of an Ed25519
// cosignature/v1 key (C2SP tlog-cosignature).
const algCosignatureV1 = 4

// CosignatureSigner returns a witness's note.Signer for C2SP
// cosignature/v1: it signs "cosignature/v1\ntime <now>\n" followed by the
// checkpoint, with key (an Ed25519 crypto.Signer, so a witness key in an
// HSM plugs in), and prefixes the signature with the time, as the format
// says. now is the witness's clock, an explicit input.
func CosignatureSigner(name string, key crypto.Signer, now func() time.Time) (note.Signer, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("omega: transparency: a witness key must be Ed25519, not %T", key.Public())
	}
	if err := checkName(name, pub); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return &cosigner{name: name, hash: binary.BigEndian.Uint32(h.Sum(nil)), key: key, now: now}, nil
}

type cosigner struct {
	name string
	hash uint32
	key  crypto.Signer
	now  func() time.Time
}

func (s *cosigner) Name() string    { return s.name }
func (s *cosigner) KeyHash() uint32 { return s.hash }
func (s *cosigner) Sign(msg []byte) ([]byte, error) {
	t := s.now().Unix()
	if t <= 0 {
		return nil, fmt.Errorf("omega: transparency: cosignature time %d: cosignature/v1 wants a time after 1970", t)
	}
	signed := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", t, msg)
	sig, err := s.key.Sign(nil, signed, crypto.Hash(0))
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(t)), sig...), nil
}

// CosignatureVerifierKey returns the verifier key of a witness's
// cosignature/v1 key: "<name>+<hash>+<base64 of 0x04 || public key>".
func CosignatureVerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("omega: transparency: a cosignature key of %d bytes", len(pub))
	}
	if err := checkName(name, pub); err != nil {
		return "", err
	}
	k := append([]byte{algCosignatureV1}, pub...)
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n'})
	h.Write(k)
	return fmt.Sprintf("%s+%08x+%s", name, binary.BigEndian.Uint32(h.Sum(nil)), base64.StdEncoding.EncodeToString(k)), nil
}

// CosignatureVerifier returns the verifier of the witness whose
// cosignature/v1 verifier key is vkey (CosignatureVerifierKey's form, or a
// plain Ed25519 note key, taken as the same key for cosignatures), for
// VerifyWitnessed and Follower.
func CosignatureVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: witness key %q: %w", vkey, err)
	}
	return v, nil
}
