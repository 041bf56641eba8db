package model

import (
	"errors"
	"fmt"
	"slices"

	"github.com/omega-sheaf/omega/trace"
)

// The invariants of OMEGA.tla, each over the whole state.

// NoDoubleAccept: no id is accepted twice, in two merges or in one.
func (s *State) NoDoubleAccept() error {
	seen := make(map[trace.ID]uint64)
	for _, r := range s.merges() {
		for _, e := range r.batch {
			if b, ok := seen[e.ID]; ok {
				return fmt.Errorf("id %s accepted by batch %d and again by batch %d", idName(e.ID), b, r.bid)
			}
			seen[e.ID] = r.bid
		}
	}
	return nil
}

// DepsAcceptedNoLater: every accepted event's dependencies were accepted
// in its batch or before.
func (s *State) DepsAcceptedNoLater() error {
	acc := make(map[trace.ID]bool)
	for _, r := range s.merges() {
		for _, e := range r.batch {
			acc[e.ID] = true
		}
		for _, e := range r.batch {
			for _, d := range e.Deps {
				if !acc[d] {
					return fmt.Errorf("batch %d accepts %s before its dependency %s", r.bid, name(e), idName(d))
				}
			}
		}
	}
	return nil
}

// LamportMonotonic: per stream, lamports strictly increase in acceptance
// order.
func (s *State) LamportMonotonic() error {
	last := make(map[stream]uint64)
	for _, r := range s.merges() {
		b := slices.Clone(r.batch)
		slices.SortFunc(b, func(x, y trace.Event) int {
			if canonicalLess(&x, &y) {
				return -1
			}
			if canonicalLess(&y, &x) {
				return 1
			}
			return 0
		})
		for _, e := range b {
			st := stream{e.Node, e.Stream}
			if l, ok := last[st]; ok && e.Lamport <= l {
				return fmt.Errorf("batch %d accepts %s after lamport %d of its stream", r.bid, name(e), l)
			}
			last[st] = e.Lamport
		}
	}
	return nil
}

// ClockCondition: an accepted event's dependencies have lower lamports.
func (s *State) ClockCondition() error {
	for _, r := range s.merges() {
		for _, e := range r.batch {
			for _, d := range e.Deps {
				if f, ok := s.accepted[d]; ok && f.Lamport >= e.Lamport {
					return fmt.Errorf("accepted %s depends on %s, whose lamport %d is not lower", name(e), name(f), f.Lamport)
				}
			}
		}
	}
	return nil
}

// ChainLinked: every certificate links to the one before it, and batch
// ids increase.
func (s *State) ChainLinked() error {
	for k := 1; k < len(s.certs); k++ {
		if s.certs[k].prev != s.certs[k-1].hash {
			return fmt.Errorf("certificate %d (batch %d) does not link to certificate %d", k+1, s.certs[k].bid, k)
		}
		if s.certs[k].bid <= s.certs[k-1].bid {
			return fmt.Errorf("certificate %d is for batch %d, after batch %d", k+1, s.certs[k].bid, s.certs[k-1].bid)
		}
	}
	return nil
}

// CertifiedIsLogged: every certificate is a durable BATCH record's and
// says what it decided.
func (s *State) CertifiedIsLogged() error {
	for k, c := range s.certs {
		if c.at >= s.synced {
			return fmt.Errorf("certificate %d (batch %d) is for a BATCH record that is not durable", k+1, c.bid)
		}
		r := &s.log[c.at]
		if r.isEvent || r.bid != c.bid || (r.outcome == trace.Merge) != c.merge {
			return fmt.Errorf("certificate %d (batch %d) is not its BATCH record's", k+1, c.bid)
		}
	}
	return nil
}

// NoMergeInSafeMode: no merge is decided, so none certified, in safe mode.
func (s *State) NoMergeInSafeMode() error {
	for _, r := range s.merges() {
		if r.safe {
			return fmt.Errorf("batch %d merged in safe mode", r.bid)
		}
	}
	for k, c := range s.certs {
		if c.merge && s.log[c.at].safe {
			return fmt.Errorf("certificate %d certifies batch %d, merged in safe mode", k+1, c.bid)
		}
	}
	return nil
}

// ObstructionJustified: every obstruction names a violation that holds of
// its evidence, at an event it quarantines.
func (s *State) ObstructionJustified() error {
	acc := make(map[trace.ID]trace.Event)
	heads := make(map[stream]uint64)
	for i := range s.log {
		r := &s.log[i]
		switch {
		case r.isEvent:
		case r.outcome == trace.Merge:
			for _, e := range r.batch {
				acc[e.ID] = e
				st := stream{e.Node, e.Stream}
				heads[st] = max(heads[st], e.Lamport)
			}
		default:
			if !r.quarantine[r.at.Digest] {
				return fmt.Errorf("batch %d: obstruction at %s does not quarantine it", r.bid, name(r.at))
			}
			if r.pred >= firstDomain && r.pred <= lastDomainPredict {
				continue // judged by Config.DomainPredicates when decided
			}
			if !Violates(r.pred, r.at, r.batch, acc, heads) {
				return fmt.Errorf("batch %d: predicate %d does not hold at %s", r.bid, r.pred, name(r.at))
			}
		}
	}
	return nil
}

// NoAckedLoss: every event whose Submit returned is in the durable log.
func (s *State) NoAckedLoss() error {
	in := make(map[trace.Digest]bool)
	for _, r := range s.log[:s.synced] {
		if r.isEvent {
			in[r.ev.Digest] = true
		}
	}
	for d, e := range s.acked {
		if !in[d] {
			return fmt.Errorf("acknowledged event %s is not in the durable log", name(e))
		}
	}
	return nil
}

// SnapshotDurable: a snapshot describes only what is durable.
func (s *State) SnapshotDurable() error {
	if s.snap > s.synced {
		return fmt.Errorf("the snapshot describes %d records, %d are durable", s.snap, s.synced)
	}
	return nil
}

func (s *State) merges() []*record {
	var out []*record
	for i := range s.log {
		if r := &s.log[i]; !r.isEvent && r.outcome == trace.Merge {
			out = append(out, r)
		}
	}
	return out
}

// Invariant is one of OMEGA.tla's invariants.
type Invariant struct {
	Name  string
	Check func(*State) error
}

// Invariants lists the invariants by their names in OMEGA.tla (TypeOK,
// which Go's types keep, aside).
var Invariants = []Invariant{
	{"NoDoubleAccept", (*State).NoDoubleAccept},
	{"DepsAcceptedNoLater", (*State).DepsAcceptedNoLater},
	{"LamportMonotonic", (*State).LamportMonotonic},
	{"ClockCondition", (*State).ClockCondition},
	{"ChainLinked", (*State).ChainLinked},
	{"CertifiedIsLogged", (*State).CertifiedIsLogged},
	{"NoMergeInSafeMode", (*State).NoMergeInSafeMode},
	{"ObstructionJustified", (*State).ObstructionJustified},
	{"NoAckedLoss", (*State).NoAckedLoss},
	{"SnapshotDurable", (*State).SnapshotDurable},
}

// CheckInvariants returns the first invariant s breaks, named.
func (s *State) CheckInvariants() error {
	for _, inv := range Invariants {
		if err := inv.Check(s); err != nil {
			return fmt.Errorf("invariant %s: %w", inv.Name, err)
		}
	}
	return nil
}

// Action is one of OMEGA.tla's actions, as a step of the model.
type Action func(*State, trace.Step) error

// Actions maps the actions a trace names to the model's.
var Actions = map[trace.Action]Action{
	trace.Receive:        (*State).Receive,
	trace.Drop:           (*State).Drop,
	trace.Release:        (*State).Release,
	trace.Expire:         (*State).Expire,
	trace.Decide:         (*State).Decide,
	trace.BlockDependent: (*State).BlockDependent,
	trace.Sync:           (*State).Sync,
	trace.Ack:            (*State).Ack,
	trace.Certify:        (*State).Certify,
	trace.SyncCerts:      (*State).SyncCerts,
	trace.Snapshot:       (*State).Snapshot,
	trace.Crash:          (*State).Crash,
	trace.Restart:        (*State).Restart,
	trace.Resume:         (*State).Resume,
}

// StepError names the first step of a trace the model does not explain,
// or after which an invariant fails.
type StepError struct {
	Index int
	Step  trace.Step
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("trace step %d (%s): %v", e.Index, e.Step.Action, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrUnexplained is wrapped by a StepError for a step no action explains.
var ErrUnexplained = errors.New("no action of the model explains it")

// Validate reads steps, a kernel's trace from its first open, through the
// model: each must be a step of the action it names, and every invariant
// must hold after it. A trace begins with the kernel opening: the model
// starts from Init with the process not yet running. Checking every
// invariant after every step costs time in proportion to the log; past
// 256 records they are checked every 256 steps and after the last.
func Validate(cfg Config, steps []trace.Step) (*State, error) {
	s := New(cfg)
	s.up = false
	for i, st := range steps {
		a, ok := Actions[st.Action]
		if !ok {
			return s, &StepError{i, st, fmt.Errorf("%w: the model has no action %q", ErrUnexplained, st.Action)}
		}
		if err := a(s, st); err != nil {
			return s, &StepError{i, st, fmt.Errorf("%w: %w", ErrUnexplained, err)}
		}
		if len(s.log) <= 256 || i%256 == 0 || i == len(steps)-1 {
			if err := s.CheckInvariants(); err != nil {
				return s, &StepError{i, st, err}
			}
		}
	}
	return s, nil
}

// UndecidedAcked returns the events whose Submit returned and that are
// not decided, in no particular order.
func (s *State) UndecidedAcked() []trace.Event {
	var out []trace.Event
	for d, e := range s.acked {
		if s.undecided[d] {
			out = append(out, e)
		}
	}
	return out
}

// Acked returns the events whose Submit returned.
func (s *State) Acked() int { return len(s.acked) }

// Undecided returns how many logged events are not decided.
func (s *State) Undecided() int { return len(s.undecided) }

// Certified returns how many certificates the chain holds.
func (s *State) Certified() int { return len(s.certs) }
