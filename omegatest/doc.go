// Package omegatest provides rapid generators and invariant checks for
// property tests of programs that embed omega.
//
// # Generators
//
// The generators follow rapid's naming: each returns a
// *rapid.Generator drawn with Draw inside a rapid property.
//
//   - [EventID], [Hash], [Payload] and [Event] draw single values; an Event is
//     structurally valid but may carry a wrong payload hash.
//   - [State] draws a prior State built with [omega.NewState]: a few known ids,
//     some of them stream heads, and arbitrary hashes.
//   - [ValidBatch] draws a batch that merges against a given prior: several
//     nodes and streams, correct payload hashes, lamports strictly increasing
//     per stream above the prior heads, dependencies only on events of lower
//     lamport (earlier in the batch or known to the prior), fresh ids.
//   - [History] draws a sequence of such batches, each merging against the
//     State the previous ones lead to from genesis.
//   - [Batch] draws an arbitrary batch against a prior: colliding ids,
//     dangling and cyclic dependencies, identical copies, different contents
//     under one id, wrong payload hashes.
//
// [Inject] turns a valid batch into one whose first violation, in the
// evaluation order of SPEC section 4, is a chosen built-in predicate, and
// returns the offending event. [Redeliver] permutes a batch and adds identical
// copies, which must not change any result.
//
// For kernels, [KernelActions] draws runs of actions named after those of
// the formal model (formal/OMEGA.tla): Submits from correct and faulty
// nodes with redeliveries and late dependencies, flushes, snapshots and
// pauses for the pending age; [KernelAction.Apply] runs one. [FrameLog]
// draws event logs and [CertChain] signed certificate chains, Merges and
// Obstructions.
//
// # Checks
//
// [CheckResult] verifies a [omega.Result] against the formulas of SPEC
// section 4: members, trace root, digests, the witness, the conflict set and
// evidence of an Obstruction (re-checked from the evidence and the prior
// alone), the predicates a Merge must satisfy, and the State it yields.
// [View] captures a State as plain values, to show that a prior State is left
// unchanged by Reconcile.
//
// A kernel's run is checked two ways. [CheckTrace] reads the steps the
// kernel reported (KernelConfig.Trace) through the formal model, and names
// the first step no action of the model explains, or the first invariant
// broken. The history checks take what a test saw (a [KernelHistory]: the
// events acknowledged, the decisions reported) and explain the first
// breach of a rule as a [*Breach]: the rule's name in the spec, the
// decision, the events. [NoDoubleAccept], [DepsAcceptedNoLater],
// [LamportMonotonic], [ClockCondition], [ChainLinked] and
// [EventuallyDecided] are the spec's invariants as a history shows them;
// [CheckHistory] runs them all.
//
// # Use
//
// In a downstream repository, a property test draws a prior and a batch,
// runs the program's checker and hands the result to CheckResult:
//
//	func TestReconcileProps(t *testing.T) {
//		rapid.Check(t, func(t *rapid.T) {
//			prior := omegatest.State().Draw(t, "prior")
//			batch := omegatest.ValidBatch(prior).Draw(t, "batch")
//			bad, offending := omegatest.Inject(t, batch, prior, predicates.CausalOrder)
//			out, err := omega.Reconcile(prior, omegatest.Redeliver(t, bad))
//			if err != nil {
//				t.Fatalf("Reconcile: %v", err)
//			}
//			r := out.Result
//			omegatest.CheckResult(t, prior, bad, r)
//			if r.Obstruction == nil || r.Obstruction.Event != offending {
//				t.Fatalf("Reconcile(batch) = %v, want obstruction at %v", r.Kind, offending)
//			}
//		})
//	}
//
// The package imports omega and rapid and is meant to be imported by tests
// only. Generated events own their slices: a caller may change them freely.
package omegatest
