package omega

import (
	"github.com/omega-sheaf/omega/trace"
)

// The kernel's trace (KernelConfig.Trace): steps at the boundaries between
// its goroutines, named after the actions of formal/OMEGA.tla, for a test
// to check against the model (omegatest.CheckTrace). With no Trace set,
// none of this runs.

// tracing reports whether the kernel reports its steps.
func (k *Kernel) tracing() bool { return k.cfg.Trace != nil }

// trace reports st, one call at a time: the core, the syncer, the
// certifier and the snapshotter all report steps.
func (k *Kernel) trace(st trace.Step) {
	k.traceMu.Lock()
	defer k.traceMu.Unlock()
	k.cfg.Trace(st)
}

func traceID(id EventID) trace.ID { return trace.ID{Hi: id.Hi, Lo: id.Lo} }

func traceEvent(q *queued) trace.Event {
	deps := make([]trace.ID, len(q.ev.Deps))
	for i, d := range q.ev.Deps {
		deps[i] = traceID(d)
	}
	return trace.Event{
		ID:        traceID(q.ev.ID),
		Node:      q.ev.NodeID,
		Stream:    q.ev.StreamID,
		Lamport:   q.ev.Lamport,
		Deps:      deps,
		PayloadOK: q.pok,
		Digest:    trace.Digest(q.d),
	}
}

func traceEvents(qs []queued) []trace.Event {
	out := make([]trace.Event, len(qs))
	for i := range qs {
		out[i] = traceEvent(&qs[i])
	}
	return out
}

// traceOne reports action a on one event.
func (k *Kernel) traceOne(a trace.Action, q *queued) {
	k.trace(trace.Step{Action: a, Events: []trace.Event{traceEvent(q)}})
}

// traceDecision reports the decision on batch, in arrival order.
func (k *Kernel) traceDecision(batch []queued, r *Result, batchID uint64) {
	st := trace.Step{Action: trace.Decide, Events: traceEvents(batch), BatchID: batchID, Outcome: trace.Merge}
	if r.Kind == KindObstruction {
		o := r.Obstruction
		st.Outcome = trace.Obstruction
		st.Predicate = uint32(o.Predicate)
		st.At = traceID(o.Event)
		for _, id := range o.ConflictSet {
			st.Conflict = append(st.Conflict, traceID(id))
		}
	}
	k.trace(st)
}

// traceCert reports a certificate appended to the store.
func (k *Kernel) traceCert(c *Certificate) {
	o := trace.Obstruction
	if c.Kind == KindMerge {
		o = trace.Merge
	}
	k.trace(trace.Step{Action: trace.Certify, BatchID: c.BatchID, Outcome: o, Cert: trace.Digest(c.Hash()), Prev: trace.Digest(c.PrevCertHash)})
}

// traceRestart reports the kernel's open: the chain's head before it
// certified anything again, what it released and holds, then the
// certificates it made again.
func (k *Kernel) traceRestart(cor *core, head ChainAnchor, recert []Decision) {
	st := trace.Step{
		Action:    trace.Restart,
		CertHead:  trace.Digest(head.CertHash),
		NextBatch: cor.next,
		Events:    traceEvents(cor.ready[cor.head:]),
		Safe:      cor.safe,
	}
	for _, h := range cor.held {
		if !h.gone {
			st.Holding = append(st.Holding, traceEvent(&h.q))
		}
	}
	k.trace(st)
	for _, d := range recert {
		k.traceCert(d.Certificate)
	}
	if len(recert) > 0 {
		k.trace(trace.Step{Action: trace.SyncCerts})
	}
}
