package omega

import "math/rand/v2"

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
