package omegatest_test

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/omegatest"
	"github.com/omega-sheaf/omega/predicates"
)

// recorder is a rapid.TB that records failures instead of reporting them.
type recorder struct{ failures []string }

func (r *recorder) Helper()                   {}
func (r *recorder) Name() string              { return "recorder" }
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Log(...any)                {}
func (r *recorder) Skipf(string, ...any)      {}
func (r *recorder) Skip(...any)               {}
func (r *recorder) SkipNow()                  {}
func (r *recorder) Errorf(f string, _ ...any) { r.failures = append(r.failures, f) }
func (r *recorder) Error(...any)              { r.failures = append(r.failures, "error") }
func (r *recorder) Fatalf(f string, _ ...any) { r.failures = append(r.failures, f) }
func (r *recorder) Fatal(...any)              { r.failures = append(r.failures, "fatal") }
func (r *recorder) FailNow()                  { r.failures = append(r.failures, "fail now") }
func (r *recorder) Fail()                     { r.failures = append(r.failures, "fail") }
func (r *recorder) Failed() bool              { return len(r.failures) > 0 }

// copyResult returns a copy of r that tampering cannot reach r through.
func copyResult(r *omega.Result) *omega.Result {
	c := *r
	c.Members = slices.Clone(r.Members)
	if r.Merge != nil {
		m := *r.Merge
		c.Merge = &m
	}
	if r.Obstruction != nil {
		o := *r.Obstruction
		o.ConflictSet = slices.Clone(o.ConflictSet)
		o.Evidence = slices.Clone(o.Evidence)
		o.EvidenceDigests = slices.Clone(o.EvidenceDigests)
		c.Obstruction = &o
	}
	return &c
}

type tamper struct {
	name    string
	applies func(r *omega.Result) bool
	change  func(r *omega.Result)
}

func always(*omega.Result) bool { return true }

func isMerge(r *omega.Result) bool { return r.Merge != nil }

func isObstruction(r *omega.Result) bool { return r.Obstruction != nil }

var tampers = []tamper{
	{"TraceRoot", always, func(r *omega.Result) { r.TraceRoot[0] ^= 1 }},
	{"WitnessHash", always, func(r *omega.Result) { r.WitnessHash[31] ^= 1 }},
	{"PriorStateHash", always, func(r *omega.Result) { r.PriorStateHash[5] ^= 1 }},
	{"Members digest", func(r *omega.Result) bool { return len(r.Members) > 0 }, func(r *omega.Result) { r.Members[0].Digest[0] ^= 1 }},
	{"Members dropped", func(r *omega.Result) bool { return len(r.Members) > 0 }, func(r *omega.Result) { r.Members = r.Members[1:] }},
	{"Members swapped", func(r *omega.Result) bool { return len(r.Members) > 1 }, func(r *omega.Result) {
		r.Members[0], r.Members[1] = r.Members[1], r.Members[0]
	}},
	{"Kind", always, func(r *omega.Result) { r.Kind = 3 - r.Kind }},
	{"BatchDigest", isMerge, func(r *omega.Result) { r.Merge.BatchDigest[1] ^= 1 }},
	{"MergedStateHash", isMerge, func(r *omega.Result) { r.Merge.MergedStateHash[2] ^= 1 }},
	{"AcceptedIDsDigest", isMerge, func(r *omega.Result) { r.Merge.AcceptedIDsDigest[3] ^= 1 }},
	{"FrontierDigest", isMerge, func(r *omega.Result) { r.Merge.FrontierDigest[4] ^= 1 }},
	{"HeadsDigest", isMerge, func(r *omega.Result) { r.Merge.HeadsDigest[5] ^= 1 }},
	{"Next", func(r *omega.Result) bool { return isMerge(r) && len(r.Members) > 0 }, func(r *omega.Result) { r.Merge.Next = new(omega.State) }},
	{"Next nil", isMerge, func(r *omega.Result) { r.Merge.Next = nil }},
	{"Predicate", isObstruction, func(r *omega.Result) { r.Obstruction.Predicate = 4000 + r.Obstruction.Predicate%7 }},
	{"Event", isObstruction, func(r *omega.Result) { r.Obstruction.Event.Hi ^= 1 << 40 }},
	{"ConflictSet extended", isObstruction, func(r *omega.Result) {
		r.Obstruction.ConflictSet = append(r.Obstruction.ConflictSet, omega.EventID{Hi: ^uint64(0), Lo: ^uint64(0)})
	}},
	{"ConflictSet reversed", func(r *omega.Result) bool { return isObstruction(r) && len(r.Obstruction.ConflictSet) > 1 }, func(r *omega.Result) {
		slices.Reverse(r.Obstruction.ConflictSet)
	}},
	{"OverlapContextDigest", isObstruction, func(r *omega.Result) { r.Obstruction.OverlapContextDigest[6] ^= 1 }},
	{"EvidenceDigests", isObstruction, func(r *omega.Result) { r.Obstruction.EvidenceDigests[0][7] ^= 1 }},
	{"Evidence dropped", isObstruction, func(r *omega.Result) {
		r.Obstruction.Evidence = r.Obstruction.Evidence[1:]
		r.Obstruction.EvidenceDigests = r.Obstruction.EvidenceDigests[1:]
	}},
	{"Evidence reversed", func(r *omega.Result) bool { return isObstruction(r) && len(r.Obstruction.Evidence) > 1 }, func(r *omega.Result) {
		slices.Reverse(r.Obstruction.Evidence)
		slices.Reverse(r.Obstruction.EvidenceDigests)
	}},
	{"Evidence event", isObstruction, func(r *omega.Result) {
		e := r.Obstruction.Evidence[0]
		e.MonoTSNs ^= 1
		r.Obstruction.Evidence[0] = e
	}},
}

// TestCheckResultCatchesTampering: CheckResult accepts omega's results and
// rejects each of them with any one field changed.
func TestCheckResultCatchesTampering(t *testing.T) {
	preds := []predicates.ID{predicates.LamportMonotonic, predicates.CausalOrder, predicates.PayloadHashMatch,
		predicates.DependencyKnown, predicates.OverlapAgreement, predicates.EventUnique}
	rapid.Check(t, func(t *rapid.T) {
		prior := omegatest.State().Draw(t, "prior")
		batch := omegatest.ValidBatch(prior).Draw(t, "batch")
		if rapid.Bool().Draw(t, "obstruct") {
			pred := rapid.SampledFrom(preds).Draw(t, "predicate")
			if omegatest.Injectable(prior, pred) {
				batch, _ = omegatest.Inject(t, batch, prior, pred)
			}
		}
		rOut, err := omega.Reconcile(prior, batch)
		r := rOut.Result
		if err != nil {
			t.Fatalf("Reconcile error %v", err)
		}
		rec := &recorder{}
		omegatest.CheckResult(rec, prior, batch, r)
		if rec.Failed() {
			t.Fatalf("CheckResult(Reconcile(batch)) failed: %v", rec.failures)
		}
		for _, tm := range tampers {
			if !tm.applies(r) {
				continue
			}
			bad := copyResult(r)
			tm.change(bad)
			rec := &recorder{}
			omegatest.CheckResult(rec, prior, batch, bad)
			if !rec.Failed() {
				t.Fatalf("CheckResult(result with %s changed) passed, want a failure", tm.name)
			}
		}
	})
}
