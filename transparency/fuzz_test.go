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

var updateSeed = flag.Bool("update-seed", false, "rewrite the seed corpora in testdata/fuzz")

// seeds returns the valid inputs the fuzz targets start from: a bundle of
// the test log and a rotation statement of it, as the test log makes them
// (certificates and signatures are deterministic).
func seeds(t testing.TB) (bundle, rotation []byte) {
	_, l := openLog(t, 5)
	var err error
	if bundle, err = l.Prove(3); err != nil {
		t.Fatal(err)
	}
	if rotation, err = l.Rotate(nextKey); err != nil {
		t.Fatal(err)
	}
	return bundle, rotation
}

// TestFuzzSeed keeps testdata/fuzz/<target>/valid as seeds makes them;
// -update-seed rewrites them.
func TestFuzzSeed(t *testing.T) {
	bundle, rotation := seeds(t)
	for target, b := range map[string][]byte{"FuzzVerifyBundle": bundle, "FuzzOpenRotation": rotation} {
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		path := filepath.Join("testdata", "fuzz", target, "valid")
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
			t.Fatalf("%s is not the seed the test log makes (%v): run go test -run TestFuzzSeed -update-seed", path, err)
		}
	}
}

// FuzzOpenRotation feeds OpenRotation arbitrary statements: it must never
// panic, and what it accepts must be the test log's rotation, which no
// one else can sign.
func FuzzOpenRotation(f *testing.F) {
	_, rotation := seeds(f)
	old := verifierOf(f, logKey)
	want, _, err := OpenRotation(rotation, origin, old)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rotation)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, next, err := OpenRotation(b, origin, old)
		if err != nil {
			return
		}
		if r != want || next.KeyHash() != verifierOf(t, nextKey).KeyHash() {
			t.Fatalf("accepted %+v", r)
		}
	})
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
