package omega

import (
	"cmp"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// store is the history a lineage of committed States shares: every id
// accepted, in acceptance order, an index from id to position, and each
// stream's current head. A committed State with n known ids sees the first
// n; only the newest (n == store.n) may append. One writer appends, under
// mu; readers take no lock: what they read is either written before the
// State they read was made, or published through an atomic pointer after
// everything it points to is written.
type store struct {
	mu      sync.Mutex // held by the writer
	n       uint32     // ids appended; written under mu
	known   knownLog
	index   atomic.Pointer[idIndex]
	streams atomic.Pointer[streamIndex]
	last    *epoch // the newest State's epoch; under mu
	k0, k1  uint64 // hash key of index
}

// maxStoreIDs bounds a lineage's known ids so that a position and the
// noHead marker fit a uint32.
const maxStoreIDs uint64 = 1<<32 - 2

func newStore(hint int) *store {
	st := &store{last: &epoch{}, k0: rand.Uint64(), k1: rand.Uint64()}
	if hint > 1<<knownChunkBits {
		st.known.reserve(hint)
	}
	st.index.Store(newIDIndex(hint))
	st.streams.Store(newStreamIndex(0))
	return st
}

// hash is keyed, as idTable's: ids come from untrusted input.
func (st *store) hash(id EventID) uint64 { return mixID(id, st.k0, st.k1) }

// knownLog is an append-only array of known ids in fixed-size chunks, so
// that appending never moves what readers read and wastes at most one
// partly filled chunk.
type knownLog struct {
	// dir's length is its capacity: chunks beyond the ones in use are nil
	// until the writer fills them, which readers never look at.
	dir    atomic.Pointer[[]*knownChunk]
	chunks int          // chunks in use; writer only
	n      uint32       // ids appended; writer only
	spare  []knownChunk // chunks reserved for the next appends; writer only
}

const knownChunkBits = 10

type knownChunk [1 << knownChunkBits]KnownID

// at returns the id at position p, which the caller's State sees.
func (l *knownLog) at(p uint32) *KnownID {
	return &(*l.dir.Load())[p>>knownChunkBits][p&(1<<knownChunkBits-1)]
}

// reserve makes room for n more ids in a few allocations, for a store
// built whole (a snapshot's State, a fork).
func (l *knownLog) reserve(n int) {
	c := (n + 1<<knownChunkBits - 1) >> knownChunkBits
	l.spare = make([]knownChunk, c)
	l.growDir(l.chunks + c)
}

// growDir makes dir hold at least c chunks.
func (l *knownLog) growDir(c int) {
	var old []*knownChunk
	if d := l.dir.Load(); d != nil {
		old = *d
	}
	if c <= len(old) {
		return
	}
	// Readers hold the old slice and read no chunk it lacks.
	dir := make([]*knownChunk, max(c, 2*len(old), 4))
	copy(dir, old[:l.chunks])
	l.dir.Store(&dir)
}

// append adds k at the end and returns its position. Only the writer
// calls it.
func (l *knownLog) append(k KnownID) uint32 {
	p := l.n
	if p&(1<<knownChunkBits-1) == 0 {
		var c *knownChunk
		if len(l.spare) > 0 {
			c, l.spare = &l.spare[0], l.spare[1:]
		} else {
			c = new(knownChunk)
		}
		l.growDir(l.chunks + 1)
		(*l.dir.Load())[l.chunks] = c
		l.chunks++
	}
	(*l.dir.Load())[p>>knownChunkBits][p&(1<<knownChunkBits-1)] = k
	l.n++
	return p
}

// appendTo appends the first n ids to out.
func (l *knownLog) appendTo(out []KnownID, n uint32) []KnownID {
	if n == 0 {
		return out
	}
	for _, c := range (*l.dir.Load())[:(n-1)>>knownChunkBits+1] {
		k := min(n, 1<<knownChunkBits)
		out = append(out, c[:k]...)
		n -= k
	}
	return out
}

// Control bytes of the two indexes: a group holds eight slots and one
// 64-bit word of control bytes, 0 for an empty slot and 0x80 | seven bits
// of the hash for a full one, so one load tells which slots may match.
const (
	ctrlLSB = 0x0101010101010101
	ctrlMSB = 0x8080808080808080
)

// matches returns the bytes of ctrl equal to b as their high bits. A byte
// just above a true match can show falsely; callers compare the key.
func matches(ctrl uint64, b byte) uint64 {
	x := ctrl ^ (ctrlLSB * uint64(b))
	return (x - ctrlLSB) &^ x & ctrlMSB
}

func empties(ctrl uint64) uint64 { return ^ctrl & ctrlMSB }

// groupCount sizes a table for n keys at a load of at most 7/8, growing
// by half: a table is 58-88% full, which keeps an index at 5.7-8.6 bytes a
// known id while a probe rarely leaves its home group.
func groupCount(n int) int {
	g := 2
	for 7*g < n {
		g += g / 2
	}
	return g
}

// home returns the group of hash h in a table of g groups.
func home(h uint64, g int) int {
	hi, _ := bits.Mul64(h, uint64(g))
	return int(hi)
}

// idIndex maps ids to positions in a store's knownLog. It only grows,
// and grows without a pause: a full index is replaced by one half as large
// again, published whole and empty but for the position being inserted,
// which takes every later position directly, while the positions before
// it move over from the full one a few with every insert (moveStep). Until
// they all have, a lookup that misses in the new index looks in the old
// one, which no longer changes. A rehash of everything at once held the
// writer for over a second at seven million ids.
type idIndex struct {
	groups []idGroup
	count  int // writer only
	// old is the index this one replaces, until the positions before
	// from have all moved over; then nil. It holds them all.
	old     atomic.Pointer[idIndex]
	from    uint32 // the position whose insert grew the index
	moved   uint32 // positions before moved have moved over; writer only
	touched uint64 // move's reads, kept so that they are made; writer only
}

type idGroup struct {
	ctrl atomic.Uint64
	pos  [8]uint32 // written before ctrl shows the slot full
}

// moveStep is how many positions move to a growing index with every
// insert. The new index has room for half as many ids again as the old
// one held, so any step over 2 finishes before it fills; 8 finishes within
// an eighth of that, keeping the two-index lookups of a miss rare, while
// each insert does little more.
const moveStep = 8

func newIDIndex(n int) *idIndex { return &idIndex{groups: make([]idGroup, groupCount(n))} }

// find returns the position of id among the first n ids of st.
func (t *idIndex) find(st *store, id EventID, n uint32) (uint32, bool) {
	h := st.hash(id)
	if p, ok := t.lookup(st, id, h, n); ok {
		return p, true
	}
	if old := t.old.Load(); old != nil {
		return old.lookup(st, id, h, n)
	}
	return 0, false
}

// lookup finds id, with hash h, among the positions before n in t's own
// table.
func (t *idIndex) lookup(st *store, id EventID, h uint64, n uint32) (uint32, bool) {
	b := byte(h) | 0x80
	for g := home(h, len(t.groups)); ; {
		grp := &t.groups[g]
		ctrl := grp.ctrl.Load()
		for m := matches(ctrl, b); m != 0; m &= m - 1 {
			// A position at or past n is an id committed after the
			// reader's State: another id, since ids are unique.
			if p := grp.pos[bits.TrailingZeros64(m)>>3]; p < n && st.known.at(p).ID == id {
				return p, true
			}
		}
		if empties(ctrl) != 0 {
			return 0, false
		}
		if g++; g == len(t.groups) {
			g = 0
		}
	}
}

// insert indexes the id at position p, the last appended, unless it is
// indexed already (ok false). It returns the index to use from then on,
// t or a grown one the caller publishes.
func (t *idIndex) insert(st *store, p uint32) (*idIndex, bool) {
	id := st.known.at(p).ID
	if _, ok := t.find(st, id, p); ok {
		return t, false
	}
	return t.insertNew(st, p, st.hash(id)), true
}

// insertNew is insert for an id known not to be indexed, with hash h.
func (t *idIndex) insertNew(st *store, p uint32, h uint64) *idIndex {
	if t.old.Load() != nil {
		t.move(st, moveStep)
	}
	if t.count+1 > 7*len(t.groups) {
		t = t.grow(st, p)
	}
	t.place(p, h)
	return t
}

// grow returns the index that replaces t, full, from the insert of
// position p on: empty, with t as its old index.
func (t *idIndex) grow(st *store, p uint32) *idIndex {
	if t.old.Load() != nil {
		// Not reached with moveStep over 2; t must hold every position
		// before p to be an old index.
		t.move(st, p)
	}
	nt := newIDIndex(t.count + 1)
	nt.from = p
	nt.old.Store(t)
	return nt
}

// move moves up to k more positions from the old index to t, in order. It
// re-reads their ids from st a chunk at a time, and hashes a block of them
// and reads their groups (see touchIDs) before placing any, so that the
// places' cache misses overlap. Once all have moved it lets the old index
// go.
func (t *idIndex) move(st *store, k uint32) {
	var hs [moveStep]uint64
	dir := *st.known.dir.Load()
	end := t.moved + min(k, t.from-t.moved)
	for q := t.moved; q < end; {
		c := dir[q>>knownChunkBits]
		n := min(end-q, uint32(len(hs)), 1<<knownChunkBits-q&(1<<knownChunkBits-1))
		ks := c[q&(1<<knownChunkBits-1):][:n]
		for i := range ks {
			hs[i] = st.hash(ks[i].ID)
			t.touched ^= t.groups[home(hs[i], len(t.groups))].ctrl.Load()
		}
		for i := range ks {
			t.place(q+uint32(i), hs[i])
		}
		q += n
	}
	t.moved = end
	if t.moved == t.from {
		// Every place above is visible to a reader that sees nil.
		t.old.Store(nil)
	}
}

// place puts position p, with hash h, in the first empty slot of its probe
// sequence; the table has room.
func (t *idIndex) place(p uint32, h uint64) {
	b := byte(h) | 0x80
	for g := home(h, len(t.groups)); ; {
		grp := &t.groups[g]
		ctrl := grp.ctrl.Load()
		if e := empties(ctrl); e != 0 {
			i := bits.TrailingZeros64(e) >> 3
			grp.pos[i] = p
			grp.ctrl.Store(ctrl | uint64(b)<<(8*i))
			t.count++
			return
		}
		if g++; g == len(t.groups) {
			g = 0
		}
	}
}

// noHead marks a stream without a head in an undo record.
const noHead = ^uint32(0)

// streamIndex maps a stream to the position of its current head's event.
type streamIndex struct {
	groups []streamGroup
	count  int    // writer only
	key    uint64 // streams come from untrusted input too
}

type streamGroup struct {
	ctrl atomic.Uint64
	keys [8]streamKey // written before ctrl shows the slot full
	pos  [8]atomic.Uint32
}

func newStreamIndex(n int) *streamIndex {
	return &streamIndex{groups: make([]streamGroup, groupCount(n)), key: rand.Uint64()}
}

func (t *streamIndex) hash(k streamKey) uint64 { return mixID(EventID{Lo: uint64(k)}, t.key, ^t.key) }

// find returns the head slot of k, or nil.
func (t *streamIndex) find(k streamKey) *atomic.Uint32 {
	h := t.hash(k)
	b := byte(h) | 0x80
	for g := home(h, len(t.groups)); ; {
		grp := &t.groups[g]
		ctrl := grp.ctrl.Load()
		for m := matches(ctrl, b); m != 0; m &= m - 1 {
			if i := bits.TrailingZeros64(m) >> 3; grp.keys[i] == k {
				return &grp.pos[i]
			}
		}
		if empties(ctrl) != 0 {
			return nil
		}
		if g++; g == len(t.groups) {
			g = 0
		}
	}
}

// insert returns k's head slot, adding it (holding noHead) if missing, and
// the index to use from then on, t or a grown copy the caller publishes.
// Only the writer calls it.
func (t *streamIndex) insert(k streamKey) (*streamIndex, *atomic.Uint32) {
	if slot := t.find(k); slot != nil {
		return t, slot
	}
	if t.count+1 > 7*len(t.groups) {
		nt := newStreamIndex(t.count + 1)
		t.each(func(k streamKey) {
			_, slot := nt.insert(k)
			slot.Store(t.find(k).Load())
		})
		t = nt
	}
	h := t.hash(k)
	b := byte(h) | 0x80
	for g := home(h, len(t.groups)); ; {
		grp := &t.groups[g]
		ctrl := grp.ctrl.Load()
		if e := empties(ctrl); e != 0 {
			i := bits.TrailingZeros64(e) >> 3
			grp.keys[i] = k
			grp.pos[i].Store(noHead)
			grp.ctrl.Store(ctrl | uint64(b)<<(8*i))
			t.count++
			return t, &grp.pos[i]
		}
		if g++; g == len(t.groups) {
			g = 0
		}
	}
}

// each calls f for every stream in t.
func (t *streamIndex) each(f func(streamKey)) {
	for gi := range t.groups {
		grp := &t.groups[gi]
		for m := ^empties(grp.ctrl.Load()) & ctrlMSB; m != 0; m &= m - 1 {
			f(grp.keys[bits.TrailingZeros64(m)>>3])
		}
	}
}

// An epoch stands for one committed State of a store. When the next
// commit moves heads, it records in the current epoch where those heads
// were (undo, ascending by stream) before linking the next epoch, so that
// an earlier State finds the head it saw: the first undo record of its
// stream after it. Epochs link forward only, so those of dropped States
// are collected.
type epoch struct {
	undo []headUndo
	next atomic.Pointer[epoch]
}

type headUndo struct {
	key streamKey
	pos uint32
}

// headBefore returns the position k's head had at e, given that a later
// commit moved it.
func (e *epoch) headBefore(k streamKey) uint32 {
	for {
		// Loading next first orders the read of e.undo after its write.
		next := e.next.Load()
		if next == nil {
			return noHead
		}
		if i, ok := slices.BinarySearchFunc(e.undo, k, func(u headUndo, k streamKey) int { return cmp.Compare(u.key, k) }); ok {
			return e.undo[i].pos
		}
		e = next
	}
}
