package omega

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/merkle"
	"github.com/omega-sheaf/omega/predicates"
)

// MaxBatchContents is the largest number of distinct contents a batch may
// hold (SPEC 4). A larger batch is refused with [ErrBatchTooLarge].
const MaxBatchContents = 1 << 20

// maxEvidence caps the 3001 evidence list: its count is a u16 in a
// certificate body.
const maxEvidence = 65535

// ErrBatchTooLarge is returned for a batch of more than [MaxBatchContents]
// distinct contents.
var ErrBatchTooLarge = errors.New("omega: batch too large")

// Kind says whether a batch was merged or obstructed.
type Kind uint8

// The two kinds of result, with the values BATCH frames and certificates
// encode.
const (
	KindMerge       Kind = 1
	KindObstruction Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindMerge:
		return "merge"
	case KindObstruction:
		return "obstruction"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Result is the checker's decision on one batch (SPEC 4). Exactly one of
// Merge and Obstruction is set, as Kind says.
type Result struct {
	Kind           Kind
	PriorStateHash Hash // the prior State's merged_state_hash
	TraceRoot      Hash // Merkle root over Members' digests
	WitnessHash    Hash
	// Members are the batch's distinct contents in canonical order: their
	// ids and event digests. They are the trace root's leaves and a BATCH
	// frame's members; for a Merge, the accepted events.
	Members     []Member
	Merge       *Merge
	Obstruction *Obstruction
}

// Member names one distinct content of a batch.
type Member struct {
	ID     EventID
	Digest Hash
}

// Merge holds the fields only a Merge has.
type Merge struct {
	BatchDigest       Hash
	MergedStateHash   Hash
	AcceptedIDsDigest Hash
	FrontierDigest    Hash
	HeadsDigest       Hash // over the heads this batch moved
	// Next is the State the merge yields: an overlay on the prior State,
	// which it leaves unchanged, committed when it is kept (State.Commit).
	Next *State
}

// Obstruction holds the fields only an Obstruction has.
type Obstruction struct {
	Predicate            predicates.ID
	Event                EventID   // the offending event e
	ConflictSet          []EventID // ascending, no repeats
	OverlapContextDigest Hash
	Evidence             []Event // canonical order; copies, not aliases of the input
	EvidenceDigests      []Hash
}

// AcceptedIDs returns the ids a Merge accepted, in canonical order, or nil
// for an Obstruction.
func (r *Result) AcceptedIDs() []EventID {
	if r.Kind != KindMerge {
		return nil
	}
	ids := make([]EventID, len(r.Members))
	for i, m := range r.Members {
		ids[i] = m.ID
	}
	return ids
}

// Violation is one failed predicate at one event, as [Checker.Diagnose]
// lists them.
type Violation struct {
	Predicate   predicates.ID
	Event       EventID
	ConflictSet []EventID
}

// Reconcile decides a batch against prior with the built-in catalog and
// default options. See [Checker.Reconcile].
func Reconcile(prior *State, events []Event) (*Result, error) {
	c, _ := NewChecker(nil) // no domain predicates: cannot fail
	out, err := c.Reconcile(prior, events)
	if err != nil {
		return nil, err
	}
	return out.Result, nil
}

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
	r, _, err := c.run(prior.Commit(), events, false)
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
	_, all, err := c.run(prior, events, true)
	return all, err
}

// smallEvent is the encoded size up to which hashAll builds an event's whole
// encoding in one buffer before hashing it; larger payloads are streamed.
const smallEvent = 1024

// scratch is the memory one Reconcile call works in; Checkers pool it.
type scratch struct {
	digests  []Hash
	keys     []sortKey
	keys2    []sortKey                   // radix sort buffer
	fill     []hashedPos                 // a large id table's fill order
	counts   [][1 << indexBucketBits]int // bucketIDs' counts and offsets, per share
	leaves   []Hash
	multi    []bool // per distinct content: another content shares its id
	tree     []Hash
	ids      idTable
	streams  streamTable
	hashers  []*workerHashers
	records  []byte         // batch digest records, input order
	gathered []byte         // batch digest records, canonical order, when gathered
	halves   [2]fillHalf    // fillIndexParallel's two shares
	failed   []eventFailure // hashAll's first invalid event per worker
	// Hashers of a Merge's batch, ids and heads digests, kept so that
	// their streaming state is made once per scratch, not per batch.
	batchH, idsH, headsH *digest.Hasher
}

// workerHashers is one hashAll worker's hashers and buffers.
type workerHashers struct {
	touched byte // touchPayloads' results, kept so that its reads are made
	event   *digest.Hasher
	node    *digest.Hasher
	enc     *[8][]byte // encodings of a group of one-chunk events, smallEvent bytes each
}

// sortKey is the ordering key of one input event, with its index: sorting
// these, not Events, keeps the sort's memory traffic small.
type sortKey struct {
	lamport  uint64
	nodeStrm uint64 // node_id << 16 | stream_id: compares as (node, stream)
	hi, lo   uint64
	idx      uint32
	flags    uint8 // keyPayloadOK, keyHasDeps
}

// sortKey flags: what the walk needs to know of an event without reading it.
const (
	keyPayloadOK = 1 << iota // payload_hash is BLAKE3-256(payload)
	keyHasDeps
)

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
func (c *Checker) run(prior *State, events []Event, diagnose bool) (*Result, []Violation, error) {
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
	if i, err := c.hashAll(sc, events); err != nil {
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

// batchRecordLen is the length of one event's input to the batch digest:
// payload_hash || event_id.
const batchRecordLen = digest.Size + 16

// sideDigests are the digests a result needs but no predicate reads,
// computed beside the walk: the trace root, and a Merge's batch and
// accepted ids digests, which an obstruction abandons.
type sideDigests struct {
	wg           sync.WaitGroup
	abandonMerge atomic.Bool
	root         Hash
	batch, ids   Hash
}

// start computes the digests of the distinct contents, whose event digests
// (leaves), batch digest records and ids are given in canonical order, on
// two goroutines; for a batch too small to be worth them, at once.
func (s *sideDigests) start(sc *scratch, leaves []Hash, records []byte, known []KnownID) {
	sc.tree = grow(sc.tree, len(leaves)/2+2)
	root := func() {
		nodes := make([]*digest.Hasher, len(sc.hashers))
		for i, h := range sc.hashers {
			nodes[i] = h.node
		}
		s.root = merkle.RootParallel(nodes, leaves, sc.tree)
	}
	batch := func() {
		h := sc.batchH
		h.Reset()
		for len(records) > 0 {
			if s.abandonMerge.Load() {
				return
			}
			n := min(len(records), 64<<10)
			h.Write(records[:n])
			records = records[n:]
		}
		s.batch = h.Sum()
		s.ids = idsDigestOf(sc.idsH, known)
	}
	if len(leaves) < minChunk {
		s.root = merkle.Root(sc.hashers[0].node, leaves, sc.tree)
		batch()
		return
	}
	s.wg.Go(root)
	s.wg.Go(batch)
}

// abandon stops what only a Merge needs and waits for the rest.
func (s *sideDigests) abandon() {
	s.abandonMerge.Store(true)
	s.wg.Wait()
}

// hashAll validates every input event and computes its digest, payload
// check and sort key, spread over the checker's workers. Each worker hashes
// eight events at a time (digest.Hasher.SumMany and digest.PlainMany): the
// event digests and payload hashes of one-chunk events take one 8-lane
// compression per block. It returns the first event, by index, that does
// not validate and its error; the other outputs are then meaningless.
func (c *Checker) hashAll(sc *scratch, events []Event) (int, error) {
	failed := grow(sc.failed, len(sc.hashers)) // per worker, its first invalid event
	clear(failed)
	sc.failed = failed
	work := func(w int, wh *workerHashers, lo, hi int) {
		var touched byte
		defer func() { wh.touched = touched }() // once: workers' hashers may share a cache line
		for g := lo; g < hi; g += 8 {
			n := min(8, hi-g)
			// Payloads are separate allocations, far apart when events
			// arrive out of order: reading a byte of each of the next
			// group's lets their cache misses overlap, instead of each
			// stalling its own copy.
			touched ^= touchPayloads(events[min(g+8, hi):min(g+16, hi)])
			// Validated a group at a time, while the group is in cache.
			for i := g; i < g+n; i++ {
				if err := events[i].Validate(c.limits); err != nil {
					failed[w] = eventFailure{i, err}
					return
				}
			}
			var (
				encs, payloads [8][]byte
				lanes          [8]int // the group's events whose encoding is one chunk
				nl             int
				digests, phs   [8][digest.Size]byte
			)
			for j := range n {
				e := &events[g+j]
				payloads[j] = e.Payload
				if e.EncodedLen() > smallEvent {
					// Longer than a chunk: streamed, without building
					// the whole encoding (nor touching the lanes' buffers).
					var hdr [eventHeaderLen]byte
					digests[j] = eventDigest(wh.event, e, hdr[:0])
					continue
				}
				b := e.appendHeader(wh.enc[nl][:0])
				for _, d := range e.Deps {
					b = appendID(b, d)
				}
				encs[nl] = append(b, e.Payload...)
				lanes[nl] = j
				nl++
			}
			var laneOut [8][digest.Size]byte
			wh.event.SumMany(&encs, nl, &laneOut)
			for l := range nl {
				digests[lanes[l]] = laneOut[l]
			}
			digest.PlainMany(&payloads, n, &phs)
			for j := range n {
				i := g + j
				e := &events[i]
				sc.digests[i] = digests[j]
				rec := sc.records[batchRecordLen*i : batchRecordLen*(i+1)]
				copy(rec, e.PayloadHash[:])
				binary.LittleEndian.PutUint64(rec[32:], e.ID.Lo)
				binary.LittleEndian.PutUint64(rec[40:], e.ID.Hi)
				var flags uint8
				if phs[j] == e.PayloadHash {
					flags |= keyPayloadOK
				}
				if len(e.Deps) > 0 {
					flags |= keyHasDeps
				}
				sc.keys[i] = sortKey{
					flags:    flags,
					lamport:  e.Lamport,
					nodeStrm: uint64(e.NodeID)<<16 | uint64(e.StreamID),
					hi:       e.ID.Hi,
					lo:       e.ID.Lo,
					idx:      uint32(i),
				}
			}
		}
	}
	forChunks(len(sc.hashers), len(events), func(w, lo, hi int) { work(w, sc.hashers[w], lo, hi) })
	for _, f := range failed { // chunks in index order
		if f.err != nil {
			clear(failed) // the scratch keeps no error
			return f.i, f.err
		}
	}
	return 0, nil
}

// touchPayloads reads the first byte of each payload in events, so that
// their cache lines are on the way before they are needed, and returns
// the bytes xored, for the caller to keep.
func touchPayloads(events []Event) (x byte) {
	for i := range events {
		if p := events[i].Payload; len(p) > 0 {
			x ^= p[0]
		}
	}
	return x
}

// eventFailure is an input event that does not validate: its index and
// why.
type eventFailure struct {
	i   int
	err error
}

// forChunks runs f over [0, n) cut into up to workers chunks, chunk w on
// its own goroutine; small ranges stay on the caller's. Each f writes only
// its own part of any shared slice, so results never depend on workers.
func forChunks(workers, n int, f func(w, lo, hi int)) {
	workers = chunks(workers, n)
	if workers <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 1; w < workers; w++ {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		wg.Go(func() { f(w, lo, hi) })
	}
	f(0, 0, min(n, chunk))
	wg.Wait()
}

// minChunk is the least work, in events, worth a goroutine of its own.
const minChunk = 1024

// chunks returns how many chunks forChunks splits n items into: at least
// one, at most workers.
func chunks(workers, n int) int { return max(1, min(workers, n/minChunk)) }

// glueCopies glues identical copies in sorted keys: equal keys and equal
// digests are equal canonical encodings. It compacts the distinct
// contents' keys to the front of sc.keys and returns how many there are.
func glueCopies(sc *scratch) int {
	m := 0
	for i := range sc.keys {
		k := &sc.keys[i]
		if m > 0 {
			p := &sc.keys[m-1]
			if k.lamport == p.lamport && k.nodeStrm == p.nodeStrm && k.hi == p.hi && k.lo == p.lo &&
				sc.digests[k.idx] == sc.digests[p.idx] {
				continue
			}
		}
		sc.keys[m] = *k
		m++
	}
	sc.keys = sc.keys[:m]
	return m
}

// sortKeys puts sc.keys in canonical order: key, then event digest. It
// reports whether they were in order already and, if so, whether two
// neighbours are copies of one content; after sorting it always reports
// copies, for the caller to glue.
//
// Input that is already in order (a node's own log, a replayed batch) costs
// one pass, split over the workers. Otherwise large inputs are radix-sorted
// on lamport, the key's most significant field, and each run of equal
// lamports is then sorted by the full comparison, both on the workers;
// small inputs go straight to the comparison sort. The order never depends
// on the number of workers, not even among copies of one content.
func sortKeys(sc *scratch, workers int) (inOrder, copies bool) {
	keys := sc.keys
	var unsorted, glued atomic.Bool
	forChunks(workers, len(keys), func(_, lo, hi int) {
		sawCopy := false
		for i := max(lo, 1); i < hi && !unsorted.Load(); i++ {
			c := compareKeys(&keys[i-1], &keys[i], sc.digests)
			if c > 0 {
				unsorted.Store(true)
				return
			}
			sawCopy = sawCopy || c == 0
		}
		if sawCopy {
			glued.Store(true)
		}
	})
	if !unsorted.Load() {
		return true, glued.Load()
	}
	cmpf := compareSortKeys(sc.digests)
	if len(keys) < radixMin {
		slices.SortFunc(keys, cmpf)
		return false, true
	}
	sc.keys2 = grow(sc.keys2, len(keys))
	if radixByLamport(keys, sc.keys2, workers) {
		sc.keys, sc.keys2 = sc.keys2, sc.keys
		keys = sc.keys
	}
	// Each worker sorts the lamport runs that start in its chunk. The runs'
	// bounds are found first: a run can cross into the next chunk, which
	// another worker is sorting.
	starts := make([]int, chunks(workers, len(keys))+1)
	starts[len(starts)-1] = len(keys)
	forChunks(workers, len(keys), func(w, lo, _ int) {
		starts[w] = runStart(keys, lo)
	})
	forChunks(workers, len(keys), func(w, _, _ int) {
		sortRuns(keys, starts[w], starts[w+1], cmpf, sc.digests)
	})
	return false, true
}

// runStart returns the start of the first lamport run of keys that begins
// at or after i.
func runStart(keys []sortKey, i int) int {
	for i > 0 && i < len(keys) && keys[i].lamport == keys[i-1].lamport {
		i++
	}
	return i
}

// sortRuns sorts each run of equal lamports in keys[lo:hi], which begins
// and ends at run boundaries.
func sortRuns(keys []sortKey, lo, hi int, cmpf func(a, b sortKey) int, digests []Hash) {
	for lo < hi {
		end := lo + 1
		for end < hi && keys[end].lamport == keys[lo].lamport {
			end++
		}
		if end-lo > 12 {
			slices.SortFunc(keys[lo:end], cmpf)
		} else {
			insertionSortRun(keys[lo:end], digests)
		}
		lo = end
	}
}

// insertionSortRun sorts a short run of keys that share their lamport.
func insertionSortRun(run []sortKey, digests []Hash) {
	for i := 1; i < len(run); i++ {
		for j := i; j > 0 && compareKeys(&run[j], &run[j-1], digests) < 0; j-- {
			run[j], run[j-1] = run[j-1], run[j]
		}
	}
}

// radixMin is the input size from which sortKeys radix-sorts.
const radixMin = 1 << 12

// radixByLamport stably sorts keys by lamport, least significant byte first,
// skipping the bytes every key shares. It uses tmp (len(tmp) == len(keys))
// and reports whether the result ended up in tmp rather than keys.
//
// Each pass counts and scatters on the workers, one chunk each: a worker's
// keys with byte value v go after those of the workers before it, so the
// passes are stable and the result is the same on any number of workers.
func radixByLamport(keys, tmp []sortKey, workers int) (inTmp bool) {
	workers = chunks(workers, len(keys))
	first := keys[0].lamport
	differ := make([]uint64, workers) // lamport bits that differ from first's
	forChunks(workers, len(keys), func(w, lo, hi int) {
		var d uint64
		for i := lo; i < hi; i++ {
			d |= keys[i].lamport ^ first
		}
		differ[w] = d
	})
	var d uint64
	for _, x := range differ {
		d |= x
	}

	counts := make([][256]int, workers)
	src, dst := keys, tmp
	for shift := 0; shift < 64; shift += 8 {
		if byte(d>>shift) == 0 {
			continue // every key has first's byte here
		}
		forChunks(workers, len(src), func(w, lo, hi int) {
			c := &counts[w]
			*c = [256]int{}
			for i := lo; i < hi; i++ {
				c[byte(src[i].lamport>>shift)]++
			}
		})
		sum := 0
		for v := range 256 {
			for w := range counts {
				n := counts[w][v]
				counts[w][v] = sum
				sum += n
			}
		}
		forChunks(workers, len(src), func(w, lo, hi int) {
			offs := &counts[w]
			for i := lo; i < hi; i++ {
				v := byte(src[i].lamport >> shift)
				dst[offs[v]] = src[i]
				offs[v]++
			}
		})
		src, dst = dst, src
		inTmp = !inTmp
	}
	return inTmp
}

func compareSortKeys(digests []Hash) func(a, b sortKey) int {
	return func(a, b sortKey) int { return compareKeys(&a, &b, digests) }
}

// compareKeys compares two input events in canonical order: by key, then
// by event digest.
func compareKeys(a, b *sortKey, digests []Hash) int {
	switch {
	case a.lamport != b.lamport:
		return cmp.Compare(a.lamport, b.lamport)
	case a.nodeStrm != b.nodeStrm:
		return cmp.Compare(a.nodeStrm, b.nodeStrm)
	case a.hi != b.hi:
		return cmp.Compare(a.hi, b.hi)
	case a.lo != b.lo:
		return cmp.Compare(a.lo, b.lo)
	}
	return digests[a.idx].Compare(digests[b.idx])
}

// walker evaluates the predicates over the distinct contents of a batch in
// canonical order (SPEC 4). The prior State's store is read-locked while
// it runs.
type walker struct {
	c      *Checker
	prior  *State
	events []Event
	known  []KnownID // ids and lamports of the distinct contents, canonical order
	sc     *scratch
}

// violation is the first failure, in positions and ids.
type violation struct {
	pred     predicates.ID
	pos      int     // position of e among the distinct contents
	other    EventID // the second id of a 1001, 1003 or 2002 conflict
	has      bool    // other is set (not for a self-dependency)
	otherPos int     // position of the other event when it is in the batch, else -1
}

func (w *walker) ev(p int) *Event { return &w.events[w.sc.keys[p].idx] }

// index builds the batch's id table (first content of each id in canonical
// order) and marks ids held by more than one distinct content (3001).
func (w *walker) index() {
	sc := w.sc
	m := len(sc.keys)
	sc.ids.reset(m)
	sc.multi = grow(sc.multi, m)
	clear(sc.multi)
	insert := func(p uint32, h uint64) {
		if first, dup := sc.ids.insertHashed(w.known, p, h); dup {
			sc.multi[first] = true
			sc.multi[p] = true
		}
	}
	sc.streams.reset()
	if m >= indexBucketsMin && w.c.workers >= 2 {
		w.fillIndexParallel()
		return
	}
	w.fillIndex(insert, m >= indexBucketsMin)
}

// fillIndex inserts every distinct content's id, in canonical order, or
// with bucketed, in an order that keeps a large table's writes local.
func (w *walker) fillIndex(insert func(p uint32, h uint64), bucketed bool) {
	sc := w.sc
	if !bucketed {
		for p := range w.known {
			insert(uint32(p), sc.ids.hash(w.known[p].ID))
		}
		return
	}
	w.bucketIDs(1)
	for _, hp := range sc.fill {
		insert(hp.p, hp.h)
	}
}

// hashedPos is a distinct content's position and the hash of its id.
type hashedPos struct {
	h uint64
	p uint32
}

// bucketIDs sets sc.fill to the hash and position of every distinct
// content, bucketed by the top indexBucketBits bits of the id's home slot,
// so that each bucket's inserts stay within a cache-sized stretch of a
// large table. It is a stable counting sort: copies of one id keep their
// canonical order, and the first stays first. It runs on up to workers
// goroutines, each counting and then placing its own share of the
// positions, and returns where the buckets of the table's second half
// start in sc.fill.
//
// Placing carries each id's hash along, so the fill reads sc.fill in
// order and touches w.known only when a fingerprint matches.
func (w *walker) bucketIDs(workers int) (half int) {
	const buckets = 1 << indexBucketBits
	sc := w.sc
	t := &sc.ids
	shift := uint(bits.Len64(t.mask)) - indexBucketBits
	sc.fill = grow(sc.fill, len(w.known))
	sc.counts = grow(sc.counts, workers)
	clear(sc.counts)
	forChunks(workers, len(w.known), func(c, lo, hi int) {
		counts := &sc.counts[c]
		for _, k := range w.known[lo:hi] {
			counts[(t.hash(k.ID)&t.mask)>>shift]++
		}
	})
	// Bucket by bucket, the shares in position order.
	sum := 0
	for b := range buckets {
		if b == buckets/2 {
			half = sum
		}
		for c := range sc.counts {
			n := sc.counts[c][b]
			sc.counts[c][b] = sum
			sum += n
		}
	}
	forChunks(workers, len(w.known), func(c, lo, hi int) {
		next := &sc.counts[c]
		for p := lo; p < hi; p++ {
			h := t.hash(w.known[p].ID)
			b := (h & t.mask) >> shift
			sc.fill[next[b]] = hashedPos{h: h, p: uint32(p)}
			next[b]++
		}
	})
	return half
}

// fillIndexParallel fills the id table bucket by bucket as fillIndex does,
// on two goroutines: the buckets of the table's first half on one, of its
// second half on the other, each inserting only within its half
// (idTable.insertInRegion). The few ids whose probe would leave their half
// are inserted afterwards, in canonical order among copies of one id, so
// the table and the 3001 marks are those of the sequential fill.
func (w *walker) fillIndexParallel() {
	sc := w.sc
	t := &sc.ids
	half := w.bucketIDs(2)
	size := t.mask + 1
	sc.halves[0] = fillHalf{fill: sc.fill[:half], end: size / 2, deferred: sc.halves[0].deferred[:0]}
	sc.halves[1] = fillHalf{fill: sc.fill[half:], end: size, deferred: sc.halves[1].deferred[:0]}
	var wg sync.WaitGroup
	wg.Go(func() { w.fillHalf(&sc.halves[1]) })
	w.fillHalf(&sc.halves[0])
	wg.Wait()
	t.n += sc.halves[0].inserted + sc.halves[1].inserted
	for i := range sc.halves {
		for _, hp := range sc.halves[i].deferred {
			if first, dup := t.insertHashed(w.known, hp.p, hp.h); dup {
				sc.multi[first], sc.multi[hp.p] = true, true
			}
		}
	}
}

// fillHalf is one goroutine's share of fillIndexParallel: the ids of fill,
// whose home slots are in the half of the table that ends at end.
type fillHalf struct {
	fill     []hashedPos
	end      uint64
	inserted int
	deferred []hashedPos // ids whose probe would leave the half
}

func (w *walker) fillHalf(h *fillHalf) {
	sc := w.sc
	for _, hp := range h.fill {
		first, dup, deferred := sc.ids.insertInRegion(w.known, hp.p, hp.h, h.end)
		switch {
		case deferred:
			h.deferred = append(h.deferred, hp)
		case dup:
			sc.multi[first], sc.multi[hp.p] = true, true
		default:
			h.inserted++
		}
	}
}

// index fills batches of at least indexBucketsMin contents bucket by bucket,
// in 2^indexBucketBits buckets.
const (
	indexBucketsMin = 1 << 15
	indexBucketBits = 10
)

// walk evaluates the built-in predicates over every distinct content. It
// returns the first violation or, when all is not nil, appends every one to
// it and returns none.
func (w *walker) walk(all *[]violation) (violation, bool) {
	sc := w.sc
	for p := range sc.keys {
		sk := &sc.keys[p]
		lamport := sk.lamport
		k := streamKey(sk.nodeStrm)
		fail := func(v violation) bool {
			if all == nil {
				return true
			}
			*all = append(*all, v)
			return false
		}
		// 2001, 3001, 1002.
		if sk.flags&keyPayloadOK == 0 && fail(violation{pred: predicates.PayloadHashMatch, pos: p, otherPos: -1}) {
			return violation{pred: predicates.PayloadHashMatch, pos: p, otherPos: -1}, true
		}
		if sc.multi[p] && fail(violation{pred: predicates.OverlapAgreement, pos: p, otherPos: -1}) {
			return violation{pred: predicates.OverlapAgreement, pos: p, otherPos: -1}, true
		}
		if _, known := w.prior.Lamport(w.known[p].ID); known && fail(violation{pred: predicates.EventUnique, pos: p, otherPos: -1}) {
			return violation{pred: predicates.EventUnique, pos: p, otherPos: -1}, true
		}
		// 1001: the previous distinct content of the stream in the batch,
		// else the prior head.
		stream, seen := sc.streams.slot(k)
		if seen {
			if q := stream.pos; w.known[q].Lamport == lamport {
				v := violation{pred: predicates.LamportMonotonic, pos: p, other: w.known[q].ID, has: true, otherPos: int(q)}
				if fail(v) {
					return v, true
				}
			}
		} else if h, ok := w.prior.head(k); ok && lamport <= h.Lamport {
			v := violation{pred: predicates.LamportMonotonic, pos: p, other: h.ID, has: true, otherPos: -1}
			if fail(v) {
				return v, true
			}
		}
		stream.pos = int32(p)
		if sk.flags&keyHasDeps == 0 {
			continue
		}
		e := w.ev(p)
		// 1003 over every dependency, then 2002 over every dependency.
		for _, d := range e.Deps {
			var dl uint64
			q, inBatch := sc.ids.get(w.known, d)
			if inBatch {
				dl = w.known[q].Lamport
			} else if l, ok := w.prior.Lamport(d); ok {
				dl = l
			} else {
				continue
			}
			if dl >= e.Lamport {
				v := violation{pred: predicates.CausalOrder, pos: p, other: d, has: d != e.ID, otherPos: -1}
				if inBatch && d != e.ID {
					v.otherPos = int(q)
				}
				if fail(v) {
					return v, true
				}
			}
		}
		for _, d := range e.Deps {
			if _, inBatch := sc.ids.get(w.known, d); inBatch {
				continue
			}
			if _, ok := w.prior.Lamport(d); ok {
				continue
			}
			v := violation{pred: predicates.DependencyKnown, pos: p, other: d, has: true, otherPos: -1}
			if fail(v) {
				return v, true
			}
		}
	}
	return violation{}, false
}

// walkDomain evaluates the domain predicates, in ascending id, over the
// distinct contents before position end. It returns the first violation or,
// when all is not nil, appends every one to it.
func (w *walker) walkDomain(end int, all *[]violation) (violation, bool) {
	if len(w.c.domain) == 0 {
		return violation{}, false
	}
	for p := range end {
		e := w.ev(p)
		for _, dp := range w.c.domain {
			if !dp.p.Violated(e, w.prior) {
				continue
			}
			v := violation{pred: dp.id, pos: p, otherPos: -1}
			if all == nil {
				return v, true
			}
			*all = append(*all, v)
		}
	}
	return violation{}, false
}

func (w *walker) conflictSet(v violation) []EventID {
	e := w.ev(v.pos).ID
	if !v.has || v.other == e {
		return []EventID{e}
	}
	if v.other.Compare(e) < 0 {
		return []EventID{v.other, e}
	}
	return []EventID{e, v.other}
}

func (w *walker) toViolation(v violation) Violation {
	return Violation{Predicate: v.pred, Event: w.ev(v.pos).ID, ConflictSet: w.conflictSet(v)}
}

// movedHeads returns, ascending by stream, the new head of every stream the
// batch touched: its last distinct content in canonical order. It sorts
// the bare keys, cheaper than sorting the pairs, and looks the positions up
// again.
func (w *walker) movedHeads() []movedHead {
	keys := make([]streamKey, 0, w.sc.streams.n)
	w.sc.streams.all(func(k streamKey, _ int32) { keys = append(keys, k) })
	slices.Sort(keys)
	out := make([]movedHead, len(keys))
	for i, k := range keys {
		s, _ := w.sc.streams.slot(k)
		out[i] = movedHead{key: k, pos: s.pos}
	}
	return out
}

func (c *Checker) merge(r *Result, w *walker, prior *State, accepted []KnownID, moved []movedHead, side *sideDigests) {
	sc := w.sc
	batchDigest, idsDigest := side.batch, side.ids
	headsD := movedHeadsDigest(sc.headsH, moved, accepted)

	merged := digest.Of(digest.State, prior.MergedStateHash().slice(), batchDigest[:])
	frontier := digest.Of(digest.Frontier, prior.FrontierDigest().slice(), idsDigest[:])
	r.Kind = KindMerge
	r.WitnessHash = digest.Of(digest.MergeWitness, merged[:], idsDigest[:], r.TraceRoot[:])
	r.Merge = &Merge{
		BatchDigest:       batchDigest,
		MergedStateHash:   merged,
		AcceptedIDsDigest: idsDigest,
		FrontierDigest:    frontier,
		HeadsDigest:       headsD,
		Next:              prior.successor(accepted, c.handOver(sc), moved, merged, frontier),
	}
}

func (h Hash) slice() []byte { return h[:] }

// handOver gives a merge's successor State the batch's id table, which
// already maps each accepted id to its canonical position. The scratch
// starts a new table next time.
func (c *Checker) handOver(sc *scratch) *idTable {
	t := sc.ids
	sc.ids = idTable{}
	return &t
}

// idsDigestOf returns D("ids", the ids of known) with h, a D("ids") hasher.
func idsDigestOf(h *digest.Hasher, known []KnownID) Hash {
	h.Reset()
	var buf [8192]byte
	b := buf[:0]
	for _, k := range known {
		if len(b)+16 > len(buf) {
			h.Write(b)
			b = buf[:0]
		}
		b = appendID(b, k.ID)
	}
	h.Write(b)
	return h.Sum()
}

func idsBytes(ids []EventID) []byte {
	b := make([]byte, 0, 16*len(ids))
	for _, id := range ids {
		b = appendID(b, id)
	}
	return b
}

func (c *Checker) obstruct(r *Result, w *walker, v violation, leaves []Hash) {
	sc := w.sc
	conflict := w.conflictSet(v)
	// Evidence, in canonical order: e, the other event of a 1001 or 1003
	// conflict when it is in the batch, and for 3001 every distinct content
	// with e's id.
	var pos []int
	switch {
	case v.pred == predicates.OverlapAgreement:
		id := w.ev(v.pos).ID
		for p := v.pos; p < len(sc.keys) && len(pos) < maxEvidence; p++ {
			if w.ev(p).ID == id {
				pos = append(pos, p)
			}
		}
	case v.otherPos >= 0 && v.otherPos != v.pos:
		pos = []int{min(v.pos, v.otherPos), max(v.pos, v.otherPos)}
	default:
		pos = []int{v.pos}
	}
	o := &Obstruction{
		Predicate:            v.pred,
		Event:                w.ev(v.pos).ID,
		ConflictSet:          conflict,
		OverlapContextDigest: digest.Of(digest.IDs, idsBytes(conflict)),
		Evidence:             make([]Event, len(pos)),
		EvidenceDigests:      make([]Hash, len(pos)),
	}
	for i, p := range pos {
		o.Evidence[i] = cloneEvent(w.ev(p))
		o.EvidenceDigests[i] = leaves[p]
	}
	r.Kind = KindObstruction
	r.Obstruction = o
	r.WitnessHash = obstructionWitness(o.Predicate, conflict, o.EvidenceDigests)
}

func obstructionWitness(pred predicates.ID, conflict []EventID, evidence []Hash) Hash {
	h := digest.New(digest.ObstructionWitness)
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(pred))
	h.Write(b[:])
	h.Write(idsBytes(conflict))
	for _, d := range evidence {
		h.Write(d[:])
	}
	return h.Sum()
}

func cloneEvent(e *Event) Event {
	c := *e
	c.Deps = slices.Clone(e.Deps)
	if c.Deps == nil {
		c.Deps = []EventID{}
	}
	c.Payload = slices.Clone(e.Payload)
	if c.Payload == nil {
		c.Payload = []byte{}
	}
	return c
}
