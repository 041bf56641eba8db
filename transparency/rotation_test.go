package transparency

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/omega-sheaf/omega"
)

var (
	nextKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{10}, ed25519.SeedSize))
	thirdKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{11}, ed25519.SeedSize))
)

func verifierOf(t testing.TB, key ed25519.PrivateKey) note.Verifier {
	t.Helper()
	vkey, err := VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRotation rotates a log's key twice and follows it with a verifier
// that held the first key only.
func TestRotation(t *testing.T) {
	s, dir := certStore(t, 4)
	c, _ := omega.NewChecker(nil)
	l, err := OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	update := func() []byte {
		t.Helper()
		if _, err := l.Update(time.Time{}); err != nil {
			t.Fatal(err)
		}
		_, signed := l.Latest()
		return signed
	}
	f := NewFollower(origin, verifierOf(t, logKey), nil, 0)
	if _, err := f.Accept(update(), nil); err != nil {
		t.Fatal(err)
	}
	stmt1, err := l.Rotate(nextKey)
	if err != nil {
		t.Fatal(err)
	}
	addCerts(t, s, c, 4, 3)
	at7 := update()
	if _, err := f.Accept(at7, nil); err == nil {
		t.Fatal("a checkpoint by the next key was accepted before its rotation")
	}
	if err := f.Rotate(stmt1, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := l.Tree().ProveConsistency(4, 7)
	if cp, err := f.Accept(at7, p); err != nil || cp.Size != 7 {
		t.Fatalf("after the rotation: %v, %v", cp, err)
	}
	stmt2, err := l.Rotate(thirdKey)
	if err != nil {
		t.Fatal(err)
	}
	addCerts(t, s, c, 7, 2)
	at9 := update()
	if err := f.Rotate(stmt2, nil); err != nil {
		t.Fatal(err)
	}
	p, _ = l.Tree().ProveConsistency(7, 9)
	if _, err := f.Accept(at9, p); err != nil {
		t.Fatal(err)
	}
	// The first key signs nothing past its rotation, and a stranger's
	// key nothing at all.
	cp9, _ := l.Latest()
	old, _ := NoteSigner(origin, logKey)
	byOld, _ := cp9.Sign(old)
	if _, err := f.Accept(byOld, nil); err == nil {
		t.Fatal("a checkpoint of 9 by the key rotated away from at 4 was accepted")
	}
	stranger, _ := NoteSigner(origin, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{12}, 32)))
	byStranger, _ := cp9.Sign(stranger)
	if _, err := f.Accept(byStranger, nil); err == nil {
		t.Fatal("a checkpoint by a key outside the ring was accepted")
	}
	if got := l.Rotations(); len(got) != 2 || !bytes.Equal(got[0], stmt1) || !bytes.Equal(got[1], stmt2) {
		t.Fatalf("Rotations() = %d statements", len(got))
	}
	l.Close()

	// Reopening takes the last key only.
	if _, err := OpenLog(dir, origin, s, logKey, Policy{}); err == nil || !strings.Contains(err.Error(), "rotation") {
		t.Fatalf("reopening with the first key: %v", err)
	}
	l, err = OpenLog(dir, origin, s, thirdKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, _ := l.Latest(); got != cp9 {
		t.Fatalf("reopened at %v, want %v", got, cp9)
	}
}

// TestRotationRefused: a changed statement, one the incoming key did not
// sign, and one at a point outside the follower's history.
func TestRotationRefused(t *testing.T) {
	_, l := openLog(t, 5)
	stmt, err := l.Rotate(nextKey)
	if err != nil {
		t.Fatal(err)
	}
	follower := func() *Follower { return NewFollower(origin, verifierOf(t, logKey), nil, 0) }
	for i := range stmt {
		bad := bytes.Clone(stmt)
		bad[i] ^= 1
		if err := follower().Rotate(bad, nil); err == nil && !bytes.Equal(bad, stmt) {
			t.Fatalf("a statement with byte %d changed was accepted", i)
		}
	}
	r, _, err := OpenRotation(stmt, origin, verifierOf(t, logKey))
	if err != nil {
		t.Fatal(err)
	}
	oldOnly, _ := NoteSigner(origin, logKey)
	unsigned, _ := note.Sign(&note.Note{Text: r.text()}, oldOnly)
	if err := follower().Rotate(unsigned, nil); !errors.Is(err, ErrBadRotation) || !errors.Is(err, omega.ErrVerification) {
		t.Fatalf("a statement the incoming key did not sign: %v, want ErrBadRotation", err)
	}
	if err := NewFollower(origin, verifierOf(t, nextKey), nil, 0).Rotate(stmt, nil); err == nil {
		t.Fatal("a statement from a key the follower does not hold was accepted")
	}
	// A follower that saw another history at size 5.
	_, seen := forkedLog(t, 5).Latest()
	f := follower()
	if _, err := f.Accept(seen, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Rotate(stmt, nil); err == nil {
		t.Fatal("a rotation at a point of another history was accepted")
	}
}

// TestRotationInterrupted: Rotate wrote its statement and stopped before
// the checkpoint was signed again; the log opens with the new key and
// finishes it.
func TestRotationInterrupted(t *testing.T) {
	s, dir := certStore(t, 3)
	l, err := OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	l.Update(time.Time{})
	cp, before := l.Latest()
	if _, err := l.Rotate(nextKey); err != nil {
		t.Fatal(err)
	}
	l.Close()
	path := filepath.Join(dir, CheckpointFile)
	if err := os.WriteFile(path, before, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = OpenLog(dir, origin, s, nextKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, signed := l.Latest()
	if got != cp {
		t.Fatalf("reopened at %v, want %v", got, cp)
	}
	if _, _, err := OpenCheckpoint(signed, origin, verifierOf(t, nextKey)); err != nil {
		t.Fatalf("the checkpoint was not signed again by the new key: %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, signed) {
		t.Fatal("the checkpoint signed again was not written")
	}
}
