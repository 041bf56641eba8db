package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/omega-sheaf/omega"
)

// A checkpoint is the whole state of a reconciler's engine after a stream
// sequence, with the hash of the certificate of its last batch: a
// reconciler restarts from the newest checkpoint its certificate store
// confirms, reading the stream after that sequence, instead of from the
// stream's first message. Its encoding (package jetstream writes it whole
// to checkpoints/<batch id, 16 hex digits>.ckpt and renames it into
// place), little-endian:
//
//	magic "OMEGAJCK" | version u16 = 1
//	the creation time of OMEGA_EVENTS, Unix ns i64
//	seq u64 | stream time i64 | next batch id u64 | cert_hash of batch next-1 [32]
//	the nine Stats counts, u64 each
//	snapshot_len u32 | an omega snapshot (SPEC 7) of the State, no pending events
//	accepted u64 | per accepted event, in the order accepted: id [16] | digest fingerprint u64
//	ready u32 | per event in the batch queue, in order: len u32 | EVENT encoding
//	held u32 | per held event, in arrival order: since i64 | len u32 |
//	           EVENT encoding | missing u32 | the dependencies it waits for [16] each
//	checksum [32]: omega.PayloadHash of everything before it
//
// A checkpoint that does not decode, whose certificate the store does not
// hold, or that was taken from another OMEGA_EVENTS (one deleted and made
// again: its sequences name other messages), is passed over for an older
// one, or for the stream's start.

const (
	ckptMagic   = "OMEGAJCK"
	ckptVersion = 1
)

var errCheckpoint = errors.New("omega/jetstream: malformed checkpoint")

type Checkpoint struct {
	Origin    int64 // the creation time of the stream it was taken from
	Seq, Next uint64
	now       int64
	Prev      omega.Hash
	Stats     Stats
	state     *omega.State
	accepted  []acceptedFP
	ready     []item
	held      []*held
	waits     [][]omega.EventID // per held event, the dependencies it waits for
}

// Capture is a checkpoint of an engine in two parts: what the engine
// will change, encoded at once, and what it will not (the State, which is
// immutable, and a prefix of its append-only list of accepted events),
// encoded later, while the engine goes on.
type Capture struct {
	head, queues []byte
	snap         *omega.Snapshot
	accepted     []acceptedFP
}

// Capture takes the parts of a checkpoint of e that e will change; the
// rest is encoded by Capture.AppendTo, which may run on another goroutine
// while e goes on.
func (e *Engine) Capture(origin int64, prev omega.Hash) (*Capture, error) {
	c := &Capture{
		snap:     &omega.Snapshot{ID: e.next - 1, BaseOffset: 64, LastBatchID: e.next - 1, Binding: e.c.Binding(), State: e.state},
		accepted: e.acceptedLog[:len(e.acceptedLog):len(e.acceptedLog)],
	}
	b := append([]byte(nil), ckptMagic...)
	b = binary.LittleEndian.AppendUint16(b, ckptVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(origin))
	b = binary.LittleEndian.AppendUint64(b, e.seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.now))
	b = binary.LittleEndian.AppendUint64(b, e.next)
	b = append(b, prev[:]...)
	for _, v := range e.stats.counts() {
		b = binary.LittleEndian.AppendUint64(b, *v)
	}
	c.head = b
	var err error
	appendEvent := func(b []byte, ev *omega.Event) ([]byte, error) {
		b = binary.LittleEndian.AppendUint32(b, uint32(ev.EncodedLen()))
		return ev.AppendBinary(b)
	}
	q := binary.LittleEndian.AppendUint32(nil, uint32(len(e.ready)))
	for i := range e.ready {
		if q, err = appendEvent(q, &e.ready[i].ev); err != nil {
			return nil, err
		}
	}
	// The held events still held, each with the dependencies it still
	// waits for: those whose waiting lists name it.
	var live []*held
	for _, h := range e.held {
		if !h.gone {
			live = append(live, h)
		}
	}
	waits := make(map[*held][]omega.EventID, len(live))
	deps := make([]omega.EventID, 0, len(e.waiting))
	for d := range e.waiting {
		deps = append(deps, d)
	}
	slices.SortFunc(deps, omega.EventID.Compare)
	for _, d := range deps {
		for _, h := range e.waiting[d] {
			if !h.gone && !slices.Contains(waits[h], d) {
				waits[h] = append(waits[h], d)
			}
		}
	}
	q = binary.LittleEndian.AppendUint32(q, uint32(len(live)))
	for _, h := range live {
		if len(waits[h]) != h.missing {
			return nil, fmt.Errorf("omega/jetstream: checkpoint: a held event waits on %d dependencies, counted %d", len(waits[h]), h.missing)
		}
		q = binary.LittleEndian.AppendUint64(q, uint64(h.since))
		if q, err = appendEvent(q, &h.it.ev); err != nil {
			return nil, err
		}
		q = binary.LittleEndian.AppendUint32(q, uint32(len(waits[h])))
		for _, d := range waits[h] {
			q, _ = d.AppendBinary(q)
		}
	}
	c.queues = q
	return c, nil
}

// AppendTo encodes the checkpoint c captured. It may run on another
// goroutine than the engine's.
func (c *Capture) AppendTo(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, c.head...)
	lenAt := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := c.snap.AppendBinary(b)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b[lenAt:], uint32(len(b)-lenAt-4))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(c.accepted)))
	for _, a := range c.accepted {
		b, _ = a.id.AppendBinary(b)
		b = binary.LittleEndian.AppendUint64(b, a.fp)
	}
	b = append(b, c.queues...)
	sum := omega.PayloadHash(b[start:])
	return append(b, sum[:]...), nil
}

func (s *Stats) counts() []*uint64 {
	return []*uint64{&s.Messages, &s.Flushes, &s.Malformed, &s.Dropped, &s.Taken, &s.Expired, &s.Batches, &s.Merges, &s.Obstructions}
}

// ckptReader reads a checkpoint's fields, failing for good at the first
// that the bytes do not hold.
type ckptReader struct {
	b   []byte
	err error
}

func (r *ckptReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail("cut short")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *ckptReader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errCheckpoint, why)
	}
}

func (r *ckptReader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *ckptReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *ckptReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *ckptReader) id() omega.EventID {
	if b := r.take(16); b != nil {
		return omega.EventID{Lo: binary.LittleEndian.Uint64(b), Hi: binary.LittleEndian.Uint64(b[8:])}
	}
	return omega.EventID{}
}

func (r *ckptReader) event(lim omega.Limits) omega.Event {
	n := r.u32()
	b := r.take(int(min(n, 1<<31)))
	if r.err != nil {
		return omega.Event{}
	}
	ev, err := omega.DecodeEvent(b, lim)
	if err == nil {
		err = ev.Validate(lim)
	}
	if err != nil {
		r.fail(err.Error())
	}
	return ev
}

// count reads a count of items of at least size bytes each, refusing one
// the rest of the bytes cannot hold.
func (r *ckptReader) count(n uint64, size int) int {
	if r.err == nil && n > uint64(len(r.b)/size) {
		r.fail("a count larger than the file")
		return 0
	}
	return int(n)
}

// DecodeCheckpoint decodes a checkpoint of an engine deciding under
// binding want with limits lim.
func DecodeCheckpoint(b []byte, want omega.Binding, lim omega.Limits) (*Checkpoint, error) {
	if len(b) < len(ckptMagic)+2+32 {
		return nil, fmt.Errorf("%w: cut short", errCheckpoint)
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if h := omega.PayloadHash(body); !bytes.Equal(h[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errCheckpoint)
	}
	r := &ckptReader{b: body}
	if string(r.take(len(ckptMagic))) != ckptMagic || r.u16() != ckptVersion {
		return nil, fmt.Errorf("%w: not a version %d checkpoint", errCheckpoint, ckptVersion)
	}
	c := &Checkpoint{Origin: int64(r.u64()), Seq: r.u64(), now: int64(r.u64()), Next: r.u64()}
	copy(c.Prev[:], r.take(32))
	for _, v := range c.Stats.counts() {
		*v = r.u64()
	}
	snapBytes := r.take(int(r.u32()))
	if r.err != nil {
		return nil, r.err
	}
	snap, err := omega.DecodeSnapshot(snapBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	if snap.Binding != want {
		return nil, fmt.Errorf("%w: made under binding %v, not %v", errCheckpoint, snap.Binding, want)
	}
	if c.Next == 0 || snap.LastBatchID != c.Next-1 || len(snap.Pending) != 0 {
		return nil, fmt.Errorf("%w: its snapshot is not of batch %d", errCheckpoint, c.Next-1)
	}
	c.state = snap.State
	n := r.count(r.u64(), 24)
	c.accepted = make([]acceptedFP, 0, n)
	seen := make(map[omega.EventID]bool, n)
	for range n {
		a := acceptedFP{id: r.id(), fp: r.u64()}
		if seen[a.id] {
			r.fail("an id accepted twice")
		}
		seen[a.id] = true
		c.accepted = append(c.accepted, a)
	}
	n = r.count(uint64(r.u32()), 4+80)
	for range n {
		ev := r.event(lim)
		c.ready = append(c.ready, item{ev: ev, d: ev.Digest()})
	}
	n = r.count(uint64(r.u32()), 8+4+80+4)
	for range n {
		since := int64(r.u64())
		ev := r.event(lim)
		m := r.count(uint64(r.u32()), 16)
		if r.err == nil && m == 0 {
			r.fail("a held event waits for nothing")
		}
		ws := make([]omega.EventID, 0, m)
		for range m {
			d := r.id()
			if slices.Contains(ws, d) {
				r.fail("a held event waits twice for one dependency")
			}
			ws = append(ws, d)
		}
		c.held = append(c.held, &held{it: item{ev: ev, d: ev.Digest()}, since: since, missing: m})
		c.waits = append(c.waits, ws)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// Restore sets e's state to c's.
func (e *Engine) Restore(c *Checkpoint) {
	e.seq, e.now, e.next, e.stats, e.state = c.Seq, c.now, c.Next, c.Stats, c.state
	e.acceptedLog = c.accepted
	e.accepted = make(map[omega.EventID]uint64, len(c.accepted))
	for _, a := range c.accepted {
		e.accepted[a.id] = a.fp
	}
	e.ready = c.ready
	clear(e.released)
	clear(e.inflight)
	clear(e.waiting)
	for _, it := range c.ready {
		e.released[it.ev.ID]++
		e.inflight[it.d]++
	}
	e.held, e.nheld = c.held, len(c.held)
	for i, h := range c.held {
		e.inflight[h.it.d]++
		for _, d := range c.waits[i] {
			e.waiting[d] = append(e.waiting[d], h)
		}
	}
}
