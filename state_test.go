package omega

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"testing"
)

// stateOf builds a committed State of n known ids spread over 64 streams.
func stateOf(t testing.TB, n int) *State {
	t.Helper()
	known := make([]KnownID, n)
	heads := make(map[streamKey]StreamHead)
	for i := range known {
		known[i] = KnownID{ID: ID64(uint64(i) + 1), Lamport: uint64(i/64 + 1)}
		node, stream := uint32(i%64), uint16(0)
		heads[makeStreamKey(node, stream)] = StreamHead{NodeID: node, StreamID: stream, Lamport: known[i].Lamport, ID: known[i].ID}
	}
	var hs []StreamHead
	for _, h := range heads {
		hs = append(hs, h)
	}
	s, err := NewState(known, hs, Hash{1}, Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// batchAfter returns k events that merge on a state made by stateOf(n).
func batchAfter(n, k int) []Event {
	events := benchEvents(k)
	for j := range events {
		events[j].ID = ID64(uint64(n+j) + 1)
		events[j].NodeID = uint32(j % 64)
		events[j].StreamID = 0
		events[j].Lamport = uint64(n + 2)
	}
	return events
}

// TestDeriveCostsBatch pins SPEC 4's O(batch) merge: deriving a successor
// of a State allocates the same whatever the State's size, however many
// successors were derived from it before, and none of them is committed.
func TestDeriveCostsBatch(t *testing.T) {
	c, err := NewChecker(&CheckerOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	allocs, bytes := make(map[int]float64), make(map[int]uint64)
	for _, n := range []int{10_000, 1_000_000} {
		if n > 10_000 && testing.Short() {
			continue
		}
		s := stateOf(t, n)
		batch := batchAfter(n, 32)
		var next *State
		allocs[n] = testing.AllocsPerRun(50, func() {
			out, err := c.Reconcile(s, batch)
			if err != nil || out.Result.Kind != KindMerge {
				t.Fatalf("Reconcile = %v, %v, want a merge", out.Result, err)
			}
			next = out.Result.Merge.Next
		})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 50 {
			if _, err := c.Reconcile(s, batch); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		bytes[n] = (after.TotalAlloc - before.TotalAlloc) / 50
		if s.st.n != uint32(n) {
			t.Fatalf("after deriving successors the lineage holds %d ids, want %d: a successor was committed", s.st.n, n)
		}
		c := next.Commit()
		if c.st != s.st || c.KnownCount() != n+32 {
			t.Fatalf("Commit() = a State on another lineage with %d ids, want the prior's with %d", c.KnownCount(), n+32)
		}
	}
	if a, b := allocs[10_000], allocs[1_000_000]; b != 0 && a != b {
		t.Fatalf("deriving a successor allocates %v times at 10^4 known ids and %v at 10^6, want the same", a, b)
	}
	t.Logf("per successor: allocations %v, bytes %v", allocs, bytes)
	for n, b := range bytes {
		if b > 64<<10 {
			t.Fatalf("deriving a successor of a State of %d known ids allocates %d bytes, want at most 64 KiB", n, b)
		}
	}
	if a := allocs[10_000]; a > 40 {
		t.Fatalf("deriving a successor allocates %v times, want at most 40", a)
	}
}

// TestCommitKeepsEarlierStates commits a line of merges that move the same
// heads again and again, and a fork from the middle of it, and checks that
// every State reads as it did when it was made.
func TestCommitKeepsEarlierStates(t *testing.T) {
	type view struct {
		known []KnownID
		heads []StreamHead
	}
	look := func(s *State) view { return view{s.KnownIDs(), s.Heads()} }
	same := func(a, b view) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

	var states []*State
	var views []view
	s := &State{}
	for i := range 200 {
		// Three streams, so each batch moves heads earlier ones saw.
		batch := make([]Event, 3)
		for j := range batch {
			batch[j] = benchEvents(1)[0]
			batch[j].ID = ID64(uint64(3*i+j) + 1)
			batch[j].NodeID = uint32(j)
			batch[j].Lamport = uint64(i + 1)
		}
		rOut, err := Reconcile(s, batch)
		r := rOut.Result
		if err != nil || r.Kind != KindMerge {
			t.Fatalf("Reconcile(batch %d) = %v, %v", i, r, err)
		}
		s = r.Merge.Next
		states, views = append(states, s), append(views, look(s))
	}
	s.Commit()
	for i, st := range states {
		if got := look(st); !same(got, views[i]) {
			t.Fatalf("State %d after later commits reads %v, want %v", i, got, views[i])
		}
		if h, ok := st.Commit().Head(1, 0); !ok || h.Lamport != uint64(i+1) {
			t.Fatalf("committed State %d: Head(1, 0) = %v, %v, want lamport %d", i, h, ok, i+1)
		}
	}
	// A fork from the middle starts its own lineage and leaves the first.
	mid := states[100].Commit()
	batch := []Event{benchEvents(1)[0]}
	batch[0].ID, batch[0].Lamport = ID64(1_000_000), 500
	rOut, err := Reconcile(mid, batch)
	r := rOut.Result
	if err != nil || r.Kind != KindMerge {
		t.Fatalf("Reconcile(fork) = %v, %v", r, err)
	}
	fork := r.Merge.Next.Commit()
	if fork.st == mid.st {
		t.Fatal("a commit on a State that is not the newest of its lineage appended to it")
	}
	if h, _ := fork.Head(batch[0].NodeID, 0); h.ID != batch[0].ID {
		t.Fatalf("fork: Head = %v, want the fork's event", h)
	}
	if h, _ := fork.Head(1, 0); h.Lamport != 101 {
		t.Fatalf("fork: Head(1, 0) = %v, want lamport 101 as at the fork point", h)
	}
	for i, st := range states {
		if got := look(st); !same(got, views[i]) {
			t.Fatalf("State %d after a fork reads %v, want %v", i, got, views[i])
		}
	}
}

// TestStateReadsDuringCommits reads earlier States on other goroutines
// while their lineage grows: run under -race, it checks that reads need no
// lock.
func TestStateReadsDuringCommits(t *testing.T) {
	s := stateOf(t, 1000)
	want := look3(s)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := look3(s); got != want {
					t.Errorf("concurrent read = %v, want %v", got, want)
					return
				}
			}
		})
	}
	cur := s
	for i := range 300 {
		rOut, err := Reconcile(cur, batchAfter(1000+32*i, 32))
		r := rOut.Result
		if err != nil || r.Kind != KindMerge {
			t.Fatalf("Reconcile(batch %d) = %v, %v", i, r, err)
		}
		cur = r.Merge.Next
	}
	close(stop)
	wg.Wait()
	if cur.Commit().KnownCount() != 1000+300*32 {
		t.Fatalf("KnownCount() = %d, want %d", cur.KnownCount(), 1000+300*32)
	}
}

func look3(s *State) string {
	l, ok := s.Lamport(ID64(500))
	_, unknown := s.Lamport(ID64(5000))
	h, _ := s.Head(7, 0)
	return fmt.Sprint(l, ok, unknown, h, len(s.Heads()), s.KnownCount())
}

// TestKnownSorted checks the snapshot's view of a committed State against
// KnownIDs and position, across several chunks of the known log, and that
// an uncommitted State is refused.
func TestKnownSorted(t *testing.T) {
	for _, n := range []int{0, 1, 1 << knownChunkBits, 3<<knownChunkBits + 5} {
		s := stateOf(t, n)
		// A few more ids, committed in batches, so positions follow
		// acceptance rather than the ids' order.
		for b := range 3 {
			events := batchAfter(n+32*b, 32)
			for j := range events {
				events[j].ID = ID64(1<<40 - uint64(32*b+j)) // descending
				events[j].Lamport = uint64(n + 2 + b)
			}
			out, err := Reconcile(s, events)
			if err != nil || out.Result.Kind != KindMerge {
				t.Fatalf("n=%d batch %d: %v, %v", n, b, out.Result, err)
			}
			s = out.Result.Merge.Next.Commit()
		}
		got, ok := s.knownSorted(func() {})
		if !ok {
			t.Fatalf("n=%d: knownSorted refused a committed State", n)
		}
		want := s.KnownIDs()
		if len(got) != len(want) {
			t.Fatalf("n=%d: %d ids, want %d", n, len(got), len(want))
		}
		for i, k := range got {
			if k.KnownID != want[i] {
				t.Fatalf("n=%d: id %d is %v, want %v", n, i, k.KnownID, want[i])
			}
			if p, ok := s.position(k.ID); !ok || p != k.pos {
				t.Fatalf("n=%d: %v at position %d, want %d (%v)", n, k.ID, k.pos, p, ok)
			}
		}
		out, err := Reconcile(s, batchAfter(n+96, 1))
		if err != nil {
			t.Fatal(err)
		}
		if out.Result.Kind != KindMerge {
			t.Fatalf("n=%d: %v", n, out.Result)
		}
		if _, ok := out.Result.Merge.Next.knownSorted(func() {}); ok {
			t.Fatalf("n=%d: knownSorted gave positions for an uncommitted State", n)
		}
	}
}

// TestTouchIDs checks what touchIDs reads: nothing without a store; for a
// known id the words its lookup reads, the control word of a group its
// probe visits (never empty: a probe only moves past a full group) and the
// entries of the slots whose tags match; and under an uncommitted State
// its committed base's index.
func TestTouchIDs(t *testing.T) {
	id := func(k *KnownID) EventID { return k.ID }
	if got := touchIDs(nil, []KnownID{{ID: ID64(1)}}, id); got != 0 {
		t.Errorf("touchIDs(nil State) = %#x, want 0", got)
	}
	const n = 5000
	s := stateOf(t, n)
	// Where each position sits, read off the table without hashing.
	idx := s.st.index.Load()
	if idx.old.Load() != nil {
		t.Fatal("the index is growing: the test reads one table")
	}
	type slot struct{ g, i int }
	where := make(map[uint32]slot)
	for g := range idx.groups {
		ctrl := idx.groups[g].ctrl.Load()
		for i := range 8 {
			if ctrl>>(8*i)&0x80 != 0 {
				where[idx.groups[g].pos[i]] = slot{g, i}
			}
		}
	}
	known := s.KnownIDs()
	home := 0
	for i := range known {
		p, ok := s.position(known[i].ID)
		if !ok {
			t.Fatalf("id %v not found", known[i].ID)
		}
		got := touchIDs(s, known[i:i+1], id)
		if got == 0 {
			t.Fatalf("touchIDs(%v) = 0: an empty group, where the id's lookup starts in a full one", known[i].ID)
		}
		// The words of the group holding the id, with the entries of the
		// slots that share its tag, the id's own among them.
		at := where[p]
		grp := &idx.groups[at.g]
		ctrl := grp.ctrl.Load()
		want := ctrl
		for b := matches(ctrl, byte(ctrl>>(8*at.i))); b != 0; b &= b - 1 {
			want ^= s.st.known.at(grp.pos[bits.TrailingZeros64(b)>>3]).Lamport
		}
		if got == want {
			home++
		}
	}
	// Most ids sit in the group their lookup starts at, the one touched; a
	// probe moves on only past a full group.
	if home < n*9/10 {
		t.Errorf("touchIDs read the words of the id's group and slot for %d of %d ids, want most", home, n)
	}
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Reconcile(s, batchAfter(n, 32))
	if err != nil || out.Result.Kind != KindMerge {
		t.Fatal(err, out.Result.Kind)
	}
	next := out.Result.Merge.Next
	if got, want := touchIDs(next, known, id), touchIDs(s, known, id); got != want {
		t.Errorf("touchIDs under an uncommitted State = %#x, want its base's %#x", got, want)
	}
}
