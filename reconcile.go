package omega

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/merkle"
)

// Reconcile decides a batch against prior with the built-in catalog and
// default options, on a checker made once and shared by every call. See
// [Checker.Reconcile].
func Reconcile(prior *State, events []Event) (Output, error) {
	return builtinChecker().Reconcile(prior, events)
}

// builtinChecker is the checker Reconcile shares: the built-in catalog and
// default options, so there is nothing about it a caller could configure.
var builtinChecker = sync.OnceValue(func() *Checker {
	c, _ := NewChecker(nil) // no domain predicates: cannot fail
	return c
})

// Reconcile decides a batch against prior (nil means genesis): a Merge of
// every distinct content, or an Obstruction naming the first violated
// predicate in the fixed evaluation order of SPEC 4. The result depends only
// on prior and on the multiset of events, never on their order or on how
// many identical copies arrive. prior is not changed.
//
// It returns an error, and no result, for a structurally invalid event (an
// [*EventError] with its index) or a batch over [MaxBatchContents].
//
// Deciding on prior keeps it: prior is committed first (see [State.Commit]),
// so that a Merge's next State rests on committed history. The next State
// itself is committed only when it is kept in turn.
func (c *Checker) Reconcile(prior *State, events []Event) (Output, error) {
	r, _, err := c.run(prior.Commit(), events, nil, false)
	if err != nil {
		return Output{}, err
	}
	return Output{Result: r, Binding: c.binding}, nil
}

// hashed is what a caller that validated and hashed a batch's events
// already knows of each: its event digest and whether its payload hashes to
// its payload_hash. The Kernel computes both on its submitters' goroutines.
type hashed struct {
	digests   []Hash
	payloadOK []bool
	// depLamports, when not nil, holds for each event nil or, for each
	// of its dependencies, 0 or 1 + the lamport the prior State knows it
	// by, found earlier (a known id's lamport never changes): the walk
	// then need not look it up.
	depLamports [][]uint64
}

// reconcileHashed is Reconcile of events that were validated under c's
// limits and hashed already: the result is the one Reconcile gives.
func (c *Checker) reconcileHashed(prior *State, events []Event, h *hashed) (Output, error) {
	r, _, err := c.run(prior.Commit(), events, h, false)
	if err != nil {
		return Output{}, err
	}
	return Output{Result: r, Binding: c.binding}, nil
}

// Diagnose lists every violation in a batch, in evaluation order: for each
// distinct content in canonical order, each predicate that fails at it (for
// 1003 and 2002, each failing dependency). Only the first is what Reconcile
// certifies. An empty list means the batch merges.
func (c *Checker) Diagnose(prior *State, events []Event) ([]Violation, error) {
	_, all, err := c.run(prior, events, nil, true)
	return all, err
}

// scratch is the memory one Reconcile call works in; Checkers pool it.
type scratch struct {
	touched     uint64    // touchIDs' results, kept so that its reads are made
	touchDeps   []EventID // the dependencies walker.touch reads ahead
	unknownDeps []EventID // an event's dependencies the walk found unknown
	digests     []Hash
	keys        []sortKey
	keys2       []sortKey                   // radix sort buffer
	fill        []hashedPos                 // a large id table's fill order
	counts      [][1 << indexBucketBits]int // bucketIDs' counts and offsets, per share
	leaves      []Hash
	multi       []bool // per distinct content: another content shares its id
	tree        []Hash
	ids         idTable
	streams     streamTable
	hashers     []*workerHashers
	records     []byte         // batch digest records, input order
	gathered    []byte         // batch digest records, canonical order, when gathered
	halves      [2]fillHalf    // fillIndexParallel's two shares
	failed      []eventFailure // hashAll's first invalid event per worker
	// Hashers of a Merge's batch, ids and heads digests, kept so that
	// their streaming state is made once per scratch, not per batch.
	batchH, idsH, headsH *digest.Hasher
}

func (c *Checker) getScratch() *scratch {
	if s := c.kept.Swap(nil); s != nil {
		return s
	}
	if s, ok := c.scratch.Get().(*scratch); ok {
		return s
	}
	s := &scratch{
		batchH: digest.New(digest.Batch),
		idsH:   digest.New(digest.IDs),
		headsH: digest.New(digest.Heads),
	}
	for range c.workers {
		enc := new([8][]byte)
		for j := range enc {
			enc[j] = make([]byte, 0, smallEvent)
		}
		s.hashers = append(s.hashers, &workerHashers{
			event: digest.New(digest.Event),
			node:  merkle.NewHasher(),
			enc:   enc,
		})
	}
	return s
}

// putScratch keeps sc for the next call, or pools it when a scratch is
// kept already.
func (c *Checker) putScratch(sc *scratch) {
	if !c.kept.CompareAndSwap(nil, sc) {
		c.scratch.Put(sc)
	}
}

// ReleaseScratch lets go of the scratch memory c keeps between calls, so
// that the garbage collector can reclaim it: for a service that has decided
// one unusually large batch and expects only small ones after it. Calls in
// progress keep theirs until they return; the next call allocates what it
// needs again. Results never depend on it.
func (c *Checker) ReleaseScratch() {
	c.kept.Store(nil)
	for c.scratch.Get() != nil {
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// run is Reconcile and Diagnose. Without diagnose it stops at the first
// violation and builds the result; with it, it returns every violation in
// evaluation order and no result. Nothing it returns refers to the scratch,
// which goes back to the pool when it returns.
func (c *Checker) run(prior *State, events []Event, pre *hashed, diagnose bool) (*Result, []Violation, error) {
	sc := c.getScratch()
	var side sideDigests
	defer func() {
		// Also on a panic in a domain predicate: the scratch goes back
		// only when nothing works in it any more.
		side.abandon()
		c.putScratch(sc)
	}()
	var all *[]violation
	if diagnose {
		all = new([]violation)
	}

	n := len(events)
	sc.digests = grow(sc.digests, n)
	sc.keys = grow(sc.keys, n)
	sc.records = grow(sc.records, batchRecordLen*n)
	if pre != nil {
		fillHashed(sc, events, pre)
	} else if i, err := c.hashAll(sc, events); err != nil {
		var fe *EventError
		if errors.As(err, &fe) {
			fe.Index = i
		}
		return nil, nil, err
	}
	inOrder, copies := sortKeys(sc, c.workers)
	m := n
	if copies {
		m = glueCopies(sc)
	}
	if m > MaxBatchContents {
		return nil, nil, fmt.Errorf("%w: %d distinct contents, the limit is %d", ErrBatchTooLarge, m, MaxBatchContents)
	}
	if uint64(prior.KnownCount())+uint64(m) > maxStoreIDs {
		return nil, nil, fmt.Errorf("%w: a state of %d known ids cannot take %d more", ErrBatchTooLarge, prior.KnownCount(), m)
	}
	// The event digests (the trace's leaves) and batch digest records in
	// canonical order. Input in canonical order without copies has them
	// in place already, else they are gathered by position.
	leaves, records := sc.digests[:m], sc.records[:batchRecordLen*m]
	gather := !inOrder || m != n
	if gather {
		sc.leaves = grow(sc.leaves, m)
		sc.gathered = grow(sc.gathered, batchRecordLen*m)
		leaves, records = sc.leaves, sc.gathered
	}
	// known lists the distinct contents' ids and lamports in canonical
	// order: the batch's id table indexes it, the walk reads lamports from
	// it, and a Merge's next State takes it as the accepted ids.
	// members, the result's, are filled in the same pass.
	known := make([]KnownID, m)
	var members []Member
	if all == nil {
		members = make([]Member, m)
	}
	forChunks(c.workers, m, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			k := &sc.keys[p]
			id := EventID{Hi: k.hi, Lo: k.lo}
			known[p] = KnownID{ID: id, Lamport: k.lamport}
			if gather {
				leaves[p] = sc.digests[k.idx]
				i := int(k.idx)
				copy(records[batchRecordLen*p:batchRecordLen*(p+1)], sc.records[batchRecordLen*i:batchRecordLen*(i+1)])
			}
			if members != nil {
				members[p] = Member{ID: id, Digest: leaves[p]}
			}
		}
	})
	if all == nil {
		side.start(sc, leaves, records, known)
	}

	// Domain predicates at a position come after the built-ins there, so
	// a domain failure wins only before the first built-in one.
	w := &walker{c: c, prior: prior, events: events, known: known, sc: sc}
	if pre != nil {
		w.depLamports = pre.depLamports
	}
	w.index()
	v, obstructed := w.walk(all)
	end := m
	if obstructed {
		end = v.pos
	}
	if dv, ok := w.walkDomain(end, all); ok {
		v, obstructed = dv, true
	}
	if all != nil {
		slices.SortStableFunc(*all, func(a, b violation) int { return cmp.Compare(a.pos, b.pos) })
		out := make([]Violation, len(*all))
		for i, v := range *all {
			out[i] = w.toViolation(v)
		}
		return nil, out, nil
	}
	var moved []movedHead
	if obstructed {
		side.abandonMerge.Store(true)
	} else {
		moved = w.movedHeads()
	}
	side.wg.Wait()

	r := &Result{
		PriorStateHash: prior.MergedStateHash(),
		TraceRoot:      side.root,
		Members:        members,
	}
	if obstructed {
		c.obstruct(r, w, v, leaves)
	} else {
		c.merge(r, w, prior, known, moved, &side)
	}
	return r, nil, nil
}
