package omega

import (
	"context"
	"errors"
	"testing"
)

// A holder of the obstruction certificate of SPEC's vector and its evidence
// events re-checks the violation; a holder of one merged event proves it
// was in the certified batch.
func TestCertifiedEvidenceAndInclusion(t *testing.T) {
	vs := loadSpecVectors(t)
	certs := vectorCerts(t)
	merge, obst := certs[0], certs[1]
	if _, err := VerifyChain(context.Background(), certs, vectorRing(), DefaultBinding(), nil); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}

	mergeResult := reconcileVector(t, vs, vs["merge_genesis_3_events"])
	prior := mergeResult.Merge.Next
	obstResult := reconcileVector(t, vs, vs["obstruction_1001"])
	evidence := obstResult.Obstruction.Evidence
	if err := c.VerifyCertifiedObstruction(obst, evidence, prior); err != nil {
		t.Fatalf("VerifyCertifiedObstruction(vector) = %v, want nil", err)
	}
	if err := c.VerifyCertifiedObstruction(obst, evidence, nil); err != nil {
		t.Fatalf("VerifyCertifiedObstruction(1001 within its evidence, no prior) = %v, want nil", err)
	}
	tampered := cloneEvent(&evidence[0])
	tampered.MonoTSNs++
	if err := c.VerifyCertifiedObstruction(obst, []Event{tampered, evidence[1]}, prior); !errors.Is(err, ErrObstructionInvalid) {
		t.Errorf("VerifyCertifiedObstruction(altered evidence) = %v, want ErrObstructionInvalid", err)
	}
	if err := c.VerifyCertifiedObstruction(obst, evidence[:1], prior); !errors.Is(err, ErrObstructionInvalid) {
		t.Errorf("VerifyCertifiedObstruction(missing evidence) = %v, want ErrObstructionInvalid", err)
	}
	if err := c.VerifyCertifiedObstruction(merge, nil, prior); !errors.Is(err, ErrObstructionInvalid) {
		t.Errorf("VerifyCertifiedObstruction(merge certificate) = %v, want ErrObstructionInvalid", err)
	}
	other, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{oddLamport{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.VerifyCertifiedObstruction(obst, evidence, prior); !errors.Is(err, ErrBindingMismatch) {
		t.Errorf("VerifyCertifiedObstruction under another catalog = %v, want ErrBindingMismatch", err)
	}

	for i, m := range mergeResult.Members {
		p, err := mergeResult.ProveInclusion(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyCertificate(merge); err != nil {
			t.Errorf("member %d: VerifyCertificate(merge certificate) = %v, want nil", i, err)
		}
		if err := p.VerifyCertificate(obst); !errors.Is(err, ErrNotIncluded) {
			t.Errorf("member %d: VerifyCertificate(another batch's certificate) = %v, want ErrNotIncluded", i, err)
		}
		p.TreeSize++
		if err := p.VerifyCertificate(merge); !errors.Is(err, ErrNotIncluded) {
			t.Errorf("member %d: VerifyCertificate with a wrong tree size = %v, want ErrNotIncluded", i, err)
		}
	}
}
