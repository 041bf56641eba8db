package omega

import (
	"math/bits"
	"math/rand/v2"
	"sync"
)

// idTable is an open-addressing hash table, with linear probing, from the
// ids of a []KnownID to their positions in it. Slots hold a position and a
// 32-bit fingerprint of the id's hash, 8 bytes each, so a probe touches
// little memory; the id itself is read from the slice only when the
// fingerprint matches. It only grows: omega never forgets a known id, and a
// batch's table lives for one call.
//
// Ids come from untrusted input, so the hash is keyed with a random key
// drawn when the table is reset: nobody can choose ids that all collide and
// make inserts quadratic. No result depends on where an id lands.
type idTable struct {
	slots  []uint64 // (position+1) << 32 | fingerprint; 0 marks an empty slot
	mask   uint64
	n      int
	k0, k1 uint64 // hash key
}

func (t *idTable) hash(id EventID) uint64 { return mixID(id, t.k0, t.k1) }

// mixID mixes both halves of id with the key (k0, k1), so that sequential
// ids spread evenly and colliding ids cannot be computed without the key.
func mixID(id EventID, k0, k1 uint64) uint64 {
	h := (id.Lo^k0)*0x9e3779b97f4a7c15 ^ (id.Hi^k1)*0xc2b2ae3d27d4eb4f
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	h = (h ^ k1) * 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// reset empties t and sizes it for n ids at a load factor of at most 1/2,
// reusing its memory when it is large enough.
func (t *idTable) reset(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	if cap(t.slots) >= size {
		t.slots = t.slots[:size]
		clear(t.slots)
	} else {
		t.slots = make([]uint64, size)
	}
	t.mask = uint64(size - 1)
	t.n = 0
	t.k0, t.k1 = rand.Uint64(), rand.Uint64()
}

// get returns the position of id in keys, the slice t indexes.
func (t *idTable) get(keys []KnownID, id EventID) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	h := t.hash(id)
	fp := h >> 32
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&0xffffffff == fp {
			if p := uint32(s>>32) - 1; keys[p].ID == id {
				return p, true
			}
		}
	}
}

// insert indexes keys[p].ID at position p unless the id is indexed
// already; it returns the position the id ends up with and whether it was
// there before.
func (t *idTable) insert(keys []KnownID, p uint32) (uint32, bool) {
	return t.insertHashed(keys, p, t.hash(keys[p].ID))
}

// insertHashed is insert with h = t.hash(keys[p].ID) computed by the caller.
func (t *idTable) insertHashed(keys []KnownID, p uint32, h uint64) (uint32, bool) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow(keys)
	}
	fp := h >> 32
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			t.slots[i] = uint64(p+1)<<32 | fp
			t.n++
			return p, false
		}
		if s&0xffffffff == fp {
			if q := uint32(s>>32) - 1; keys[q].ID == keys[p].ID {
				return q, true
			}
		}
	}
}

func (t *idTable) grow(keys []KnownID) {
	old := t.slots
	size := max(2*len(old), 16)
	t.slots = make([]uint64, size)
	t.mask = uint64(size - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := t.hash(keys[uint32(s>>32)-1].ID) & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = s
	}
}

// insertInRegion is insertHashed for a table that several goroutines fill
// at once, each owning the slots [h's home slot's region, end): it inserts
// only when the probe from h's home slot reaches the id or an empty slot
// before end, and otherwise changes nothing and reports deferred, for a
// later insertHashed. It does not count the insert in t.n: the caller adds
// its count when the goroutines are done. The table must have room (it
// never grows here).
//
// Every copy of an id has the same home slot, so either the first copy is
// inserted in the region and the later ones find it there, or the first is
// deferred and so are the later ones (the region only fills up): deferred
// copies inserted afterwards in canonical order keep the first one first.
func (t *idTable) insertInRegion(keys []KnownID, p uint32, h, end uint64) (first uint32, dup, deferred bool) {
	fp := h >> 32
	for i := h & t.mask; i < end; i++ {
		s := t.slots[i]
		if s == 0 {
			t.slots[i] = uint64(p+1)<<32 | fp
			return p, false, false
		}
		if s&0xffffffff == fp {
			if q := uint32(s>>32) - 1; keys[q].ID == keys[p].ID {
				return q, true, false
			}
		}
	}
	return 0, false, true
}

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
