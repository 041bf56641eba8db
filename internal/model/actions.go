package model

import (
	"errors"
	"fmt"
	"slices"

	"github.com/omega-sheaf/omega/trace"
)

// The actions of OMEGA.tla. Each checks that its action is enabled and
// that the step is what the action does, then takes it. On an error the
// state is unchanged.

// arrived reports whether every dependency of e has arrived: accepted,
// released ahead of it, or e itself (OMEGA.tla's Arrived(e) = e.deps).
func (s *State) arrived(e trace.Event) bool { return s.depsIn(e, false) }

// settled reports whether every dependency of e has arrived or been
// quarantined since (OMEGA.tla's Settled(e) = e.deps).
func (s *State) settled(e trace.Event) bool { return s.depsIn(e, true) }

func (s *State) depsIn(e trace.Event, quarantined bool) bool {
	for _, d := range e.Deps {
		if d == e.ID || quarantined && s.quarIDs[d] {
			continue
		}
		if _, ok := s.accepted[d]; ok {
			continue
		}
		if slices.ContainsFunc(s.ready, func(f trace.Event) bool { return f.ID == d }) {
			continue
		}
		return false
	}
	return true
}

func one(st trace.Step) (trace.Event, error) {
	if len(st.Events) != 1 {
		return trace.Event{}, fmt.Errorf("%s names %d events, not one", st.Action, len(st.Events))
	}
	return st.Events[0], nil
}

// Drop: the sequencer drops an exact redelivery.
func (s *State) Drop(st trace.Step) error {
	e, err := one(st)
	if err != nil {
		return err
	}
	if !s.up {
		return errNotUp
	}
	if !s.accDigest[e.Digest] && !s.undecided[e.Digest] {
		return fmt.Errorf("event %s is neither accepted nor logged and undecided: no redelivery to drop", name(e))
	}
	return nil
}

// Receive: the sequencer logs an event and releases or holds it.
func (s *State) Receive(st trace.Step) error {
	e, err := one(st)
	if err != nil {
		return err
	}
	if !s.up {
		return errNotUp
	}
	if s.accDigest[e.Digest] || s.undecided[e.Digest] {
		return fmt.Errorf("event %s is an exact redelivery (accepted, or logged and undecided): the sequencer must drop it", name(e))
	}
	ready := s.arrived(e)
	if ready == st.Held {
		if ready {
			return fmt.Errorf("event %s is held, but its dependencies have arrived", name(e))
		}
		return fmt.Errorf("event %s is released, but a dependency has not arrived", name(e))
	}
	s.log = append(s.log, record{isEvent: true, ev: e})
	s.apply(len(s.log) - 1)
	s.inflight[e.Digest] = true
	if ready {
		s.ready = append(s.ready, e)
	} else {
		s.pend = append(s.pend, e)
	}
	return nil
}

func (s *State) takePending(e trace.Event) bool {
	i := slices.IndexFunc(s.pend, func(f trace.Event) bool { return f.Digest == e.Digest })
	if i < 0 {
		return false
	}
	s.pend = slices.Delete(s.pend, i, i+1)
	return true
}

// Release: a held event whose dependencies have arrived is released.
func (s *State) Release(st trace.Step) error {
	e, err := one(st)
	if err != nil {
		return err
	}
	if !s.up {
		return errNotUp
	}
	if !s.settled(e) {
		return fmt.Errorf("event %s is released, but a dependency has not arrived", name(e))
	}
	if !s.takePending(e) {
		return fmt.Errorf("event %s is not held", name(e))
	}
	s.ready = append(s.ready, e)
	return nil
}

// Expire: a held event's age ran out; it goes to the checker anyway.
func (s *State) Expire(st trace.Step) error {
	e, err := one(st)
	if err != nil {
		return err
	}
	if !s.up {
		return errNotUp
	}
	if !s.takePending(e) {
		return fmt.Errorf("event %s is not held", name(e))
	}
	s.ready = append(s.ready, e)
	return nil
}

// Decide: the coordinator cuts the head of the batch queue and the checker
// decides it: a merge, blocked in safe mode, or an obstruction.
func (s *State) Decide(st trace.Step) error {
	if !s.up {
		return errNotUp
	}
	n := len(st.Events)
	if n < 1 || n > s.cfg.BatchSize || n > len(s.ready) {
		return fmt.Errorf("a batch of %d events, from a queue of %d, with BatchSize %d", n, len(s.ready), s.cfg.BatchSize)
	}
	for i, e := range st.Events {
		if s.ready[i].Digest != e.Digest {
			return fmt.Errorf("the batch's event %d is %s, the queue's is %s: a batch is the head of the queue, in order", i, name(e), name(s.ready[i]))
		}
	}
	b := distinct(st.Events)
	ok := clean(b, s.accepted, s.heads)
	switch st.Outcome {
	case trace.Merge, trace.Blocked:
		if !ok {
			return fmt.Errorf("batch %d merges, but a predicate holds in it: %s", st.BatchID, s.firstViolation(b))
		}
		if (st.Outcome == trace.Blocked) != s.safe {
			if s.safe {
				return fmt.Errorf("batch %d merges in safe mode", st.BatchID)
			}
			return fmt.Errorf("a merge is blocked out of safe mode")
		}
		if st.Outcome == trace.Blocked {
			s.blocked = append(s.blocked, st.Events...)
			s.ready = s.ready[n:]
			return nil
		}
		if st.BatchID != s.nextBatch {
			return fmt.Errorf("batch id %d, the next is %d", st.BatchID, s.nextBatch)
		}
		s.log = append(s.log, record{bid: st.BatchID, outcome: trace.Merge, batch: b, safe: s.safe})
		s.apply(len(s.log) - 1)
		s.ready = s.ready[n:]
		s.nextBatch++
		return nil
	case trace.Obstruction:
		if st.BatchID != s.nextBatch {
			return fmt.Errorf("batch id %d, the next is %d", st.BatchID, s.nextBatch)
		}
		// The event the obstruction names: a content with its id at
		// which the predicate holds.
		var e trace.Event
		var why error = fmt.Errorf("obstruction %d names id %s, which is not in the batch", st.Predicate, idName(st.At))
		for _, f := range b {
			if f.ID == st.At {
				if why = s.justified(st.Predicate, f, b); why == nil {
					e = f
					break
				}
			}
		}
		if why != nil {
			return fmt.Errorf("batch %d: %w", st.BatchID, why)
		}
		if !slices.Contains(st.Conflict, e.ID) {
			return fmt.Errorf("batch %d: the conflict set does not hold the event the obstruction names, %s", st.BatchID, name(e))
		}
		q := make(map[trace.Digest]bool)
		for _, f := range b {
			if slices.Contains(st.Conflict, f.ID) {
				q[f.Digest] = true
			}
		}
		again := make([]trace.Event, 0, n)
		for _, f := range st.Events {
			if !q[f.Digest] {
				again = append(again, f)
			}
		}
		s.log = append(s.log, record{bid: st.BatchID, outcome: trace.Obstruction, batch: b, pred: st.Predicate, at: e, quarantine: q, safe: s.safe})
		s.apply(len(s.log) - 1)
		s.ready = append(again, s.ready[n:]...)
		s.nextBatch++
		return nil
	}
	return fmt.Errorf("unknown outcome %d", st.Outcome)
}

// justified reports why obstruction pred at e is not justified, or nil.
func (s *State) justified(pred uint32, e trace.Event, b []trace.Event) error {
	if pred >= firstDomain && pred <= lastDomainPredict {
		if s.cfg.DomainPredicates == nil {
			return fmt.Errorf("domain predicate %d: the model has none", pred)
		}
		return s.cfg.DomainPredicates(pred, e)
	}
	if !Violates(pred, e, b, s.accepted, s.heads) {
		return fmt.Errorf("predicate %d does not hold at event %s", pred, name(e))
	}
	return nil
}

func (s *State) firstViolation(b []trace.Event) string {
	for _, e := range b {
		for _, p := range []uint32{PayloadHashMatch, OverlapAgreement, EventUnique, LamportMonotonic, CausalOrder, DependencyKnown} {
			if Violates(p, e, b, s.accepted, s.heads) {
				return fmt.Sprintf("%d at event %s", p, name(e))
			}
		}
	}
	return "none"
}

// BlockDependent: in safe mode, a released event depending on a blocked
// one is blocked too.
func (s *State) BlockDependent(st trace.Step) error {
	e, err := one(st)
	if err != nil {
		return err
	}
	if !s.up || !s.safe {
		return errors.New("not in safe mode")
	}
	i := slices.IndexFunc(s.ready, func(f trace.Event) bool { return f.Digest == e.Digest })
	if i < 0 {
		return fmt.Errorf("event %s is not released", name(e))
	}
	if !slices.ContainsFunc(e.Deps, func(d trace.ID) bool {
		return slices.ContainsFunc(s.blocked, func(f trace.Event) bool { return f.ID == d })
	}) {
		return fmt.Errorf("event %s depends on no blocked event", name(e))
	}
	s.ready = slices.Delete(slices.Clone(s.ready), i, i+1)
	s.blocked = append(s.blocked, e)
	return nil
}

// Sync: the log is durable through a later point.
func (s *State) Sync(st trace.Step) error {
	if !s.up {
		return errNotUp
	}
	k := s.base + st.Through
	if k < s.synced || k > len(s.log) {
		return fmt.Errorf("synced through record %d; %d were synced of %d", k, s.synced, len(s.log))
	}
	s.synced = k
	return nil
}

// Ack: Submit returns for events once the log is durable through them.
func (s *State) Ack(st trace.Step) error {
	if !s.up {
		return errNotUp
	}
	for _, e := range st.Events {
		if !s.inflight[e.Digest] {
			return fmt.Errorf("event %s is not waiting for its Submit to return", name(e))
		}
		if p, ok := s.evPos[e.Digest]; !ok || p >= s.synced {
			return fmt.Errorf("event %s is acknowledged before the log is durable through it", name(e))
		}
	}
	for _, e := range st.Events {
		delete(s.inflight, e.Digest)
		s.acked[e.Digest] = e
	}
	return nil
}

// Certify: the next durable BATCH record is certified, linked to the
// certificate before it.
func (s *State) Certify(st trace.Step) error {
	if !s.up {
		return errNotUp
	}
	k := len(s.certs)
	at, seen := -1, 0
	for i := range s.log[:s.synced] {
		if !s.log[i].isEvent {
			if seen == k {
				at = i
				break
			}
			seen++
		}
	}
	if at < 0 {
		return fmt.Errorf("certificate %d (batch %d): the log holds %d durable BATCH records", k+1, st.BatchID, seen)
	}
	r := &s.log[at]
	if r.bid != st.BatchID || (r.outcome == trace.Merge) != (st.Outcome == trace.Merge) {
		return fmt.Errorf("certificate %d is for batch %d (%s); the log's BATCH record %d is batch %d (%s)", k+1, st.BatchID, st.Outcome, k+1, r.bid, r.outcome)
	}
	var prev trace.Digest
	if k > 0 {
		prev = s.certs[k-1].hash
	}
	if st.Prev != prev {
		return fmt.Errorf("certificate of batch %d links to %x, not to the certificate before it (%x)", st.BatchID, st.Prev[:8], prev[:8])
	}
	if h, ok := s.issued[st.BatchID]; ok && h != st.Cert {
		return fmt.Errorf("batch %d certified again with other bytes: %x, first %x", st.BatchID, st.Cert[:8], h[:8])
	}
	s.issued[st.BatchID] = st.Cert
	s.certs = append(s.certs, cert{bid: st.BatchID, merge: st.Outcome == trace.Merge, hash: st.Cert, prev: st.Prev, at: at, safe: s.safe})
	return nil
}

// SyncCerts: the certificate store is durable.
func (s *State) SyncCerts(trace.Step) error {
	if !s.up {
		return errNotUp
	}
	s.csynced = len(s.certs)
	return nil
}

// Snapshot: a snapshot describes the durable log; none in safe mode.
func (s *State) Snapshot(st trace.Step) error {
	if !s.up {
		return errNotUp
	}
	if s.safe {
		return errors.New("a snapshot in safe mode")
	}
	k := s.base + st.Through
	if k > s.synced {
		return fmt.Errorf("a snapshot through record %d, of which %d are durable", k, s.synced)
	}
	s.snap = max(s.snap, k)
	return nil
}

// Crash: the process stops. Which torn tail survives is found at Restart.
func (s *State) Crash(trace.Step) error {
	if !s.up {
		return errNotUp
	}
	s.up = false
	s.crashes++
	s.ready, s.pend, s.blocked = nil, nil, nil
	clear(s.inflight)
	return nil
}

// Restart: the kernel opens again. The log kept is its synced prefix and
// some prefix of the rest, the chain likewise; the model finds the one the
// kernel recovered from the chain's head and the undecided events it took
// in again. Safe mode the kernel did not carry over means damage found.
func (s *State) Restart(st trace.Step) error {
	if s.up {
		return errors.New("the kernel is running")
	}
	// Damage (inferred from safe mode the model was not in) may take
	// durable certificates too: the kernel makes them again, the same.
	from := s.csynced
	if st.Safe && !s.safe {
		from = 0
	}
	c := -1
	for i := from; i <= len(s.certs); i++ {
		var h trace.Digest
		if i > 0 {
			h = s.certs[i-1].hash
		}
		if h == st.CertHead {
			c = i
			break
		}
	}
	if c < 0 {
		return fmt.Errorf("the chain's head %x is no certificate from the durable %d on (of %d)", st.CertHead[:8], from, len(s.certs))
	}
	want := make(map[trace.Digest]bool, len(st.Events))
	for _, e := range slices.Concat(st.Events, st.Holding) {
		want[e.Digest] = true
	}
	k := -1
	for i := len(s.log); i >= s.synced; i-- {
		if s.explains(i, c, want, st.NextBatch) {
			k = i
			break
		}
	}
	if k < 0 {
		return fmt.Errorf("no torn tail of the log (durable through record %d of %d) leaves %d undecided events and next batch %d", s.synced, len(s.log), len(want), st.NextBatch)
	}
	if s.safe && !st.Safe {
		return errors.New("safe mode was left by a restart, not by Resume")
	}
	old := *s
	s.log, s.synced = s.log[:k], k
	s.certs, s.csynced = s.certs[:c], c
	s.index()
	// Released again: each after the dependencies it has.
	s.ready = nil
	for _, e := range st.Events {
		if !s.arrived(e) {
			*s = old
			return fmt.Errorf("event %s is released at restart, but a dependency has not arrived", name(e))
		}
		s.ready = append(s.ready, e)
	}
	s.pend = slices.Clone(st.Holding)
	s.up, s.damaged = true, false
	s.safe = st.Safe
	s.nextBatch = st.NextBatch
	s.base = k
	return nil
}

// explains reports whether keeping the first k log records and c
// certificates leaves exactly the undecided events want and next batch
// id next.
func (s *State) explains(k, c int, want map[trace.Digest]bool, next uint64) bool {
	if c > 0 && s.certs[c-1].at >= k {
		return false
	}
	und := make(map[trace.Digest]bool)
	last := uint64(0)
	for i := range s.log[:k] {
		r := &s.log[i]
		switch {
		case r.isEvent:
			und[r.ev.Digest] = true
		case r.outcome == trace.Merge:
			last = r.bid
			for _, e := range r.batch {
				delete(und, e.Digest)
			}
		default:
			last = r.bid
			for d := range r.quarantine {
				delete(und, d)
			}
		}
	}
	if c > 0 {
		last = max(last, s.certs[c-1].bid)
	}
	if last+1 != next || len(und) != len(want) {
		return false
	}
	for d := range und {
		if !want[d] {
			return false
		}
	}
	return true
}

// Resume: the embedding program leaves safe mode; blocked events are
// batched again, ahead of the others.
func (s *State) Resume(trace.Step) error {
	if !s.up || !s.safe {
		return errors.New("not in safe mode")
	}
	s.safe = false
	s.ready = append(s.blocked, s.ready...)
	s.blocked = nil
	return nil
}

func name(e trace.Event) string {
	return fmt.Sprintf("%s (node %d, lamport %d, digest %x)", idName(e.ID), e.Node, e.Lamport, e.Digest[:4])
}

func idName(id trace.ID) string {
	if id.Hi == 0 {
		return fmt.Sprint(id.Lo)
	}
	return fmt.Sprintf("%#x%016x", id.Hi, id.Lo)
}
