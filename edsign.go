package omega

import (
	"crypto"
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/sha512"
	"hash"

	"filippo.io/edwards25519"
)

// ed25519Key is an Ed25519 private key expanded for signing (RFC 8032
// 5.1.6): the clamped secret scalar and the nonce prefix, derived from the
// seed once. Ed25519 signatures are deterministic, so its signatures are
// crypto/ed25519's, byte for byte; they cost about a sixth less, because
// crypto/ed25519 encodes the nonce point R twice, and each encoding
// inverts a field element. The kernel signs every batch's certificate, on
// one goroutine, and that signature is the largest single cost it has.
//
// An ed25519Key keeps its hasher: one goroutine at a time signs with it.
type ed25519Key struct {
	s      edwards25519.Scalar
	prefix [32]byte
	pub    [32]byte
	id     [16]byte  // KeyID(pub)
	h      hash.Hash // SHA-512
	d      [64]byte
}

// expandEd25519 returns signer expanded for signing when signer is an
// ed25519.PrivateKey of the right size, and nil for any other signer (an
// HSM or a KMS key, say), which signs through its Sign method. It returns
// nil too in FIPS 140-3 mode, where signatures are to be made within the
// validated module.
func expandEd25519(signer crypto.Signer) *ed25519Key {
	priv, ok := signer.(ed25519.PrivateKey)
	if !ok || len(priv) != ed25519.PrivateKeySize || fips140.Enabled() {
		return nil
	}
	h := sha512.Sum512(priv[:ed25519.SeedSize])
	k := &ed25519Key{h: sha512.New()}
	k.s.SetBytesWithClamping(h[:32]) // cannot fail on 32 bytes
	copy(k.prefix[:], h[32:])
	copy(k.pub[:], priv[ed25519.SeedSize:])
	k.id = KeyID(k.pub[:])
	return k
}

// sign writes to sig the Ed25519 signature of the message ctx || msg.
func (k *ed25519Key) sign(sig *[64]byte, ctx, msg []byte) {
	var r, hram, s edwards25519.Scalar
	k.h.Reset()
	k.h.Write(k.prefix[:])
	k.h.Write(ctx)
	k.h.Write(msg)
	r.SetUniformBytes(k.h.Sum(k.d[:0])) // 64 bytes: cannot fail
	var R edwards25519.Point
	copy(sig[:32], R.ScalarBaseMult(&r).Bytes())

	k.h.Reset()
	k.h.Write(sig[:32])
	k.h.Write(k.pub[:])
	k.h.Write(ctx)
	k.h.Write(msg)
	hram.SetUniformBytes(k.h.Sum(k.d[:0]))
	copy(sig[32:], s.MultiplyAdd(&hram, &k.s, &r).Bytes())
}
