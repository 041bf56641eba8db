package omega

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/fips140"
	"io"
	"os"
	"os/exec"
	"testing"

	"pgregory.net/rapid"
)

// TestEd25519KeySignsAsStdlib checks that an expanded key's signatures are
// crypto/ed25519's, byte for byte, over keys, signing contexts and
// messages, one key signing several messages in turn (its hasher reused).
func TestEd25519KeySignsAsStdlib(t *testing.T) {
	if fips140.Enabled() {
		t.Skip("in FIPS 140-3 mode keys are not expanded (TestEd25519KeyFIPS)")
	}
	rapid.Check(t, func(t *rapid.T) {
		priv := ed25519.NewKeyFromSeed(rapid.SliceOfN(rapid.Byte(), ed25519.SeedSize, ed25519.SeedSize).Draw(t, "seed"))
		k := expandEd25519(priv)
		if k == nil {
			t.Fatal("an ed25519.PrivateKey was not expanded")
		}
		for i := range rapid.IntRange(1, 4).Draw(t, "messages") {
			ctx := rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "ctx")
			msg := rapid.SliceOfN(rapid.Byte(), 0, 600).Draw(t, "msg")
			var got [64]byte
			k.sign(&got, ctx, msg)
			if want := ed25519.Sign(priv, append(append([]byte{}, ctx...), msg...)); !bytes.Equal(got[:], want) {
				t.Fatalf("message %d: signature %x, crypto/ed25519 %x", i, got, want)
			}
		}
	})
}

// opaqueSigner hides the key behind crypto.Signer, as an HSM would: Certify
// signs through Sign.
type opaqueSigner struct{ priv ed25519.PrivateKey }

func (s opaqueSigner) Public() crypto.PublicKey { return s.priv.Public() }
func (s opaqueSigner) Sign(r io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.priv.Sign(r, msg, opts)
}

// TestCertifyExpandedKey checks that a certificate signed with an expanded
// key is the one crypto/ed25519 signs through crypto.Signer, for a Merge
// and an Obstruction, and that only a well-formed ed25519.PrivateKey is
// expanded.
func TestCertifyExpandedKey(t *testing.T) {
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := []byte("payload")
	ev := Event{ID: ID64(1), NodeID: 1, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}
	merge, err := c.Reconcile(&State{}, []Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	bad := ev
	bad.PayloadHash[0] ^= 1
	obst, err := c.Reconcile(&State{}, []Event{bad})
	if err != nil {
		t.Fatal(err)
	}
	if merge.Result.Kind != KindMerge || obst.Result.Kind != KindObstruction {
		t.Fatalf("kinds %v, %v", merge.Result.Kind, obst.Result.Kind)
	}
	priv := testKey(7)
	key := expandEd25519(priv)
	if key == nil && !fips140.Enabled() {
		t.Fatal("an ed25519.PrivateKey was not expanded")
	}
	prev := Hash{}
	for i, out := range []Output{merge, obst, merge} {
		meta := BatchMeta{BatchID: uint64(i + 1), CreatedAtNs: uint64(1000 * i)}
		want, err := Certify(out, DefaultBinding(), meta, prev, opaqueSigner{priv})
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]func() (*Certificate, error){
			"Certify":  func() (*Certificate, error) { return Certify(out, DefaultBinding(), meta, prev, priv) },
			"expanded": func() (*Certificate, error) { return certify(out, DefaultBinding(), meta, prev, priv, key) },
		} {
			c, err := got()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Bytes(), want.Bytes()) || c.Signature != want.Signature {
				t.Fatalf("batch %d, %s: certificate differs from the one signed through crypto.Signer", i+1, name)
			}
			if _, err := Verify(c.Bytes(), KeyRing{KeyID(priv.Public().(ed25519.PublicKey)): priv.Public().(ed25519.PublicKey)}, DefaultBinding()); err != nil {
				t.Fatalf("batch %d, %s: %v", i+1, name, err)
			}
		}
		prev = want.Hash()
	}
	for name, s := range map[string]crypto.Signer{
		"opaque":    opaqueSigner{priv},
		"short key": priv[:40],
		"nil key":   ed25519.PrivateKey(nil),
	} {
		if expandEd25519(s) != nil {
			t.Errorf("%s signer was expanded", name)
		}
	}
}

// TestEd25519KeyFIPS checks, in a child process in FIPS 140-3 mode, that no
// key is expanded there: signatures are made by crypto/ed25519.
func TestEd25519KeyFIPS(t *testing.T) {
	if fips140.Enabled() {
		if expandEd25519(testKey(7)) != nil {
			t.Fatal("a key was expanded in FIPS 140-3 mode")
		}
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEd25519KeyFIPS$", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in FIPS mode: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestEd25519KeyFIPS")) {
		t.Fatalf("child did not run the test:\n%s", out)
	}
}

// BenchmarkEd25519Sign compares signing a certificate-sized message with
// crypto/ed25519 and with the expanded key the kernel signs with.
func BenchmarkEd25519Sign(b *testing.B) {
	priv := vectorKey()
	msg := bytes.Repeat([]byte{7}, 300)
	b.Run("crypto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(priv, msg)
		}
	})
	b.Run("expanded", func(b *testing.B) {
		k := expandEd25519(priv)
		var sig [64]byte
		b.ReportAllocs()
		for b.Loop() {
			k.sign(&sig, nil, msg)
		}
	})
}
