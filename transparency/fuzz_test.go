package transparency

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var updateSeed = flag.Bool("update-seed", false, "rewrite the seed corpus of FuzzVerifyBundle in testdata/fuzz")

// TestFuzzSeed keeps testdata/fuzz/FuzzVerifyBundle/valid, a bundle of the
// test log, as the bundle the test log makes today (certificates and
// signatures are deterministic); -update-seed rewrites it.
func TestFuzzSeed(t *testing.T) {
	s, tr, signer, verifier := logOf(t, 5)
	_, signed := signedCheckpoint(t, tr, 5, signer)
	b, err := tr.Prove(s, 3, signed, origin, verifier)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
	path := filepath.Join("testdata", "fuzz", "FuzzVerifyBundle", "valid")
	if *updateSeed {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is not the bundle the test log makes (%v): run go test -run TestFuzzSeed -update-seed", path, err)
	}
}

// FuzzVerifyBundle feeds VerifyBundle arbitrary bundles: it must never
// panic, and whatever it accepts must be a certificate of the log at its
// index, under the checkpoint the log signed.
func FuzzVerifyBundle(f *testing.F) {
	s, tr, signer, verifier := logOf(f, 5)
	cp, signed := signedCheckpoint(f, tr, 5, signer)
	good, err := tr.Prove(s, 3, signed, origin, verifier)
	if err != nil {
		f.Fatal(err)
	}
	envs := envelopes(s)
	f.Add(good)
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := VerifyBundle(b, origin, verifier)
		if err != nil {
			return
		}
		if got.Checkpoint != cp || got.Index < 0 || got.Index >= 5 || !bytes.Equal(got.Certificate, envs[got.Index]) {
			t.Fatalf("accepted %v", got)
		}
	})
}
