package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/predicates"
	"pgregory.net/rapid"
)

// ev makes event i of node n, depending on the node's event i-1.
func ev(n uint32, i int, payload string) omega.Event {
	id := func(i int) omega.EventID { return omega.EventID{Lo: uint64(n)<<32 | uint64(i)} }
	e := omega.Event{ID: id(i), NodeID: n, Lamport: uint64(i + 1), Payload: []byte(payload), Deps: []omega.EventID{}}
	if i > 0 {
		e.Deps = append(e.Deps, id(i-1))
	}
	e.PayloadHash = omega.PayloadHash(e.Payload)
	return e
}

func enc(t interface{ Fatal(...any) }, e omega.Event) []byte {
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testEngine(t testing.TB, batchSize int, maxPending int, maxAge time.Duration) *Engine {
	t.Helper()
	c, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(c, Options{BatchSize: batchSize, MaxPending: maxPending, MaxPendingAge: maxAge, ReplaySeed: 7})
}

// feed applies msgs (numbered from the engine's next sequence, one
// millisecond of stream time apart unless given) and returns the
// decisions.
func feed(t testing.TB, e *Engine, msgs ...Message) []Decision {
	t.Helper()
	var out []Decision
	for _, m := range msgs {
		if err := e.Apply(m, func(d Decision) error { out = append(out, d); return nil }); err != nil {
			t.Fatalf("apply(seq %d): %v", m.Seq, err)
		}
	}
	return out
}

type summary struct {
	Batch   uint64
	Kind    omega.Kind
	Pred    predicates.ID
	Members []omega.EventID
	Seq     uint64
	At      uint64
}

func summarize(ds []Decision) []summary {
	var out []summary
	for _, d := range ds {
		s := summary{Batch: d.Meta.BatchID, Kind: d.Out.Result.Kind, Seq: d.Seq, At: d.Meta.CreatedAtNs}
		for _, m := range d.Out.Result.Members {
			s.Members = append(s.Members, m.ID)
		}
		if o := d.Out.Result.Obstruction; o != nil {
			s.Pred = o.Predicate
		}
		out = append(out, s)
	}
	return out
}

func TestEngine(t *testing.T) {
	ms := time.Millisecond.Nanoseconds()
	var seq uint64
	msg := func(data []byte) Message {
		seq++
		return Message{Seq: seq, TimeNs: int64(seq) * ms, Data: data}
	}
	flush := func() Message {
		seq++
		return Message{Seq: seq, TimeNs: int64(seq) * ms, Flush: true}
	}
	at := func(m Message, ns int64) Message { m.TimeNs = ns; return m }

	e := testEngine(t, 2, 8, time.Second)
	a0, a1, a2, a3 := ev(1, 0, "a0"), ev(1, 1, "a1"), ev(1, 2, "a2"), ev(1, 3, "a3")
	b0, b1 := ev(2, 0, "b0"), ev(2, 1, "b1")
	c0 := ev(3, 0, "c0")
	c0x := c0
	c0x.Payload = []byte("another c0")
	c0x.PayloadHash = omega.PayloadHash(c0x.Payload)
	orphan := ev(4, 5, "waits for 4:4, which never comes")
	late := ev(5, 0, "late")

	got := feed(t, e,
		msg(enc(t, a0)), msg(enc(t, a1)), // batch 1: a full batch
		msg(enc(t, a0)),                  // a redelivery of an accepted event: dropped
		msg(enc(t, b1)),                  // held: b0 has not arrived
		msg([]byte("not an event")),      // skipped
		msg(enc(t, b0)),                  // releases b1 after it: batch 2
		msg(enc(t, c0)), msg(enc(t, c0)), // the copy of an undecided event: dropped
		msg(enc(t, c0x)),         // batch 3: 3001 quarantines both contents of c0
		msg(enc(t, a2)), flush(), // batch 4: a partial batch on the marker
		msg(enc(t, orphan)), // held
		msg(enc(t, a3)),     // waits for a partner
		at(msg(enc(t, late)), 15*ms+int64(time.Second)), // expires the orphan, after the batch it completes
		flush(),
	)
	want := []summary{
		{Batch: 1, Kind: omega.KindMerge, Members: ids(a0, a1), Seq: 2, At: 2 * uint64(ms)},
		{Batch: 2, Kind: omega.KindMerge, Members: ids(b0, b1), Seq: 6, At: 6 * uint64(ms)},
		{Batch: 3, Kind: omega.KindObstruction, Pred: predicates.OverlapAgreement, Members: ids(c0, c0x), Seq: 9, At: 9 * uint64(ms)},
		{Batch: 4, Kind: omega.KindMerge, Members: ids(a2), Seq: 11, At: 11 * uint64(ms)},
		{Batch: 5, Kind: omega.KindMerge, Members: ids(late, a3), Seq: 14, At: 15*uint64(ms) + uint64(time.Second)},
		// Stream time never goes back: the marker's own timestamp is earlier.
		{Batch: 6, Kind: omega.KindObstruction, Pred: predicates.DependencyKnown, Members: ids(orphan), Seq: 15, At: 15*uint64(ms) + uint64(time.Second)},
	}
	if diff := cmp.Diff(want, summarize(got)); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	wantStats := Stats{Messages: 15, Flushes: 2, Malformed: 1, Dropped: 2, Taken: 10, Expired: 1, Batches: 6, Merges: 4, Obstructions: 2}
	if diff := cmp.Diff(wantStats, e.stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if len(e.ready) != 0 || e.nheld != 0 || len(e.inflight) != 0 || len(e.released) != 0 || len(e.waiting) != 0 {
		t.Errorf("after the run: %d ready, %d held, %d in flight, %d released, %d waited for; want none",
			len(e.ready), e.nheld, len(e.inflight), len(e.released), len(e.waiting))
	}
	if err := e.Apply(Message{Seq: seq, TimeNs: 0}, nil); err == nil {
		t.Error("apply accepted a stream sequence it had applied")
	}
}

// ids returns the ids of es, given in canonical order: members, one per
// distinct content.
func ids(es ...omega.Event) []omega.EventID {
	var out []omega.EventID
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestEngineMaxPending(t *testing.T) {
	e := testEngine(t, 4, 2, time.Hour)
	var msgs []Message
	for i := range 4 {
		// Each waits for an event that never comes.
		msgs = append(msgs, Message{Seq: uint64(i + 1), Data: enc(t, ev(uint32(i+1), 1, "orphan"))})
	}
	got := feed(t, e, msgs...)
	// The third and the fourth push the oldest two out: released, they
	// make no batch of four yet.
	if len(got) != 0 || e.stats.Expired != 2 || e.nheld != 2 || len(e.ready) != 2 {
		t.Fatalf("got %d decisions, %d expired, %d held, %d ready; want 0, 2, 2, 2", len(got), e.stats.Expired, e.nheld, len(e.ready))
	}
}

// drawRun draws a stream: the events of a few nodes, some sent before
// their dependencies, some sent again, some equivocated, with flush
// markers and malformed messages between them.
func drawRun(t *rapid.T) []Message {
	nodes := rapid.IntRange(1, 4).Draw(t, "nodes")
	var events []omega.Event
	for n := range nodes {
		for i := range rapid.IntRange(0, 12).Draw(t, "events") {
			events = append(events, ev(uint32(n+1), i, fmt.Sprintf("%d/%d", n, i)))
		}
	}
	// A permutation with a bias to order: swap neighbours now and then.
	for i := 1; i < len(events); i++ {
		if rapid.IntRange(0, 3).Draw(t, "swap") == 0 {
			events[i-1], events[i] = events[i], events[i-1]
		}
	}
	var msgs []Message
	var now int64
	add := func(m Message) {
		now += rapid.Int64Range(0, int64(300*time.Millisecond)).Draw(t, "gap")
		m.Seq = uint64(len(msgs) + 1)
		m.TimeNs = now
		msgs = append(msgs, m)
	}
	for _, e := range events {
		add(Message{Data: enc(t, e)})
		switch rapid.IntRange(0, 9).Draw(t, "extra") {
		case 0:
			add(Message{Data: enc(t, e)}) // a redelivery
		case 1:
			x := e
			x.Payload = []byte("equivocation")
			x.PayloadHash = omega.PayloadHash(x.Payload)
			add(Message{Data: enc(t, x)})
		case 2:
			add(Message{Flush: true})
		case 3:
			add(Message{Data: []byte{1, 2, 3}})
		}
	}
	add(Message{Flush: true})
	return msgs
}

// TestEngineMatchesKernel checks the engine against the Kernel, the
// reference for the sequencer and the coordinator: the same events,
// submitted one at a time with a Flush for each marker, give the same
// results in the same batches. The Kernel's timers are set out of reach,
// so that only its counts and the flushes cut batches (the engine's
// expiry is drawn out of reach too).
func TestEngineMatchesKernel(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		msgs := drawRun(rt)
		bs := rapid.IntRange(1, 5).Draw(rt, "batch size")
		e := testEngine(t, bs, 1<<16, 1000*time.Hour)
		got := feed(t, e, msgs...)

		var want []omega.Output
		k, err := omega.OpenKernel(ctx, t.TempDir(), &omega.KernelConfig{
			BatchSize: bs, FlushInterval: 1000 * time.Hour, MaxPendingAge: 1000 * time.Hour,
			Sync: framelog.SyncNever, SnapshotEvery: -1,
			OnDecision: func(d omega.Decision) { want = append(want, d.Output) },
		})
		if err != nil {
			rt.Fatal(err)
		}
		for _, m := range msgs {
			if m.Flush {
				err = k.Flush(ctx)
			} else if x, derr := omega.DecodeEvent(m.Data, omega.Limits{}); derr == nil {
				err = k.Submit(ctx, x)
			}
			if err != nil {
				rt.Fatal(err)
			}
		}
		if err := k.Flush(ctx); err != nil {
			rt.Fatal(err)
		}
		if err := k.Close(ctx); err != nil {
			rt.Fatal(err)
		}
		if len(got) != len(want) {
			rt.Fatalf("engine decided %d batches, the Kernel %d", len(got), len(want))
		}
		for i := range got {
			if diff := cmp.Diff(want[i].Result, got[i].Out.Result, cmp.Comparer(func(a, b *omega.State) bool { return true })); diff != "" {
				rt.Fatalf("batch %d (-kernel +engine):\n%s", i+1, diff)
			}
		}
	})
}

// TestEventLenHuge: a length field at its maximum is no length the data
// holds, on every platform (in an int it would overflow on 32-bit ones).
func TestEventLenHuge(t *testing.T) {
	data := enc(t, ev(1, 0, "x"))
	binary.LittleEndian.PutUint32(data[44:], 0xffffffff)
	binary.LittleEndian.PutUint16(data[42:], 0xffff)
	if n := EventLen(data); n != 0 {
		t.Fatalf("eventLen = %d, want 0", n)
	}
	if _, err := DecodeMessage(data, omega.Limits{}); err == nil {
		t.Fatal("DecodeMessage took an event longer than its message")
	}
	e := testEngine(t, 2, 8, time.Second)
	feed(t, e, Message{Seq: 1, Data: data})
	if e.stats.Malformed != 1 {
		t.Fatalf("stats %+v: want one malformed", e.stats)
	}
}
