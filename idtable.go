package omega

// idTable is an open-addressing hash table from EventID to a uint32 value,
// with linear probing. It only grows: omega never deletes an id from a
// State, and a batch's table lives for one call.
type idTable struct {
	slots []idSlot
	mask  uint64
	n     int
}

type idSlot struct {
	id  EventID
	val uint32 // the value + 1; 0 marks an empty slot
}

// hashID mixes both halves of id so that sequential ids spread evenly.
func hashID(id EventID) uint64 {
	h := id.Lo*0x9e3779b97f4a7c15 ^ (id.Hi+0x632be59bd9b4e019)*0xc2b2ae3d27d4eb4f
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
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
		t.slots = make([]idSlot, size)
	}
	t.mask = uint64(size - 1)
	t.n = 0
}

// get returns the value of id.
func (t *idTable) get(id EventID) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	for i := hashID(id) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.val == 0 {
			return 0, false
		}
		if s.id == id {
			return s.val - 1, true
		}
	}
}

// insert stores v for id unless id is present; it returns the value id ends
// up with and whether it was already present.
func (t *idTable) insert(id EventID, v uint32) (uint32, bool) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	for i := hashID(id) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.val == 0 {
			s.id, s.val = id, v+1
			t.n++
			return v, false
		}
		if s.id == id {
			return s.val - 1, true
		}
	}
}

func (t *idTable) grow() {
	old := t.slots
	size := 2 * len(old)
	if size < 16 {
		size = 16
	}
	t.slots = make([]idSlot, size)
	t.mask = uint64(size - 1)
	for _, s := range old {
		if s.val == 0 {
			continue
		}
		i := hashID(s.id) & t.mask
		for t.slots[i].val != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = s
	}
}

// clone returns a copy of t that shares no memory with it.
func (t *idTable) clone() idTable {
	return idTable{slots: append([]idSlot(nil), t.slots...), mask: t.mask, n: t.n}
}
