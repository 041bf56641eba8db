package omega

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/omega-sheaf/omega/internal/digest"
)

// State is what earlier merges established (SPEC 4): the known event ids,
// each with its lamport, the stream heads, the merged state hash and the
// frontier digest. A nil *State is the genesis state, as is [Genesis]().
//
// A State is immutable and safe for concurrent use. Successive States share
// their history: a Merge appends its accepted ids to storage it shares with
// the prior State, so that it costs O(batch), not O(history), and the prior
// State keeps seeing exactly what it saw before. When a second successor is
// derived from a State that already has one (a fork), the fork copies the
// history it needs once.
type State struct {
	store    *store // nil for a state with no known id
	n        int    // the state sees store.known[:n]
	merged   Hash
	frontier Hash
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

// store is the history shared by a lineage of States: every id accepted,
// in acceptance order, and every position every head has held. A State with
// n known ids sees the first n of them and the head positions recorded
// before them. Only the newest State of a lineage (n == len(known)) may
// append; others fork.
type store struct {
	mu    sync.RWMutex
	known []KnownID
	index idTable                     // id -> position in known
	heads map[streamKey][]headVersion // ascending by seq
}

type streamKey uint64

func makeStreamKey(node uint32, stream uint16) streamKey {
	return streamKey(uint64(node)<<16 | uint64(stream))
}

func (k streamKey) node() uint32   { return uint32(k >> 16) }
func (k streamKey) stream() uint16 { return uint16(k) }

// headVersion is a head a stream moved to; seq is the position in
// store.known of its event, so States with n > seq see it.
type headVersion struct {
	seq     int
	lamport uint64
	id      EventID
}

// Genesis returns the empty state: no known id, no head, every hash zero.
func Genesis() *State { return &State{} }

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
	return s.n
}

// Lamport returns the lamport of a known id.
func (s *State) Lamport(id EventID) (uint64, bool) {
	if s == nil || s.store == nil {
		return 0, false
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	return s.lamportLocked(id)
}

func (s *State) lamportLocked(id EventID) (uint64, bool) {
	if s.store == nil {
		return 0, false
	}
	i, ok := s.store.index.get(s.store.known, id)
	if !ok || int(i) >= s.n {
		return 0, false
	}
	return s.store.known[i].Lamport, true
}

// Head returns the head of stream (node, stream).
func (s *State) Head(node uint32, stream uint16) (StreamHead, bool) {
	if s == nil || s.store == nil {
		return StreamHead{}, false
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	return s.headLocked(makeStreamKey(node, stream))
}

func (s *State) headLocked(k streamKey) (StreamHead, bool) {
	if s.store == nil {
		return StreamHead{}, false
	}
	vs := s.store.heads[k]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].seq < s.n {
			return StreamHead{NodeID: k.node(), StreamID: k.stream(), Lamport: vs[i].lamport, ID: vs[i].id}, true
		}
	}
	return StreamHead{}, false
}

// KnownIDs returns every known id with its lamport, ascending by id. The
// slice is the caller's.
func (s *State) KnownIDs() []KnownID {
	if s == nil || s.store == nil {
		return []KnownID{}
	}
	s.store.mu.RLock()
	out := slices.Clone(s.store.known[:s.n])
	s.store.mu.RUnlock()
	slices.SortFunc(out, func(a, b KnownID) int { return a.ID.Compare(b.ID) })
	return out
}

// Heads returns every stream head, ascending by (node_id, stream_id). The
// slice is the caller's.
func (s *State) Heads() []StreamHead {
	if s == nil || s.store == nil {
		return []StreamHead{}
	}
	s.store.mu.RLock()
	out := make([]StreamHead, 0, len(s.store.heads))
	for k := range s.store.heads {
		if h, ok := s.headLocked(k); ok {
			out = append(out, h)
		}
	}
	s.store.mu.RUnlock()
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
	var buf [4 + 2 + 8 + 16]byte
	for _, hd := range heads {
		b := binary.LittleEndian.AppendUint32(buf[:0], hd.NodeID)
		b = binary.LittleEndian.AppendUint16(b, hd.StreamID)
		b = binary.LittleEndian.AppendUint64(b, hd.Lamport)
		b = appendID(b, hd.ID)
		h.Write(b)
	}
	return h.Sum()
}

// ErrInvalidState is returned by [NewState] for contents no sequence of
// merges could produce.
var ErrInvalidState = errors.New("omega: invalid state")

// NewState builds a State from its contents, as a snapshot holds them
// (SPEC 7). It refuses a repeated id or stream, and a head whose event is
// not a known id with the head's lamport.
func NewState(known []KnownID, heads []StreamHead, mergedStateHash, frontierDigest Hash) (*State, error) {
	st := &store{known: slices.Clone(known), heads: make(map[streamKey][]headVersion, len(heads))}
	st.index.reset(len(known))
	for i, k := range st.known {
		if _, dup := st.index.insert(st.known, uint32(i)); dup {
			return nil, fmt.Errorf("%w: id %v is known twice", ErrInvalidState, k.ID)
		}
	}
	// Each stream's history starts as a one-element window of one backing
	// array, its capacity capped so that a later append copies it out.
	versions := make([]headVersion, len(heads))
	for j, h := range heads {
		key := makeStreamKey(h.NodeID, h.StreamID)
		if _, dup := st.heads[key]; dup {
			return nil, fmt.Errorf("%w: stream (%d, %d) has two heads", ErrInvalidState, h.NodeID, h.StreamID)
		}
		i, ok := st.index.get(st.known, h.ID)
		if !ok || st.known[i].Lamport != h.Lamport {
			return nil, fmt.Errorf("%w: head of stream (%d, %d) is not a known id with lamport %d", ErrInvalidState, h.NodeID, h.StreamID, h.Lamport)
		}
		versions[j] = headVersion{seq: int(i), lamport: h.Lamport, id: h.ID}
		st.heads[key] = versions[j : j+1 : j+1]
	}
	return &State{store: st, n: len(st.known), merged: mergedStateHash, frontier: frontierDigest}, nil
}

// movedHead is a head a Merge moves: the stream and the position, among the
// accepted ids, of its new head event.
type movedHead struct {
	key streamKey
	pos int
	lam uint64
	id  EventID
}

// extend returns the State after a Merge of accepted (in canonical order)
// that moved heads. It appends to s's store when s is the newest State of
// its lineage and forks it otherwise; s itself sees no change. When s has
// no store, index, if not nil, must map each accepted id to its position
// in accepted: the new store takes it over instead of building its own, and
// takes accepted too.
func (s *State) extend(accepted []KnownID, heads []movedHead, merged, frontier Hash, index *idTable) *State {
	next := &State{merged: merged, frontier: frontier}
	if len(accepted) == 0 {
		next.store, next.n = s.storeOrNil(), s.KnownCount()
		return next
	}
	st := s.storeOrNil()
	if st != nil {
		st.mu.Lock()
		if s.n != len(st.known) {
			st.mu.Unlock()
			st = s.fork()
			st.mu.Lock()
		}
	} else {
		st = &store{heads: make(map[streamKey][]headVersion, len(heads))}
		for _, h := range heads {
			st.heads[h.key] = []headVersion{{seq: h.pos, lamport: h.lam, id: h.id}}
		}
		if index != nil {
			st.known, st.index = accepted, *index
		} else {
			st.known = accepted
			st.index.reset(len(accepted))
			for i := range accepted {
				st.index.insert(st.known, uint32(i))
			}
		}
		return &State{store: st, n: len(st.known), merged: merged, frontier: frontier}
	}
	base := len(st.known)
	st.known = append(st.known, accepted...)
	for i := range accepted {
		st.index.insert(st.known, uint32(base+i))
	}
	for _, h := range heads {
		st.heads[h.key] = append(st.heads[h.key], headVersion{seq: base + h.pos, lamport: h.lam, id: h.id})
	}
	next.store, next.n = st, len(st.known)
	st.mu.Unlock()
	return next
}

func (s *State) storeOrNil() *store {
	if s == nil {
		return nil
	}
	return s.store
}

// fork copies the history s sees into a new store.
func (s *State) fork() *store {
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	st := &store{
		known: slices.Clone(s.store.known[:s.n]),
		heads: make(map[streamKey][]headVersion, len(s.store.heads)),
	}
	st.index.reset(s.n)
	for i := range st.known {
		st.index.insert(st.known, uint32(i))
	}
	for k := range s.store.heads {
		if h, ok := s.headLocked(k); ok {
			i, _ := st.index.get(st.known, h.ID)
			st.heads[k] = []headVersion{{seq: int(i), lamport: h.Lamport, id: h.ID}}
		}
	}
	return st
}
