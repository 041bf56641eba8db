package omega

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newTestJournal(t *testing.T, c *Checker) (*Journal, *FrameWriter, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewFrameWriter(&buf, Header{SchemaVersion: SchemaVersion, SchemaHash: SchemaHash()}, &WriterOptions{Sync: SyncNever})
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
