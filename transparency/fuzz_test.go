package transparency

import (
	"bytes"
	"testing"
)

// FuzzVerifyBundle feeds VerifyBundle arbitrary proofs and certificates:
// it must never panic, and whatever it accepts must be the one bundle the
// log signed: a certificate of the log at its index, under the checkpoint
// the log signed.
func FuzzVerifyBundle(f *testing.F) {
	s, tr, signer, verifier := logOf(f, 5)
	cp, signed := signedCheckpoint(f, tr, 5, signer)
	good, err := tr.Prove(s, 3, signed, origin, verifier)
	if err != nil {
		f.Fatal(err)
	}
	envs := envelopes(s)
	f.Add(good.Proof, good.Certificate)
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\n"), []byte{})
	f.Fuzz(func(t *testing.T, proof, cert []byte) {
		got, index, err := VerifyBundle(&Bundle{Certificate: cert, Proof: proof}, origin, verifier)
		if err != nil {
			return
		}
		if got != cp || index < 0 || index >= 5 || !bytes.Equal(cert, envs[index]) {
			t.Fatalf("accepted index %d of %v with certificate %x", index, got, cert)
		}
	})
}
