package transparency

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omega-sheaf/omega"
)

func TestLogPolicy(t *testing.T) {
	s, dir := certStore(t, 0)
	c, _ := omega.NewChecker(nil)
	l, err := OpenLog(dir, origin, s, logKey, Policy{Every: 3, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Unix(1e9, 0)
	var sizes []int64
	step := func(add int, at time.Duration) {
		t.Helper()
		if add > 0 {
			addCerts(t, s, c, s.Len(), add)
		}
		signed, err := l.Update(t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		if signed {
			cp, note := l.Latest()
			sizes = append(sizes, cp.Size)
			b, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
			if err != nil || string(b) != string(note) {
				t.Fatalf("%s holds %q (%v), want the latest checkpoint", CheckpointFile, b, err)
			}
			got, _, err := OpenCheckpoint(b, origin, l.Verifier())
			if err != nil || got != cp || got.Root != mustRoot(t, l.Tree(), got.Size) {
				t.Fatalf("the checkpoint file reads %v, %v; want %v", got, err, cp)
			}
		}
	}
	step(0, 0)              // nothing to checkpoint
	step(2, time.Second)    // 2 < 3
	step(1, 2*time.Second)  // 3: signed
	step(0, 3*time.Second)  // unchanged
	step(1, 4*time.Second)  // 4: 1 since
	step(0, 2*time.Minute)  // the interval: 4 signed
	step(0, 10*time.Minute) // unchanged size: nothing, whatever the time
	step(5, 11*time.Minute) // 9: signed
	want := []int64{3, 4, 9}
	if len(sizes) != len(want) {
		t.Fatalf("checkpoints at sizes %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("checkpoints at sizes %v, want %v", sizes, want)
		}
	}
	b, err := l.Prove(7)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifyBundle(b, origin, l.Verifier()); err != nil || got.Index != 7 || got.Checkpoint.Size != 9 {
		t.Fatalf("VerifyBundle = %v, %v", got, err)
	}
}

// TestLogReopen reopens a log: its checkpoint is kept when the store
// still holds what it covers, and refused as a fork when the store holds
// fewer or other certificates.
func TestLogReopen(t *testing.T) {
	s, dir := certStore(t, 6)
	l, err := OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if signed, err := l.Update(time.Time{}); err != nil || !signed {
		t.Fatalf("Update = %v, %v", signed, err)
	}
	cp, note := l.Latest()
	l.Close()

	l, err = OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if got, gotNote := l.Latest(); got != cp || string(gotNote) != string(note) {
		t.Fatalf("after reopening: %v, want %v", got, cp)
	}
	l.Close()

	// The checkpoint beside a store of 6 other certificates, then beside
	// a store of the first 4: both are forks.
	other, otherDir := certStore(t, 0)
	c, _ := omega.NewChecker(nil)
	addCerts(t, other, c, 100, 6)
	os.WriteFile(filepath.Join(otherDir, CheckpointFile), note, 0o644)
	if _, err := OpenLog(otherDir, origin, other, logKey, Policy{}); !errors.Is(err, ErrFork) {
		t.Fatalf("a checkpoint of 6 beside 6 other certificates: %v", err)
	}
	prefix, prefixDir := certStore(t, 4)
	os.WriteFile(filepath.Join(prefixDir, CheckpointFile), note, 0o644)
	if _, err := OpenLog(prefixDir, origin, prefix, logKey, Policy{}); !errors.Is(err, ErrFork) {
		t.Fatalf("a checkpoint of 6 beside the first 4: %v", err)
	}
	// A store that grew past it keeps it.
	grown, grownDir := certStore(t, 8)
	os.WriteFile(filepath.Join(grownDir, CheckpointFile), note, 0o644)
	l, err = OpenLog(grownDir, origin, grown, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, _ := l.Latest(); got != cp {
		t.Fatalf("beside a store grown to 8: %v, want %v", got, cp)
	}
	// Another key's checkpoint is refused.
	if _, err := OpenLog(dir, origin, s, certKey, Policy{}); err == nil {
		t.Fatal("a checkpoint signed by another key was accepted")
	}
}

// TestLogDurableOnly: a certificate appended and not yet synced enters no
// tree and no checkpoint, since a crash could still take it back.
func TestLogDurableOnly(t *testing.T) {
	s, dir := certStore(t, 4)
	l, err := OpenLog(dir, origin, s, logKey, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Update(time.Time{}); err != nil {
		t.Fatal(err)
	}
	c, _ := omega.NewChecker(nil)
	st := states[s]
	for i := 4; i < 7; i++ {
		e := batchAfterOne(i)
		out, err := c.Reconcile(st, e)
		if err != nil {
			t.Fatal(err)
		}
		st = out.Result.Merge.Next.Commit()
		if _, err := s.CertifyAppend(out, c.Binding(), omega.BatchMeta{BatchID: uint64(i + 1)}, certKey); err != nil {
			t.Fatal(err)
		}
	}
	if signed, err := l.Update(time.Time{}); err != nil || signed || l.Tree().Size() != 4 {
		t.Fatalf("before Sync: signed %v (%v), tree of %d; want nothing new over 4", signed, err, l.Tree().Size())
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if signed, err := l.Update(time.Time{}); err != nil || !signed {
		t.Fatalf("after Sync: signed %v, %v", signed, err)
	}
	if cp, _ := l.Latest(); cp.Size != 7 {
		t.Fatalf("after Sync: a checkpoint of %d, want 7", cp.Size)
	}
}

// TestLogIntervalAcrossOpens: the interval counts from when the checkpoint
// file was written, not from when the log was opened.
func TestLogIntervalAcrossOpens(t *testing.T) {
	s, l := openLog(t, 3)
	l.Close()
	t0 := time.Unix(1_800_000_000, 0)
	path := filepath.Join(l.dir, CheckpointFile)
	if err := os.Chtimes(path, t0, t0); err != nil {
		t.Fatal(err)
	}
	c, _ := omega.NewChecker(nil)
	addCerts(t, s, c, 3, 2)
	policy := Policy{Every: 100, Interval: time.Minute}
	for _, step := range []struct {
		at   time.Duration
		want bool
	}{{30 * time.Second, false}, {2 * time.Minute, true}} {
		l, err := OpenLog(l.dir, origin, s, logKey, policy)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := l.Update(t0.Add(step.at))
		l.Close()
		if err != nil || signed != step.want {
			t.Fatalf("Update %v after the checkpoint was written: %v, %v; want %v", step.at, signed, err, step.want)
		}
	}
}
