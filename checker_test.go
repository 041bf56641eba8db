package omega

import (
	"errors"
	"math"
	"testing"

	"github.com/omega-sheaf/omega/predicates"
)

func TestOutputValidateRefusesAnotherBinding(t *testing.T) {
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Reconcile(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Validate(DefaultBinding()); err != nil {
		t.Fatalf("Validate(DefaultBinding()) = %v, want nil", err)
	}
	for name, mutate := range map[string]func(*Binding){
		"checker version": func(b *Binding) { b.CheckerVersion[2]++ },
		"schema version":  func(b *Binding) { b.SchemaVersion++ },
		"schema hash":     func(b *Binding) { b.SchemaHash[0] ^= 1 },
		"catalog hash":    func(b *Binding) { b.CatalogHash[31] ^= 1 },
	} {
		want := DefaultBinding()
		mutate(&want)
		err := out.Validate(want)
		var be *BindingError
		if !errors.Is(err, ErrBindingMismatch) || !errors.As(err, &be) || be.Want != want || be.Got != out.Binding {
			t.Errorf("Validate(binding with another %s) = %v, want a *BindingError", name, err)
		}
		if want.Digest() == DefaultBinding().Digest() {
			t.Errorf("binding digest ignores the %s", name)
		}
	}
}

func TestNewCheckerDomainBinding(t *testing.T) {
	c, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{oddLamport{}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Binding().CatalogHash == DefaultBinding().CatalogHash {
		t.Error("a domain predicate left the catalog hash unchanged")
	}
	if _, ok := c.Catalog().Lookup(4100); !ok {
		t.Error("Catalog().Lookup(4100) = false, want the domain entry")
	}
	for name, opts := range map[string]*CheckerOptions{
		"nil predicate": {Domain: []DomainPredicate{nil}},
		"twice":         {Domain: []DomainPredicate{oddLamport{}, oddLamport{}}},
		"builtin id":    {Domain: []DomainPredicate{builtinID{}}},
	} {
		if _, err := NewChecker(opts); !errors.Is(err, predicates.ErrInvalidEntry) {
			t.Errorf("NewChecker(%s) = %v, want ErrInvalidEntry", name, err)
		}
	}
}

type builtinID struct{}

func (builtinID) Entry() predicates.Entry      { return predicates.Entry{ID: 1001, Name: "shadow"} }
func (builtinID) Violated(*Event, *State) bool { return false }

func TestReconcileRefusesBadInput(t *testing.T) {
	big := simpleEvent(1, 1)
	big.Payload = make([]byte, 11)
	c, err := NewChecker(&CheckerOptions{Limits: Limits{MaxPayload: 10}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Reconcile(nil, []Event{simpleEvent(2, 1), big})
	var fe *EventError
	if !errors.As(err, &fe) || fe.Index != 1 || fe.Field != "payload_len" {
		t.Errorf("Reconcile(oversized payload at 1) = %v, want an EventError at index 1, payload_len", err)
	}
}

func TestReconcileRefusesOversizedBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes a million events; skipped in -short runs")
	}
	events := benchEvents(MaxBatchContents + 1)
	if _, err := Reconcile(nil, events); !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("Reconcile(%d distinct contents) = %v, want ErrBatchTooLarge", len(events), err)
	}
	// Identical copies do not count against the limit.
	rOut, err := Reconcile(nil, append(events[:MaxBatchContents:MaxBatchContents], events[0]))
	r := rOut.Result
	if err != nil || r.Kind != KindMerge || len(r.Members) != MaxBatchContents {
		t.Errorf("Reconcile(%d contents and a copy) = %v, %v; want a merge of %d", MaxBatchContents, r, err, MaxBatchContents)
	}
}

// A worker count out of range is refused, not allocated or quietly
// replaced; 0 is GOMAXPROCS.
func TestNewCheckerWorkers(t *testing.T) {
	for _, tc := range []struct {
		workers int
		ok      bool
	}{{-1, false}, {0, true}, {1, true}, {MaxWorkers, true}, {MaxWorkers + 1, false}, {math.MaxInt, false}} {
		c, err := NewChecker(&CheckerOptions{Workers: tc.workers})
		if (err == nil) != tc.ok {
			t.Errorf("NewChecker(Workers: %d) = %v, want ok %v", tc.workers, err, tc.ok)
		}
		if err == nil && tc.workers > 0 && c.workers != tc.workers {
			t.Errorf("NewChecker(Workers: %d) runs on %d workers", tc.workers, c.workers)
		}
	}
}
