package model

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega/trace"
)

// ev makes an event of node's stream 0; its digest stands for its content.
func ev(id uint64, node uint32, lamport uint64, deps ...uint64) trace.Event {
	e := trace.Event{ID: trace.ID{Lo: id}, Node: node, Lamport: lamport, PayloadOK: true}
	for _, d := range deps {
		e.Deps = append(e.Deps, trace.ID{Lo: d})
	}
	e.Digest = sha256.Sum256(fmt.Appendf(nil, "%v", e))
	return e
}

func certHash(bid uint64) trace.Digest { return sha256.Sum256(fmt.Appendf(nil, "cert %d", bid)) }

var (
	a, b, c = ev(1, 1, 1), ev(2, 1, 2, 1), ev(3, 2, 1)
	open    = trace.Step{Action: trace.Restart, NextBatch: 1}
	crash   = trace.Step{Action: trace.Crash}
)

func receive(e trace.Event) trace.Step {
	return trace.Step{Action: trace.Receive, Events: []trace.Event{e}}
}

func held(e trace.Event) trace.Step {
	return trace.Step{Action: trace.Receive, Events: []trace.Event{e}, Held: true}
}

func syncTo(n int) trace.Step { return trace.Step{Action: trace.Sync, Through: n} }

func ack(es ...trace.Event) trace.Step { return trace.Step{Action: trace.Ack, Events: es} }

func merge(bid uint64, es ...trace.Event) trace.Step {
	return trace.Step{Action: trace.Decide, Outcome: trace.Merge, BatchID: bid, Events: es}
}

func obstruct(bid uint64, pred uint32, at trace.Event, conflict []uint64, es ...trace.Event) trace.Step {
	s := trace.Step{Action: trace.Decide, Outcome: trace.Obstruction, BatchID: bid, Predicate: pred, At: at.ID, Events: es}
	for _, id := range conflict {
		s.Conflict = append(s.Conflict, trace.ID{Lo: id})
	}
	return s
}

func certify(bid uint64, o trace.Outcome, prev uint64) trace.Step {
	s := trace.Step{Action: trace.Certify, BatchID: bid, Outcome: o, Cert: certHash(bid)}
	if prev > 0 {
		s.Prev = certHash(prev)
	}
	return s
}

// good is a trace the model explains: a late dependency, an equivocation
// quarantined, a crash after which an acknowledged event is still pending.
func good() []trace.Step {
	a2 := ev(1, 9, 1) // another content with a's id
	return []trace.Step{
		open,
		held(b),
		receive(a),
		{Action: trace.Release, Events: []trace.Event{b}},
		receive(a2),
		syncTo(3),
		ack(a, b, a2),
		obstruct(1, OverlapAgreement, a, []uint64{1}, a, b, a2),
		obstruct(2, DependencyKnown, b, []uint64{1, 2}, b),
		syncTo(5),
		certify(1, trace.Obstruction, 0),
		certify(2, trace.Obstruction, 1),
		{Action: trace.SyncCerts},
		receive(c),
		syncTo(6),
		ack(c),
		crash,
		{Action: trace.Restart, NextBatch: 3, CertHead: certHash(2), Events: []trace.Event{c}},
		merge(3, c),
		syncTo(1),
		certify(3, trace.Merge, 2),
		{Action: trace.SyncCerts},
		{Action: trace.Snapshot, Through: 1},
	}
}

func TestValidateGood(t *testing.T) {
	s, err := Validate(Config{BatchSize: 4}, good())
	if err != nil {
		t.Fatal(err)
	}
	if s.Certified() != 3 || s.Undecided() != 0 || s.Acked() != 4 {
		t.Errorf("after the trace: %d certificates, %d undecided, %d acknowledged; want 3, 0, 4", s.Certified(), s.Undecided(), s.Acked())
	}
}

// TestValidateRefuses breaks the good trace, or writes a bad one, in each
// way the model must notice, and checks that Validate names the step and
// why.
func TestValidateRefuses(t *testing.T) {
	safeOpen := trace.Step{Action: trace.Restart, NextBatch: 1, Safe: true}
	for _, tc := range []struct {
		name  string
		steps []trace.Step
		step  int
		why   string
	}{
		{"merge in safe mode", []trace.Step{safeOpen, receive(a), merge(1, a)}, 2, "merges in safe mode"},
		{"blocked out of safe mode", []trace.Step{open, receive(a), {Action: trace.Decide, Outcome: trace.Blocked, Events: []trace.Event{a}}}, 2, "blocked out of safe mode"},
		{"merge of a violation", []trace.Step{open, receive(a), merge(1, a), receive(ev(1, 1, 5)), merge(2, ev(1, 1, 5))}, 4, "a predicate holds"},
		{"unjustified obstruction", []trace.Step{open, receive(a), obstruct(1, EventUnique, a, []uint64{1}, a)}, 2, "does not hold"},
		{"conflict set without the event", []trace.Step{open, held(ev(1, 1, 1, 7)), {Action: trace.Expire, Events: []trace.Event{ev(1, 1, 1, 7)}}, obstruct(1, DependencyKnown, ev(1, 1, 1, 7), []uint64{7}, ev(1, 1, 1, 7))}, 3, "does not hold the event"},
		{"batch not the queue's head", []trace.Step{open, receive(a), receive(c), merge(1, c)}, 3, "head of the queue"},
		{"batch too large", []trace.Step{open, receive(a), receive(c), merge(1, a, c)}, 3, "BatchSize 1"},
		{"batch id skipped", []trace.Step{open, receive(a), merge(2, a)}, 2, "the next is 1"},
		{"held with its dependencies", []trace.Step{open, held(a)}, 1, "held, but"},
		{"released without them", []trace.Step{open, receive(b)}, 1, "released, but"},
		{"redelivery logged", []trace.Step{open, receive(a), receive(a)}, 2, "must drop it"},
		{"drop of a new event", []trace.Step{open, {Action: trace.Drop, Events: []trace.Event{a}}}, 1, "no redelivery"},
		{"ack before sync", []trace.Step{open, receive(a), ack(a)}, 2, "before the log is durable"},
		{"sync past the log", []trace.Step{open, receive(a), syncTo(2)}, 2, "synced through record 2"},
		{"certificate before its batch is durable", []trace.Step{open, receive(a), merge(1, a), syncTo(1), certify(1, trace.Merge, 0)}, 4, "0 durable BATCH"},
		{"certificate of another kind", []trace.Step{open, receive(a), merge(1, a), syncTo(2), certify(1, trace.Obstruction, 0)}, 4, "is batch 1 (merge)"},
		{"broken link", []trace.Step{open, receive(a), merge(1, a), receive(c), merge(2, c), syncTo(4), certify(1, trace.Merge, 0), certify(2, trace.Merge, 5)}, 7, "links to"},
		{"snapshot in safe mode", []trace.Step{safeOpen, {Action: trace.Snapshot}}, 1, "in safe mode"},
		{"snapshot past the durable", []trace.Step{open, receive(a), {Action: trace.Snapshot, Through: 1}}, 2, "record 1, of which 0"},
		{"resume out of safe mode", []trace.Step{open, {Action: trace.Resume}}, 1, "not in safe mode"},
		{"safe mode left by a restart", []trace.Step{safeOpen, crash, open}, 2, "not by Resume"},
		{"acknowledged event lost", []trace.Step{open, receive(a), syncTo(1), ack(a), crash, open}, 5, "no torn tail"},
		{"a step while down", []trace.Step{open, crash, receive(a)}, 2, "not running"},
		{"unknown action", []trace.Step{open, {Action: "Fly"}}, 1, "no action"},
		{"other bytes certified again", func() []trace.Step {
			s := []trace.Step{open, receive(a), merge(1, a), syncTo(2), certify(1, trace.Merge, 0), crash,
				{Action: trace.Restart, NextBatch: 2}}
			again := certify(1, trace.Merge, 0)
			again.Cert[0] ^= 1
			return append(s, again)
		}(), 7, "other bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := 4
			if tc.name == "batch too large" {
				bs = 1
			}
			_, err := Validate(Config{BatchSize: bs}, tc.steps)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("Validate = %v, want a StepError", err)
			}
			if se.Index != tc.step || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Validate = %v; want step %d and %q", err, tc.step, tc.why)
			}
		})
	}
}

// TestInvariantsCatch breaks each invariant in a state the actions would
// never reach, so that each check is seen to fail.
func TestInvariantsCatch(t *testing.T) {
	mergeRec := func(bid uint64, safe bool, es ...trace.Event) record {
		return record{bid: bid, outcome: trace.Merge, batch: es, safe: safe}
	}
	for _, tc := range []struct {
		name string
		s    *State
	}{
		{"NoDoubleAccept", &State{log: []record{mergeRec(1, false, a), mergeRec(2, false, a)}}},
		{"DepsAcceptedNoLater", &State{log: []record{mergeRec(1, false, b)}}},
		{"LamportMonotonic", &State{log: []record{mergeRec(1, false, ev(5, 1, 3)), mergeRec(2, false, ev(6, 1, 3))}}},
		{"ClockCondition", &State{log: []record{mergeRec(1, false, ev(5, 1, 3), ev(6, 2, 2, 5))}}},
		{"ChainLinked", &State{certs: []cert{{bid: 1, hash: certHash(1)}, {bid: 2, prev: certHash(7)}}}},
		{"CertifiedIsLogged", &State{log: []record{mergeRec(1, false, a)}, certs: []cert{{bid: 1, merge: true, at: 0}}}},
		{"NoMergeInSafeMode", &State{log: []record{mergeRec(1, true, a)}, synced: 1}},
		{"ObstructionJustified", &State{log: []record{{bid: 1, outcome: trace.Obstruction, batch: []trace.Event{a}, pred: EventUnique, at: a, quarantine: map[trace.Digest]bool{a.Digest: true}}}}},
		{"NoAckedLoss", &State{acked: map[trace.Digest]trace.Event{a.Digest: a}}},
		{"SnapshotDurable", &State{snap: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.index()
			err := tc.s.CheckInvariants()
			if err == nil || !strings.HasPrefix(err.Error(), "invariant "+tc.name+":") {
				t.Errorf("CheckInvariants = %v, want %s to fail", err, tc.name)
			}
		})
	}
}

// TestReleaseAfterQuarantine: an event held for one dependency, whose other
// dependency was released when it came and quarantined since, is released
// when the first arrives (the checker then obstructs it by 2002); one whose
// missing dependency never arrived is not.
func TestReleaseAfterQuarantine(t *testing.T) {
	y := ev(7, 2, 1, 7) // depends on itself: obstructed by 1003
	x := ev(8, 3, 1)
	e := ev(9, 1, 5, 7, 8)
	steps := []trace.Step{
		open,
		receive(y),
		held(e),
		obstruct(1, CausalOrder, y, []uint64{7}, y),
		receive(x),
		{Action: trace.Release, Events: []trace.Event{e}},
	}
	if _, err := Validate(Config{BatchSize: 4}, steps); err != nil {
		t.Fatalf("release after a dependency was quarantined: %v", err)
	}
	early := slices.Clone(steps[:4])
	early = append(early, trace.Step{Action: trace.Release, Events: []trace.Event{e}})
	if _, err := Validate(Config{BatchSize: 4}, early); err == nil || !strings.Contains(err.Error(), "has not arrived") {
		t.Fatalf("release before its missing dependency = %v", err)
	}
}
