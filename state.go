package omega

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/omega-sheaf/omega/internal/digest"
)

// State is what earlier merges established (SPEC 4): the known event ids,
// each with its lamport, the stream heads, the merged state hash and the
// frontier digest. A nil *State is the genesis state, as is the zero State.
//
// A State is immutable and safe for concurrent use; reading it takes no
// lock.
//
// # Committing
//
// A Merge's next State is an overlay: the batch's accepted ids and moved
// heads on top of the prior State, costing O(batch) to make. Any number of
// successors may be derived from one State; a successor that is dropped (a
// refused certification, a failed append) costs nothing and changes no
// shared history. [State.Commit] makes a successor part of the history
// its lineage shares, in O(batch). [Checker.Reconcile] commits its prior
// first, so a program that decides each batch on the previous one's next
// State need never call Commit: deciding on a State is keeping it.
//
// History is stored once per lineage, append-only: every id accepted, in
// order, and each stream's current head. A committed State sees a prefix of
// it, so earlier States keep seeing exactly what they saw. Committing a
// successor of a State that is no longer the newest of its lineage (two
// histories diverging from one State) starts a new lineage by copying the
// history that State sees, once.
type State struct {
	// A committed State sees st's first n known ids; ep is its epoch, from
	// which the heads it saw are recovered when later commits moved them.
	// st is nil for a committed State with no known id.
	st *store
	n  uint32
	ep *epoch

	ov *overlay // non-nil for a successor not (yet) committed

	count    int // known ids, overlays included
	merged   Hash
	frontier Hash
}

// overlay is a Merge's successor on top of its prior, parent: the accepted
// ids and lamports in canonical order, indexed by a batch-sized table, and
// the heads the merge moved, ascending by stream.
type overlay struct {
	parent   *State
	accepted []KnownID
	index    *idTable
	heads    []movedHead

	mu        sync.Mutex // serialises commits of this overlay
	committed atomic.Pointer[State]
}

// KnownID is an accepted event id and its lamport.
type KnownID struct {
	ID      EventID
	Lamport uint64
}

// StreamHead is the highest accepted lamport of a stream and its event.
type StreamHead struct {
	NodeID   uint32
	StreamID uint16
	Lamport  uint64
	ID       EventID
}

type streamKey uint64

func makeStreamKey(node uint32, stream uint16) streamKey {
	return streamKey(uint64(node)<<16 | uint64(stream))
}

func (k streamKey) node() uint32   { return uint32(k >> 16) }
func (k streamKey) stream() uint16 { return uint16(k) }

// MergedStateHash returns the state's merged_state_hash.
func (s *State) MergedStateHash() Hash {
	if s == nil {
		return Hash{}
	}
	return s.merged
}

// FrontierDigest returns the state's frontier_digest.
func (s *State) FrontierDigest() Hash {
	if s == nil {
		return Hash{}
	}
	return s.frontier
}

// KnownCount returns the number of known ids.
func (s *State) KnownCount() int {
	if s == nil {
		return 0
	}
	return s.count
}

// Lamport returns the lamport of a known id.
func (s *State) Lamport(id EventID) (uint64, bool) {
	for ; s != nil; s = s.ov.parent {
		if s.ov == nil {
			if s.st == nil {
				return 0, false
			}
			p, ok := s.st.index.Load().find(s.st, id, s.n)
			if !ok {
				return 0, false
			}
			return s.st.known.at(p).Lamport, true
		}
		if p, ok := s.ov.index.get(s.ov.accepted, id); ok {
			return s.ov.accepted[p].Lamport, true
		}
	}
	return 0, false
}

// nextPosition returns the position the next id accepted after a
// committed State takes, when the State is the newest of its store, as a
// kernel's is; for another State, idAt says whether a guess from it holds.
func (s *State) nextPosition() uint32 {
	if s == nil || s.ov != nil || s.st == nil {
		return 0
	}
	return s.n
}

// idAt returns the id at position p of a committed State, if it has one.
func (s *State) idAt(p uint32) (EventID, bool) {
	if s == nil || s.ov != nil || s.st == nil || p >= s.n {
		return EventID{}, false
	}
	return s.st.known.at(p).ID, true
}

// position returns where id is in the history of a committed State: its
// index in acceptance order, counted from the first id of the lineage's
// store. It reports false for an id s does not know, and for any id of an
// uncommitted State.
func (s *State) position(id EventID) (uint32, bool) {
	if s == nil || s.ov != nil || s.st == nil {
		return 0, false
	}
	return s.st.index.Load().find(s.st, id, s.n)
}

// touchIDs reads what a lookup of each of xs in s's id index reads: the
// control word of the id's home group, then for a slot whose tag matches
// the id there. It returns them xored for the caller to keep. A lookup in
// a large index misses the cache once or twice per id; reading a block of
// ids' words first, one id after another, lets the misses overlap, so that
// the lookups which follow find the words in cache. Callers touch
// touchAhead ids at a time, ahead of looking them up.
func touchIDs[T any](s *State, xs []T, id func(*T) EventID) uint64 {
	for s != nil && s.ov != nil {
		s = s.ov.parent
	}
	if s == nil || s.st == nil {
		return 0
	}
	st, t := s.st, s.st.index.Load()
	var hs [touchAhead]uint64
	var acc uint64
	for len(xs) > 0 {
		m := min(len(xs), touchAhead)
		for i := range m {
			hs[i] = st.hash(id(&xs[i]))
			acc ^= t.groups[home(hs[i], len(t.groups))].ctrl.Load()
		}
		for i := range m {
			grp := &t.groups[home(hs[i], len(t.groups))]
			for b := matches(grp.ctrl.Load(), byte(hs[i])|0x80); b != 0; b &= b - 1 {
				if p := grp.pos[bits.TrailingZeros64(b)>>3]; p < s.n {
					acc ^= st.known.at(p).Lamport
				}
			}
		}
		xs = xs[m:]
	}
	return acc
}

// touchDeps is touchIDs for the dependencies of xs, gathered in buf.
func touchDeps[T any](s *State, xs []T, deps func(*T) []EventID, buf *[]EventID) uint64 {
	ds := (*buf)[:0]
	for i := range xs {
		ds = append(ds, deps(&xs[i])...)
	}
	*buf = ds
	return touchIDs(s, ds, func(d *EventID) EventID { return *d })
}

// touchAhead is how many ids touchIDs is given at once: a batch of the
// default size, and few enough that their words stay in cache.
const touchAhead = 32

// Head returns the head of stream (node, stream).
func (s *State) Head(node uint32, stream uint16) (StreamHead, bool) {
	return s.head(makeStreamKey(node, stream))
}

func (s *State) head(k streamKey) (StreamHead, bool) {
	for ; s != nil; s = s.ov.parent {
		if s.ov == nil {
			return s.committedHead(k)
		}
		if i, ok := slices.BinarySearchFunc(s.ov.heads, k, func(h movedHead, k streamKey) int { return cmp.Compare(h.key, k) }); ok {
			h := s.ov.accepted[s.ov.heads[i].pos]
			return StreamHead{NodeID: k.node(), StreamID: k.stream(), Lamport: h.Lamport, ID: h.ID}, true
		}
	}
	return StreamHead{}, false
}

// committedHead is head for a committed State.
func (s *State) committedHead(k streamKey) (StreamHead, bool) {
	if s.st == nil {
		return StreamHead{}, false
	}
	slot := s.st.streams.Load().find(k)
	if slot == nil {
		return StreamHead{}, false // no commit ever moved it
	}
	p := slot.Load()
	if p >= s.n {
		// Moved since s: the first later commit that moved it recorded
		// where it was before.
		p = s.ep.headBefore(k)
		if p == noHead {
			return StreamHead{}, false
		}
	}
	kn := s.st.known.at(p)
	return StreamHead{NodeID: k.node(), StreamID: k.stream(), Lamport: kn.Lamport, ID: kn.ID}, true
}

// KnownIDs returns every known id with its lamport, ascending by id. The
// slice is the caller's.
func (s *State) KnownIDs() []KnownID {
	out := make([]KnownID, 0, s.KnownCount())
	for ; s != nil; s = s.ov.parent {
		if s.ov == nil {
			if s.st != nil {
				out = s.st.known.appendTo(out, s.n)
			}
			break
		}
		out = append(out, s.ov.accepted...)
	}
	slices.SortFunc(out, func(a, b KnownID) int { return a.ID.Compare(b.ID) })
	return out
}

// knownAt is a known id with its position in its State's history.
type knownAt struct {
	KnownID
	pos uint32
}

// knownSorted returns what KnownIDs does, each id with its position, for
// a committed State; it reports false for an uncommitted one, whose ids
// have no position. It calls pace between steps of its work (see
// sortPaced).
func (s *State) knownSorted(pace func()) ([]knownAt, bool) {
	if s == nil {
		return nil, true
	}
	if s.ov != nil {
		return nil, false
	}
	var out []knownAt
	if s.st != nil && s.n > 0 {
		out = make([]knownAt, 0, s.n)
		for i, c := range (*s.st.known.dir.Load())[:(s.n-1)>>knownChunkBits+1] {
			base := uint32(i) << knownChunkBits
			for j, k := range c[:min(s.n-base, 1<<knownChunkBits)] {
				out = append(out, knownAt{k, base + uint32(j)})
			}
			if (i+1)%(paceSpan>>knownChunkBits) == 0 {
				pace()
			}
		}
	}
	sortPaced(out, func(a, b knownAt) int { return a.ID.Compare(b.ID) }, pace)
	return out, true
}

// Heads returns every stream head, ascending by (node_id, stream_id). The
// slice is the caller's.
func (s *State) Heads() []StreamHead {
	var out []StreamHead
	seen := make(map[streamKey]bool)
	for ; s != nil; s = s.ov.parent {
		if s.ov == nil {
			if s.st != nil {
				s.st.streams.Load().each(func(k streamKey) {
					if !seen[k] {
						if h, ok := s.committedHead(k); ok {
							out = append(out, h)
						}
					}
				})
			}
			break
		}
		for _, h := range s.ov.heads {
			if !seen[h.key] {
				seen[h.key] = true
				a := s.ov.accepted[h.pos]
				out = append(out, StreamHead{NodeID: h.key.node(), StreamID: h.key.stream(), Lamport: a.Lamport, ID: a.ID})
			}
		}
	}
	if out == nil {
		out = []StreamHead{}
	}
	slices.SortFunc(out, compareHeads)
	return out
}

func compareHeads(a, b StreamHead) int {
	if c := cmp.Compare(a.NodeID, b.NodeID); c != 0 {
		return c
	}
	return cmp.Compare(a.StreamID, b.StreamID)
}

// HeadsDigest returns the heads digest of SPEC 4 over every head of the
// state (SPEC 7's stream_heads_digest).
func (s *State) HeadsDigest() Hash {
	return headsDigest(digest.New(digest.Heads), s.Heads())
}

// headsDigest hashes heads, which must be ascending by (node, stream).
func headsDigest(h *digest.Hasher, heads []StreamHead) Hash {
	h.Reset()
	for _, hd := range heads {
		writeHead(h, makeStreamKey(hd.NodeID, hd.StreamID), KnownID{ID: hd.ID, Lamport: hd.Lamport})
	}
	return h.Sum()
}

// movedHeadsDigest is headsDigest over the heads a Merge of accepted moved.
func movedHeadsDigest(h *digest.Hasher, moved []movedHead, accepted []KnownID) Hash {
	h.Reset()
	for _, m := range moved {
		writeHead(h, m.key, accepted[m.pos])
	}
	return h.Sum()
}

func writeHead(h *digest.Hasher, k streamKey, head KnownID) {
	var buf [4 + 2 + 8 + 16]byte
	b := binary.LittleEndian.AppendUint32(buf[:0], k.node())
	b = binary.LittleEndian.AppendUint16(b, k.stream())
	b = binary.LittleEndian.AppendUint64(b, head.Lamport)
	h.Write(appendID(b, head.ID))
}

// NewState builds a committed State from its contents, as a snapshot holds
// them (SPEC 7). It refuses a repeated id or stream, and a head whose event
// is not a known id with the head's lamport.
func NewState(known []KnownID, heads []StreamHead, mergedStateHash, frontierDigest Hash) (*State, error) {
	if uint64(len(known)) > maxStoreIDs {
		return nil, fmt.Errorf("%w: %d known ids, the limit is %d", ErrInvalidState, len(known), maxStoreIDs)
	}
	st := newStore(len(known))
	idx := st.index.Load()
	for _, k := range known {
		p := st.known.append(k)
		if idx, _ = idx.insert(st, p); idx == nil {
			return nil, fmt.Errorf("%w: id %v is known twice", ErrInvalidState, k.ID)
		}
	}
	st.index.Store(idx)
	n := uint32(len(known))
	streams := st.streams.Load()
	for _, h := range heads {
		key := makeStreamKey(h.NodeID, h.StreamID)
		if streams.find(key) != nil {
			return nil, fmt.Errorf("%w: stream (%d, %d) has two heads", ErrInvalidState, h.NodeID, h.StreamID)
		}
		p, ok := idx.find(st, h.ID, n)
		if !ok || st.known.at(p).Lamport != h.Lamport {
			return nil, fmt.Errorf("%w: head of stream (%d, %d) is not a known id with lamport %d", ErrInvalidState, h.NodeID, h.StreamID, h.Lamport)
		}
		var slot *atomic.Uint32
		streams, slot = streams.insert(key)
		slot.Store(p)
	}
	st.streams.Store(streams)
	st.n = n
	return &State{st: st, n: n, ep: st.last, count: len(known), merged: mergedStateHash, frontier: frontierDigest}, nil
}

// movedHead is a head a Merge moves: the stream and the position, among the
// accepted ids, of its new head event.
type movedHead struct {
	key streamKey
	pos int32
}

// successor returns the State after a Merge of accepted (in canonical
// order, indexed by index) that moved heads: an overlay on s, which must
// be committed.
func (s *State) successor(accepted []KnownID, index *idTable, heads []movedHead, merged, frontier Hash) *State {
	next := &State{count: s.KnownCount() + len(accepted), merged: merged, frontier: frontier}
	if len(accepted) == 0 && (s == nil || s.ov == nil) {
		// Nothing to add: the successor sees what s sees.
		if s != nil {
			next.st, next.n, next.ep = s.st, s.n, s.ep
		}
		return next
	}
	if index == nil {
		index = new(idTable)
	}
	next.ov = &overlay{parent: s, accepted: accepted, index: index, heads: heads}
	return next
}

// Commit returns s as part of the history its lineage shares, committing
// the successors it was derived from first; s itself keeps reading as it
// did. Committing an overlay takes O(batch), and committing it again
// returns the same State. See the State documentation.
func (s *State) Commit() *State {
	if s == nil || s.ov == nil {
		return s
	}
	ov := s.ov
	if c := ov.committed.Load(); c != nil {
		return c
	}
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if c := ov.committed.Load(); c != nil {
		return c
	}
	c := ov.parent.Commit().appendBatch(ov.accepted, ov.heads, s.merged, s.frontier)
	ov.committed.Store(c)
	return c
}

// appendBatch returns the committed State after s (committed) that
// accepted ids and moved heads.
func (s *State) appendBatch(accepted []KnownID, heads []movedHead, merged, frontier Hash) *State {
	var st *store
	if s != nil && s.st != nil {
		st = s.st
		st.mu.Lock()
		if s.n != st.n {
			// s is no longer the newest State of its lineage.
			st.mu.Unlock()
			st = s.fork()
			st.mu.Lock()
		}
	} else {
		st = newStore(len(accepted))
		st.mu.Lock()
	}
	defer st.mu.Unlock()
	base := st.n
	idx := st.index.Load()
	for _, k := range accepted {
		// A Merge accepts no known id (1002), so there is no duplicate.
		idx = idx.insertNew(st, st.known.append(k), st.hash(k.ID))
	}
	st.index.Store(idx)

	// The undo record goes out before any head moves, so a reader that
	// sees a moved head also finds where it was.
	streams := st.streams.Load()
	undo := make([]headUndo, len(heads))
	for i, h := range heads {
		undo[i] = headUndo{key: h.key, pos: noHead}
		if slot := streams.find(h.key); slot != nil {
			undo[i].pos = slot.Load()
		}
	}
	ep := &epoch{}
	st.last.undo = undo
	st.last.next.Store(ep)
	st.last = ep
	for _, h := range heads {
		var slot *atomic.Uint32
		streams, slot = streams.insert(h.key)
		slot.Store(base + uint32(h.pos))
	}
	st.streams.Store(streams)
	st.n = base + uint32(len(accepted))
	return &State{st: st, n: st.n, ep: ep, count: int(st.n), merged: merged, frontier: frontier}
}

// fork copies the history s (committed) sees into a new store.
func (s *State) fork() *store {
	st := newStore(int(s.n))
	idx := st.index.Load()
	for _, k := range s.st.known.appendTo(nil, s.n) {
		idx = idx.insertNew(st, st.known.append(k), st.hash(k.ID))
	}
	st.index.Store(idx)
	streams := st.streams.Load()
	s.st.streams.Load().each(func(k streamKey) {
		if h, ok := s.committedHead(k); ok {
			// The same ids in the same order: positions carry over.
			p, _ := idx.find(st, h.ID, s.n)
			var slot *atomic.Uint32
			streams, slot = streams.insert(k)
			slot.Store(p)
		}
	})
	st.streams.Store(streams)
	st.n = s.n
	return st
}
