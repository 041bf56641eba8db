package transparency

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/formats/proof"
	"github.com/zeebo/blake3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/omega-sheaf/omega"
)

const origin = "example.com/omega/certs"

var (
	certKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	logKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
)

// certStore returns a certificate store in a new directory holding n
// certificates, one per batch of one event each.
func certStore(t testing.TB, n int) (*omega.CertStore, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := omega.OpenCertStore(dir, c.Binding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addCerts(t, s, c, 0, n)
	return s, dir
}

// state is the State after the batches addCerts certified, by store.
var states = map[*omega.CertStore]*omega.State{}

// addCerts certifies and appends batches from+1..from+n, one event each.
func addCerts(t testing.TB, s *omega.CertStore, c *omega.Checker, from, n int) {
	t.Helper()
	st := states[s]
	for i := from; i < from+n; i++ {
		p := []byte(fmt.Sprint("payload ", i))
		e := omega.Event{ID: omega.ID64(uint64(i + 1)), NodeID: 1, Lamport: uint64(i + 1), PayloadHash: blake3.Sum256(p), Deps: []omega.EventID{}, Payload: p}
		out, err := c.Reconcile(st, []omega.Event{e})
		if err != nil || out.Result.Kind != omega.KindMerge {
			t.Fatalf("batch %d: %v, %v", i+1, out.Result, err)
		}
		st = out.Result.Merge.Next.Commit()
		if _, err := s.CertifyAppend(out, c.Binding(), omega.BatchMeta{BatchID: uint64(i + 1)}, certKey); err != nil {
			t.Fatal(err)
		}
	}
	states[s] = st
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
}

func logSigner(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	s, err := NoteSigner(origin, logKey)
	if err != nil {
		t.Fatal(err)
	}
	return s, verifierOf(t, logKey)
}

// logOf returns a store of n certificates, its open tree, and the log's
// note signer and verifier.
func logOf(t testing.TB, n int) (*omega.CertStore, *Tree, note.Signer, note.Verifier) {
	t.Helper()
	s, dir := certStore(t, n)
	tr, err := OpenTree(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	signer, verifier := logSigner(t)
	return s, tr, signer, verifier
}

// signedCheckpoint returns the checkpoint of tr at size and its signed note.
func signedCheckpoint(t testing.TB, tr *Tree, size int64, signer note.Signer) (Checkpoint, []byte) {
	t.Helper()
	cp, err := tr.Checkpoint(origin, size)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := cp.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return cp, signed
}

// envelopes returns the certificates' envelopes in log order.
func envelopes(s *omega.CertStore) [][]byte {
	var out [][]byte
	for _, c := range s.All() {
		out = append(out, c.Bytes())
	}
	return out
}

// rfc6962Root computes the RFC 6962 tree hash of leaves recursively, as
// the RFC defines it: independent of tlog's stored-hash layout.
func rfc6962Root(leaves [][]byte) tlog.Hash {
	switch len(leaves) {
	case 0:
		return tlog.Hash(sha256Sum(nil))
	case 1:
		return tlog.RecordHash(leaves[0])
	}
	k := 1
	for 2*k < len(leaves) {
		k *= 2
	}
	return tlog.NodeHash(rfc6962Root(leaves[:k]), rfc6962Root(leaves[k:]))
}

func TestTreeRoots(t *testing.T) {
	s, dir := certStore(t, 21)
	tr, err := OpenTree(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	envs := envelopes(s)
	for size := int64(0); size <= 21; size++ {
		got, err := tr.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		if want := rfc6962Root(envs[:size]); got != want {
			t.Fatalf("root of size %d = %v, want %v", size, got, want)
		}
	}
	if _, err := tr.Root(22); err == nil {
		t.Fatal("Root(22) of a tree of 21 succeeded")
	}
}

// TestTreeFile checks TreeFile: written at open, extended by Update, and
// rebuilt when missing, torn, stale or damaged.
func TestTreeFile(t *testing.T) {
	s, dir := certStore(t, 5)
	c, _ := omega.NewChecker(nil)
	path := filepath.Join(dir, TreeFile)
	check := func(what string, n int64) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if want := int(tlog.StoredHashCount(n)) * tlog.HashSize; len(b) != want {
			t.Fatalf("%s: %s holds %d bytes, want %d", what, TreeFile, len(b), want)
		}
		root, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(xs))
			for i, x := range xs {
				out[i] = tlog.Hash(b[x*tlog.HashSize:])
			}
			return out, nil
		}))
		if err != nil || root != rfc6962Root(envelopes(s)[:n]) {
			t.Fatalf("%s: the file's root %v (%v) is not the log's", what, root, err)
		}
	}
	open := func(what string) {
		t.Helper()
		tr, err := OpenTree(dir, s)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		tr.Close()
		check(what, int64(s.Len()))
	}
	open("new")
	tr, err := OpenTree(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	addCerts(t, s, c, 5, 7)
	if err := tr.Update(s); err != nil {
		t.Fatal(err)
	}
	if tr.Size() != 12 {
		t.Fatalf("Size() = %d after Update, want 12", tr.Size())
	}
	tr.Close()
	check("updated", 12)

	os.Remove(path)
	open("missing")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-7], 0o644)
	open("torn")
	os.WriteFile(path, b[:len(b)/2], 0o644)
	open("stale")
	b[40] ^= 1
	os.WriteFile(path, b, 0o644)
	open("damaged")
}

func TestBundle(t *testing.T) {
	s, tr, signer, verifier := logOf(t, 13)
	envs := envelopes(s)
	for _, size := range []int64{1, 2, 7, 13} {
		cp, signed := signedCheckpoint(t, tr, size, signer)
		for index := range size {
			b, err := tr.Prove(s, index, signed, origin, verifier)
			if err != nil {
				t.Fatalf("size %d, index %d: %v", size, index, err)
			}
			got, err := VerifyBundle(b, origin, verifier)
			if err != nil || got.Index != index || got.Checkpoint != cp || !bytes.Equal(got.Certificate, envs[index]) {
				t.Fatalf("size %d, index %d: VerifyBundle = %v, %v", size, index, got, err)
			}
		}
	}
}

// TestBundleTampered changes every byte of a bundle, one at a time: a
// change either fails verification or leaves what the bundle proves as
// it was (as a flip in base64 padding bits may). Another key, origin or
// certificate fails.
func TestBundleTampered(t *testing.T) {
	s, tr, signer, verifier := logOf(t, 11)
	envs := envelopes(s)
	cp, signed := signedCheckpoint(t, tr, 11, signer)
	b, err := tr.Prove(s, 6, signed, origin, verifier)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x01
		got, err := VerifyBundle(bad, origin, verifier)
		if err == nil && (got.Index != 6 || got.Checkpoint != cp || !bytes.Equal(got.Certificate, envs[6])) {
			t.Fatalf("byte %d changed: verifies as %v", i, got)
		}
	}
	other := func() note.Verifier {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
		vkey, _ := VerifierKey(origin, k.Public().(ed25519.PublicKey))
		v, _ := note.NewVerifier(vkey)
		return v
	}()
	if _, err := VerifyBundle(b, origin, other); !errors.Is(err, ErrBadCheckpoint) || !errors.Is(err, omega.ErrVerification) {
		t.Fatalf("a bundle under another log's key: %v, want ErrBadCheckpoint, a verification error", err)
	}
	if _, err := VerifyBundle(b, origin+"x", verifier); err == nil {
		t.Fatal("a bundle verifies under another origin")
	}
	var tp proof.TLogProof
	if err := tp.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	tp.ExtraData = envs[5]
	if _, err := VerifyBundle(tp.Marshal(), origin, verifier); !errors.Is(err, ErrBadProof) || !errors.Is(err, omega.ErrVerification) {
		t.Fatalf("certificate 5 with the proof of certificate 6: %v, want ErrBadProof, a verification error", err)
	}
	tp.ExtraData = nil
	if _, err := VerifyBundle(tp.Marshal(), origin, verifier); err == nil {
		t.Fatal("a bundle without its certificate verifies")
	}
}

func mustRoot(t *testing.T, tr *Tree, size int64) tlog.Hash {
	t.Helper()
	r, err := tr.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConsistency(t *testing.T) {
	_, tr, _, _ := logOf(t, 17)
	for old := int64(1); old <= 17; old++ {
		for size := old; size <= 17; size++ {
			a, _ := tr.Checkpoint(origin, old)
			b, _ := tr.Checkpoint(origin, size)
			p, err := tr.ProveConsistency(old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(a, b, p); err != nil {
				t.Fatalf("%d -> %d: %v", old, size, err)
			}
			for i := range p {
				bad := append(tlog.TreeProof(nil), p...)
				bad[i][i%32] ^= 1
				if err := VerifyConsistency(a, b, bad); !errors.Is(err, ErrNotConsistent) {
					t.Fatalf("%d -> %d, proof hash %d changed: %v", old, size, i, err)
				}
			}
			if old < size && old > 1 {
				short, _ := tr.Checkpoint(origin, old-1)
				if err := VerifyConsistency(short, b, p); err == nil {
					t.Fatalf("the proof from %d verifies from %d", old, old-1)
				}
			}
		}
	}
}

// TestFork detects a log that shows two histories: two checkpoints of one
// size with different roots, and a later checkpoint that does not extend
// an earlier one.
func TestFork(t *testing.T) {
	s1, dir1 := certStore(t, 9)
	t1, _ := OpenTree(dir1, s1)
	defer t1.Close()
	// The same first 6 certificates, then others: another checker time.
	s2, dir2 := certStore(t, 6)
	c, _ := omega.NewChecker(nil)
	addCerts(t, s2, c, 100, 3)
	t2, _ := OpenTree(dir2, s2)
	defer t2.Close()

	a, _ := t1.Checkpoint(origin, 9)
	b, _ := t2.Checkpoint(origin, 9)
	if err := VerifyConsistency(a, b, nil); !errors.Is(err, ErrFork) {
		t.Fatalf("two roots at size 9: %v", err)
	}
	old, _ := t1.Checkpoint(origin, 8)
	p, _ := t2.ProveConsistency(8, 9)
	if err := VerifyConsistency(old, b, p); !errors.Is(err, ErrNotConsistent) {
		t.Fatalf("size 8 of one history to size 9 of the other: %v", err)
	}
	same, _ := t1.Checkpoint(origin, 6)
	p, _ = t2.ProveConsistency(6, 9)
	if err := VerifyConsistency(same, b, p); err != nil {
		t.Fatalf("the shared prefix of 6: %v", err)
	}
}

func TestNoteSigner(t *testing.T) {
	signer, verifier := logSigner(t)
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		t.Fatalf("signer %s/%08x, verifier %s/%08x", signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	// Against x/mod's own signer for the same key.
	skey := "PRIVATE+KEY+" + origin + fmt.Sprintf("+%08x+", verifier.KeyHash()) + b64(append([]byte{algEd25519}, logKey.Seed()...))
	ref, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, signer)
	want, _ := note.Sign(&note.Note{Text: "hello\n"}, ref)
	if !bytes.Equal(msg, want) {
		t.Fatalf("signed note\n%s\nwant\n%s", msg, want)
	}
	for _, name := range []string{"", "a b", "a+b", "a\nb"} {
		if _, err := NoteSigner(name, logKey); err == nil {
			t.Errorf("NoteSigner(%q) succeeded", name)
		}
	}
}

// TestBundleLimit pins maxExtraLine against the tlog-proof reader: the
// largest certificate Prove takes reads back, and a larger one would not.
func TestBundleLimit(t *testing.T) {
	largest := maxExtraLine / 4 * 3 // bytes whose base64 is at most maxExtraLine
	for _, c := range []struct {
		n    int
		want bool
	}{{largest, true}, {(64 << 10) / 4 * 3, false}} {
		tp := proof.TLogProof{Index: 0, Checkpoint: []byte("x\n"), ExtraData: bytes.Repeat([]byte{7}, c.n)}
		var back proof.TLogProof
		err := back.Unmarshal(tp.Marshal())
		if ok := err == nil && bytes.Equal(back.ExtraData, tp.ExtraData); ok != c.want {
			t.Errorf("a certificate of %d bytes reads back: %v (%v), want %v", c.n, ok, err, c.want)
		}
	}
}
