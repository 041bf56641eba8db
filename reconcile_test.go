package omega

import (
	"bytes"
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

type readsPrior struct{ entered chan struct{} }

func (readsPrior) Entry() predicates.Entry {
	return predicates.Entry{ID: 4001, Name: "reads_prior", Arity: 1, SemanticsRef: "test://reads_prior/v1"}
}

func (p readsPrior) Violated(e *Event, prior *State) bool {
	select {
	case p.entered <- struct{}{}:
		time.Sleep(20 * time.Millisecond) // let a concurrent merge queue for the lock
	default:
	}
	_, ok := prior.Lamport(ID64(1))
	return !ok
}

func simpleEvent(id, lamport uint64) Event {
	return Event{ID: ID64(id), NodeID: uint32(id), Lamport: lamport, PayloadHash: digest.Plain(nil)}
}

// A domain predicate may call the prior State's methods while another
// goroutine merges from the same prior: neither may block the other.
func TestDomainPredicateReadsPriorDuringConcurrentMerge(t *testing.T) {
	rOut, err := Reconcile(nil, []Event{simpleEvent(1, 1)})
	r := rOut.Result
	if err != nil {
		t.Fatal(err)
	}
	prior := r.Merge.Next
	pred := readsPrior{entered: make(chan struct{}, 1)}
	c, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{pred}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Result, 1)
	go func() {
		out, err := c.Reconcile(prior, []Event{simpleEvent(2, 2)})
		if err != nil {
			t.Error(err)
		}
		done <- out.Result
	}()
	<-pred.entered
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := Reconcile(prior, []Event{simpleEvent(3, 3)}); err != nil {
			t.Error(err)
		}
	})
	select {
	case got := <-done:
		if got == nil || got.Kind != KindMerge {
			t.Errorf("Reconcile with a prior-reading domain predicate = %v, want a merge", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reconcile with a prior-reading domain predicate deadlocked beside a concurrent merge")
	}
	wg.Wait()
}

// sortKeys recognises input in canonical order, with and without copies of
// one content next to each other, wherever the workers' chunks meet, and
// sorts input out of order by one pair.
func TestSortKeysInOrderInput(t *testing.T) {
	const n = 5000 // two chunks on two workers: the second starts at n/2
	for _, at := range []int{1, 1000, n/2 - 1, n / 2, n/2 + 1, n - 1} {
		fresh := func() *scratch {
			sc := &scratch{keys: make([]sortKey, n), digests: make([]Hash, n)}
			for i := range sc.keys {
				sc.keys[i] = sortKey{lamport: uint64(i/8 + 1), nodeStrm: uint64(i % 8), lo: uint64(i), idx: uint32(i)}
				sc.digests[i][0] = byte(i)
			}
			return sc
		}
		for _, workers := range []int{1, 2} {
			sc := fresh()
			if inOrder, copies := sortKeys(sc, workers); !inOrder || copies {
				t.Fatalf("workers=%d: sortKeys(in order, no copies) = %v, %v; want true, false", workers, inOrder, copies)
			}
			sc = fresh()
			sc.keys[at] = sc.keys[at-1]
			sc.keys[at].idx = uint32(at)
			sc.digests[at] = sc.digests[at-1]
			if inOrder, copies := sortKeys(sc, workers); !inOrder || !copies {
				t.Fatalf("workers=%d: sortKeys(in order, copy at %d) = %v, %v; want true, true", workers, at, inOrder, copies)
			}
			if m := glueCopies(sc); m != n-1 {
				t.Fatalf("workers=%d: glueCopies(copy at %d) = %d, want %d", workers, at, m, n-1)
			}
			sc = fresh()
			sc.keys[at-1], sc.keys[at] = sc.keys[at], sc.keys[at-1]
			if inOrder, _ := sortKeys(sc, workers); inOrder {
				t.Fatalf("workers=%d: sortKeys(swapped at %d) reports the input in order", workers, at)
			}
			if !slices.IsSortedFunc(sc.keys, compareSortKeys(sc.digests)) {
				t.Fatalf("workers=%d: sortKeys(swapped at %d) left the keys out of order", workers, at)
			}
		}
	}
}

// sortKeys must give the comparison sort's order whichever path it takes.
func TestSortKeysMatchesComparisonSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 100, radixMin - 1, radixMin, 3 * radixMin} {
		for _, spread := range []uint64{1, 7, 1 << 10, 1 << 12, 1 << 20, 1 << 40, 1<<63 + 5} {
			sc := &scratch{}
			sc.keys = make([]sortKey, n)
			sc.digests = make([]Hash, n)
			for i := range sc.keys {
				sc.keys[i] = sortKey{
					lamport:  r.Uint64N(spread) + spread/2,
					nodeStrm: r.Uint64N(4),
					lo:       r.Uint64N(8),
					idx:      uint32(i),
				}
				sc.digests[i][0] = byte(r.Uint32N(3))
			}
			input := slices.Clone(sc.keys)
			want := slices.Clone(sc.keys)
			slices.SortStableFunc(want, compareSortKeys(sc.digests))
			var first []sortKey
			for _, workers := range []int{1, 2, 3, 8} {
				sc.keys = slices.Clone(input)
				sortKeys(sc, workers)
				for i := range want {
					if compareSortKeys(sc.digests)(sc.keys[i], want[i]) != 0 {
						t.Fatalf("n=%d spread=%d workers=%d: sortKeys()[%d] = %+v, want %+v", n, spread, workers, i, sc.keys[i], want[i])
					}
				}
				// Copies of one content too come out in one order.
				if first == nil {
					first = sc.keys
				} else if !slices.Equal(sc.keys, first) {
					t.Fatalf("n=%d spread=%d: sortKeys on %d workers orders copies unlike on 1", n, spread, workers)
				}
			}
		}
	}
}

// The radix pass is a stable sort by lamport on any number of workers.
func TestRadixByLamportIsStable(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{radixMin, 5*radixMin + 3} {
		for _, spread := range []uint64{2, 300, 1 << 24, 1<<64 - 1} {
			keys := make([]sortKey, n)
			for i := range keys {
				keys[i] = sortKey{lamport: r.Uint64N(spread) << 3, idx: uint32(i)}
			}
			want := slices.Clone(keys)
			slices.SortStableFunc(want, func(a, b sortKey) int { return cmp.Compare(a.lamport, b.lamport) })
			for _, workers := range []int{1, 2, 3, 8} {
				got, tmp := slices.Clone(keys), make([]sortKey, n)
				if radixByLamport(got, tmp, workers) {
					got = tmp
				}
				if !slices.Equal(got, want) {
					t.Fatalf("n=%d spread=%d workers=%d: radixByLamport differs from a stable sort by lamport", n, spread, workers)
				}
			}
		}
	}
}

// Filling the batch id table bucket by bucket gives the same table contents
// and the same 3001 marks as filling it in canonical order.
func TestFillIndexBucketedMatchesSequential(t *testing.T) {
	const m = 5000
	known := make([]KnownID, m)
	r := rand.New(rand.NewPCG(5, 6))
	for p := range known {
		known[p] = KnownID{ID: EventID{Hi: r.Uint64N(3), Lo: r.Uint64N(3 * m)}, Lamport: uint64(p)}
	}
	fill := func(bucketed bool) (*scratch, []bool) {
		sc := &scratch{keys: make([]sortKey, m)}
		w := &walker{known: known, sc: sc}
		sc.ids.reset(m)
		multi := make([]bool, m)
		w.fillIndex(func(p uint32, h uint64) {
			if first, dup := sc.ids.insertHashed(known, p, h); dup {
				multi[first], multi[p] = true, true
			}
		}, bucketed)
		return sc, multi
	}
	seq, seqMulti := fill(false)
	buck, buckMulti := fill(true)
	if !slices.Equal(seqMulti, buckMulti) {
		t.Fatal("bucketed fill marks other ids as shared than the sequential fill")
	}
	sameIDTables(t, known, &seq.ids, &buck.ids, "bucketed")
}

// sameIDTables checks that the id table other, filled the way named what,
// finds every id of known where the sequentially filled seq does.
func sameIDTables(t *testing.T, known []KnownID, seq, other *idTable, what string) {
	t.Helper()
	for p, k := range known {
		a, okA := seq.get(known, k.ID)
		b, okB := other.get(known, k.ID)
		if !okA || !okB || a != b || known[a].ID != k.ID {
			t.Fatalf("id %v (position %d): sequential fill finds %d %v, %s %d %v", k.ID, p, a, okA, what, b, okB)
		}
	}
}

// One Checker serves Reconcile and Diagnose from many goroutines; each
// call's output is its own (run under -race in CI).
func TestCheckerConcurrentCalls(t *testing.T) {
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := func(g int) []Event {
		e := simpleEvent(uint64(100+g), uint64(g+1))
		e.PayloadHash[0] ^= 1
		return []Event{simpleEvent(uint64(200+g), 1), e}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				vs, err := c.Diagnose(nil, bad(g))
				if err != nil || len(vs) != 1 || vs[0].Event != ID64(uint64(100+g)) {
					t.Errorf("Diagnose(goroutine %d) = %v, %v; want one violation at %d", g, vs, err, 100+g)
					return
				}
				out, err := c.Reconcile(nil, bad(g))
				if err != nil || out.Result.Obstruction.Event != ID64(uint64(100+g)) {
					t.Errorf("Reconcile(goroutine %d) = %v; want an obstruction at %d", g, err, 100+g)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Results never depend on how many workers hash, nor on the input's order
// or copies, also for a batch large enough to fill its id table bucket by
// bucket on two goroutines (indexBucketsMin).
func TestReconcileWorkersAgree(t *testing.T) {
	longTest(t)
	const n = 40000
	inOrder := benchEvents(n)
	mixed := shuffled(inOrder)
	bad := slices.Clone(mixed)
	bad[12345].PayloadHash[0] ^= 1 // an obstruction deep in the batch
	inputs := []struct {
		name   string
		events []Event
		merge  bool
	}{
		{"in order", inOrder, true},
		{"shuffled", mixed, true},
		{"shuffled with copies", append(slices.Clone(mixed), inOrder[:5000]...), true},
		{"obstructed", bad, false},
	}
	var merged []byte
	for _, in := range inputs {
		var want []byte
		for _, workers := range []int{1, 2, 3, 8} {
			c, err := NewChecker(&CheckerOptions{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Reconcile(nil, in.events)
			if err != nil {
				t.Fatal(err)
			}
			if (out.Result.Kind == KindMerge) != in.merge {
				t.Fatalf("%s: Reconcile = %v", in.name, out.Result.Kind)
			}
			got := out.AppendJSON(nil)
			if want == nil {
				want = got
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s: Reconcile with %d workers differs from 1 worker", in.name, workers)
			}
		}
		if !in.merge {
			continue
		}
		if merged == nil {
			merged = want
		} else if !bytes.Equal(want, merged) {
			t.Errorf("%s: Reconcile differs from the same events in order", in.name)
		}
	}
}

// A warm checker allocates per batch, not per event: batches that take the
// same paths (the parallel ones from indexBucketsMin contents on, and the
// radix sort from radixMin) allocate as often whatever their size, and a
// small batch not much less.
func TestReconcileAllocationsPerBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector are not the product's")
	}
	c, err := NewChecker(&CheckerOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, shuffled := range []bool{false, true} {
		allocs := func(n int) float64 {
			events := benchEvents(n)
			if shuffled {
				r := rand.New(rand.NewPCG(1, uint64(n)))
				r.Shuffle(n, func(i, j int) { events[i], events[j] = events[j], events[i] })
			}
			c.Reconcile(nil, events) // warm the scratch
			return testing.AllocsPerRun(5, func() { c.Reconcile(nil, events) })
		}
		small, medium, large := allocs(1000), allocs(50000), allocs(200000)
		if large > medium+2 || medium > small+64 || large > 130 {
			t.Errorf("Reconcile (shuffled %v) allocates %v, %v and %v times for 1000, 50000 and 200000 events; want a count that does not grow with the batch", shuffled, small, medium, large)
		}
		t.Logf("shuffled %v: %v, %v, %v", shuffled, small, medium, large)
	}
}

// Events hashed eight at a time, with encodings on both sides of one
// chunk (1024 bytes) in one group, get the digests Event.Digest gives, and
// a wrong payload hash among them is found.
func TestReconcileMixedEventSizes(t *testing.T) {
	var events []Event
	for i, size := range []int{0, 5, 943, 944, 945, 1000, 3000, 10, 944, 20000, 64, 943, 1, 2, 3, 4, 5000} {
		p := bytes.Repeat([]byte{byte(i)}, size)
		e := Event{ID: ID64(uint64(i) + 1), NodeID: uint32(i), Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}
		if i%5 == 4 {
			e.Deps = []EventID{ID64(uint64(i))} // deps lengthen the encoding
			e.Lamport = 2
		}
		events = append(events, e)
	}
	c := defaultChecker(t)
	out, err := c.Reconcile(nil, events)
	if err != nil || out.Result.Kind != KindMerge {
		t.Fatalf("Reconcile = %v, %v, want a merge", err, out.Result)
	}
	want := make(map[EventID]Hash)
	for i := range events {
		want[events[i].ID] = events[i].Digest()
	}
	for _, m := range out.Result.Members {
		if m.Digest != want[m.ID] {
			t.Errorf("member %v digest %v, want %v", m.ID, m.Digest, want[m.ID])
		}
	}
	for _, bad := range []int{3, 6, 9, 16} {
		evs := slices.Clone(events)
		evs[bad].PayloadHash[0] ^= 1
		out, err := c.Reconcile(nil, evs)
		if err != nil || out.Result.Kind != KindObstruction || out.Result.Obstruction.Predicate != predicates.PayloadHashMatch || out.Result.Obstruction.Event != evs[bad].ID {
			t.Fatalf("Reconcile with event %d's payload hash wrong = %+v, %v, want 2001 at it", bad, out.Result.Obstruction, err)
		}
	}
}

// Filling the id table on two goroutines gives the same lookups and 3001
// marks as the sequential fill, also for ids whose probe runs past the end
// of their half of the table (inserted afterwards) and their copies.
func TestFillIndexParallelMatchesSequential(t *testing.T) {
	const m = 1 << 16
	r := rand.New(rand.NewPCG(7, 8))
	var par idTable
	par.reset(m)
	size := par.mask + 1
	// Ids piled onto the last slots of each half, so that their probes
	// cross into the other half or past the end of the table.
	var piled []KnownID
	for len(piled) < 300 {
		id := EventID{Lo: r.Uint64()}
		home := par.hash(id) & par.mask
		if home >= size/2-40 && home < size/2 || home >= size-40 {
			piled = append(piled, KnownID{ID: id})
		}
	}
	known := make([]KnownID, 0, m)
	for len(known) < m {
		switch k := r.IntN(10); {
		case k == 0 && len(known) > 0:
			known = append(known, known[r.IntN(len(known))]) // a copy of an earlier id
		case k == 1:
			known = append(known, piled[r.IntN(len(piled))])
		default:
			known = append(known, KnownID{ID: EventID{Hi: r.Uint64N(2), Lo: r.Uint64N(4 * m)}})
		}
	}
	for p := range known {
		known[p].Lamport = uint64(p)
	}

	seq := &scratch{keys: make([]sortKey, m)}
	seq.ids.reset(m)
	seqMulti := make([]bool, m)
	(&walker{known: known, sc: seq}).fillIndex(func(p uint32, h uint64) {
		if first, dup := seq.ids.insertHashed(known, p, h); dup {
			seqMulti[first], seqMulti[p] = true, true
		}
	}, false)

	ps := &scratch{keys: make([]sortKey, m), ids: par, multi: make([]bool, m)}
	(&walker{known: known, sc: ps}).fillIndexParallel()

	if !slices.Equal(seqMulti, ps.multi) {
		t.Fatal("parallel fill marks other ids as shared than the sequential fill")
	}
	if ps.ids.n != seq.ids.n {
		t.Fatalf("parallel fill counts %d ids, sequential %d", ps.ids.n, seq.ids.n)
	}
	sameIDTables(t, known, &seq.ids, &ps.ids, "parallel")
}

// An invalid event is reported by its index, the first one in input order
// whichever worker validated it.
func TestReconcileFirstInvalidEvent(t *testing.T) {
	c, err := NewChecker(&CheckerOptions{Workers: 2, Limits: Limits{MaxPayload: 64}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]int{{100}, {5000}, {4000, 100, 9000}, {9999}} {
		events := benchEvents(10000)
		for _, i := range bad {
			events[i].Payload = make([]byte, 65)
		}
		_, err := c.Reconcile(nil, events)
		var fe *EventError
		if !errors.As(err, &fe) || fe.Index != slices.Min(bad) || fe.Field != "payload_len" {
			t.Errorf("Reconcile with events %v over the payload limit = %v, want an EventError at index %d", bad, err, slices.Min(bad))
		}
	}
}

// panicsAt is a faulty domain predicate: it panics at one lamport.
type panicsAt struct{ lamport *atomic.Uint64 }

func (panicsAt) Entry() predicates.Entry {
	return predicates.Entry{ID: 4200, Name: "panics", Arity: 1, SemanticsRef: "test://panics/v1"}
}

func (p panicsAt) Violated(e *Event, _ *State) bool {
	if e.Lamport == p.lamport.Load() {
		panic("domain predicate fault")
	}
	return false
}

// A domain predicate's panic reaches the caller, and the checker, whose
// scratch the panicking call used, decides its next batch as a fresh one
// does.
func TestReconcileAfterDomainPanic(t *testing.T) {
	events := benchEvents(40000)
	var at atomic.Uint64
	at.Store(1)
	c, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{panicsAt{&at}}})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Reconcile with a panicking domain predicate returned")
			}
		}()
		c.Reconcile(nil, events)
	}()
	at.Store(0) // no event has lamport 0
	got, err := c.Reconcile(nil, events)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{panicsAt{&at}}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.Reconcile(nil, events)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.AppendJSON(nil), want.AppendJSON(nil)) {
		t.Error("Reconcile after a domain predicate's panic differs from a fresh checker's")
	}
}

// ReleaseScratch drops the kept scratch, also while other calls run, and
// the checker decides as before after it.
func TestReleaseScratch(t *testing.T) {
	events := benchEvents(20000)
	c, err := NewChecker(&CheckerOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.Reconcile(nil, events)
	if err != nil {
		t.Fatal(err)
	}
	if c.kept.Load() == nil {
		t.Fatal("no scratch kept after Reconcile")
	}
	c.ReleaseScratch()
	if c.kept.Load() != nil {
		t.Fatal("scratch still kept after ReleaseScratch")
	}

	var wg sync.WaitGroup
	outs := make([]Output, 4)
	for i := range outs {
		wg.Go(func() {
			out, err := c.Reconcile(nil, events)
			if err != nil {
				t.Error(err)
			}
			outs[i] = out
		})
	}
	wg.Go(func() {
		for range 100 {
			c.ReleaseScratch()
		}
	})
	wg.Wait()
	for i, out := range outs {
		if !bytes.Equal(out.AppendJSON(nil), want.AppendJSON(nil)) {
			t.Errorf("call %d beside ReleaseScratch differs from the first", i)
		}
	}
}

// TestPackageReconcileSharesAChecker pins that the package-level Reconcile
// costs what a Checker's does: it makes no checker per call.
func TestPackageReconcileSharesAChecker(t *testing.T) {
	events := benchEvents(10)
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	method := testing.AllocsPerRun(50, func() { c.Reconcile(nil, events) })
	pkg := testing.AllocsPerRun(50, func() { Reconcile(nil, events) })
	t.Logf("10 events: %v allocations through a Checker, %v through Reconcile", method, pkg)
	if pkg > method {
		t.Fatalf("Reconcile allocates %v times for 10 events, a Checker's Reconcile %v", pkg, method)
	}
}
