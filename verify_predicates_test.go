package omega

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// For every predicate the checker can report (SPEC 4), the obstruction
// Reconcile makes verifies from its evidence and the trusted prior, and one
// whose predicate, conflict set or evidence is altered does not. Every
// altered obstruction is sealed again (evidence digests, canonical order,
// overlap context digest, witness hash), so that VerifyObstruction must
// refuse it on the predicate's rule, not on a stale hash.
func TestVerifyObstructionEachPredicate(t *testing.T) {
	c, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{oddLamport{}}})
	if err != nil {
		t.Fatal(err)
	}
	// The prior knows ids 1 and 2, the heads of streams (1, 1) at lamport
	// 5 and (2, 1) at lamport 7.
	genesis, err := c.Reconcile(nil, []Event{goldenEvent(1, 1, 1, 5, "head-1"), goldenEvent(2, 2, 1, 7, "head-2")})
	if err != nil || genesis.Result.Kind != KindMerge {
		t.Fatalf("Reconcile(genesis batch) = %v, %v", genesis.Result, err)
	}
	prior := genesis.Result.Merge.Next

	// Every batch also holds two bystanders that violate nothing, one
	// before and one after every other event in canonical order.
	bystander := goldenEvent(50, 9, 9, 1, "bystander")
	late := goldenEvent(51, 9, 9, 100, "late bystander")
	badHash := goldenEvent(10, 3, 1, 2, "payload")
	badHash.PayloadHash[0] ^= 1
	odd := goldenEvent(20, 3, 1, 3, "odd")
	odd.Kind = 7
	cases := []struct {
		name     string
		pred     predicates.ID
		conflict []uint64
		batch    []Event
	}{
		{"2001", predicates.PayloadHashMatch, []uint64{10}, []Event{badHash}},
		{"3001", predicates.OverlapAgreement, []uint64{11}, []Event{goldenEvent(11, 3, 1, 2, "one"), goldenEvent(11, 4, 1, 3, "two")}},
		{"1002", predicates.EventUnique, []uint64{1}, []Event{goldenEvent(1, 3, 1, 2, "again")}},
		{"1001 within the batch", predicates.LamportMonotonic, []uint64{12, 13}, []Event{goldenEvent(12, 3, 1, 4, "a"), goldenEvent(13, 3, 1, 4, "b")}},
		{"1001 against a prior head", predicates.LamportMonotonic, []uint64{1, 14}, []Event{goldenEvent(14, 1, 1, 5, "behind")}},
		{"1003 within the batch", predicates.CausalOrder, []uint64{15, 16}, []Event{goldenEvent(15, 3, 1, 3, "early", 16), goldenEvent(16, 4, 1, 4, "late")}},
		{"1003 against the prior", predicates.CausalOrder, []uint64{2, 17}, []Event{goldenEvent(17, 3, 1, 6, "before", 1, 2)}},
		{"1003 on itself", predicates.CausalOrder, []uint64{18}, []Event{goldenEvent(18, 3, 1, 2, "self", 18)}},
		{"2002", predicates.DependencyKnown, []uint64{19, 99}, []Event{goldenEvent(19, 3, 1, 6, "orphan", 1, 99)}},
		{"domain", 4100, []uint64{20}, []Event{odd}},
	}
	preds := []predicates.ID{predicates.LamportMonotonic, predicates.EventUnique, predicates.CausalOrder,
		predicates.PayloadHashMatch, predicates.DependencyKnown, predicates.OverlapAgreement, 4100}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Reconcile(prior, append([]Event{bystander, late}, tc.batch...))
			if err != nil {
				t.Fatal(err)
			}
			r := out.Result
			var want []EventID
			for _, id := range tc.conflict {
				want = append(want, ID64(id))
			}
			if r.Kind != KindObstruction || r.Obstruction.Predicate != tc.pred || !slices.Equal(r.Obstruction.ConflictSet, want) {
				t.Fatalf("Reconcile = %v %+v, want predicate %d with conflict set %v", r.Kind, r.Obstruction, tc.pred, want)
			}
			if err := c.VerifyObstruction(r, prior); err != nil {
				t.Fatalf("VerifyObstruction = %v, want nil", err)
			}
			o := r.Obstruction
			if again := reseal(r, o.Predicate, o.ConflictSet, o.Evidence); again.WitnessHash != r.WitnessHash ||
				again.Obstruction.OverlapContextDigest != o.OverlapContextDigest || !slices.Equal(again.Obstruction.EvidenceDigests, o.EvidenceDigests) {
				t.Fatal("sealing the obstruction again changes it: the altered ones below would fail on a hash")
			}

			altered := map[string]*Result{}
			for _, p := range preds {
				if p != o.Predicate {
					altered[fmt.Sprintf("predicate %d", p)] = reseal(r, p, o.ConflictSet, o.Evidence)
				}
			}
			e := o.Event
			if len(o.ConflictSet) == 2 {
				altered["conflict set without the other id"] = reseal(r, o.Predicate, []EventID{e}, o.Evidence)
			} else {
				altered["conflict set with the bystander"] = reseal(r, o.Predicate, []EventID{bystander.ID}, o.Evidence)
			}
			altered["conflict set with an unrelated id"] = reseal(r, o.Predicate, []EventID{e, ID64(98)}, o.Evidence)
			altered["evidence with the bystander"] = reseal(r, o.Predicate, o.ConflictSet, append(slices.Clone(o.Evidence), bystander))
			altered["evidence with the late bystander"] = reseal(r, o.Predicate, o.ConflictSet, append(slices.Clone(o.Evidence), late))
			for i := range o.Evidence {
				rest := slices.Delete(slices.Clone(o.Evidence), i, i+1)
				if len(rest) > 0 {
					altered[fmt.Sprintf("evidence without event %d", i)] = reseal(r, o.Predicate, o.ConflictSet, rest)
				}
				if o.Evidence[i].ID == e {
					altered[fmt.Sprintf("evidence with the bystander for event %d", i)] = reseal(r, o.Predicate, o.ConflictSet, append(rest, bystander))
				}
			}
			for name, a := range altered {
				if err := c.VerifyObstruction(a, prior); !errors.Is(err, ErrObstructionInvalid) {
					t.Errorf("VerifyObstruction(%s) = %v, want ErrObstructionInvalid", name, err)
				}
			}
		})
	}
}

// reseal returns r's obstruction with the predicate, conflict set and
// evidence given and every hash that covers them recomputed: the
// evidence in canonical order with its digests, the overlap context digest
// and the witness hash.
func reseal(r *Result, pred predicates.ID, conflict []EventID, evidence []Event) *Result {
	type sealed struct {
		e Event
		d Hash
	}
	h := digest.New(digest.Event)
	ev := make([]sealed, len(evidence))
	for i := range evidence {
		ev[i] = sealed{cloneEvent(&evidence[i]), eventDigest(h, &evidence[i], nil)}
	}
	slices.SortFunc(ev, func(a, b sealed) int { // canonical order
		return cmp.Or(cmp.Compare(a.e.Lamport, b.e.Lamport), cmp.Compare(a.e.NodeID, b.e.NodeID),
			cmp.Compare(a.e.StreamID, b.e.StreamID), a.e.ID.Compare(b.e.ID), a.d.Compare(b.d))
	})
	cs := slices.Clone(conflict)
	slices.SortFunc(cs, EventID.Compare)
	cs = slices.Compact(cs)
	o := &Obstruction{
		Predicate:            pred,
		Event:                r.Obstruction.Event,
		ConflictSet:          cs,
		OverlapContextDigest: digest.Of(digest.IDs, idsBytes(cs)),
	}
	for _, s := range ev {
		o.Evidence = append(o.Evidence, s.e)
		o.EvidenceDigests = append(o.EvidenceDigests, s.d)
	}
	return &Result{
		Kind:           KindObstruction,
		PriorStateHash: r.PriorStateHash,
		TraceRoot:      r.TraceRoot,
		WitnessHash:    obstructionWitness(pred, cs, o.EvidenceDigests),
		Obstruction:    o,
	}
}
