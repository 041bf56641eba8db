package omega

import "math/rand/v2"

// streamTable maps each stream a batch touches to the position of its
// latest distinct content so far, for the walk's 1001 check. The walk
// looks up and then moves one stream per content, so the table does both
// with one probe: [streamTable.slot] returns the stream's slot, found or
// claimed.
//
// It is an open-addressing table with linear probing, at most half full,
// hashed with a key drawn at reset as idTable is: stream keys come from
// untrusted input. No result depends on where a stream lands.
type streamTable struct {
	slots []streamSlot
	mask  uint64
	n     int
	k     uint64 // hash key
}

// streamSlot is one stream's entry: key+1 (0 marks an empty slot) and the
// position of its latest content.
type streamSlot struct {
	key uint64
	pos int32
}

// reset empties t, keeping its memory.
func (t *streamTable) reset() {
	if t.slots == nil {
		t.slots = make([]streamSlot, 64)
	}
	clear(t.slots)
	t.mask = uint64(len(t.slots) - 1)
	t.n = 0
	t.k = rand.Uint64()
}

func (t *streamTable) hash(k streamKey) uint64 {
	h := (uint64(k) ^ t.k) * 0x9e3779b97f4a7c15
	h ^= h >> 32
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// slot returns k's slot, and whether k was in the table. A new slot holds
// k and position 0 until the caller sets it.
func (t *streamTable) slot(k streamKey) (s *streamSlot, found bool) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	for i := t.hash(k) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch s.key {
		case uint64(k) + 1:
			return s, true
		case 0:
			s.key = uint64(k) + 1
			t.n++
			return s, false
		}
	}
}

func (t *streamTable) grow() {
	old := t.slots
	t.slots = make([]streamSlot, 2*len(old))
	t.mask = uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.key == 0 {
			continue
		}
		i := t.hash(streamKey(s.key-1)) & t.mask
		for t.slots[i].key != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = s
	}
}

// all calls f with every stream in the table and its position, in no
// particular order.
func (t *streamTable) all(f func(k streamKey, pos int32)) {
	for _, s := range t.slots {
		if s.key != 0 {
			f(streamKey(s.key-1), s.pos)
		}
	}
}
