// Package engine is the reconciler's deterministic core: the Kernel's
// sequencer and coordinator over one stream's messages, and checkpoints of
// its state. It does no I/O and reads no clock; package jetstream wires
// it to NATS, a certificate store and files.
package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/omega-sheaf/omega"
)

// Message is one message of the events stream, as the engine reads it.
type Message struct {
	Seq    uint64 // the stream sequence
	TimeNs int64  // the stream's timestamp, stored with the message
	Flush  bool   // a flush marker; Data is ignored
	Data   []byte // canonical EVENT encodings, one after another
}

// Decision is one decided batch, as the engine hands it on.
type Decision struct {
	Out  omega.Output
	Meta omega.BatchMeta
	Seq  uint64 // the stream sequence of the message that closed the batch
	// Settled counts the events the decision settles: all of a Merge's,
	// an Obstruction's conflict set (the rest are checked again).
	Settled int
}

// Options are what an engine's decisions depend on besides its checker
// and the stream; every field must be set.
type Options struct {
	BatchSize     int
	MaxPending    int
	MaxPendingAge time.Duration
	ReplaySeed    uint64
}

// Engine is the reconciler's deterministic core: the Kernel's sequencer
// and coordinator (SPEC 8) with the stream's order for arrival order and the
// stream's timestamps for a clock. It is a function of the messages it is
// given, in order: two engines given the same messages decide the same
// batches, whoever runs them, whenever, and however the messages were
// delivered. It does no I/O and reads no clock.
type Engine struct {
	c          *omega.Checker
	lim        omega.Limits
	batchSize  int
	maxPending int
	maxAge     int64 // ns
	seed       uint64

	state *omega.State
	next  uint64 // the next batch id
	seq   uint64 // the last stream sequence applied
	now   int64  // stream time: the greatest timestamp seen

	// accepted holds 64 bits of the digest of every accepted event, by
	// id: an event identical to an accepted one is a redelivery. inflight
	// counts the digests of the events taken in and not decided.
	accepted map[omega.EventID]uint64
	inflight map[omega.Hash]int
	// acceptedLog lists the accepted events in the order accepted. It is
	// only appended to, so that a checkpoint can encode a prefix of it
	// while the engine goes on.
	acceptedLog []acceptedFP

	released map[omega.EventID]int // ids of undecided events released to batches
	waiting  map[omega.EventID][]*held
	held     []*held // in arrival order; released ones are skipped lazily
	nheld    int
	ready    []item

	stats Stats
	evs   []omega.Event // scratch
}

type acceptedFP struct {
	id omega.EventID
	fp uint64
}

type item struct {
	ev omega.Event
	d  omega.Hash
}

type held struct {
	it      item
	since   int64 // stream time it entered the buffer
	missing int   // distinct dependencies it still waits for
	gone    bool
}

// Stats counts what a reconciler has read and decided, from the stream's
// first message (a checkpoint keeps them). They are a function of the
// stream, like its decisions.
type Stats struct {
	Messages     uint64 // messages of the events stream applied
	Flushes      uint64 // flush markers among them
	Malformed    uint64 // events that are not well-formed (or messages whose next event's length cannot be read): skipped
	Dropped      uint64 // exact redeliveries of an accepted or undecided event
	Taken        uint64 // events taken in: held or released to a batch
	Expired      uint64 // held events released for want of their dependencies
	Batches      uint64 // batches decided
	Merges       uint64
	Obstructions uint64
}

// New returns an engine at the stream's start.
func New(c *omega.Checker, cfg Options) *Engine {
	return &Engine{
		c:          c,
		lim:        c.Limits(),
		batchSize:  cfg.BatchSize,
		maxPending: cfg.MaxPending,
		maxAge:     int64(cfg.MaxPendingAge),
		seed:       cfg.ReplaySeed,
		next:       1,
		accepted:   make(map[omega.EventID]uint64),
		inflight:   make(map[omega.Hash]int),
		released:   make(map[omega.EventID]int),
		waiting:    make(map[omega.EventID][]*held),
	}
}

var errChecker = errors.New("omega/jetstream: checker failed")

// Seq returns the stream sequence of the last message applied.
func (e *Engine) Seq() uint64 { return e.seq }

// Next returns the id of the next batch.
func (e *Engine) Next() uint64 { return e.next }

// Stats returns the engine's counts.
func (e *Engine) Stats() Stats { return e.stats }

// Accepted returns how many events the engine has accepted.
func (e *Engine) Accepted() int { return len(e.acceptedLog) }

// Apply takes in one message and hands every batch it completes to emit,
// in order. An error is the checker's or emit's, and leaves the engine
// unusable: the caller stops.
func (e *Engine) Apply(m Message, emit func(Decision) error) error {
	if m.Seq <= e.seq {
		return fmt.Errorf("omega/jetstream: stream sequence %d after %d", m.Seq, e.seq)
	}
	e.seq = m.Seq
	e.now = max(e.now, m.TimeNs)
	e.stats.Messages++
	if m.Flush {
		e.stats.Flushes++
	} else {
		e.admit(m.Data)
	}
	e.expire()
	return e.cut(m.Flush, emit)
}

// admit takes in the events of one message, in order: canonical EVENT
// encodings one after another (see Publish).
func (e *Engine) admit(data []byte) {
	if len(data) == 0 {
		e.stats.Malformed++
		return
	}
	for len(data) > 0 {
		n := EventLen(data)
		if n == 0 {
			// No caller to refuse it to: every reconciler skips the rest
			// of the message alike.
			e.stats.Malformed++
			return
		}
		e.admit1(data[:n])
		data = data[n:]
	}
}

// EventLen returns the length of the canonical EVENT encoding data
// starts with (SPEC 3: 80 bytes, 16 per dependency, then the payload), or
// 0 when data is too short to hold it.
func EventLen(data []byte) int {
	if len(data) < eventFixedLen {
		return 0
	}
	// In 64 bits: payload_len alone may overflow an int on 32-bit
	// platforms.
	n := uint64(eventFixedLen) + 16*uint64(binary.LittleEndian.Uint16(data[42:])) + uint64(binary.LittleEndian.Uint32(data[44:]))
	if n > uint64(len(data)) {
		return 0
	}
	return int(n)
}

const eventFixedLen = 80

// DecodeMessage decodes the events of one message of an events subject:
// canonical EVENT encodings one after another, as Publish makes them. An
// error names the first event that does not decode, with the events
// before it. (The reconcilers skip such an event, and the rest of its
// message only when its length cannot be read.)
func DecodeMessage(data []byte, lim omega.Limits) ([]omega.Event, error) {
	var out []omega.Event
	if len(data) == 0 {
		return nil, errors.New("omega/jetstream: an events message holds no event")
	}
	for off := 0; off < len(data); {
		n := EventLen(data[off:])
		if n == 0 {
			return out, fmt.Errorf("omega/jetstream: event %d at byte %d: %w", len(out), off, io.ErrUnexpectedEOF)
		}
		e, err := omega.DecodeEvent(data[off:off+n], lim)
		if err == nil {
			err = e.Validate(lim)
		}
		if err != nil {
			return out, fmt.Errorf("omega/jetstream: event %d at byte %d: %w", len(out), off, err)
		}
		out = append(out, e)
		off += n
	}
	return out, nil
}

// admit1 is the sequencer's step for one event: skip it when it is not
// well-formed, drop it as a redelivery, or hold or release it.
func (e *Engine) admit1(data []byte) {
	ev, err := omega.DecodeEvent(data, e.lim)
	if err == nil {
		err = ev.Validate(e.lim)
	}
	if err != nil {
		e.stats.Malformed++
		return
	}
	d := ev.Digest()
	if e.inflight[d] > 0 {
		e.stats.Dropped++
		return
	}
	if fp, ok := e.accepted[ev.ID]; ok && fp == fingerprint(d) {
		e.stats.Dropped++
		return
	}
	e.stats.Taken++
	e.inflight[d]++
	it := item{ev: ev, d: d}
	missing := e.missingDeps(&ev)
	if len(missing) == 0 {
		e.release(it)
		return
	}
	h := &held{it: it, since: e.now, missing: len(missing)}
	e.held = append(e.held, h)
	e.nheld++
	for _, d := range missing {
		e.waiting[d] = append(e.waiting[d], h)
	}
}

func fingerprint(d omega.Hash) uint64 { return binary.LittleEndian.Uint64(d[:]) }

// missingDeps returns the distinct dependencies of ev that are neither
// accepted nor released to a batch ahead of it.
func (e *Engine) missingDeps(ev *omega.Event) []omega.EventID {
	var out []omega.EventID
	for _, d := range ev.Deps {
		if d == ev.ID || e.released[d] > 0 || slices.Contains(out, d) {
			continue
		}
		if _, known := e.state.Lamport(d); known {
			continue
		}
		out = append(out, d)
	}
	return out
}

// release puts it in the batch queue, and with it every held event that
// waited only for it, transitively, breadth first.
func (e *Engine) release(it item) {
	work := []omega.EventID{it.ev.ID}
	e.ready1(it)
	for i := 0; i < len(work); i++ {
		id := work[i]
		for _, h := range e.waiting[id] {
			if h.gone {
				continue
			}
			if h.missing--; h.missing == 0 {
				e.unhold(h)
				e.ready1(h.it)
				work = append(work, h.it.ev.ID)
			}
		}
		delete(e.waiting, id)
	}
}

func (e *Engine) ready1(it item) {
	e.ready = append(e.ready, it)
	e.released[it.ev.ID]++
}

func (e *Engine) unhold(h *held) {
	h.gone = true
	e.nheld--
}

// expire releases, oldest first, the held events that have waited
// MaxPendingAge of stream time, and while the buffer holds more than
// MaxPending events the oldest of them: the checker obstructs them by 2002.
// A stream cannot be asked to wait, so a full buffer makes room instead of
// pushing back as the Kernel's does.
func (e *Engine) expire() {
	for {
		i := 0
		for i < len(e.held) && e.held[i].gone {
			i++
		}
		e.held = e.held[i:]
		if len(e.held) == 0 {
			return
		}
		h := e.held[0]
		if e.now-h.since < e.maxAge && e.nheld <= e.maxPending {
			return
		}
		e.unhold(h)
		for _, d := range h.it.ev.Deps {
			if ws, ok := e.waiting[d]; ok {
				ws = slices.DeleteFunc(ws, func(w *held) bool { return w.gone })
				if len(ws) == 0 {
					delete(e.waiting, d)
				} else {
					e.waiting[d] = ws
				}
			}
		}
		e.stats.Expired++
		e.release(h.it)
	}
}

// cut decides the full batches in the queue, and with force the rest.
// Deciding does not touch the queue, so that the batches are cut from it in
// place and the queue is shifted once.
func (e *Engine) cut(force bool, emit func(Decision) error) error {
	i := 0
	defer func() { e.ready = slices.Delete(e.ready, 0, i) }()
	for len(e.ready)-i >= e.batchSize || (force && len(e.ready) > i) {
		n := min(e.batchSize, len(e.ready)-i)
		batch := e.ready[i : i+n : i+n]
		i += n
		if err := e.decide(batch, emit); err != nil {
			return err
		}
	}
	return nil
}

// decide reconciles batch; after an Obstruction it quarantines the
// conflict set and decides the rest as the next batch, at once.
func (e *Engine) decide(batch []item, emit func(Decision) error) error {
	for len(batch) > 0 {
		e.evs = e.evs[:0]
		for i := range batch {
			e.evs = append(e.evs, batch[i].ev)
		}
		out, err := e.c.Reconcile(e.state, e.evs)
		if err != nil {
			return fmt.Errorf("%w: batch %d: %w", errChecker, e.next, err)
		}
		meta := omega.BatchMeta{BatchID: e.next, ReplaySeed: e.seed, CreatedAtNs: uint64(max(e.now, 0))}
		e.next++
		e.stats.Batches++
		r := out.Result
		rest := batch[:0:0]
		if r.Kind == omega.KindMerge {
			e.stats.Merges++
			e.state = r.Merge.Next
			for _, m := range r.Members {
				fp := fingerprint(m.Digest)
				e.accepted[m.ID] = fp
				e.acceptedLog = append(e.acceptedLog, acceptedFP{m.ID, fp})
			}
			for _, it := range batch {
				e.decided(it)
			}
		} else {
			e.stats.Obstructions++
			cs := r.Obstruction.ConflictSet
			for _, it := range batch {
				if _, in := slices.BinarySearchFunc(cs, it.ev.ID, omega.EventID.Compare); in {
					e.decided(it)
				} else {
					rest = append(rest, it)
				}
			}
			if len(rest) == len(batch) {
				return fmt.Errorf("%w: batch %d: obstruction %d quarantines no event of the batch", errChecker, meta.BatchID, r.Obstruction.Predicate)
			}
		}
		if err := emit(Decision{Out: out, Meta: meta, Seq: e.seq, Settled: len(batch) - len(rest)}); err != nil {
			return err
		}
		batch = rest
	}
	return nil
}

// decided forgets an undecided event.
func (e *Engine) decided(it item) {
	if e.released[it.ev.ID]--; e.released[it.ev.ID] <= 0 {
		delete(e.released, it.ev.ID)
	}
	if e.inflight[it.d]--; e.inflight[it.d] <= 0 {
		delete(e.inflight, it.d)
	}
}
