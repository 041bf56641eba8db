package omegatest_test

import (
	"fmt"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/omegatest"
	"github.com/omega-sheaf/omega/predicates"
)

// A property draws a prior and a valid batch, injects one violation and
// expects Reconcile to report it. Inside a test the body runs under
// rapid.Check; here a generator's Example runs it once.
func Example() {
	property := rapid.Custom(func(t *rapid.T) string {
		prior := omegatest.State().Draw(t, "prior")
		batch := omegatest.ValidBatch(prior).Draw(t, "batch")
		bad, offending := omegatest.Inject(t, batch, prior, predicates.DependencyKnown)
		out, err := omega.Reconcile(prior, omegatest.Redeliver(t, bad))
		if err != nil {
			return err.Error()
		}
		r := out.Result
		omegatest.CheckResult(t, prior, bad, r)
		o := r.Obstruction
		return fmt.Sprint(r.Kind, " ", o.Predicate, " ", o.Event == offending)
	})
	fmt.Println(property.Example(1))
	// Output: obstruction 2002 true
}
