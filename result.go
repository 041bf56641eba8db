package omega

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// Kind says whether a batch was merged or obstructed.
type Kind uint8

// The two kinds of result, with the values BATCH frames and certificates
// encode.
const (
	KindMerge       Kind = 1
	KindObstruction Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindMerge:
		return "merge"
	case KindObstruction:
		return "obstruction"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Result is the checker's decision on one batch (SPEC 4). Exactly one of
// Merge and Obstruction is set, as Kind says.
type Result struct {
	Kind           Kind
	PriorStateHash Hash // the prior State's merged_state_hash
	TraceRoot      Hash // Merkle root over Members' digests
	WitnessHash    Hash
	// Members are the batch's distinct contents in canonical order: their
	// ids and event digests. They are the trace root's leaves and a BATCH
	// frame's members; for a Merge, the accepted events.
	Members     []Member
	Merge       *Merge
	Obstruction *Obstruction
}

// Member names one distinct content of a batch.
type Member struct {
	ID     EventID
	Digest Hash
}

// Merge holds the fields only a Merge has.
type Merge struct {
	BatchDigest       Hash
	MergedStateHash   Hash
	AcceptedIDsDigest Hash
	FrontierDigest    Hash
	HeadsDigest       Hash // over the heads this batch moved
	// Next is the State the merge yields: an overlay on the prior State,
	// which it leaves unchanged, committed when it is kept (State.Commit).
	Next *State
}

// Obstruction holds the fields only an Obstruction has.
type Obstruction struct {
	Predicate            predicates.ID
	Event                EventID   // the offending event e
	ConflictSet          []EventID // ascending, no repeats
	OverlapContextDigest Hash
	Evidence             []Event // canonical order; copies, not aliases of the input
	EvidenceDigests      []Hash
}

// maxEvidence caps an obstruction's evidence list (SPEC 4: for 3001, the
// first 65,535 distinct contents with the id): its count is a u16 in a
// certificate body. The checker stops there, and a result view holding
// more is refused.
const maxEvidence = 65535

// AcceptedIDs returns the ids a Merge accepted, in canonical order, or nil
// for an Obstruction.
func (r *Result) AcceptedIDs() []EventID {
	if r.Kind != KindMerge {
		return nil
	}
	ids := make([]EventID, len(r.Members))
	for i, m := range r.Members {
		ids[i] = m.ID
	}
	return ids
}

// Violation is one failed predicate at one event, as [Checker.Diagnose]
// lists them.
type Violation struct {
	Predicate   predicates.ID
	Event       EventID
	ConflictSet []EventID
}

func (c *Checker) merge(r *Result, w *walker, prior *State, accepted []KnownID, moved []movedHead, side *sideDigests) {
	sc := w.sc
	batchDigest, idsDigest := side.batch, side.ids
	headsD := movedHeadsDigest(sc.headsH, moved, accepted)

	merged := digest.Of(digest.State, prior.MergedStateHash().slice(), batchDigest[:])
	frontier := digest.Of(digest.Frontier, prior.FrontierDigest().slice(), idsDigest[:])
	r.Kind = KindMerge
	r.WitnessHash = digest.Of(digest.MergeWitness, merged[:], idsDigest[:], r.TraceRoot[:])
	r.Merge = &Merge{
		BatchDigest:       batchDigest,
		MergedStateHash:   merged,
		AcceptedIDsDigest: idsDigest,
		FrontierDigest:    frontier,
		HeadsDigest:       headsD,
		Next:              prior.successor(accepted, c.handOver(sc), moved, merged, frontier),
	}
}

func (h Hash) slice() []byte { return h[:] }

// handOver gives a merge's successor State the batch's id table, which
// already maps each accepted id to its canonical position. The scratch
// starts a new table next time.
func (c *Checker) handOver(sc *scratch) *idTable {
	t := sc.ids
	sc.ids = idTable{}
	return &t
}

func (c *Checker) obstruct(r *Result, w *walker, v violation, leaves []Hash) {
	conflict := w.conflictSet(v)
	pos := w.evidence(v)
	o := &Obstruction{
		Predicate:            v.pred,
		Event:                w.ev(v.pos).ID,
		ConflictSet:          conflict,
		OverlapContextDigest: digest.Of(digest.IDs, idsBytes(conflict)),
		Evidence:             make([]Event, len(pos)),
		EvidenceDigests:      make([]Hash, len(pos)),
	}
	for i, p := range pos {
		o.Evidence[i] = cloneEvent(w.ev(p))
		o.EvidenceDigests[i] = leaves[p]
	}
	r.Kind = KindObstruction
	r.Obstruction = o
	r.WitnessHash = obstructionWitness(o.Predicate, conflict, o.EvidenceDigests)
}

func obstructionWitness(pred predicates.ID, conflict []EventID, evidence []Hash) Hash {
	h := digest.New(digest.ObstructionWitness)
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(pred))
	h.Write(b[:])
	h.Write(idsBytes(conflict))
	for _, d := range evidence {
		h.Write(d[:])
	}
	return h.Sum()
}

func cloneEvent(e *Event) Event {
	c := *e
	c.Deps = slices.Clone(e.Deps)
	if c.Deps == nil {
		c.Deps = []EventID{}
	}
	c.Payload = slices.Clone(e.Payload)
	if c.Payload == nil {
		c.Payload = []byte{}
	}
	return c
}
