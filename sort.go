package omega

import (
	"cmp"
	"slices"
	"sync/atomic"
)

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

// newSortKey returns the key of e, input event i, whose payload_hash is
// BLAKE3-256 of its payload when payloadOK.
func newSortKey(e *Event, i int, payloadOK bool) sortKey {
	var flags uint8
	if payloadOK {
		flags |= keyPayloadOK
	}
	if len(e.Deps) > 0 {
		flags |= keyHasDeps
	}
	return sortKey{
		flags:    flags,
		lamport:  e.Lamport,
		nodeStrm: uint64(e.NodeID)<<16 | uint64(e.StreamID),
		hi:       e.ID.Hi,
		lo:       e.ID.Lo,
		idx:      uint32(i),
	}
}

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
