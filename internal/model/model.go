// Package model is a Go transcription of formal/OMEGA.tla: its state, its
// actions (each a method named after the TLA+ action, which returns an
// error saying which condition of the action a step fails) and its
// invariants (each a function named after the TLA+ invariant). Validate
// reads a kernel's recorded steps (package trace) through it, and names
// the first step no action explains and the first invariant broken.
//
// The transcription keeps the spec's meaning and changes its
// representation: contents are compared by digest, a node's streams are
// (node, stream) pairs, and what TLA+ leaves to nondeterminism the trace
// resolves (which torn tail a crash left is found from what the kernel
// recovered). Where it is weaker than the spec, it says so.
package model

import (
	"cmp"
	"errors"
	"slices"

	"github.com/omega-sheaf/omega/trace"
)

// Predicates of the model's checker (SPEC 4).
const (
	LamportMonotonic  = 1001
	EventUnique       = 1002
	CausalOrder       = 1003
	PayloadHashMatch  = 2001
	DependencyKnown   = 2002
	OverlapAgreement  = 3001
	firstDomain       = 4000
	lastDomainPredict = 4999
)

// Config holds the constants of the instance a trace is read against.
type Config struct {
	// BatchSize is the most events a batch holds (the spec's BatchSize).
	BatchSize int
	// DomainPredicates accepts an obstruction by a domain predicate
	// (4000-4999), which the model cannot evaluate, when it returns nil.
	// Nil refuses every domain predicate.
	DomainPredicates func(pred uint32, e trace.Event) error
}

type stream struct {
	node   uint32
	stream uint16
}

// record is a log record: an EVENT frame, or a BATCH frame.
type record struct {
	isEvent bool
	ev      trace.Event // an EVENT record's event

	bid        uint64
	outcome    trace.Outcome // Merge or Obstruction
	batch      []trace.Event // distinct contents
	pred       uint32
	at         trace.Event
	quarantine map[trace.Digest]bool
	safe       bool // decided in safe mode
}

// cert is a certificate of the chain.
type cert struct {
	bid   uint64
	merge bool
	hash  trace.Digest
	prev  trace.Digest
	at    int // index of its BATCH record in the log
	safe  bool
}

// State is the model's state: the variables of OMEGA.tla, and indexes
// over them that the actions keep up to date.
type State struct {
	cfg Config

	log       []record
	synced    int
	ready     []trace.Event
	pend      []trace.Event // in the order events entered
	blocked   []trace.Event
	inflight  map[trace.Digest]bool
	acked     map[trace.Digest]trace.Event
	certs     []cert
	csynced   int
	nextBatch uint64
	safe      bool
	up        bool
	damaged   bool
	crashes   int
	snap      int

	// base is the log's length when the kernel last opened: a kernel
	// counts Sync's and Snapshot's Through from there.
	base int
	// issued holds every certificate ever made, by batch id: one made
	// again after a crash must be the same.
	issued map[uint64]trace.Digest

	// Indexes, rebuilt from log by index().
	accepted  map[trace.ID]trace.Event // accepted id -> its content
	accDigest map[trace.Digest]bool
	heads     map[stream]uint64
	undecided map[trace.Digest]bool
	evPos     map[trace.Digest]int // the index of each content's EVENT record
	quarIDs   map[trace.ID]bool    // ids of quarantined events
}

// New returns the model's initial state (Init) for cfg.
func New(cfg Config) *State {
	s := &State{cfg: cfg, nextBatch: 1, up: true}
	s.index()
	return s
}

// index rebuilds the indexes from the log.
func (s *State) index() {
	s.accepted = make(map[trace.ID]trace.Event)
	s.accDigest = make(map[trace.Digest]bool)
	s.heads = make(map[stream]uint64)
	s.undecided = make(map[trace.Digest]bool)
	s.evPos = make(map[trace.Digest]int)
	s.quarIDs = make(map[trace.ID]bool)
	s.inflight = cmpOr(s.inflight, map[trace.Digest]bool{})
	s.acked = cmpOr(s.acked, map[trace.Digest]trace.Event{})
	s.issued = cmpOr(s.issued, map[uint64]trace.Digest{})
	for i := range s.log {
		s.apply(i)
	}
}

func cmpOr[M ~map[K]V, K comparable, V any](m, d M) M {
	if m == nil {
		return d
	}
	return m
}

// apply updates the indexes for log record i, the last appended.
func (s *State) apply(i int) {
	r := &s.log[i]
	if r.isEvent {
		if _, ok := s.evPos[r.ev.Digest]; !ok {
			s.evPos[r.ev.Digest] = i
		}
		// A quarantined event received again is undecided again.
		s.undecided[r.ev.Digest] = true
		return
	}
	if r.outcome == trace.Merge {
		for _, e := range r.batch {
			s.accepted[e.ID] = e
			s.accDigest[e.Digest] = true
			st := stream{e.Node, e.Stream}
			s.heads[st] = max(s.heads[st], e.Lamport)
			delete(s.undecided, e.Digest)
		}
		return
	}
	for d := range r.quarantine {
		delete(s.undecided, d)
	}
	for _, e := range r.batch {
		if r.quarantine[e.Digest] {
			s.quarIDs[e.ID] = true
		}
	}
}

// --- The checker -----------------------------------------------------

// Violates reports whether predicate p holds at event e of batch b (its
// distinct contents), decided on the State whose accepted events are acc
// and whose stream heads are heads: OMEGA.tla's Violates.
func Violates(p uint32, e trace.Event, b []trace.Event, acc map[trace.ID]trace.Event, heads map[stream]uint64) bool {
	inBatch := func(id trace.ID) bool {
		return slices.ContainsFunc(b, func(f trace.Event) bool { return f.ID == id })
	}
	switch p {
	case PayloadHashMatch:
		return !e.PayloadOK
	case OverlapAgreement:
		return slices.ContainsFunc(b, func(f trace.Event) bool { return f.ID == e.ID && f.Digest != e.Digest })
	case EventUnique:
		_, ok := acc[e.ID]
		return ok
	case LamportMonotonic:
		st := stream{e.Node, e.Stream}
		for _, f := range b {
			if f.Digest != e.Digest && (stream{f.Node, f.Stream}) == st && f.Lamport == e.Lamport && !e.ID.Less(f.ID) {
				return true
			}
		}
		first := !slices.ContainsFunc(b, func(f trace.Event) bool {
			return (stream{f.Node, f.Stream}) == st && f.Lamport < e.Lamport
		})
		h, ok := heads[st]
		return first && ok && e.Lamport <= h
	case CausalOrder:
		for _, d := range e.Deps {
			if l, ok := depLamport(d, b, acc); ok && l >= e.Lamport {
				return true
			}
		}
		return false
	case DependencyKnown:
		for _, d := range e.Deps {
			if _, ok := acc[d]; !ok && !inBatch(d) {
				return true
			}
		}
		return false
	}
	return false
}

// depLamport is OMEGA.tla's DepLam: the lamport of the batch's first
// content with id d in canonical order, else of the accepted one.
func depLamport(d trace.ID, b []trace.Event, acc map[trace.ID]trace.Event) (uint64, bool) {
	var first *trace.Event
	for i := range b {
		if b[i].ID == d && (first == nil || canonicalLess(&b[i], first)) {
			first = &b[i]
		}
	}
	if first != nil {
		return first.Lamport, true
	}
	a, ok := acc[d]
	return a.Lamport, ok
}

func canonicalLess(a, b *trace.Event) bool {
	return cmp.Or(
		cmp.Compare(a.Lamport, b.Lamport),
		cmp.Compare(a.Node, b.Node),
		cmp.Compare(a.Stream, b.Stream),
		cmp.Compare(a.ID.Hi, b.ID.Hi),
		cmp.Compare(a.ID.Lo, b.ID.Lo),
		slices.Compare(a.Digest[:], b.Digest[:]),
	) < 0
}

// clean reports whether no predicate holds at any event of b (Clean).
func clean(b []trace.Event, acc map[trace.ID]trace.Event, heads map[stream]uint64) bool {
	for _, e := range b {
		for _, p := range []uint32{PayloadHashMatch, OverlapAgreement, EventUnique, LamportMonotonic, CausalOrder, DependencyKnown} {
			if Violates(p, e, b, acc, heads) {
				return false
			}
		}
	}
	return true
}

// distinct returns the distinct contents of events: a batch as the
// checker sees it.
func distinct(events []trace.Event) []trace.Event {
	out := make([]trace.Event, 0, len(events))
	seen := make(map[trace.Digest]bool, len(events))
	for _, e := range events {
		if !seen[e.Digest] {
			seen[e.Digest] = true
			out = append(out, e)
		}
	}
	return out
}

var errNotUp = errors.New("the kernel is not running")
