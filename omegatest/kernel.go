package omegatest

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"fmt"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/model"
	"github.com/omega-sheaf/omega/predicates"
	"github.com/omega-sheaf/omega/trace"
)

// CheckTrace reads steps, a kernel's trace from its first open (recorded
// through [omega.KernelConfig].Trace, with a [trace.Crash] step added where
// a test crashed it), through the formal model of formal/OMEGA.tla, for a
// kernel deciding batches of at most batchSize events. It returns nil, or
// an error naming the first step no action of the model explains, or the
// first invariant broken after a step, by their names in the spec.
func CheckTrace(steps []trace.Step, batchSize int) error {
	_, err := model.Validate(model.Config{BatchSize: cmp.Or(batchSize, omega.DefaultBatchSize)}, steps)
	return err
}

// KernelHistory is what a test records of a kernel's run: the events whose
// Submit returned, and the decisions the kernel reported, in chain order
// (append [omega.Decision]s from [omega.KernelConfig].OnDecision).
type KernelHistory struct {
	Acknowledged []omega.Event
	Decisions    []omega.Decision
}

// Breach is what the history checks return: which rule of the spec a
// history breaks, at which decision, and the events involved.
type Breach struct {
	Rule     string // the invariant's name in formal/OMEGA.tla
	Decision int    // the index of the decision in the history; -1 for none
	Events   []omega.Event
	Detail   string
}

func (b *Breach) Error() string {
	s := fmt.Sprintf("omegatest: %s breached", b.Rule)
	if b.Decision >= 0 {
		s += fmt.Sprintf(" at decision %d", b.Decision)
	}
	s += ": " + b.Detail
	for _, e := range b.Events {
		s += fmt.Sprintf("\n  event %v (node %d, stream %d, lamport %d, deps %v)", e.ID, e.NodeID, e.StreamID, e.Lamport, e.Deps)
	}
	return s
}

// merges walks the events the history's merges accepted, in chain order.
func (h *KernelHistory) merges(yield func(i int, e omega.Event) bool) {
	for i, d := range h.Decisions {
		if r := d.Output.Result; r != nil && r.Kind == omega.KindMerge {
			for _, e := range h.contents(r.Members) {
				if !yield(i, e) {
					return
				}
			}
		}
	}
}

// contents returns the acknowledged events the members name, in canonical
// order; a member the history does not hold is skipped.
func (h *KernelHistory) contents(ms []omega.Member) []omega.Event {
	var out []omega.Event
	for _, m := range ms {
		if e, ok := h.byDigest(m.Digest); ok {
			out = append(out, e)
		}
	}
	return out
}

func (h *KernelHistory) byDigest(d omega.Hash) (omega.Event, bool) {
	for _, e := range h.Acknowledged {
		if e.Digest() == d {
			return e, true
		}
	}
	return omega.Event{}, false
}

// NoDoubleAccept checks that no event id is accepted by two merges.
func NoDoubleAccept(h KernelHistory) error {
	first := map[omega.EventID]int{}
	var err error
	h.merges(func(i int, e omega.Event) bool {
		if j, ok := first[e.ID]; ok && j != i {
			err = &Breach{"NoDoubleAccept", i, []omega.Event{e}, fmt.Sprintf("id %v, accepted by decision %d, is accepted again", e.ID, j)}
			return false
		}
		first[e.ID] = i
		return true
	})
	return err
}

// DepsAcceptedNoLater checks that every accepted event's dependencies were
// accepted in its batch or before.
func DepsAcceptedNoLater(h KernelHistory) error {
	acc := map[omega.EventID]bool{}
	for i, d := range h.Decisions {
		r := d.Output.Result
		if r == nil || r.Kind != omega.KindMerge {
			continue
		}
		batch := h.contents(r.Members)
		for _, e := range batch {
			acc[e.ID] = true
		}
		for _, e := range batch {
			for _, dep := range e.Deps {
				if !acc[dep] {
					return &Breach{"DepsAcceptedNoLater", i, []omega.Event{e}, fmt.Sprintf("its dependency %v was not accepted by then", dep)}
				}
			}
		}
	}
	return nil
}

// LamportMonotonic checks that, per stream, lamports strictly increase in
// acceptance order (canonical order within a batch).
func LamportMonotonic(h KernelHistory) error {
	type stream struct {
		node   uint32
		stream uint16
	}
	last := map[stream]omega.Event{}
	var err error
	h.merges(func(i int, e omega.Event) bool {
		s := stream{e.NodeID, e.StreamID}
		if p, ok := last[s]; ok && e.Lamport <= p.Lamport {
			err = &Breach{"LamportMonotonic", i, []omega.Event{p, e}, fmt.Sprintf("lamport %d accepted after %d on its stream", e.Lamport, p.Lamport)}
			return false
		}
		last[s] = e
		return true
	})
	return err
}

// ClockCondition checks that every accepted event's accepted dependencies
// have lower lamports.
func ClockCondition(h KernelHistory) error {
	acc := map[omega.EventID]omega.Event{}
	h.merges(func(_ int, e omega.Event) bool { acc[e.ID] = e; return true })
	var err error
	h.merges(func(i int, e omega.Event) bool {
		for _, d := range e.Deps {
			if f, ok := acc[d]; ok && f.Lamport >= e.Lamport {
				err = &Breach{"ClockCondition", i, []omega.Event{f, e}, fmt.Sprintf("a dependency at lamport %d of an event at lamport %d", f.Lamport, e.Lamport)}
				return false
			}
		}
		return true
	})
	return err
}

// ChainLinked checks that every certificate links to the one before it
// and that batch ids increase.
func ChainLinked(h KernelHistory) error {
	for i, d := range h.Decisions {
		if d.Certificate == nil {
			return &Breach{"ChainLinked", i, nil, "the decision carries no certificate"}
		}
	}
	for i := 1; i < len(h.Decisions); i++ {
		prev, c := h.Decisions[i-1].Certificate, h.Decisions[i].Certificate
		if c.PrevCertHash != prev.Hash() {
			return &Breach{"ChainLinked", i, nil, fmt.Sprintf("batch %d's certificate links to %s, not to batch %d's", c.BatchID, c.PrevCertHash, prev.BatchID)}
		}
		if c.BatchID <= prev.BatchID {
			return &Breach{"ChainLinked", i, nil, fmt.Sprintf("batch %d certified after batch %d", c.BatchID, prev.BatchID)}
		}
	}
	return nil
}

// EventuallyDecided checks, of a history recorded up to a final Flush,
// that every acknowledged event whose dependencies were all acknowledged
// is decided: accepted by a merge, or in an obstruction's conflict set.
func EventuallyDecided(h KernelHistory) error {
	decided := map[omega.Hash]bool{}
	quarantined := map[omega.EventID]bool{}
	for _, d := range h.Decisions {
		r := d.Output.Result
		switch {
		case r == nil:
		case r.Kind == omega.KindMerge:
			for _, m := range r.Members {
				decided[m.Digest] = true
			}
		default:
			for _, id := range r.Obstruction.ConflictSet {
				quarantined[id] = true
			}
		}
	}
	acked := map[omega.EventID]bool{}
	for _, e := range h.Acknowledged {
		acked[e.ID] = true
	}
	for _, e := range h.Acknowledged {
		if decided[e.Digest()] || quarantined[e.ID] {
			continue
		}
		if slices.ContainsFunc(e.Deps, func(d omega.EventID) bool { return !acked[d] }) {
			continue // waits for what never came, until its age runs out
		}
		return &Breach{"EventuallyDecided", -1, []omega.Event{e}, "acknowledged, its dependencies acknowledged, and not decided"}
	}
	return nil
}

// CheckHistory runs every history check and returns the first breach.
func CheckHistory(h KernelHistory) error {
	for _, check := range []func(KernelHistory) error{NoDoubleAccept, DepsAcceptedNoLater, LamportMonotonic, ClockCondition, ChainLinked, EventuallyDecided} {
		if err := check(h); err != nil {
			return err
		}
	}
	return nil
}

// KernelAction is one action of a kernel run, named after the spec's.
type KernelAction struct {
	Name   string        // "Receive", "Decide", "Snapshot", "Expire", "Resume"
	Events []omega.Event // for Receive: one Submit's events
}

// KernelActions returns a generator of kernel runs: Submits of new events
// from correct nodes (1 and 2) and a faulty one (3, which reuses ids,
// breaks monotonicity and depends on what does not exist), redeliveries of
// events already submitted, events ahead of their dependencies, flushes,
// snapshots and pauses for the pending age. Apply runs an action.
func KernelActions() *rapid.Generator[[]KernelAction] {
	return rapid.Custom(func(t *rapid.T) []KernelAction {
		var out []KernelAction
		var sent []omega.Event
		clock := map[uint32]uint64{}
		next := uint64(1)
		n := rapid.IntRange(1, 24).Draw(t, "actions")
		for range n {
			switch k := rapid.IntRange(0, 9).Draw(t, "action"); {
			case k < 6:
				var es []omega.Event
				for range rapid.IntRange(1, 3).Draw(t, "events") {
					if len(sent) > 0 && rapid.IntRange(0, 3).Draw(t, "redeliver") == 0 {
						es = append(es, sent[rapid.IntRange(0, len(sent)-1).Draw(t, "which")])
						continue
					}
					node := uint32(rapid.IntRange(1, 3).Draw(t, "node"))
					var e omega.Event
					if node == 3 {
						id := uint64(rapid.IntRange(1, int(next)+1).Draw(t, "id"))
						next = max(next, id+1)
						e = kernelEvent(id, node, uint64(rapid.IntRange(0, 8).Draw(t, "lamport")), uint64(rapid.IntRange(1, int(next)+1).Draw(t, "dep")))
					} else {
						l := clock[node] + 1
						var deps []uint64
						if len(sent) > 0 && rapid.Bool().Draw(t, "depends") {
							d := sent[rapid.IntRange(0, len(sent)-1).Draw(t, "on")]
							deps = append(deps, d.ID.Lo)
							l = max(l, d.Lamport+1)
						}
						clock[node] = l
						e = kernelEvent(next, node, l, deps...)
						next++
					}
					es = append(es, e)
				}
				sent = append(sent, es...)
				out = append(out, KernelAction{Name: "Receive", Events: es})
			case k < 8:
				out = append(out, KernelAction{Name: "Decide"})
			case k < 9:
				out = append(out, KernelAction{Name: "Snapshot"})
			default:
				out = append(out, KernelAction{Name: "Expire"})
			}
		}
		return out
	})
}

func kernelEvent(id uint64, node uint32, lamport uint64, deps ...uint64) omega.Event {
	e := omega.Event{ID: omega.ID64(id), NodeID: node, Lamport: lamport, Payload: fmt.Appendf(nil, "%d/%d", node, id), Deps: []omega.EventID{}}
	for _, d := range deps {
		e.Deps = append(e.Deps, omega.ID64(d))
	}
	e.PayloadHash = omega.PayloadHash(e.Payload)
	return e
}

// Apply runs a on k: Receive submits, Decide flushes, Snapshot snapshots
// (refused in safe mode: that is not an error here), Expire waits for
// pendingAge and flushes, Resume resumes. It returns the events
// acknowledged.
func (a KernelAction) Apply(ctx context.Context, k *omega.Kernel, pendingAge time.Duration) ([]omega.Event, error) {
	switch a.Name {
	case "Receive":
		if err := k.Submit(ctx, a.Events...); err != nil {
			return nil, err
		}
		return a.Events, nil
	case "Decide":
		return nil, k.Flush(ctx)
	case "Snapshot":
		if err := k.Snapshot(ctx); err != nil && !k.Status().SafeMode {
			return nil, err
		}
		return nil, nil
	case "Expire":
		time.Sleep(pendingAge + time.Millisecond)
		return nil, k.Flush(ctx)
	case "Resume":
		return nil, k.Resume(ctx)
	}
	return nil, fmt.Errorf("omegatest: unknown kernel action %q", a.Name)
}

// FrameLog returns a generator of event logs (an .omega file's bytes):
// the EVENT and BATCH frames of a [History] decided batch by batch from
// genesis, with the given replay seed.
func FrameLog(seed uint64) *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		h := History().Draw(t, "history")
		c, _ := omega.NewChecker(nil)
		var buf bytes.Buffer
		w, err := framelog.NewWriter(&buf, c.Binding().Header(), nil)
		if err != nil {
			t.Fatalf("FrameLog: %v", err)
		}
		j := omega.NewJournal(w, c, nil, 0)
		for i, batch := range h {
			if _, err := j.LogEvents(batch); err != nil {
				t.Fatalf("FrameLog: %v", err)
			}
			if _, err := j.Decide(batch, omega.BatchMeta{BatchID: uint64(i + 1), ReplaySeed: seed, CreatedAtNs: uint64(i + 1)}); err != nil {
				t.Fatalf("FrameLog: %v", err)
			}
		}
		if err := j.Close(); err != nil {
			t.Fatalf("FrameLog: %v", err)
		}
		return buf.Bytes()
	})
}

// CertChain returns a generator of certificate chains signed by signer:
// the certificates of a [History]'s merges, and of obstructions between
// them (a batch with a violation injected, decided against the same
// State), linked from the first.
func CertChain(signer crypto.Signer) *rapid.Generator[[]*omega.Certificate] {
	return rapid.Custom(func(t *rapid.T) []*omega.Certificate {
		h := History().Draw(t, "history")
		c, _ := omega.NewChecker(nil)
		var state *omega.State
		var chain []*omega.Certificate
		var prev omega.Hash
		bid := uint64(0)
		certify := func(out omega.Output) {
			bid++
			cert, err := omega.Certify(out, c.Binding(), omega.BatchMeta{BatchID: bid, CreatedAtNs: bid}, prev, signer)
			if err != nil {
				t.Fatalf("CertChain: %v", err)
			}
			chain, prev = append(chain, cert), cert.Hash()
		}
		for _, batch := range h {
			var can []predicates.ID
			for _, p := range []predicates.ID{predicates.LamportMonotonic, predicates.EventUnique, predicates.CausalOrder, predicates.PayloadHashMatch, predicates.DependencyKnown, predicates.OverlapAgreement} {
				if Injectable(state, p) {
					can = append(can, p)
				}
			}
			if len(can) > 0 && rapid.Bool().Draw(t, "obstruction first") {
				bad, _ := Inject(t, slices.Clone(batch), state, rapid.SampledFrom(can).Draw(t, "predicate"))
				out, err := c.Reconcile(state, bad)
				if err != nil {
					t.Fatalf("CertChain: %v", err)
				}
				certify(out)
			}
			out, err := c.Reconcile(state, batch)
			if err != nil || out.Result.Kind != omega.KindMerge {
				t.Fatalf("CertChain: a history batch does not merge (%v)", err)
			}
			certify(out)
			state = out.Result.Merge.Next
		}
		return chain
	})
}
