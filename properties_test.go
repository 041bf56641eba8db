package omega_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/omegatest"
	"github.com/omega-sheaf/omega/predicates"
)

var builtins = []predicates.ID{
	predicates.LamportMonotonic, predicates.EventUnique, predicates.CausalOrder,
	predicates.PayloadHashMatch, predicates.DependencyKnown, predicates.OverlapAgreement,
}

// priorGen draws a prior: a random State, or the State a generated history
// of merges reaches from genesis.
func priorGen() *rapid.Generator[*omega.State] {
	return rapid.OneOf(omegatest.State(), rapid.Custom(func(t *rapid.T) *omega.State {
		s := new(omega.State)
		for _, b := range omegatest.History().Draw(t, "history") {
			r := mustReconcile(t, s, b)
			if r.Kind != omega.KindMerge {
				t.Fatalf("Reconcile(history batch) = %v, want merge", r.Kind)
			}
			s = r.Merge.Next
		}
		return s
	}))
}

func mustReconcile(t rapid.TB, prior *omega.State, batch []omega.Event) *omega.Result {
	t.Helper()
	rOut, err := omega.Reconcile(prior, batch)
	r := rOut.Result
	if err != nil {
		t.Fatalf("Reconcile(%d events) error %v, want a result", len(batch), err)
	}
	return r
}

func resultJSON(t rapid.TB, r *omega.Result) []byte {
	t.Helper()
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON() error %v", err)
	}
	return b
}

// TestPropOrderAndCopies: the result depends only on the prior and the set
// of distinct contents, never on input order or identical copies.
func TestPropOrderAndCopies(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prior := priorGen().Draw(t, "prior")
		batch := rapid.OneOf(omegatest.ValidBatch(prior), omegatest.Batch(prior),
			rapid.SliceOfN(omegatest.Event(), 0, 6)).Draw(t, "batch")
		want := mustReconcile(t, prior, batch)
		again := omegatest.Redeliver(t, batch)
		got := mustReconcile(t, prior, again)
		if g, w := resultJSON(t, got), resultJSON(t, want); !bytes.Equal(g, w) {
			t.Fatalf("Reconcile(redelivered) =\n%s\nwant\n%s", g, w)
		}
		if !slices.Equal(got.Members, want.Members) {
			t.Fatalf("Reconcile(redelivered).Members = %v, want %v", got.Members, want.Members)
		}
		if want.Kind == omega.KindMerge {
			if g, w := omegatest.View(got.Merge.Next), omegatest.View(want.Merge.Next); !g.Equal(w) {
				t.Fatalf("Reconcile(redelivered).Merge.Next = %+v, want %+v", g, w)
			}
		}
		omegatest.CheckResult(t, prior, again, got)

		// The result holds copies: scribbling over the input changes
		// nothing in it.
		js := resultJSON(t, got)
		for i := range again {
			clear(again[i].Payload)
			for j := range again[i].Deps {
				again[i].Deps[j] = omega.ID64(99)
			}
		}
		if after := resultJSON(t, got); !bytes.Equal(after, js) {
			t.Fatalf("Reconcile result after changing its input =\n%s\nwant\n%s", after, js)
		}
	})
}

// TestPropInjected: one violation injected into a valid batch is the
// obstruction reported, at the offending event, whatever the order.
func TestPropInjected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prior := priorGen().Draw(t, "prior")
		var preds []predicates.ID
		for _, p := range builtins {
			if omegatest.Injectable(prior, p) {
				preds = append(preds, p)
			}
		}
		pred := rapid.SampledFrom(preds).Draw(t, "predicate")
		valid := omegatest.ValidBatch(prior).Draw(t, "batch")
		if r := mustReconcile(t, prior, valid); r.Kind != omega.KindMerge {
			t.Fatalf("Reconcile(valid batch) = %v %d, want merge", r.Kind, r.Obstruction.Predicate)
		}
		bad, offending := omegatest.Inject(t, valid, prior, pred)
		batch := omegatest.Redeliver(t, bad)
		r := mustReconcile(t, prior, batch)
		omegatest.CheckResult(t, prior, batch, r)
		if r.Kind != omega.KindObstruction || r.Obstruction.Predicate != pred || r.Obstruction.Event != offending {
			var got any = r.Kind
			if r.Obstruction != nil {
				got = []any{r.Obstruction.Predicate, r.Obstruction.Event}
			}
			t.Fatalf("Reconcile(batch with %d injected) = %v, want obstruction %d at %v", pred, got, pred, offending)
		}
		vs, err := omega.NewChecker(nil)
		if err != nil {
			t.Fatal(err)
		}
		all, err := vs.Diagnose(prior, batch)
		if err != nil {
			t.Fatalf("Diagnose error %v", err)
		}
		if pred != predicates.OverlapAgreement && len(all) != 1 {
			t.Fatalf("Diagnose(batch with %d injected) = %v, want one violation", pred, all)
		}
	})
}

// TestPropHistory: a generated history merges batch after batch from
// genesis, and no Reconcile changes its prior, forks included.
func TestPropHistory(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := new(omega.State)
		total := 0
		for i, b := range omegatest.History().Draw(t, "history") {
			before := omegatest.View(s)

			// A fork first: another batch from the same prior.
			other := omegatest.ValidBatch(s).Draw(t, "fork")
			fork := mustReconcile(t, s, other)
			omegatest.CheckResult(t, s, other, fork)

			r := mustReconcile(t, s, omegatest.Redeliver(t, b))
			if i == 0 {
				// A nil prior is the genesis State.
				if g, w := resultJSON(t, mustReconcile(t, nil, b)), resultJSON(t, r); !bytes.Equal(g, w) {
					t.Fatalf("Reconcile(nil, batch) =\n%s\nwant Reconcile(&State{}, batch)\n%s", g, w)
				}
			}
			if r.Kind != omega.KindMerge || fork.Kind != omega.KindMerge {
				t.Fatalf("Reconcile(history batch %d) = %v, fork %v; want merges", i, r.Kind, fork.Kind)
			}
			omegatest.CheckResult(t, s, b, r)
			forkView := omegatest.View(fork.Merge.Next)

			// An obstruction from the same prior yields nothing and
			// changes nothing.
			bad, _ := omegatest.Inject(t, b, s, predicates.DependencyKnown)
			if ro := mustReconcile(t, s, bad); ro.Kind != omega.KindObstruction || ro.Merge != nil {
				t.Fatalf("Reconcile(injected 2002) = %v with Merge %v, want obstruction alone", ro.Kind, ro.Merge != nil)
			}

			if after := omegatest.View(s); !after.Equal(before) {
				t.Fatalf("View(prior) after Reconcile = %+v, want unchanged %+v", after, before)
			}
			// Extending the main line must not show through the fork.
			next := r.Merge.Next
			if more := omegatest.ValidBatch(next).Draw(t, "extension"); len(more) > 0 {
				if rr := mustReconcile(t, next, more); rr.Kind != omega.KindMerge {
					t.Fatalf("Reconcile(extension) = %v, want merge", rr.Kind)
				}
			}
			if got := omegatest.View(fork.Merge.Next); !got.Equal(forkView) {
				t.Fatalf("View(fork) after extending the main line = %+v, want %+v", got, forkView)
			}
			total += len(b)
			s = next
		}
		if s.KnownCount() != total {
			t.Fatalf("KnownCount() after history = %d, want %d", s.KnownCount(), total)
		}
	})
}

// TestPropStates runs merges and obstructions from any State reached so
// far, forks included, and checks after every step that no State changed.
func TestPropStates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type known struct {
			s    *omega.State
			view omegatest.StateView
		}
		states := []known{{new(omega.State), omegatest.View(new(omega.State))}}
		pick := func(t *rapid.T) *omega.State {
			return states[rapid.IntRange(0, len(states)-1).Draw(t, "from")].s
		}
		t.Repeat(map[string]func(*rapid.T){
			"merge": func(t *rapid.T) {
				prior := pick(t)
				batch := omegatest.ValidBatch(prior).Draw(t, "batch")
				r := mustReconcile(t, prior, batch)
				if r.Kind != omega.KindMerge {
					t.Fatalf("Reconcile(valid batch) = %v, want merge", r.Kind)
				}
				omegatest.CheckResult(t, prior, batch, r)
				states = append(states, known{r.Merge.Next, omegatest.View(r.Merge.Next)})
			},
			"obstruct": func(t *rapid.T) {
				prior := pick(t)
				pred := rapid.SampledFrom(builtins).Draw(t, "predicate")
				if !omegatest.Injectable(prior, pred) {
					pred = predicates.CausalOrder
				}
				bad, offending := omegatest.Inject(t, omegatest.ValidBatch(prior).Draw(t, "batch"), prior, pred)
				r := mustReconcile(t, prior, bad)
				omegatest.CheckResult(t, prior, bad, r)
				if r.Kind != omega.KindObstruction || r.Obstruction.Predicate != pred || r.Obstruction.Event != offending {
					t.Fatalf("Reconcile(batch with %d injected) = %v, want obstruction at %v", pred, r.Kind, offending)
				}
			},
			"": func(t *rapid.T) {
				for i, k := range states {
					if got := omegatest.View(k.s); !got.Equal(k.view) {
						t.Fatalf("View(state %d) = %+v, want unchanged %+v", i, got, k.view)
					}
				}
			},
		})
	})
}

// TestPropConcurrentForks reconciles several batches from one prior at
// once: every fork must come out as it would alone.
func TestPropConcurrentForks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prior := priorGen().Draw(t, "prior")
		before := omegatest.View(prior)
		batches := make([][]omega.Event, rapid.IntRange(2, 4).Draw(t, "forks"))
		for i := range batches {
			batches[i] = omegatest.ValidBatch(prior).Draw(t, "batch")
		}
		results := make([]*omega.Result, len(batches))
		errs := make([]error, len(batches))
		var wg sync.WaitGroup
		for i := range batches {
			wg.Go(func() {
				out, err := omega.Reconcile(prior, batches[i])
				results[i], errs[i] = out.Result, err
			})
		}
		wg.Wait()
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("Reconcile(fork %d) error %v", i, errs[i])
			}
			omegatest.CheckResult(t, prior, batches[i], r)
		}
		if after := omegatest.View(prior); !after.Equal(before) {
			t.Fatalf("View(prior) after concurrent forks = %+v, want unchanged %+v", after, before)
		}
	})
}

// callLog records a domain predicate's calls.
type callLog struct {
	mu    sync.Mutex
	calls []omega.Event
	prior []*omega.State
}

func (l *callLog) record(e *omega.Event, prior *omega.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, *e)
	l.prior = append(l.prior, prior)
}

// TestPropDomainSeesEventAndPrior: a domain predicate is called with the
// batch's distinct contents and the prior State, and its obstruction
// re-checks from the evidence alone.
func TestPropDomainSeesEventAndPrior(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prior := priorGen().Draw(t, "prior")
		batch := rapid.OneOf(omegatest.ValidBatch(prior), omegatest.Batch(prior)).Draw(t, "batch")
		mask := rapid.Uint16Range(1, 7).Draw(t, "mask")
		log := &callLog{}
		pred := omegatest.Domain(
			predicates.Entry{ID: 4321, Name: "kind_mask", Arity: 1, SemanticsRef: "test://kind_mask/v1"},
			func(e *omega.Event, p *omega.State) bool {
				log.record(e, p)
				// Reading the prior is what domain predicates are for.
				_, hasHead := p.Head(e.NodeID, e.StreamID)
				_, known := p.Lamport(e.ID)
				return e.Kind&mask == mask || (hasHead && known && mask == 7)
			})
		c, err := omega.NewChecker(&omega.CheckerOptions{Domain: []omega.DomainPredicate{pred}})
		if err != nil {
			t.Fatalf("NewChecker(domain 4321) error %v", err)
		}
		out, err := c.Reconcile(prior, batch)
		if err != nil {
			t.Fatalf("Reconcile error %v", err)
		}
		r := out.Result
		omegatest.CheckResult(t, prior, batch, r)

		digests := map[omega.Hash]bool{}
		for _, m := range r.Members {
			digests[m.Digest] = true
		}
		for i := range log.calls {
			if d := log.calls[i].Digest(); !digests[d] {
				t.Fatalf("domain predicate called with %v (digest %v), not a distinct content of the batch", log.calls[i].ID, d)
			}
			if p := log.prior[i]; p != prior && !omegatest.View(p).Equal(omegatest.View(prior)) {
				t.Fatalf("domain predicate called with a prior State %+v, want the prior %+v", omegatest.View(p), omegatest.View(prior))
			}
		}
		if o := r.Obstruction; o != nil && o.Predicate == 4321 {
			if len(o.Evidence) != 1 || !pred.Violated(&o.Evidence[0], prior) {
				t.Fatalf("Reconcile = 4321 at %v with evidence %v, which does not re-check", o.Event, o.Evidence)
			}
		}
	})
}

// alwaysViolated is a domain predicate that fails at every event.
func alwaysViolated(id predicates.ID) omega.DomainPredicate {
	return omegatest.Domain(predicates.Entry{ID: id, Name: "always", Arity: 1, SemanticsRef: "test://always/v1"},
		func(*omega.Event, *omega.State) bool { return true })
}

// TestPropDomainAfterBuiltins: at the first distinct content, the built-ins
// are evaluated before any domain predicate, and domain predicates in
// ascending id whatever the order they were given in.
func TestPropDomainAfterBuiltins(t *testing.T) {
	plain, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Given in descending order; 4100 must be evaluated first.
	c, err := omega.NewChecker(&omega.CheckerOptions{Domain: []omega.DomainPredicate{alwaysViolated(4900), alwaysViolated(4100)}})
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(t *rapid.T) {
		prior := priorGen().Draw(t, "prior")
		batch := rapid.OneOf(omegatest.ValidBatch(prior), omegatest.Batch(prior)).Draw(t, "batch")
		base, err := plain.Reconcile(prior, batch)
		if err != nil {
			t.Fatalf("Reconcile error %v", err)
		}
		out, err := c.Reconcile(prior, batch)
		if err != nil {
			t.Fatalf("Reconcile error %v", err)
		}
		r := out.Result
		omegatest.CheckResult(t, prior, batch, r)
		if len(r.Members) == 0 {
			if r.Kind != omega.KindMerge {
				t.Fatalf("Reconcile(empty batch) = %v, want merge", r.Kind)
			}
			return
		}
		first := r.Members[0].ID
		if o := base.Result.Obstruction; o != nil && o.Event == first {
			if g, w := resultJSON(t, r), resultJSON(t, base.Result); !bytes.Equal(g, w) {
				t.Fatalf("Reconcile with domain predicates =\n%s\nwant the built-in obstruction\n%s", g, w)
			}
		} else if r.Kind != omega.KindObstruction || r.Obstruction.Predicate != 4100 || r.Obstruction.Event != first {
			t.Fatalf("Reconcile with domain predicates = %v, want 4100 at the first content %v", r.Kind, first)
		}

		all, err := c.Diagnose(prior, batch)
		if err != nil {
			t.Fatalf("Diagnose error %v", err)
		}
		// Per event, built-ins come first, then 4100, then 4900.
		rank := func(v omega.Violation) int {
			switch v.Predicate {
			case 4100:
				return 1
			case 4900:
				return 2
			}
			return 0
		}
		ids := map[omega.EventID]bool{}
		for _, m := range r.Members {
			ids[m.ID] = true
		}
		// Violations name events by id: the order within one content shows
		// only when no two contents share an id.
		for i := 1; i < len(all) && len(ids) == len(r.Members); i++ {
			if all[i].Event == all[i-1].Event && rank(all[i]) < rank(all[i-1]) {
				t.Fatalf("Diagnose = %v: %d listed after %d at %v", all, all[i].Predicate, all[i-1].Predicate, all[i].Event)
			}
		}
		if n := len(r.Members); len(all) < 2*n {
			t.Fatalf("Diagnose = %d violations, want at least %d (two domain predicates at each of %d contents)", len(all), 2*n, n)
		}
	})
}

// refCatalogHash is CatalogHash from SPEC 4's text.
func refCatalogHash(entries []predicates.Entry) omega.Hash {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b predicates.Entry) int { return int(a.ID) - int(b.ID) })
	b := binary.LittleEndian.AppendUint32(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.ID))
		b = append(b, e.Arity)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.Name)))
		b = append(b, e.Name...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.SemanticsRef)))
		b = append(b, e.SemanticsRef...)
	}
	return refD("catalog", b)
}

// TestPropDomainCatalogHash: registering domain predicates changes the
// binding's catalog hash to the one SPEC 4 defines, whatever their order,
// and changing a semantics reference changes it again.
func TestPropDomainCatalogHash(t *testing.T) {
	def := omega.DefaultBinding().CatalogHash
	if got, want := def, refCatalogHash(predicates.Builtins()); got != want {
		t.Fatalf("DefaultBinding().CatalogHash = %v, want %v", got, want)
	}
	if got, want := def.String(), "190ddf6dc268a1cea3bd1d6117382164fdcf896ba551dc2117860ea18c9f02f7"; got != want {
		t.Fatalf("DefaultBinding().CatalogHash = %s, want %s", got, want)
	}
	entryGen := rapid.Custom(func(t *rapid.T) predicates.Entry {
		return predicates.Entry{
			ID:           predicates.ID(rapid.Uint32Range(uint32(predicates.DomainMin), uint32(predicates.DomainMax)).Draw(t, "id")),
			Name:         rapid.StringN(1, 12, 48).Draw(t, "name"),
			Arity:        rapid.Uint8().Draw(t, "arity"),
			SemanticsRef: rapid.StringN(0, 24, 96).Draw(t, "ref"),
		}
	})
	rapid.Check(t, func(t *rapid.T) {
		entries := rapid.SliceOfNDistinct(entryGen, 1, 4, func(e predicates.Entry) predicates.ID { return e.ID }).Draw(t, "entries")
		var domain []omega.DomainPredicate
		for _, e := range rapid.Permutation(entries).Draw(t, "order") {
			domain = append(domain, omegatest.Domain(e, func(*omega.Event, *omega.State) bool { return false }))
		}
		c, err := omega.NewChecker(&omega.CheckerOptions{Domain: domain})
		if err != nil {
			t.Fatalf("NewChecker(%v) error %v", entries, err)
		}
		got := c.Binding().CatalogHash
		if want := refCatalogHash(append(predicates.Builtins(), entries...)); got != want {
			t.Fatalf("NewChecker(%v).Binding().CatalogHash = %v, want %v", entries, got, want)
		}
		if got == def {
			t.Fatalf("NewChecker(%v).Binding().CatalogHash = the built-in catalog's, want another", entries)
		}
		if diff := cmp.Diff(append(predicates.Builtins(), sortedEntries(entries)...), c.Catalog().Entries()); diff != "" {
			t.Fatalf("NewChecker(%v).Catalog().Entries() differ (-want +got):\n%s", entries, diff)
		}

		i := rapid.IntRange(0, len(domain)-1).Draw(t, "changed")
		changed := domain[i].Entry()
		changed.SemanticsRef += "/v2"
		domain[i] = omegatest.Domain(changed, func(*omega.Event, *omega.State) bool { return false })
		c2, err := omega.NewChecker(&omega.CheckerOptions{Domain: domain})
		if err != nil {
			t.Fatalf("NewChecker error %v", err)
		}
		if c2.Binding().CatalogHash == got {
			t.Fatalf("CatalogHash after changing %d's semantics_ref = %v, want another", changed.ID, got)
		}
	})
}

func sortedEntries(entries []predicates.Entry) []predicates.Entry {
	out := slices.Clone(entries)
	slices.SortFunc(out, func(a, b predicates.Entry) int { return int(a.ID) - int(b.ID) })
	return out
}
