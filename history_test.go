package omega

import (
	"testing"

	"pgregory.net/rapid"
)

// TestIDIndexGrowsInSteps appends ids one at a time and checks after every
// insert that the index finds each id at its position, for the newest
// State and for an older one, and misses ids never appended; and that no
// insert does more than moveStep moves and its own place: a growing index
// is replaced by an empty one only once the one before has moved over.
func TestIDIndexGrowsInSteps(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 3000).Draw(t, "n")
		st := newStore(rapid.IntRange(0, 100).Draw(t, "hint"))
		ids := make([]EventID, n)
		grows := 0
		for i := range ids {
			// Spread over the whole id space, keyed hashes or not.
			ids[i] = EventID{Hi: uint64(i) * 0x9e3779b97f4a7c15, Lo: uint64(i) + 1}
			idx := st.index.Load()
			before := idx.count
			next := idx.insertNew(st, st.known.append(KnownID{ID: ids[i]}), st.hash(ids[i]))
			st.index.Store(next)
			st.n++
			if next != idx {
				grows++
				if old := next.old.Load(); old != idx || idx.old.Load() != nil || next.from != uint32(i) {
					t.Fatalf("insert %d grew the index without the full one as its old index", i)
				}
				if next.count != 1 {
					t.Fatalf("insert %d: a new index holds %d positions, want 1", i, next.count)
				}
			} else if d := next.count - before; d < 1 || d > moveStep+1 {
				t.Fatalf("insert %d placed %d positions, want 1 to %d", i, d, moveStep+1)
			}
			for _, j := range []int{0, i / 2, i, rapid.IntRange(0, i).Draw(t, "j")} {
				if p, ok := next.find(st, ids[j], st.n); !ok || p != uint32(j) {
					t.Fatalf("after insert %d: find(id %d) = %d, %v", i, j, p, ok)
				}
				if _, ok := next.find(st, ids[j], uint32(j)); ok {
					t.Fatalf("after insert %d: id %d found by a State from before it", i, j)
				}
			}
			if _, ok := next.find(st, EventID{Hi: 1, Lo: 0}, st.n); ok {
				t.Fatalf("after insert %d: an id never appended is found", i)
			}
		}
		if n > 1000 && grows == 0 {
			t.Fatalf("%d inserts never grew the index", n)
		}
		// Every position has moved over by the end of a growth.
		idx := st.index.Load()
		if idx.old.Load() == nil && idx.count != n {
			t.Fatalf("a grown index holds %d positions, want %d", idx.count, n)
		}
	})
}
