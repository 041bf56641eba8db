package omega

import (
	"encoding/binary"
	"iter"
	"math/rand/v2"
)

// flightTable is a hash table for the kernel's events in flight: the
// journal's pending events by digest, and the sequencer's released ids.
// These sets stay small (what is between Submit and its batch's decision)
// while every event passes through them, so they are used at the rate of
// events: open addressing with linear probing, each slot holding the
// key's hash beside the key and the value, takes about half the time of a
// Go map here, and its deletions (backward shift) leave no tombstones to
// sweep.
//
// Keys come from untrusted input, so the hash is keyed with a random key
// drawn when the table is made: nobody can choose keys that all collide.
// No result depends on where a key lands: all yields in slot order, which
// callers that need an order sort.
type flightTable[K comparable, V any] struct {
	slots  []flightSlot[K, V]
	mask   uint64
	n      int
	k0, k1 uint64
	hash   func(k K, k0, k1 uint64) uint64
}

type flightSlot[K comparable, V any] struct {
	h uint64 // the key's hash with its low bit set; 0 marks an empty slot
	k K
	v V
}

// A table starts with flightMinSlots slots and grows to keep at least
// half of them empty. It shrinks back only when it has more than
// flightKeepSlots and most are empty: the sets fill and drain with every
// group commit, and a table that followed them down would be rebuilt as
// often.
const (
	flightMinSlots  = 64
	flightKeepSlots = 1 << 16
)

func newFlightTable[K comparable, V any](hash func(k K, k0, k1 uint64) uint64) *flightTable[K, V] {
	t := &flightTable[K, V]{hash: hash, k0: rand.Uint64(), k1: rand.Uint64()}
	t.resize(flightMinSlots)
	return t
}

// idHash and digestHash are the hashes of the two kinds of key.
func idHash(id EventID, k0, k1 uint64) uint64 { return mixID(id, k0, k1) }

func digestHash(d Hash, k0, k1 uint64) uint64 {
	return mixID(EventID{Hi: binary.LittleEndian.Uint64(d[8:]), Lo: binary.LittleEndian.Uint64(d[:])}, k0, k1)
}

// Len returns how many keys t holds.
func (t *flightTable[K, V]) Len() int { return t.n }

// find returns the slot of k, or the empty slot where it would go.
func (t *flightTable[K, V]) find(k K) (uint64, bool) {
	h := t.hash(k, t.k0, t.k1) | 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.h == 0 {
			return i, false
		}
		if s.h == h && s.k == k {
			return i, true
		}
	}
}

// Get returns the value of k.
func (t *flightTable[K, V]) Get(k K) (V, bool) {
	i, ok := t.find(k)
	return t.slots[i].v, ok
}

// Has reports whether t holds k.
func (t *flightTable[K, V]) Has(k K) bool {
	_, ok := t.find(k)
	return ok
}

// Put sets the value of k.
func (t *flightTable[K, V]) Put(k K, v V) { *t.Ref(k) = v }

// Ref returns the value of k, which it adds with the zero value when t
// does not hold it. The pointer is valid until the next Ref, Put or
// Delete.
func (t *flightTable[K, V]) Ref(k K) *V {
	i, ok := t.find(k)
	if !ok {
		if 2*(t.n+1) > len(t.slots) {
			t.resize(2 * len(t.slots))
			i, _ = t.find(k)
		}
		t.slots[i] = flightSlot[K, V]{h: t.hash(k, t.k0, t.k1) | 1, k: k}
		t.n++
	}
	return &t.slots[i].v
}

// Delete removes k, and reports whether t held it.
func (t *flightTable[K, V]) Delete(k K) bool {
	i, ok := t.find(k)
	if ok {
		t.deleteSlot(i)
	}
	return ok
}

// deleteSlot removes the key in slot i, which holds one.
func (t *flightTable[K, V]) deleteSlot(i uint64) {
	// Backward shift: each key of the run after the hole that may sit at
	// the hole (its home is not between the hole and itself) moves there,
	// leaving the hole behind it, until the run ends.
	for j := (i + 1) & t.mask; t.slots[j].h != 0; j = (j + 1) & t.mask {
		home := t.slots[j].h & t.mask
		if (j-home)&t.mask >= (j-i)&t.mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = flightSlot[K, V]{}
	t.n--
	if len(t.slots) > flightKeepSlots && 8*t.n < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
}

// All yields every key and value of t, in no particular order; t must
// not change meanwhile.
func (t *flightTable[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for i := range t.slots {
			if s := &t.slots[i]; s.h != 0 && !yield(s.k, s.v) {
				return
			}
		}
	}
}

// resize moves every key of t to a table of n slots, a power of two.
func (t *flightTable[K, V]) resize(n int) {
	old := t.slots
	t.slots, t.mask = make([]flightSlot[K, V], n), uint64(n-1)
	for i := range old {
		if s := &old[i]; s.h != 0 {
			j := s.h & t.mask
			for t.slots[j].h != 0 {
				j = (j + 1) & t.mask
			}
			t.slots[j] = *s
		}
	}
}
