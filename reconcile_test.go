package omega

import (
	"sync"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

type readsPrior struct{ entered chan struct{} }

func (readsPrior) Entry() predicates.Entry {
	return predicates.Entry{ID: 4001, Name: "reads_prior", Arity: 1, SemanticsRef: "test://reads_prior/v1"}
}

func (p readsPrior) Violated(e *Event, prior *State) bool {
	select {
	case p.entered <- struct{}{}:
		time.Sleep(20 * time.Millisecond) // let a concurrent merge queue for the lock
	default:
	}
	_, ok := prior.Lamport(ID64(1))
	return !ok
}

func simpleEvent(id, lamport uint64) Event {
	return Event{ID: ID64(id), NodeID: uint32(id), Lamport: lamport, PayloadHash: digest.Plain(nil)}
}

// A domain predicate may call the prior State's methods while another
// goroutine merges from the same prior: neither may block the other.
func TestDomainPredicateReadsPriorDuringConcurrentMerge(t *testing.T) {
	r, err := Reconcile(nil, []Event{simpleEvent(1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	prior := r.Merge.Next
	pred := readsPrior{entered: make(chan struct{}, 1)}
	c, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{pred}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Result, 1)
	go func() {
		out, err := c.Reconcile(prior, []Event{simpleEvent(2, 2)})
		if err != nil {
			t.Error(err)
		}
		done <- out.Result
	}()
	<-pred.entered
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := Reconcile(prior, []Event{simpleEvent(3, 3)}); err != nil {
			t.Error(err)
		}
	})
	select {
	case got := <-done:
		if got == nil || got.Kind != KindMerge {
			t.Errorf("Reconcile with a prior-reading domain predicate = %v, want a merge", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reconcile with a prior-reading domain predicate deadlocked beside a concurrent merge")
	}
	wg.Wait()
}
