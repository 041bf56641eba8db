package omega

import "testing"

// inverse returns the multiplicative inverse of an odd a modulo 2^64.
func inverse(a uint64) uint64 {
	x := a
	for range 6 {
		x *= 2 - a*x
	}
	return x
}

// Ids chosen so that the first mixing step agrees for all of them collide
// completely in an unkeyed table; the keyed table must spread them.
func TestIDTableResistsChosenCollisions(t *testing.T) {
	const n = 20000
	keys := make([]KnownID, n)
	inv := inverse(0x9e3779b97f4a7c15)
	for i := range keys {
		hi := uint64(i)
		lo := (0x1234 ^ hi*0xc2b2ae3d27d4eb4f) * inv
		keys[i] = KnownID{ID: EventID{Hi: hi, Lo: lo}}
	}
	var unkeyed idTable
	unkeyed.reset(n)
	unkeyed.k0, unkeyed.k1 = 0, 0
	if a, b := unkeyed.hash(keys[1].ID), unkeyed.hash(keys[2].ID); a != b {
		t.Fatalf("the chosen ids do not collide without a key (%x, %x): the test no longer probes anything", a, b)
	}
	var tab idTable
	tab.reset(n)
	for p := range keys {
		if _, dup := tab.insert(keys, uint32(p)); dup {
			t.Fatalf("insert(%v) reports a duplicate", keys[p].ID)
		}
	}
	longest, run := 0, 0
	for _, s := range tab.slots {
		if s == 0 {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	if longest > 200 {
		t.Errorf("longest probe cluster = %d slots for %d chosen ids, want a spread table", longest, n)
	}
	for p := range keys {
		if q, ok := tab.get(keys, keys[p].ID); !ok || q != uint32(p) {
			t.Fatalf("get(%v) = %d, %v; want %d", keys[p].ID, q, ok, p)
		}
	}
}
