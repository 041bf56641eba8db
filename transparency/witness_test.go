package transparency

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/omega-sheaf/omega"
)

// testWitness starts a witness named name over httptest, witnessing the
// log origin whose checkpoints logKey verifies, and returns its URL and
// the verifier of its cosignatures.
func testWitness(t *testing.T, name string, seed byte, logKey note.Verifier) (*httptest.Server, note.Verifier) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	signer, err := CosignatureSigner(name, key, func() time.Time { return time.Unix(1_800_000_000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	w := NewWitness(signer, "")
	if err := w.AddLog(origin, logKey); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	vkey, err := CosignatureVerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := CosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return srv, v
}

// TestCosignatureInterop checks CosignatureSigner against the cosignature
// signer of github.com/transparency-dev/formats: the same key hash, and
// each verifies what the other signs.
func TestCosignatureInterop(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	const name = "witness.example"
	ours, err := CosignatureSigner(name, key, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := fnote.NewSignerForCosignatureV1(fmt.Sprintf("PRIVATE+KEY+%s+00000000+%s", name, b64(append([]byte{algCosignatureV1}, key.Seed()...))))
	if err != nil {
		t.Fatal(err)
	}
	if ours.KeyHash() != theirs.KeyHash() {
		t.Fatalf("key hash %08x, formats has %08x", ours.KeyHash(), theirs.KeyHash())
	}
	vkey, _ := CosignatureVerifierKey(name, key.Public().(ed25519.PublicKey))
	v, err := CosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	text := "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	for _, s := range []note.Signer{ours, theirs} {
		msg, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, ver := range []note.Verifier{v, theirs.Verifier()} {
			if _, err := note.Open(msg, note.VerifierList(ver)); err != nil {
				t.Fatalf("%T's cosignature, by %T: %v", s, ver, err)
			}
		}
	}
	if _, err := CosignatureSigner("bad name", key, time.Now); err == nil {
		t.Fatal("a name with a space was accepted")
	}
}

// openLog opens the transparency log of a store of n certificates, with
// a checkpoint after every certificate, and signs its first checkpoint.
func openLog(t testing.TB, n int) (*omega.CertStore, *Log) {
	t.Helper()
	s, dir := certStore(t, n)
	l, err := OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.Update(time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	return s, l
}

// forkedLog opens the transparency log of another history than openLog's:
// n other certificates from the start, under the same origin and key, and
// signs its checkpoint.
func forkedLog(t *testing.T, n int) *Log {
	t.Helper()
	s, dir := certStore(t, 0)
	c, _ := omega.NewChecker(nil)
	addCerts(t, s, c, 100, n)
	l, err := OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.Update(time.Time{}); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestWitnessRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, l := openLog(t, 5)
	w1, v1 := testWitness(t, "witness1.example", 1, l.Verifier())
	w2, v2 := testWitness(t, "witness2.example", 2, l.Verifier())
	ws := []note.Verifier{v1, v2}

	cosigned, err := l.Witness(ctx, w1.Client(), w1.URL, v1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyWitnessed(cosigned, origin, l.Verifier(), ws, 1); err != nil {
		t.Fatalf("1 of 2: %v", err)
	}
	if _, err := VerifyWitnessed(cosigned, origin, l.Verifier(), ws, 2); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("one cosignature for a policy of 2: %v, want ErrBadCheckpoint", err)
	}
	both, err := l.Witness(ctx, w2.Client(), w2.URL, v2, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, second, _ := strings.Cut(string(both), "\n\n")
	second = second[strings.Index(second, "— witness2"):]
	all := WithSignatures(cosigned, []byte(second))
	cp, err := VerifyWitnessed(all, origin, l.Verifier(), ws, 2)
	if err != nil || cp.Size != 5 {
		t.Fatalf("2 of 2: %v, %v", cp, err)
	}
	// A witness listed twice counts once; a third witness's bad
	// cosignature fails that witness, not the checkpoint.
	if _, err := VerifyWitnessed(cosigned, origin, l.Verifier(), []note.Verifier{v1, v1}, 2); !errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("one witness listed twice for a policy of 2: %v", err)
	}
	_, v3 := testWitness(t, "witness3.example", 3, l.Verifier())
	// witness3's key hash, then a timestamp and a signature of zeros.
	bad := binary.BigEndian.AppendUint32(nil, v3.KeyHash())
	bad = append(bad, make([]byte, 8+ed25519.SignatureSize)...)
	forged := []byte("— witness3.example " + b64(bad) + "\n")
	if _, err := VerifyWitnessed(WithSignatures(all, forged), origin, l.Verifier(), append(ws, v3), 2); err != nil {
		t.Fatalf("2 good cosignatures and a bad third: %v", err)
	}

	// The log grows; the caller thinks the witness is at 0, it is at 5:
	// the conflict answer names 5, and Witness retries from there.
	c, _ := omega.NewChecker(nil)
	addCerts(t, s, c, 5, 4)
	if _, err := l.Update(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	cp9, signed9 := l.Latest()
	var conflict *ConflictError
	if _, err := AddCheckpoint(ctx, w1.Client(), w1.URL, 0, nil, signed9); !errors.As(err, &conflict) || conflict.Size != 5 {
		t.Fatalf("AddCheckpoint from a wrong size: %v, want a conflict at 5", err)
	}
	cosigned9, err := l.Witness(ctx, w1.Client(), w1.URL, v1, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := NewFollower(origin, l.Verifier(), ws, 1)
	if _, err := f.Accept(cosigned, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := l.Tree().ProveConsistency(5, 9)
	if got, err := f.Accept(cosigned9, p); err != nil || got != cp9 {
		t.Fatalf("Accept(9) = %v, %v", got, err)
	}
	if f.Last() != cp9 {
		t.Fatalf("Last() = %v, want %v", f.Last(), cp9)
	}
}

// TestWitnessRefuses sends a witness what it must not cosign.
func TestWitnessRefuses(t *testing.T) {
	ctx := context.Background()
	_, l := openLog(t, 6)
	w, wv := testWitness(t, "witness.example", 1, l.Verifier())
	if _, err := l.Witness(ctx, w.Client(), w.URL, wv, 0); err != nil {
		t.Fatal(err)
	}
	status := func(body string) int {
		resp, err := w.Client().Post(w.URL+AddCheckpointPath, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A fork: another history of 9 certificates, other ones from the
	// start, signed by the same key, with a proof from 6 in that history.
	fork := forkedLog(t, 9)
	_, forked := fork.Latest()
	p, _ := fork.Tree().ProveConsistency(6, 9)
	if _, err := AddCheckpoint(ctx, w.Client(), w.URL, 6, p, forked); err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("a forked checkpoint: %v, want 422", err)
	}
	_, signed := l.Latest()
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	badSigner, _ := NoteSigner(origin, otherKey)
	cp, _ := l.Latest()
	badSigned, _ := cp.Sign(badSigner)
	strangerSigner, _ := NoteSigner("elsewhere.example", logKey)
	stranger, _ := Checkpoint{Origin: "elsewhere.example", Size: 1, Root: cp.Root}.Sign(strangerSigner)
	for _, c := range []struct {
		body string
		want int
	}{
		{"old 6\n\n" + string(badSigned), http.StatusForbidden},
		{"old 0\n\n" + string(stranger), http.StatusNotFound},
		{"old 3\n\n" + string(signed), http.StatusConflict},
		{"old x\n\n" + string(signed), http.StatusBadRequest},
		{"old 6\nnot base64\n\n" + string(signed), http.StatusBadRequest},
		{"old 6", http.StatusBadRequest},
		{"old 06\n\n" + string(signed), http.StatusBadRequest},
	} {
		if got := status(c.body); got != c.want {
			t.Errorf("%q: status %d, want %d", c.body[:min(len(c.body), 20)], got, c.want)
		}
	}
	// The same size again is cosigned: nothing changed.
	if got := status("old 6\n\n" + string(signed)); got != http.StatusOK {
		t.Errorf("the same checkpoint again: status %d", got)
	}
}

// TestFollowerFork shows a follower two histories: the second is refused.
func TestFollowerFork(t *testing.T) {
	_, l := openLog(t, 6)
	fork := forkedLog(t, 6)
	f := NewFollower(origin, l.Verifier(), nil, 0)
	_, a := l.Latest()
	_, b := fork.Latest()
	if _, err := f.Accept(a, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Accept(b, nil); !errors.Is(err, ErrFork) {
		t.Fatalf("a second history at size 6: %v", err)
	}
	// An older checkpoint of the same history is accepted with its proof.
	old, _ := l.Tree().Checkpoint(origin, 4)
	oldSigned, _ := old.Sign(mustNoteSigner(t))
	p, _ := l.Tree().ProveConsistency(4, 6)
	if _, err := f.Accept(oldSigned, p); err != nil {
		t.Fatalf("an older checkpoint of the same history: %v", err)
	}
	bad := append(tlog.TreeProof(nil), p...)
	bad[0][0] ^= 1
	if _, err := f.Accept(oldSigned, bad); err == nil {
		t.Fatal("a bad proof was accepted")
	}
}

func mustNoteSigner(t *testing.T) note.Signer {
	s, _ := logSigner(t)
	return s
}

// TestWitnessRemembers restarts a witness that keeps its state: it knows
// the size it cosigned, refuses a fork of it, and reports damaged state.
func TestWitnessRemembers(t *testing.T) {
	ctx := context.Background()
	_, l := openLog(t, 5)
	dir := t.TempDir()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, ed25519.SeedSize))
	signer, err := CosignatureSigner("witness.example", key, func() time.Time { return time.Unix(1_800_000_000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	start := func() *httptest.Server {
		w := NewWitness(signer, dir)
		if err := w.AddLog(origin, l.Verifier()); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(w)
		t.Cleanup(srv.Close)
		return srv
	}
	srv := start()
	_, signed := l.Latest()
	if _, err := AddCheckpoint(ctx, srv.Client(), srv.URL, 0, nil, signed); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	srv = start() // restarted
	var conflict *ConflictError
	if _, err := AddCheckpoint(ctx, srv.Client(), srv.URL, 0, nil, signed); !errors.As(err, &conflict) || conflict.Size != 5 {
		t.Fatalf("after a restart, from 0: %v, want a conflict at 5", err)
	}
	_, forked := forkedLog(t, 5).Latest()
	if _, err := AddCheckpoint(ctx, srv.Client(), srv.URL, 5, nil, forked); !errors.As(err, &conflict) || conflict.Size != 5 {
		t.Fatalf("another root at 5 after a restart: %v, want a conflict at 5", err)
	}
	if _, err := AddCheckpoint(ctx, srv.Client(), srv.URL, 5, nil, signed); err != nil {
		t.Fatalf("the same checkpoint again: %v", err)
	}

	names, _ := filepath.Glob(filepath.Join(dir, "*.checkpoint"))
	if len(names) != 1 {
		t.Fatalf("state files %v, want one", names)
	}
	os.WriteFile(names[0], []byte("garbage"), 0o644)
	if err := NewWitness(signer, dir).AddLog(origin, l.Verifier()); err == nil {
		t.Fatal("damaged witness state was taken")
	}
}
