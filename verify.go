package omega

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/merkle"
	"github.com/omega-sheaf/omega/predicates"
)

func obstructionErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrObstructionInvalid, fmt.Sprintf(format, args...))
}

// VerifyObstruction re-checks an obstruction from its evidence alone, the
// way a third party holding a certified obstruction does (SPEC 4): the
// evidence digests, their canonical order, the conflict set, the overlap
// context digest and the witness hash are recomputed, and the evidence is
// walked, as a batch of its own, by the walk that decides a batch: it must
// find the violated predicate at some evidence event with this conflict set
// and cite exactly this evidence for it.
//
// Violations that depend on history (1002, 2002, 1001 against a prior head,
// 1003 against a prior-state dependency, and domain predicates) are checked
// against prior, which the caller must trust: a merged state hash is a hash
// chain, not a commitment to a State's contents, so prior must come from a
// trusted snapshot or replay. For those, prior's merged state hash must
// equal the obstruction's prior_state_hash, else the error is
// [ErrPriorMismatch]; the others (2001, 3001, 1001 and 1003 within the
// evidence) need no prior, and prior may be nil. A 2002 is checked as far as
// evidence can go: e depends on the id and prior does not know it; that no
// event of the batch carried it is what the certificate's signer vouches
// for. Any other failure is [ErrObstructionInvalid].
func (c *Checker) VerifyObstruction(r *Result, prior *State) error {
	if r == nil || r.Kind != KindObstruction || r.Obstruction == nil {
		return obstructionErr("not an obstruction")
	}
	o := r.Obstruction
	if len(o.Evidence) == 0 || len(o.Evidence) != len(o.EvidenceDigests) {
		return obstructionErr("%d evidence events for %d digests", len(o.Evidence), len(o.EvidenceDigests))
	}
	h := digest.New(digest.Event)
	for i := range o.Evidence {
		e := &o.Evidence[i]
		if err := e.Validate(c.limits); err != nil {
			return obstructionErr("evidence %d: %v", i, err)
		}
		if d := eventDigest(h, e, nil); d != o.EvidenceDigests[i] {
			return obstructionErr("evidence %d has digest %v, listed as %v", i, d, o.EvidenceDigests[i])
		}
		if i > 0 {
			prev := &o.Evidence[i-1]
			if c := prev.key().Compare(e.key()); c > 0 || c == 0 && o.EvidenceDigests[i-1].Compare(o.EvidenceDigests[i]) >= 0 {
				return obstructionErr("evidence %d is not after evidence %d in canonical order", i, i-1)
			}
		}
	}
	if !slices.IsSortedFunc(o.ConflictSet, EventID.Compare) || len(o.ConflictSet) == 0 || len(o.ConflictSet) > 2 ||
		len(o.ConflictSet) == 2 && o.ConflictSet[0] == o.ConflictSet[1] {
		return obstructionErr("conflict set %v is not one or two ascending ids", o.ConflictSet)
	}
	if d := Hash(digest.Of(digest.IDs, idsBytes(o.ConflictSet))); d != o.OverlapContextDigest {
		return obstructionErr("overlap context digest %v, recomputed %v", o.OverlapContextDigest, d)
	}
	if w := obstructionWitness(o.Predicate, o.ConflictSet, o.EvidenceDigests); w != r.WitnessHash {
		return obstructionErr("witness hash %v, recomputed %v", r.WitnessHash, w)
	}
	if c.needsHistory(o) && prior.MergedStateHash() != r.PriorStateHash {
		return fmt.Errorf("%w: prior_state_hash %v, trusted state %v", ErrPriorMismatch, r.PriorStateHash, prior.MergedStateHash())
	}
	// The checker, walking the evidence as a batch of its own, must find
	// this violation and cite exactly this evidence for it.
	w := c.evidenceWalker(o.Evidence, prior)
	var found []violation
	if predicates.IsBuiltin(o.Predicate) {
		w.walk(&found)
	} else {
		w.walkDomain(len(o.Evidence), &found)
	}
	for _, v := range found {
		if v.pred == o.Predicate && slices.Equal(w.conflictSet(v), o.ConflictSet) && w.citesAll(v) {
			return nil
		}
	}
	return obstructionErr("no evidence event violates predicate %d with conflict set %v", o.Predicate, o.ConflictSet)
}

// needsHistory reports whether o's violation is judged against the prior
// State rather than within its evidence.
func (c *Checker) needsHistory(o *Obstruction) bool {
	switch o.Predicate {
	case predicates.PayloadHashMatch, predicates.OverlapAgreement:
		return false
	case predicates.LamportMonotonic:
		return len(o.Evidence) == 1
	case predicates.CausalOrder:
		return len(o.Evidence) == 1 && len(o.ConflictSet) == 2
	}
	return true
}

// evidenceWalker returns a walker over evidence, which is in canonical order
// and holds no identical copies, as over a batch of those distinct contents,
// judged against prior: a rule sees the other events of the evidence where
// the checker saw the rest of the batch.
func (c *Checker) evidenceWalker(evidence []Event, prior *State) *walker {
	sc := &scratch{keys: make([]sortKey, len(evidence))}
	known := make([]KnownID, len(evidence))
	for i := range evidence {
		e := &evidence[i]
		sc.keys[i] = newSortKey(e, i, e.PayloadHashOK())
		known[i] = KnownID{ID: e.ID, Lamport: e.Lamport}
	}
	w := &walker{c: c, prior: prior, events: evidence, known: known, sc: sc}
	w.index()
	return w
}

// citesAll reports whether the evidence an obstruction for v cites is every
// content of w's batch. Evidence starts at e or at the other event, so only
// a violation at the first content, or against it, can cite all.
func (w *walker) citesAll(v violation) bool {
	if v.pos != 0 && v.otherPos != 0 {
		return false
	}
	return len(w.evidence(v)) == len(w.known)
}

// InclusionProof proves that an event was one of a batch's distinct
// contents: its digest is leaf LeafIndex of the batch's trace tree of
// TreeSize leaves (RFC 6962 section 2.1.1, with SPEC 4's node hash). Path
// lists the sibling hashes from the leaf up.
type InclusionProof struct {
	EventDigest Hash
	LeafIndex   uint64
	TreeSize    uint64
	Path        []Hash
}

// ProveInclusion returns the proof that the event with eventDigest is one
// of r's members, checkable against r's trace root (a certificate's
// trace_root_hash).
func (r *Result) ProveInclusion(eventDigest Hash) (*InclusionProof, error) {
	leaves := make([]Hash, len(r.Members))
	idx := -1
	for i, m := range r.Members {
		leaves[i] = m.Digest
		if m.Digest == eventDigest && idx < 0 {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: no member has digest %v", ErrNotIncluded, eventDigest)
	}
	return &InclusionProof{
		EventDigest: eventDigest,
		LeafIndex:   uint64(idx),
		TreeSize:    uint64(len(leaves)),
		Path:        merkle.Prove(merkle.NewHasher(), leaves, idx),
	}, nil
}

// Verify checks the proof against a trace root.
func (p *InclusionProof) Verify(traceRoot Hash) error {
	if !merkle.Check(merkle.NewHasher(), p.EventDigest, p.LeafIndex, p.TreeSize, p.Path, traceRoot) {
		return fmt.Errorf("%w: proof for leaf %d of %d does not lead to %v", ErrNotIncluded, p.LeafIndex, p.TreeSize, traceRoot)
	}
	return nil
}

type inclusionProofJSON struct {
	EventDigest Hash   `json:"event_digest"`
	LeafIndex   uint64 `json:"leaf_index"`
	TreeSize    uint64 `json:"tree_size"`
	Path        []Hash `json:"path"`
}

// MarshalJSON writes {"event_digest","leaf_index","tree_size","path"}.
func (p *InclusionProof) MarshalJSON() ([]byte, error) {
	path := p.Path
	if path == nil {
		path = []Hash{}
	}
	return json.Marshal(inclusionProofJSON{p.EventDigest, p.LeafIndex, p.TreeSize, path})
}

// UnmarshalJSON reads the form MarshalJSON writes, refusing unknown fields.
func (p *InclusionProof) UnmarshalJSON(b []byte) error {
	var v inclusionProofJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return fmt.Errorf("omega: inclusion proof: %w", err)
	}
	*p = InclusionProof(v)
	return nil
}

// VerifyCertifiedObstruction re-checks the obstruction a certificate
// states, from the evidence events it names: a third party holding cert
// (already checked with [Verify]) and the events re-runs
// [Checker.VerifyObstruction] on them. The certificate's binding must be
// the checker's, the events must be exactly those whose digests the body
// lists, in order, and prior is needed as VerifyObstruction says.
func (c *Checker) VerifyCertifiedObstruction(cert *Certificate, evidence []Event, prior *State) error {
	if cert == nil || cert.Kind != KindObstruction || cert.Obstruction == nil {
		return obstructionErr("not an obstruction certificate")
	}
	if err := cert.Binding.Check(c.binding); err != nil {
		return err
	}
	o := cert.Obstruction
	r := &Result{
		Kind:           KindObstruction,
		PriorStateHash: cert.PriorStateHash,
		TraceRoot:      cert.TraceRoot,
		WitnessHash:    cert.WitnessHash,
		Obstruction: &Obstruction{
			Predicate:            o.Predicate,
			ConflictSet:          o.ConflictSet,
			OverlapContextDigest: o.OverlapContextDigest,
			Evidence:             evidence,
			EvidenceDigests:      o.EvidenceDigests,
		},
	}
	return c.VerifyObstruction(r, prior)
}

// VerifyCertificate checks the proof against a certificate's trace root;
// for a Merge certificate the tree must also have one leaf per accepted
// event.
func (p *InclusionProof) VerifyCertificate(cert *Certificate) error {
	if cert.Merge != nil && uint64(cert.Merge.AcceptedCount) != p.TreeSize {
		return fmt.Errorf("%w: proof for a tree of %d leaves, certificate accepted %d events", ErrNotIncluded, p.TreeSize, cert.Merge.AcceptedCount)
	}
	return p.Verify(cert.TraceRoot)
}
