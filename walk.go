package omega

import (
	"slices"

	"github.com/omega-sheaf/omega/predicates"
)

// walker evaluates the predicates over the distinct contents of a batch in
// canonical order (SPEC 4). The prior State's store is read-locked while
// it runs.
//
// Its walk is the only statement of the predicates' rules, of the conflict
// sets and of the evidence an obstruction cites. Reconcile and Diagnose walk
// a batch; VerifyObstruction walks an obstruction's evidence, as a batch of
// its own, and looks for the violation it claims.
type walker struct {
	c      *Checker
	prior  *State
	events []Event
	known  []KnownID // ids and lamports of the distinct contents, canonical order
	sc     *scratch
	// depLamports is hashed's: per input event, its dependencies'
	// lamports in the prior State, found earlier, plus one; 0 where
	// not found. nil when there are none.
	depLamports [][]uint64
}

// knownDeps returns what depLamports holds of the input event idx.
func (w *walker) knownDeps(idx uint32) []uint64 {
	if w.depLamports == nil {
		return nil
	}
	return w.depLamports[idx]
}

// violation is the first failure, in positions and ids.
type violation struct {
	pred     predicates.ID
	pos      int     // position of e among the distinct contents
	other    EventID // the second id of a 1001, 1003 or 2002 conflict
	has      bool    // other is set (not for a self-dependency)
	otherPos int     // position of the other event when it is in the batch, else -1
}

func (w *walker) ev(p int) *Event { return &w.events[w.sc.keys[p].idx] }

// walk evaluates the built-in predicates over every distinct content, in
// SPEC 4's order: at each, 2001, 3001, 1002, 1001, then 1003 and 2002 over
// its dependencies. It returns the first violation or, when all is not nil,
// appends every one to it and returns none. What a rule sees of the rest of
// the batch is the walker's: the id index, the stream table and known.
func (w *walker) walk(all *[]violation) (violation, bool) {
	sc := w.sc
	for p := range sc.keys {
		if p%touchAhead == 0 {
			sc.touched ^= w.touch(p, min(p+touchAhead, len(w.known)))
		}
		sk := &sc.keys[p]
		lamport := sk.lamport
		k := streamKey(sk.nodeStrm)
		fail := func(v violation) bool {
			if all == nil {
				return true
			}
			*all = append(*all, v)
			return false
		}
		// 2001: the hashing found payload_hash is not BLAKE3-256(payload).
		// 3001: another distinct content has e's id (index marked both).
		// 1002: e's id is known to the prior State.
		if sk.flags&keyPayloadOK == 0 && fail(violation{pred: predicates.PayloadHashMatch, pos: p, otherPos: -1}) {
			return violation{pred: predicates.PayloadHashMatch, pos: p, otherPos: -1}, true
		}
		if sc.multi[p] && fail(violation{pred: predicates.OverlapAgreement, pos: p, otherPos: -1}) {
			return violation{pred: predicates.OverlapAgreement, pos: p, otherPos: -1}, true
		}
		if _, known := w.prior.Lamport(w.known[p].ID); known && fail(violation{pred: predicates.EventUnique, pos: p, otherPos: -1}) {
			return violation{pred: predicates.EventUnique, pos: p, otherPos: -1}, true
		}
		// 1001: the previous distinct content of e's stream in the batch has
		// e's lamport, else the prior head's lamport is not below e's.
		stream, seen := sc.streams.slot(k)
		if seen {
			if q := stream.pos; w.known[q].Lamport == lamport {
				v := violation{pred: predicates.LamportMonotonic, pos: p, other: w.known[q].ID, has: true, otherPos: int(q)}
				if fail(v) {
					return v, true
				}
			}
		} else if h, ok := w.prior.head(k); ok && lamport <= h.Lamport {
			v := violation{pred: predicates.LamportMonotonic, pos: p, other: h.ID, has: true, otherPos: -1}
			if fail(v) {
				return v, true
			}
		}
		stream.pos = int32(p)
		if sk.flags&keyHasDeps == 0 {
			continue
		}
		e := w.ev(p)
		// 1003 over every dependency, in e's deps order: d is known, from
		// the batch's first content with its id, else from the prior
		// State, and its lamport is not below e's. Then 2002 over every
		// dependency: d is neither in the batch nor known to the prior.
		unknown := sc.unknownDeps[:0] // for 2002: looked up once, here
		found := w.knownDeps(sk.idx)
		for j, d := range e.Deps {
			var dl uint64
			q, inBatch := sc.ids.get(w.known, d)
			if inBatch {
				dl = w.known[q].Lamport
			} else if found != nil && found[j] != 0 {
				dl = found[j] - 1
			} else if l, ok := w.prior.Lamport(d); ok {
				dl = l
			} else {
				unknown = append(unknown, d)
				continue
			}
			if dl >= e.Lamport {
				v := violation{pred: predicates.CausalOrder, pos: p, other: d, has: d != e.ID, otherPos: -1}
				if inBatch && d != e.ID {
					v.otherPos = int(q)
				}
				if fail(v) {
					return v, true
				}
			}
		}
		sc.unknownDeps = unknown
		for _, d := range unknown {
			v := violation{pred: predicates.DependencyKnown, pos: p, other: d, has: true, otherPos: -1}
			if fail(v) {
				return v, true
			}
		}
	}
	return violation{}, false
}

// touch reads ahead what the walk looks up of the distinct contents at
// positions lo to hi in the prior State: their ids and their dependencies
// (see touchIDs).
func (w *walker) touch(lo, hi int) uint64 {
	return touchIDs(w.prior, w.known[lo:hi], func(k *KnownID) EventID { return k.ID }) ^
		touchDeps(w.prior, w.sc.keys[lo:hi], func(k *sortKey) []EventID {
			if allFound(w.knownDeps(k.idx)) {
				return nil // nothing to look up in the prior State
			}
			return w.events[k.idx].Deps
		}, &w.sc.touchDeps)
}

// allFound reports whether found has a lamport for every dependency.
func allFound(found []uint64) bool {
	return found != nil && !slices.Contains(found, 0)
}

// walkDomain evaluates the domain predicates, in ascending id, over the
// distinct contents before position end. It returns the first violation or,
// when all is not nil, appends every one to it.
func (w *walker) walkDomain(end int, all *[]violation) (violation, bool) {
	if len(w.c.domain) == 0 {
		return violation{}, false
	}
	for p := range end {
		e := w.ev(p)
		for _, dp := range w.c.domain {
			if !dp.p.Violated(e, w.prior) {
				continue
			}
			v := violation{pred: dp.id, pos: p, otherPos: -1}
			if all == nil {
				return v, true
			}
			*all = append(*all, v)
		}
	}
	return violation{}, false
}

func (w *walker) conflictSet(v violation) []EventID {
	e := w.ev(v.pos).ID
	if !v.has || v.other == e {
		return []EventID{e}
	}
	if v.other.Compare(e) < 0 {
		return []EventID{v.other, e}
	}
	return []EventID{e, v.other}
}

// evidence returns the positions of the events an obstruction for v cites
// (SPEC 4), in canonical order: e; for 3001 every distinct content with e's
// id, at most maxEvidence; for 1001 and 1003 the other event too when it is
// in the batch. A violation that depends on history is re-checked against
// the prior State instead.
func (w *walker) evidence(v violation) []int {
	switch {
	case v.pred == predicates.OverlapAgreement:
		var pos []int
		id := w.known[v.pos].ID
		for p := v.pos; p < len(w.known) && len(pos) < maxEvidence; p++ {
			if w.known[p].ID == id {
				pos = append(pos, p)
			}
		}
		return pos
	case v.otherPos >= 0 && v.otherPos != v.pos:
		return []int{min(v.pos, v.otherPos), max(v.pos, v.otherPos)}
	}
	return []int{v.pos}
}

func (w *walker) toViolation(v violation) Violation {
	return Violation{Predicate: v.pred, Event: w.ev(v.pos).ID, ConflictSet: w.conflictSet(v)}
}

// movedHeads returns, ascending by stream, the new head of every stream the
// batch touched: its last distinct content in canonical order. It sorts
// the bare keys, cheaper than sorting the pairs, and looks the positions up
// again.
func (w *walker) movedHeads() []movedHead {
	keys := make([]streamKey, 0, w.sc.streams.n)
	w.sc.streams.all(func(k streamKey, _ int32) { keys = append(keys, k) })
	slices.Sort(keys)
	out := make([]movedHead, len(keys))
	for i, k := range keys {
		s, _ := w.sc.streams.slot(k)
		out[i] = movedHead{key: k, pos: s.pos}
	}
	return out
}
