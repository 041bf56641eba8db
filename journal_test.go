package omega

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/omega-sheaf/omega/framelog"
)

func newTestJournal(t *testing.T, c *Checker) (*Journal, *framelog.Writer, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), &framelog.WriterOptions{Sync: framelog.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	return NewJournal(w, c, nil, 0), w, &buf
}

// TestJournalMatchesReplay journals merges, an obstruction and its
// re-check, and events left pending, and checks that the journal's State,
// last batch id, pending events and snapshot are what replaying its log
// gives.
func TestJournalMatchesReplay(t *testing.T) {
	c := defaultChecker(t)
	j, w, buf := newTestJournal(t, c)
	var events []Event
	for i := range 12 {
		events = append(events, historyEvent(i))
	}
	log := func(es []Event) {
		if _, err := j.LogEvents(es); err != nil {
			t.Fatal(err)
		}
	}
	decide := func(id uint64, es []Event, want Kind) {
		t.Helper()
		out, err := j.Decide(es, BatchMeta{BatchID: id, ReplaySeed: testSeed})
		if err != nil || out.Result.Kind != want {
			t.Fatalf("Decide(batch %d) = %v, %v; want %v", id, out.Result, err, want)
		}
	}
	log(events[:4])
	decide(1, events[:4], KindMerge)
	bad := historyEvent(0) // a new content under an accepted id: 1002
	bad.Payload, bad.NodeID, bad.Lamport = []byte("again"), 9, 20
	bad.PayloadHash = PayloadHash(bad.Payload)
	batch := append([]Event{bad}, events[4:8]...)
	log(batch)
	decide(3, batch, KindObstruction)
	decide(4, events[4:8], KindMerge) // the rest, re-checked, not logged again
	log(events[8:12])                 // pending
	log(events[8:9])                  // an identical copy: still one pending content

	if j.LastBatchID() != 4 {
		t.Fatalf("LastBatchID() = %d, want 4", j.LastBatchID())
	}
	snap, err := j.Snapshot(7, 42)
	if err != nil {
		t.Fatal(err)
	}
	r := mustReplay(t, nil, buf.Bytes(), j.State().MergedStateHash(), testSeed, c, nil)
	if r.Outcome != Deterministic || r.LastBatchID != 4 {
		t.Fatalf("Replay = %v after batch %d, %+v; want deterministic after 4", r.Outcome, r.LastBatchID, r.Incident)
	}
	if diff := cmp.Diff(r.Pending, j.Pending()); diff != "" {
		t.Fatalf("Pending() differs from replay's (-replay +journal):\n%s", diff)
	}
	want := r.Snapshot(7, 42)
	if diff := cmp.Diff(mustAppendSnapshot(t, want), mustAppendSnapshot(t, snap)); diff != "" {
		t.Fatalf("Snapshot() differs from replay's (-replay +journal):\n%s", diff)
	}
	if snap.BaseOffset != w.Size() || snap.LastBatchID != 4 || len(snap.Pending) != 4 {
		t.Fatalf("Snapshot() = base %d, last batch %d, %d pending; want %d, 4, 4", snap.BaseOffset, snap.LastBatchID, len(snap.Pending), w.Size())
	}
}

// TestJournalRecordSameAsDecide checks that recording an output decided
// outside the journal writes what Decide writes.
func TestJournalRecordSameAsDecide(t *testing.T) {
	c := defaultChecker(t)
	a, _, abuf := newTestJournal(t, c)
	b, _, bbuf := newTestJournal(t, c)
	var prior *State
	for i := range 3 {
		es := []Event{historyEvent(2 * i), historyEvent(2*i + 1)}
		meta := BatchMeta{BatchID: uint64(i + 1), ReplaySeed: testSeed, CreatedAtNs: 5}
		for _, j := range []*Journal{a, b} {
			if _, err := j.LogEvents(es); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Decide(es, meta); err != nil {
			t.Fatal(err)
		}
		out, err := c.Reconcile(prior, es)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Record(out, meta); err != nil {
			t.Fatalf("Record(batch %d) = %v", i+1, err)
		}
		prior = out.Result.Merge.Next
	}
	if !bytes.Equal(abuf.Bytes(), bbuf.Bytes()) {
		t.Fatal("the log Record wrote differs from the one Decide wrote")
	}
	if a.State().MergedStateHash() != b.State().MergedStateHash() {
		t.Fatal("Record and Decide reached different States")
	}
}

// TestJournalRefusesAppendingNothing checks every refusal: an error
// wrapping ErrJournal (or the checker's own), and not a byte appended.
func TestJournalRefusesAppendingNothing(t *testing.T) {
	longTest(t)
	c := defaultChecker(t)
	other, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{oddLamport{}}})
	if err != nil {
		t.Fatal(err)
	}
	j, w, buf := newTestJournal(t, c)
	first := []Event{historyEvent(0), historyEvent(1)}
	if _, err := j.LogEvents(first); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Decide(first, BatchMeta{BatchID: 5, ReplaySeed: testSeed}); err != nil {
		t.Fatal(err)
	}
	next := []Event{historyEvent(2)}
	if _, err := j.LogEvents(next); err != nil {
		t.Fatal(err)
	}
	fromGenesis, err := c.Reconcile(nil, next)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := other.Reconcile(j.State(), next)
	if err != nil {
		t.Fatal(err)
	}
	unlogged := []Event{historyEvent(3)}
	notLogged, err := c.Reconcile(j.State(), unlogged)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.Reconcile(j.State(), next)
	if err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() error{
		"batch id not increasing": func() error { return j.Record(good, BatchMeta{BatchID: 5}) },
		"Decide, batch id lower":  func() error { _, err := j.Decide(next, BatchMeta{BatchID: 4}); return err },
		"another state":           func() error { return j.Record(fromGenesis, BatchMeta{BatchID: 6}) },
		"another binding":         func() error { return j.Record(byOther, BatchMeta{BatchID: 6}) },
		"member never logged":     func() error { return j.Record(notLogged, BatchMeta{BatchID: 6}) },
		"no result":               func() error { return j.Record(Output{Binding: c.Binding()}, BatchMeta{BatchID: 6}) },
	} {
		before := bytes.Clone(buf.Bytes())
		size := w.Size()
		err := try()
		if !errors.Is(err, ErrJournal) {
			t.Errorf("%s: error %v, want ErrJournal", name, err)
		}
		if w.Size() != size || !bytes.Equal(buf.Bytes(), before) {
			t.Errorf("%s: the log changed", name)
		}
	}
	big := make([]Event, MaxBatchContents+1)
	for i := range big {
		big[i] = historyEvent(100 + i)
		big[i].Deps = nil
	}
	size := w.Size()
	if _, err := j.Decide(big, BatchMeta{BatchID: 9}); !errors.Is(err, ErrBatchTooLarge) || w.Size() != size {
		t.Errorf("Decide(a batch over the limit) = %v, %d bytes appended; want ErrBatchTooLarge and none", err, w.Size()-size)
	}
	if err := j.Record(good, BatchMeta{BatchID: 6, ReplaySeed: testSeed}); err != nil {
		t.Fatalf("Record after the refusals = %v", err)
	}
	if len(j.Pending()) != 0 {
		t.Fatalf("after recording every logged event, %d pending", len(j.Pending()))
	}
}

// TestOpenJournalResumes journals batches to a file, reopens it, and checks
// that the journal rebuilt from the log has the State, last batch id and
// pending events the first one had, and continues the log so that it
// replays.
func TestOpenJournalResumes(t *testing.T) {
	ctx := t.Context()
	c := defaultChecker(t)
	path := filepath.Join(t.TempDir(), "events.omega")
	j, err := OpenJournal(ctx, path, c, &JournalOptions{ReplaySeed: testSeed})
	if err != nil {
		t.Fatal(err)
	}
	events := journalBatches(t, j, 0, 3)
	wantState, wantPending := j.State().MergedStateHash(), j.Pending()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = OpenJournal(ctx, path, c, &JournalOptions{ReplaySeed: testSeed})
	if err != nil {
		t.Fatal(err)
	}
	if j.State().MergedStateHash() != wantState || j.LastBatchID() != 6 {
		t.Fatalf("reopened at state %s after batch %d, want %s after 6", j.State().MergedStateHash(), j.LastBatchID(), wantState)
	}
	if diff := cmp.Diff(wantPending, j.Pending()); diff != "" {
		t.Fatalf("reopened Pending() (-want +got):\n%s", diff)
	}
	if _, err := OpenJournal(ctx, path, c, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second OpenJournal while the first is open = %v, want ErrLocked", err)
	}
	journalBatches(t, j, len(events), 2)
	final := j.State().MergedStateHash()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustReplay(t, nil, b, final, testSeed, c, nil); r.Outcome != Deterministic || r.LastBatchID != 10 {
		t.Fatalf("the continued log replays %v after batch %d, want deterministic after 10", r.Outcome, r.LastBatchID)
	}
	// With another seed the log does not replay: the journal is refused.
	if _, err := OpenJournal(ctx, path, c, &JournalOptions{ReplaySeed: testSeed + 1}); !errors.Is(err, ErrDivergence) {
		t.Fatalf("OpenJournal with another seed = %v, want a replay incident", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Fatal("a refused OpenJournal changed the log")
	}
}

// journalBatches logs and decides n batches of four events from historyEvent(from)
// on, ids 2, 4, ..., the first event of each batch logged twice; it logs
// one more event after them, left pending, and syncs. It returns the
// events.
func journalBatches(t *testing.T, j *Journal, from, n int) []Event {
	t.Helper()
	var all []Event
	for b := range n {
		es := make([]Event, 4)
		for i := range es {
			es[i] = historyEvent(from + 4*b + i)
		}
		if _, err := j.LogEvents(append([]Event{es[0]}, es...)); err != nil {
			t.Fatal(err)
		}
		if out, err := j.Decide(es, BatchMeta{BatchID: j.LastBatchID() + 2, ReplaySeed: testSeed}); err != nil || out.Result.Kind != KindMerge {
			t.Fatalf("Decide = %v, %v", out.Result, err)
		}
		all = append(all, es...)
	}
	if _, err := j.LogEvents([]Event{historyEvent(from + 4*n + 1000)}); err != nil {
		t.Fatal(err)
	}
	if err := j.w.Sync(); err != nil {
		t.Fatal(err)
	}
	return all
}

// TestJournalCrashWindows journals through a file system that records every
// write and sync, then crashes the log at every byte of the last batch's
// EVENT and BATCH frames, with nothing, garbage or zeros after the cut:
// reopening must find exactly the complete frames (what was synced
// included), rebuild what the log says, and continue it so that it
// replays.
func TestJournalCrashWindows(t *testing.T) {
	longTest(t)
	ctx := t.Context()
	c := defaultChecker(t)
	dir := scratchDir(t)
	path := filepath.Join(dir, "events.omega")
	rec := newRecFS()
	j, err := openJournal(ctx, rec, path, c, &JournalOptions{ReplaySeed: testSeed})
	if err != nil {
		t.Fatal(err)
	}
	journalBatches(t, j, 0, 2)
	m := newFSModel(nil)
	m.apply(rec.Ops()...)
	synced := m.durable[path]
	if !bytes.Equal(synced, m.content[path]) {
		t.Fatal("after Sync the log's durable bytes are not its content")
	}
	journalBatches(t, j, 8, 1) // the batch the crash cuts
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	m.apply(rec.Ops()...)
	full := m.content[path]
	if !bytes.Equal(full[:len(synced)], synced) {
		t.Fatal("the last batch rewrote synced bytes")
	}

	garbage, zeros := lfPayload(5, 200), make([]byte, 300)
	for cut := len(synced); cut <= len(full); cut++ {
		if testing.Short() && cut%7 != 0 && cut != len(full) {
			continue
		}
		for name, tail := range map[string][]byte{"": nil, "garbage": garbage, "zeros": zeros} {
			what := fmt.Sprintf("crash at byte %d of %d, %s tail", cut, len(full), name)
			// The complete frames before the cut are what must come back.
			rc, err := framelog.Recover(full[:cut], nil)
			if err != nil {
				t.Fatal(err)
			}
			complete := rc.TailOffset
			want := mustReplay(t, nil, full[:complete], Hash{}, testSeed, c, nil)
			img := filepath.Join(scratchDir(t), "events.omega")
			if err := os.WriteFile(img, append(bytes.Clone(full[:cut]), tail...), 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := OpenJournal(ctx, img, c, &JournalOptions{ReplaySeed: testSeed})
			if err != nil {
				t.Fatalf("%s: OpenJournal = %v", what, err)
			}
			if j.State().MergedStateHash() != want.State.MergedStateHash() || j.LastBatchID() != want.LastBatchID ||
				!cmp.Equal(j.Pending(), want.Pending) || j.w.Size() != complete {
				t.Fatalf("%s: reopened after batch %d with %d pending at %d, want batch %d, %d pending, at %d",
					what, j.LastBatchID(), len(j.Pending()), j.w.Size(), want.LastBatchID, len(want.Pending), complete)
			}
			// Continue with a batch of new events, on streams of their
			// own: the log must replay.
			fresh := make([]Event, 3)
			for i := range fresh {
				fresh[i] = historyEvent(300 + i)
				fresh[i].NodeID, fresh[i].Deps = uint32(50+i), []EventID{}
			}
			if _, err := j.LogEvents(fresh); err != nil {
				t.Fatal(err)
			}
			if out, err := j.Decide(fresh, BatchMeta{BatchID: 100, ReplaySeed: testSeed}); err != nil || out.Result.Kind != KindMerge {
				t.Fatalf("%s: Decide after reopening = %v, %v", what, out.Result, err)
			}
			final := j.State().MergedStateHash()
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if r := mustReplay(t, nil, b, final, testSeed, c, nil); r.Outcome != Deterministic {
				t.Fatalf("%s: the continued log replays %v: %+v", what, r.Outcome, r.Incident)
			}
		}
	}
}
