package omega_test

import (
	"encoding/json"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/omegatest"
	"github.com/omega-sheaf/omega/predicates"
)

// Any obstruction Reconcile reports verifies from its evidence and the
// prior; tampering with any part of it, or a different prior, does not.
func TestVerifyObstructionProperty(t *testing.T) {
	c, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(t *rapid.T) {
		prior := omegatest.State().Draw(t, "prior")
		events := omegatest.Batch(prior).Draw(t, "batch")
		out, err := c.Reconcile(prior, events)
		if err != nil {
			t.Fatal(err)
		}
		r := out.Result
		if r.Kind != omega.KindObstruction {
			if err := c.VerifyObstruction(r, prior); !errors.Is(err, omega.ErrObstructionInvalid) {
				t.Fatalf("VerifyObstruction(merge) = %v, want ErrObstructionInvalid", err)
			}
			return
		}
		if err := c.VerifyObstruction(r, prior); err != nil {
			t.Fatalf("VerifyObstruction(%d at %v) = %v, want nil", r.Obstruction.Predicate, r.Obstruction.Event, err)
		}
		err = c.VerifyObstruction(r, new(omega.State))
		switch o := r.Obstruction; {
		case o.Predicate == predicates.PayloadHashMatch || o.Predicate == predicates.OverlapAgreement ||
			len(o.Evidence) == 2 && (o.Predicate == predicates.LamportMonotonic || o.Predicate == predicates.CausalOrder),
			o.Predicate == predicates.CausalOrder && len(o.ConflictSet) == 1: // a self-dependency
			if err != nil {
				t.Fatalf("VerifyObstruction(%d within its evidence, another prior) = %v, want nil", o.Predicate, err)
			}
		case prior.MergedStateHash() != (omega.Hash{}) && !errors.Is(err, omega.ErrPriorMismatch):
			t.Fatalf("VerifyObstruction(%d with another prior) = %v, want ErrPriorMismatch", o.Predicate, err)
		}
		tampered := []func(o *omega.Obstruction, r *omega.Result){
			func(o *omega.Obstruction, r *omega.Result) { r.WitnessHash[0] ^= 1 },
			func(o *omega.Obstruction, r *omega.Result) { o.OverlapContextDigest[31] ^= 1 },
			func(o *omega.Obstruction, r *omega.Result) { o.EvidenceDigests[0][5] ^= 1 },
			func(o *omega.Obstruction, r *omega.Result) { o.Evidence[0].MonoTSNs++ },
			func(o *omega.Obstruction, r *omega.Result) { o.ConflictSet[0].Lo++ },
			func(o *omega.Obstruction, r *omega.Result) { o.Predicate = predicates.DependencyKnown + o.Predicate%2 },
			func(o *omega.Obstruction, r *omega.Result) {
				o.Evidence = o.Evidence[:0]
				o.EvidenceDigests = o.EvidenceDigests[:0]
			},
		}
		i := rapid.IntRange(0, len(tampered)-1).Draw(t, "tamper")
		cp := *r
		o := *r.Obstruction
		o.ConflictSet = append([]omega.EventID(nil), o.ConflictSet...)
		o.EvidenceDigests = append([]omega.Hash(nil), o.EvidenceDigests...)
		o.Evidence = append([]omega.Event(nil), o.Evidence...)
		cp.Obstruction = &o
		tampered[i](&o, &cp)
		if o.Predicate == r.Obstruction.Predicate && i == 5 {
			return
		}
		if err := c.VerifyObstruction(&cp, prior); !errors.Is(err, omega.ErrObstructionInvalid) {
			t.Fatalf("VerifyObstruction after tamper %d = %v, want ErrObstructionInvalid", i, err)
		}
	})
}

// Every member of a result has an inclusion proof that checks against the
// trace root and fails against anything else.
func TestInclusionProofProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prior := omegatest.State().Draw(t, "prior")
		events := omegatest.Batch(prior).Draw(t, "batch")
		rOut, err := omega.Reconcile(prior, events)
		r := rOut.Result
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range r.Members {
			p, err := r.ProveInclusion(m.Digest)
			if err != nil {
				t.Fatalf("ProveInclusion(member %d) = %v", i, err)
			}
			if p.LeafIndex != uint64(i) || p.TreeSize != uint64(len(r.Members)) {
				t.Fatalf("ProveInclusion(member %d) = leaf %d of %d, want %d of %d", i, p.LeafIndex, p.TreeSize, i, len(r.Members))
			}
			if err := p.Verify(r.TraceRoot); err != nil {
				t.Fatalf("Verify(member %d) = %v", i, err)
			}
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back omega.InclusionProof
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s) = %v", b, err)
			}
			if err := back.Verify(r.TraceRoot); err != nil {
				t.Fatalf("Verify after a JSON round trip (%s) = %v", b, err)
			}
			bad := r.TraceRoot
			bad[0] ^= 1
			if err := p.Verify(bad); !errors.Is(err, omega.ErrNotIncluded) {
				t.Fatalf("Verify against another root = %v, want ErrNotIncluded", err)
			}
			if len(p.Path) > 0 {
				p.Path[len(p.Path)-1][3] ^= 1
				if err := p.Verify(r.TraceRoot); !errors.Is(err, omega.ErrNotIncluded) {
					t.Fatalf("Verify with a flipped path hash = %v, want ErrNotIncluded", err)
				}
			}
		}
		if _, err := r.ProveInclusion(omega.Hash{1}); !errors.Is(err, omega.ErrNotIncluded) {
			t.Fatalf("ProveInclusion(non-member) = %v, want ErrNotIncluded", err)
		}
	})
}
