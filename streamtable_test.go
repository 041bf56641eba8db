package omega

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// The stream table agrees with a map through growth, resets and repeated
// updates.
func TestStreamTableMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var tab streamTable
	for round, streams := range []int{1, 31, 32, 33, 500, 5000} {
		tab.reset()
		want := map[streamKey]int32{}
		for p := range 20 * streams {
			k := makeStreamKey(r.Uint32N(uint32(streams)), uint16(r.IntN(2)))
			s, found := tab.slot(k)
			prev, ok := want[k]
			if found != ok || (ok && s.pos != prev) {
				t.Fatalf("round %d: slot(%v) = %d, %v; want %d, %v", round, k, s.pos, found, prev, ok)
			}
			s.pos = int32(p)
			want[k] = int32(p)
		}
		got := map[streamKey]int32{}
		tab.all(func(k streamKey, pos int32) { got[k] = pos })
		if !maps.Equal(got, want) || tab.n != len(want) {
			t.Fatalf("round %d: table holds %d streams (n = %d), want %d", round, len(got), tab.n, len(want))
		}
	}
}

// Stream keys that all share one home slot without the table's key still
// spread with it.
func TestStreamTableResistsChosenCollisions(t *testing.T) {
	const n, size = 200, 512 // the table holds n keys in size slots
	longest := func(k uint64, keys []streamKey) int {
		var tab streamTable
		tab.reset()
		tab.k = k
		for p, key := range keys {
			s, _ := tab.slot(key)
			s.pos = int32(p)
		}
		if len(tab.slots) != size {
			t.Fatalf("table of %d keys has %d slots, want %d", len(keys), len(tab.slots), size)
		}
		most, run := 0, 0
		for _, s := range slices.Concat(tab.slots, tab.slots) { // runs wrap around
			if s.key == 0 {
				run = 0
				continue
			}
			run++
			most = max(most, run)
		}
		return most
	}
	unkeyed := streamTable{k: 0}
	var keys []streamKey
	for k := streamKey(0); len(keys) < n; k++ {
		if unkeyed.hash(k)&(size-1) == 0 {
			keys = append(keys, k)
		}
	}
	if got := longest(0, keys); got != n {
		t.Fatalf("chosen keys without a table key make a cluster of %d, want %d: the test no longer probes anything", got, n)
	}
	if got := longest(rand.Uint64(), keys); got > 40 {
		t.Errorf("longest probe cluster = %d slots for %d chosen keys in %d slots", got, n, size)
	}
}
