package omega

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/merkle"
)

// workerHashers is one hashAll worker's hashers and buffers.
type workerHashers struct {
	touched byte // touchPayloads' results, kept so that its reads are made
	event   *digest.Hasher
	node    *digest.Hasher
	enc     *[8][]byte // encodings of a group of one-chunk events, smallEvent bytes each
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
				sc.record(i, &events[i], digests[j], phs[j] == events[i].PayloadHash)
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

// fillHashed fills the scratch as hashAll does, from what the caller
// computed already.
func fillHashed(sc *scratch, events []Event, h *hashed) {
	for i := range events {
		sc.record(i, &events[i], h.digests[i], h.payloadOK[i])
	}
}

// record keeps input event i, e, with its event digest and whether its
// payload hashes to its payload_hash: its digest, batch-digest record and
// sort key.
func (sc *scratch) record(i int, e *Event, d Hash, payloadOK bool) {
	sc.digests[i] = d
	rec := sc.records[batchRecordLen*i : batchRecordLen*(i+1)]
	copy(rec, e.PayloadHash[:])
	binary.LittleEndian.PutUint64(rec[32:], e.ID.Lo)
	binary.LittleEndian.PutUint64(rec[40:], e.ID.Hi)
	sc.keys[i] = newSortKey(e, i, payloadOK)
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
