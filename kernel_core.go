package omega

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/fsync"
	"github.com/omega-sheaf/omega/trace"
)

// The kernel's goroutines (SPEC 8's actors):
//
//   - the core (core.run) is the sequencer, the coordinator and the
//     checker gateway: it owns the event log, the State, the pending
//     buffer and the batches, so none of them needs a lock;
//   - the syncer (Kernel.syncer) runs the log's fsyncs, acknowledges the
//     Submits each one makes durable, and hands their batches on;
//   - the presigner (Kernel.presign) signs the certificates of the batches
//     the core decides, in order, while the syncer makes them durable;
//   - the certifier (Kernel.certify) appends the certificates of the
//     batches the syncer hands it, once the presigner has signed them,
//     and reports them;
//   - the snapshotter (Kernel.snapshots) writes snapshot files and prunes.
//
// Work flows one way through channels: Submit -> core -> syncer ->
// certifier -> snapshotter, and core -> presigner, whose signatures the
// certifier waits for. Each goroutine is started by OpenKernel and ended
// by Close, which closes the channel it reads after the goroutine feeding
// it ended.

// queued is an event in the kernel: its copy, digest and canonical
// encoding, and when it was submitted.
type queued struct {
	ev  Event
	d   Hash
	pok bool // the payload hashes to its payload_hash (predicate 2001)
	enc []byte
	// lamps holds, for each of ev's dependencies, 1 + its lamport when the
	// sequencer found it accepted, else 0: the checker then need not look
	// it up again (see hashed). nil for an event that has none.
	lamps []uint64
	at    time.Time // submitted
	rel   time.Time // released to the batch queue
}

type submitReq struct {
	ctx    context.Context // the caller's: once it ends, events not yet taken in are left out
	cut    bool            // some were: the acknowledgement is ctx's error
	events []queued
	done   chan error    // buffered: the core never waits on it
	tr     []trace.Event // when tracing: the events logged, for Ack
}

type ctlKind uint8

const (
	ctlFlush ctlKind = iota
	ctlSnapshot
	ctlResume
	ctlStop
)

type ctlReq struct {
	kind ctlKind
	done chan error // buffered
	ctx  context.Context
}

// certJob is a decided batch to certify once it is durable in the log.
type certJob struct {
	out  Output
	meta BatchMeta
	at   []time.Time // when each of its events was submitted
	sig  *presigned  // its certificate, made while the log is synced
}

// presigned is a batch's certificate, signed by the presigner before the
// batch is durable and appended by the certifier only once it is: the
// signature, most of a certificate's cost, overlaps the log's fsync
// instead of following it. done is closed when cert or err is set.
type presigned struct {
	cert *Certificate
	hash Hash // cert's cert_hash
	err  error
	done chan struct{}
}

// certWork is what the syncer hands the certifier after one sync: batches
// to certify, then, when set, a flush to acknowledge or a snapshot to write
// once they are certified.
type certWork struct {
	jobs  []certJob
	flush chan error
	snap  *snapJob
}

type snapJob struct {
	seq     uint64 // the segment the snapshot is the base of
	through int    // when tracing: the records logged since open it describes
	snap    *Snapshot
	fps     fingerprints // a view of the sequencer's, for the fingerprint file
	done    chan error   // nil for a periodic snapshot
}

// kernelStats are the kernel's running figures.
type kernelStats struct {
	submitted, malformed, accepted, dropped, expired atomic.Uint64
	batches, merges, obstructions, blocked           atomic.Uint64
	fsyncs, certFsyncs, certified                    atomic.Uint64
	fsyncNanos, certFsyncNanos                       atomic.Int64
	durable, certifiedLatency, syncDelay, fsyncDur   histogram
	writeDelay                                       histogram
}

// KernelStats are a kernel's running figures since it was opened.
type KernelStats struct {
	Submitted, Malformed  uint64 // events given to Submit, and refused
	Accepted, Dropped     uint64 // events logged, and redeliveries dropped
	Expired               uint64 // events released after MaxPendingAge
	Batches               uint64 // batches decided: Merges + Obstructions
	Merges, Obstructions  uint64
	SafeModeBlocked       uint64 // events held back in safe mode, as the metric counts them
	LogFsyncs, CertFsyncs uint64
	// LogFsyncTime and CertFsyncTime are the time spent in those fsyncs.
	LogFsyncTime, CertFsyncTime time.Duration
	Certified                   uint64 // certificates appended
	// SubmitToDurable is, per Submit, the time until it was acknowledged;
	// SubmitToCertificate, per event of each certified batch, from its
	// Submit to its certificate being durable.
	SubmitToDurable     Latency
	SubmitToCertificate Latency
	// SubmitToFsyncStart is, per log fsync, how long the oldest Submit it
	// covers had waited when it started: in the queue before the core,
	// in the core, and for the fsync to start.
	SubmitToFsyncStart Latency
	// WriteToFsyncStart is, per log fsync, how long the oldest frame it
	// covers had been written when it started: the group commit's delay
	// alone.
	WriteToFsyncStart Latency
	// LogFsync is the duration of the log's fsyncs under SyncBatch.
	LogFsync               Latency
	FsyncsPerAcceptedEvent float64 // LogFsyncs / Accepted
}

// Stats returns the kernel's running figures.
func (k *Kernel) Stats() KernelStats {
	s := &k.stats
	st := KernelStats{
		Submitted: s.submitted.Load(), Malformed: s.malformed.Load(),
		Accepted: s.accepted.Load(), Dropped: s.dropped.Load(), Expired: s.expired.Load(),
		Batches: s.batches.Load(), Merges: s.merges.Load(), Obstructions: s.obstructions.Load(),
		SafeModeBlocked: s.blocked.Load(),
		LogFsyncs:       s.fsyncs.Load(), CertFsyncs: s.certFsyncs.Load(), Certified: s.certified.Load(),
		LogFsyncTime: time.Duration(s.fsyncNanos.Load()), CertFsyncTime: time.Duration(s.certFsyncNanos.Load()),
		SubmitToDurable:     s.durable.summary(),
		SubmitToCertificate: s.certifiedLatency.summary(),
		SubmitToFsyncStart:  s.syncDelay.summary(),
		WriteToFsyncStart:   s.writeDelay.summary(),
		LogFsync:            s.fsyncDur.summary(),
	}
	if st.Accepted > 0 {
		st.FsyncsPerAcceptedEvent = float64(st.LogFsyncs) / float64(st.Accepted)
	}
	return st
}

// core is the state the core goroutine owns.
type core struct {
	k       *Kernel
	j       *Journal
	seg     uint64 // the segment being appended to
	wopts   framelog.WriterOptions
	next    uint64 // the next batch id
	sinceSn int    // batches decided since the last snapshot
	evSn    int    // events logged since the last snapshot

	// The sequencer.
	// The events logged and not decided are the journal's pending ones.
	released *flightTable[EventID, int] // ids of the undecided events released to batches
	waiting  map[EventID][]*held        // held events, by a dependency they wait for
	held     []*held                    // in arrival order
	nheld    int
	fps      fingerprints
	ready    []queued // released, in arrival order, from ready[head] on
	head     int
	// part is a Submit whose events the pending buffer had no room for:
	// events[:partAt] are in, partLogged of them logged; the others wait
	// for room, and no other Submit is taken in meanwhile.
	part       *submitReq
	partAt     int
	partLogged int
	readyAt    time.Time
	now        time.Time // of the step being taken

	// Safe mode. stale: the log's State is not the certificate chain's, so
	// that no decision can be certified, not even after Resume.
	safe, stale bool
	blocked     []queued
	blockedIDs  map[EventID]int

	// What the next commit acknowledges and hands the certifier.
	dirty     bool
	acks      []*submitReq
	jobs      []certJob
	syncFile  file      // the current segment, opened again for fsync
	touched   uint64    // touchIDs' results, kept so that its reads are made
	touchDeps []EventID // the dependencies touch reads ahead
	err       error     // sticky: the kernel has stopped

	frontier uint64 // the highest lamport accepted since open, for metrics

	// Tracing (KernelConfig.Trace), from the end of recovery on: records
	// counts the frames logged since open.
	tracing bool
	records int

	timer   *time.Timer
	evs     []Event   // scratch
	hashed  hashed    // scratch
	missing []EventID // scratch
}

// held is an event in the pending buffer.
type held struct {
	q       queued
	since   time.Time // when it entered the buffer: its age counts from here
	missing int       // distinct dependencies it waits for
	gone    bool      // released; lazily removed from held and waiting
}

// fingerprints keeps 64 bits of the digest of every event accepted since
// the State's base position, by its position in the State's history: the
// sequencer's test for an exact redelivery of an accepted event, at 8 bytes
// per accepted event. Events accepted before the base (those of the
// snapshot the kernel started from) have none: a redelivery of one reaches
// the checker, which obstructs it by 1002, a certified rejection.
type fingerprints struct {
	base   uint32
	chunks [][]uint64
}

const fpChunkBits = 16

func fingerprintOf(d Hash) uint64 { return binary.LittleEndian.Uint64(d[:]) | 1 }

func (f *fingerprints) set(p uint32, d Hash) {
	if p < f.base {
		return
	}
	i := p - f.base
	c := int(i >> fpChunkBits)
	for len(f.chunks) <= c {
		f.chunks = append(f.chunks, make([]uint64, 1<<fpChunkBits))
	}
	f.chunks[c][i&(1<<fpChunkBits-1)] = fingerprintOf(d)
}

func (f *fingerprints) match(p uint32, d Hash) bool {
	if p < f.base {
		return false
	}
	i := p - f.base
	c := int(i >> fpChunkBits)
	return c < len(f.chunks) && f.chunks[c][i&(1<<fpChunkBits-1)] == fingerprintOf(d)
}

func newCore(k *Kernel) *core {
	return &core{
		k:          k,
		released:   newFlightTable[EventID, int](idHash),
		waiting:    make(map[EventID][]*held),
		blockedIDs: make(map[EventID]int),
	}
}

// run is the core goroutine.
func (c *core) run() {
	defer c.k.done.Done()
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	defer c.timer.Stop()
	k := c.k
	for {
		submits := k.submits
		var gone <-chan struct{}
		if c.part != nil {
			gone = c.part.ctx.Done()
		}
		if c.full() || c.part != nil {
			submits = nil // backpressure: Submit waits
		}
		c.arm()
		select {
		case r := <-submits:
			c.submit(r)
		case <-gone:
			// The caller of a Submit waiting for room has gone: what it
			// did not hand over is left out, and other Submits go on.
			c.endPart()
		case q := <-k.ctl:
			if q.kind == ctlStop {
				c.stop(q)
				return
			}
			c.control(q)
		case <-c.timer.C:
		}
		if c.err == nil {
			c.err = k.err() // the syncer or the certifier may have stopped it
		}
		// Take in what else is already waiting, up to drainMax Submits:
		// one write, and one sync, cover all of it.
	drain:
		for i := 0; i < drainMax && !c.full() && c.part == nil; i++ {
			select {
			case r := <-k.submits:
				c.submit(r)
			default:
				break drain
			}
		}
		c.coordinate(false)
		// A Submit cut short by a full buffer goes on as expiry, a
		// release or Resume makes room.
		for c.part != nil && (c.err != nil || !c.full()) {
			c.feed(false)
			c.coordinate(false)
		}
		c.commit(nil)
	}
}

// drainMax bounds the Submits the core takes in at one step besides the
// one that woke it. Taking in all that wait (up to QueueLen) let one step
// grow to thousands of events before any of them was written and handed
// to the syncer; a bounded step hands work on sooner, so that fsyncs start
// earlier and Submits return sooner. With 64 submitters of 32 events,
// BenchmarkKernel averaged 266k events/s and 5.6 us of CPU per event over
// six runs with 32, against 234k and 6.0 us with 1024 in the same runs
// (1 and 8 did about as well as 32).
const drainMax = 32

// full reports whether the pending buffer is full: events waiting for
// their dependencies or for Resume.
func (c *core) full() bool { return c.nheld+len(c.blocked) >= c.k.cfg.MaxPending }

// arm sets the timer to the next deadline: the flush of a partial batch,
// or the expiry of the oldest held event.
func (c *core) arm() {
	var next time.Time
	if c.head < len(c.ready) {
		next = c.readyAt.Add(c.k.cfg.FlushInterval)
	}
	c.dropGone()
	if len(c.held) > 0 {
		if t := c.held[0].since.Add(c.k.cfg.MaxPendingAge); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	c.timer.Stop()
	if !next.IsZero() {
		c.timer.Reset(max(time.Until(next), 0))
	}
}

func (c *core) dropGone() {
	i := 0
	for i < len(c.held) && c.held[i].gone {
		i++
	}
	if i > 0 {
		c.held = slices.Delete(c.held, 0, i)
	}
}

// submit takes in one Submit call's events, as many as the pending buffer
// has room for: the rest wait, and no other Submit is taken in, until it
// has more (feed).
func (c *core) submit(r *submitReq) {
	if c.err != nil {
		r.done <- c.err
		return
	}
	c.part, c.partAt, c.partLogged = r, 0, 0
	c.feed(false)
}

// feed admits the events of the Submit in progress while the pending
// buffer has room, or all of them when force is set (at Close), and once
// every event is in, queues the Submit's acknowledgement.
func (c *core) feed(force bool) {
	r := c.part
	c.now = time.Now()
	logged := c.partLogged
	for c.partAt < len(r.events) && c.err == nil && (force || !c.full()) {
		i := c.partAt
		if i%touchAhead == 0 {
			c.touch(r.events[i:min(i+touchAhead, len(r.events))])
		}
		c.partAt++
		if c.admit(&r.events[i], true) {
			c.partLogged++
			if c.tracing {
				r.tr = append(r.tr, traceEvent(&r.events[i]))
			}
		}
	}
	if n := c.partLogged - logged; n > 0 {
		c.evSn += n
		c.k.stats.accepted.Add(uint64(n))
	}
	if c.partAt < len(r.events) && c.err == nil {
		return // the buffer is full
	}
	c.endPart()
}

// finishPart takes in, at Close, the rest of the Submit in progress,
// however full the buffer is, unless its caller has gone.
func (c *core) finishPart() {
	switch {
	case c.part == nil:
	case c.part.ctx.Err() != nil:
		c.endPart()
	default:
		c.feed(true)
	}
}

// endPart ends the Submit in progress, all of it taken in, or as much as
// was when its caller's context ended: it queues its acknowledgement.
func (c *core) endPart() {
	r := c.part
	r.cut = c.partAt < len(r.events)
	if n := c.partLogged; n > 0 {
		c.k.metric("sequencer.accepted", float64(n), nil)
	}
	c.acks = append(c.acks, r)
	c.part = nil
}

// touch reads ahead what admit looks up of qs in the State: their ids, for
// a redelivery, and their dependencies (see touchIDs).
func (c *core) touch(qs []queued) {
	c.touched ^= touchIDs(c.j.state, qs, func(q *queued) EventID { return q.ev.ID }) ^
		touchDeps(c.j.state, qs, func(q *queued) []EventID { return q.ev.Deps }, &c.touchDeps)
}

// admit is the sequencer's step for one event: drop it as a redelivery,
// or log it and release or hold it. An event the log holds already (a
// pending one, at open) is not logged again, and is known to be no copy of
// another. It reports whether the event was logged.
func (c *core) admit(q *queued, log bool) bool {
	if log {
		// A copy of an accepted event, or of a pending one.
		if p, ok := c.j.state.position(q.ev.ID); ok && c.fps.match(p, q.d) || !c.j.claim(&q.ev, q.d) {
			c.drop(q)
			return false
		}
	}
	missing := c.missingDeps(q)
	if log {
		if c.tracing {
			// Reported before the frame is written (under SyncAlways,
			// also synced): a crash never leaves a frame the trace has
			// not reported.
			c.records++
			c.k.trace(trace.Step{Action: trace.Receive, Events: []trace.Event{traceEvent(q)}, Held: len(missing) > 0})
		}
		if err := c.j.logEncoded(q.enc); err != nil {
			c.fail(err)
			return false
		}
		c.dirty = true
	}
	if len(missing) == 0 {
		c.release(q)
		return log
	}
	h := &held{q: *q, since: c.now, missing: len(missing)}
	c.held = append(c.held, h)
	c.nheld++
	for _, d := range missing {
		c.waiting[d] = append(c.waiting[d], h)
	}
	return log
}

// missingDeps returns the distinct dependencies of q's event that have not
// arrived, in c's scratch slice, and notes in q.lamps the lamports of
// those accepted.
func (c *core) missingDeps(q *queued) []EventID {
	e := &q.ev
	out := c.missing[:0]
	var seen map[EventID]bool
	for j, d := range e.Deps {
		if d == e.ID || c.released.Has(d) {
			continue // arrived; a dependency on itself is the checker's to judge (1003)
		}
		if l, known := c.j.state.Lamport(d); known {
			if q.lamps != nil {
				q.lamps[j] = l + 1
			}
			continue
		}
		if len(out) < 16 {
			if slices.Contains(out, d) {
				continue
			}
		} else {
			if seen == nil {
				seen = make(map[EventID]bool, len(e.Deps))
				for _, m := range out {
					seen[m] = true
				}
			}
			if seen[d] {
				continue
			}
			seen[d] = true
		}
		out = append(out, d)
	}
	c.missing = out
	return out
}

func (c *core) drop(q *queued) {
	if c.tracing {
		c.k.traceOne(trace.Drop, q)
	}
	c.k.stats.dropped.Add(1)
	c.k.metric("sequencer.drop", 1, nil)
}

// release puts q in the batch queue, and with it every held event that was
// waiting only for it, transitively.
func (c *core) release(q *queued) {
	c.ready1(q)
	c.releaseWaiting(q.ev.ID)
}

// releaseWaiting releases every held event that was waiting only for id,
// transitively.
func (c *core) releaseWaiting(id EventID) {
	if len(c.waiting) == 0 {
		return // nothing waits for it: the usual case
	}
	// Breadth first: the order events are released in is the order they
	// were waited for.
	var work []*queued
	for i := 0; ; i++ {
		for _, h := range c.waiting[id] {
			if h.gone {
				continue
			}
			// Each held event waits once on each distinct dependency
			// it lacks; the last to arrive releases it.
			if h.missing--; h.missing == 0 {
				// A dependency released when h was held may have been
				// blocked since, by safe mode: h waits for it again, as
				// an event received now would, until Resume.
				if again := c.blockedDeps(&h.q); len(again) > 0 {
					h.missing = len(again)
					for _, d := range again {
						c.waiting[d] = append(c.waiting[d], h)
					}
					continue
				}
				c.unhold(h)
				if c.tracing {
					c.k.traceOne(trace.Release, &h.q)
				}
				c.ready1(&h.q)
				work = append(work, &h.q)
			}
		}
		delete(c.waiting, id)
		if i == len(work) {
			return
		}
		id = work[i].ev.ID
	}
}

// blockedDeps returns the distinct dependencies of q's event that safe
// mode blocks, and so have not arrived, in c's scratch slice.
func (c *core) blockedDeps(q *queued) []EventID {
	out := c.missing[:0]
	if len(c.blocked) > 0 {
		for _, d := range q.ev.Deps {
			if c.blockedIDs[d] == 0 || d == q.ev.ID || c.released.Has(d) || slices.Contains(out, d) {
				continue
			}
			if _, known := c.j.state.Lamport(d); !known {
				out = append(out, d)
			}
		}
	}
	c.missing = out
	return out
}

// ready1 appends q to the batch queue.
func (c *core) ready1(q *queued) {
	q.rel = c.now
	if c.head == len(c.ready) {
		c.readyAt = q.rel
	}
	c.ready = append(c.ready, *q)
	(*c.released.Ref(q.ev.ID))++
}

// unhold takes h out of the pending buffer; its entries in waiting go
// when their dependency arrives, or at its expiry.
func (c *core) unhold(h *held) {
	h.gone = true
	c.nheld--
}

// expire releases the held events older than MaxPendingAge, for the
// checker to obstruct (2002), and forgets what they waited for.
func (c *core) expire(now time.Time) {
	for {
		c.dropGone()
		if len(c.held) == 0 || now.Sub(c.held[0].since) < c.k.cfg.MaxPendingAge {
			return
		}
		h := c.held[0]
		c.unhold(h)
		for _, d := range h.q.ev.Deps {
			if ws, ok := c.waiting[d]; ok {
				ws = slices.DeleteFunc(ws, func(w *held) bool { return w.gone })
				if len(ws) == 0 {
					delete(c.waiting, d)
				} else {
					c.waiting[d] = ws
				}
			}
		}
		c.k.stats.expired.Add(1)
		c.k.metric("sequencer.expired", 1, nil)
		if c.tracing {
			c.k.traceOne(trace.Expire, &h.q)
		}
		c.release(&h.q)
	}
}

// coordinate decides the batches that are due: full ones, a partial one
// FlushInterval after its first event, and every released event when
// force is set.
func (c *core) coordinate(force bool) {
	if c.err != nil {
		return
	}
	c.now = time.Now()
	c.expire(c.now)
	bs := c.k.cfg.BatchSize
	for c.head < len(c.ready) && c.err == nil {
		avail := len(c.ready) - c.head
		if avail < bs && !force && c.now.Sub(c.readyAt) < c.k.cfg.FlushInterval {
			break
		}
		n := min(bs, avail)
		batch := c.ready[c.head : c.head+n : c.head+n]
		c.head += n
		if c.head < len(c.ready) {
			c.readyAt = c.ready[c.head].rel
		}
		c.decide(batch) // keeps nothing of batch's array
		c.compactReady()
	}
	if c.snapshotDue() && c.err == nil {
		c.snapshot(nil)
	} else if c.j.w.Size() >= c.k.cfg.SegmentSize && c.err == nil {
		c.rotate()
	}
}

// snapshotDue reports whether a periodic snapshot is due: SnapshotEvery
// batches since the last one, and at least half as many events logged
// since as the State knows ids. A snapshot costs time in proportion to
// the State, so the second condition keeps that cost proportional to the
// events logged, however long the history grows, while restart replays
// at most about twice the State's worth of the log.
func (c *core) snapshotDue() bool {
	every := c.k.cfg.SnapshotEvery
	return every > 0 && !c.safe && !c.stale && c.sinceSn >= every && 2*c.evSn >= c.j.state.KnownCount()
}

// decide reconciles batch and records the decision; after an Obstruction
// it quarantines the conflict set and decides the rest as the next batch.
func (c *core) decide(batch []queued) {
	k := c.k
	if c.stale {
		c.block(batch)
		return
	}
	for len(batch) > 0 {
		if c.safe {
			batch = c.blockDependents(batch)
			if len(batch) == 0 {
				return
			}
		}
		c.evs = c.evs[:0]
		c.hashed.digests = c.hashed.digests[:0]
		c.hashed.payloadOK = c.hashed.payloadOK[:0]
		c.hashed.depLamports = c.hashed.depLamports[:0]
		for i := range batch {
			c.evs = append(c.evs, batch[i].ev)
			c.hashed.digests = append(c.hashed.digests, batch[i].d)
			c.hashed.payloadOK = append(c.hashed.payloadOK, batch[i].pok)
			c.hashed.depLamports = append(c.hashed.depLamports, batch[i].lamps)
		}
		// Submit validated and hashed the events already.
		out, err := k.c.reconcileHashed(c.j.state, c.evs, &c.hashed)
		if err != nil {
			c.fail(fmt.Errorf("reconciling batch %d: %w", c.next, err))
			return
		}
		r := out.Result
		if r.Kind == KindMerge && c.safe {
			if c.tracing {
				k.trace(trace.Step{Action: trace.Decide, Events: traceEvents(batch), Outcome: trace.Blocked})
			}
			c.block(batch)
			return
		}
		meta := BatchMeta{BatchID: c.next, ReplaySeed: k.cfg.ReplaySeed, CreatedAtNs: uint64(k.cfg.Now().UnixNano())}
		if c.tracing {
			// Reported before the frame is written, as in admit.
			c.records++
			k.traceDecision(batch, r, meta.BatchID)
		}
		base := c.j.state.nextPosition()
		if err := c.j.record(out, meta, false); err != nil {
			c.fail(err)
			return
		}
		c.next++
		c.sinceSn++
		c.dirty = true
		at := make([]time.Time, len(batch))
		for i := range batch {
			at[i] = batch[i].at
		}
		c.jobs = append(c.jobs, certJob{out: out, meta: meta, at: at, sig: &presigned{done: make(chan struct{})}})
		k.stats.batches.Add(1)
		k.metric("reconcile.batch_size", float64(len(r.Members)), nil)
		if r.Kind == KindMerge {
			k.stats.merges.Add(1)
			if k.cfg.Metrics != nil && len(batch) > 0 {
				// The frontier: the highest lamport accepted so far, and
				// how far below it the batch's oldest event was.
				prev := c.frontier
				lo := batch[0].ev.Lamport
				for _, q := range batch {
					lo = min(lo, q.ev.Lamport)
					c.frontier = max(c.frontier, q.ev.Lamport)
				}
				k.metric("reconcile.frontier", float64(c.frontier), map[string]string{
					"batch":       strconv.FormatUint(meta.BatchID, 10),
					"min_lamport": strconv.FormatUint(lo, 10),
					"prev":        strconv.FormatUint(prev, 10),
				})
			}
			// A merge appends its members to the State's history in
			// their order: each one's position is known without looking
			// it up, and checked against the history at no cost.
			for i, m := range r.Members {
				p := base + uint32(i)
				if id, ok := c.j.state.idAt(p); !ok || id != m.ID {
					if p, ok = c.j.state.position(m.ID); !ok {
						continue
					}
				}
				c.fps.set(p, m.Digest)
			}
			for _, q := range batch {
				c.decided(q)
			}
			return
		}
		k.stats.obstructions.Add(1)
		if k.cfg.Metrics != nil {
			k.metric("reconcile.obstruction", 1, map[string]string{
				"predicate": strconv.FormatUint(uint64(r.Obstruction.Predicate), 10),
				"batch":     strconv.FormatUint(meta.BatchID, 10),
			})
		}
		cs := r.Obstruction.ConflictSet
		rest := make([]queued, 0, len(batch))
		for _, q := range batch {
			if _, in := slices.BinarySearchFunc(cs, q.ev.ID, EventID.Compare); in {
				c.decided(q)
			} else {
				rest = append(rest, q)
			}
		}
		if len(rest) == len(batch) {
			c.fail(fmt.Errorf("batch %d: obstruction %d quarantines no event of the batch", meta.BatchID, r.Obstruction.Predicate))
			return
		}
		batch = rest
	}
}

// compactReady lets go of the decided head of the batch queue.
func (c *core) compactReady() {
	switch {
	case c.head == len(c.ready):
		clear(c.ready)
		c.ready, c.head = c.ready[:0], 0
	case c.head >= 1024 && 2*c.head >= len(c.ready):
		n := copy(c.ready, c.ready[c.head:])
		clear(c.ready[n:])
		c.ready, c.head = c.ready[:n], 0
	}
}

// decided forgets an event the log now records as decided (the journal
// has dropped it from its pending events).
func (c *core) decided(q queued) { c.unrelease(q.ev.ID) }

// unrelease counts off one of the released events with id.
func (c *core) unrelease(id EventID) {
	t := c.released
	if i, ok := t.find(id); !ok {
		return
	} else if t.slots[i].v > 1 {
		t.slots[i].v--
	} else {
		t.deleteSlot(i)
	}
}

// block holds back the events of a merge safe mode does not certify.
func (c *core) block(batch []queued) {
	for _, q := range batch {
		c.unrelease(q.ev.ID)
		c.blockedIDs[q.ev.ID]++
	}
	c.blocked = append(c.blocked, batch...)
	c.k.stats.blocked.Add(uint64(len(batch)))
	c.k.metric("reconcile.safe_mode_merge_blocked", float64(len(batch)), nil)
	c.k.setBlocked(len(c.blocked))
}

// blockDependents moves to the blocked events those of batch that depend
// on a blocked event, which would otherwise meet 2002 for want of it.
func (c *core) blockDependents(batch []queued) []queued {
	if len(c.blocked) == 0 {
		return batch
	}
	in := make(map[EventID]bool, len(batch))
	for _, q := range batch {
		in[q.ev.ID] = true
	}
	keep := batch[:0:0]
	var moved []queued
	for _, q := range batch {
		dep := false
		for _, d := range q.ev.Deps {
			if c.blockedIDs[d] > 0 && !in[d] {
				dep = true
				break
			}
		}
		if dep {
			moved = append(moved, q)
		} else {
			keep = append(keep, q)
		}
	}
	if len(moved) > 0 {
		if c.tracing {
			for i := range moved {
				c.k.traceOne(trace.BlockDependent, &moved[i])
			}
		}
		c.block(moved)
	}
	return keep
}

// resume leaves safe mode: the blocked events go back to the batch queue,
// ahead of the others, then release what waits for them, after the
// others.
func (c *core) resume() {
	c.safe = false
	blocked := c.blocked
	c.blocked = nil
	clear(c.blockedIDs)
	c.k.resumed()
	if c.tracing {
		c.k.trace(trace.Step{Action: trace.Resume})
	}
	if len(blocked) == 0 {
		return
	}
	rest := c.ready[c.head:]
	c.ready, c.head = nil, 0
	c.now = time.Now()
	for i := range blocked {
		c.ready1(&blocked[i])
	}
	c.ready = append(c.ready, rest...)
	c.readyAt = c.ready[0].rel
	for i := range blocked {
		c.releaseWaiting(blocked[i].ev.ID)
	}
}

// commit hands what the core logged since the last commit to the
// operating system, and queues for the syncer the Submits to acknowledge
// and the batches for the certifier, with w after them, behind the fsync
// that makes them durable. Under SyncBatch the syncer runs the fsyncs
// while the core goes on: each covers every commit queued while the
// previous one ran (group commit), and nothing waits for more than one
// fsync before its own starts. Under SyncAlways every frame was synced as
// it was appended; under SyncNever nothing is.
func (c *core) commit(w *certWork) {
	var f file
	if c.dirty && c.err == nil {
		c.dirty = false
		if err := c.j.w.Sync(); err != nil {
			c.fail(err)
		} else if c.k.cfg.Sync == framelog.SyncBatch {
			f = c.syncFile
		}
	}
	if f != nil || len(c.acks) > 0 || len(c.jobs) > 0 || w != nil {
		g := commitGroup{f: f, acks: c.acks, jobs: c.jobs, work: w, err: c.err, through: c.records}
		if f != nil {
			g.written = time.Now()
		}
		if len(c.jobs) > 0 {
			c.k.signQ <- c.jobs // read only, by the presigner and the certifier
		}
		c.k.syncQ <- g
		c.acks, c.jobs = nil, nil
	}
}

// commitGroup is what one commit acknowledges, and hands the certifier,
// once the log is durable through it: f, when not nil, is the segment it
// wrote to, to sync. A barrier only waits for the groups before it.
type commitGroup struct {
	f       file
	written time.Time // when f was written to, if f is set
	through int       // when tracing: the records logged since open
	acks    []*submitReq
	jobs    []certJob
	work    *certWork
	err     error      // the core had stopped: fail the group
	barrier chan error // buffered; for syncNow
}

// syncQueueLen is how many commits may wait for the syncer; the core
// waits when they are more, which takes a long fsync stall.
const syncQueueLen = 4096

// syncNow returns once everything committed is durable.
func (c *core) syncNow() {
	done := make(chan error, 1)
	c.k.syncQ <- commitGroup{barrier: done, through: c.records}
	if err := <-done; err != nil {
		c.fail(err)
	}
}

// syncer is the goroutine that makes the core's commits durable and
// completes them, in order: it takes every group queued, syncs the
// segments they wrote to, once each, then acknowledges their Submits and
// hands their batches to the certifier. It is the certifier's only
// feeder, and closes its channel when the core closes the queue.
func (k *Kernel) syncer() {
	defer k.done.Done()
	defer close(k.certWork)
	var gs []commitGroup
	for g := range k.syncQ {
		gs = takeWaiting(k.syncQ, gs[:0], g)
		k.syncGroups(gs)
		clear(gs)
	}
}

// takeWaiting appends first to buf, then every value already waiting in
// ch, without waiting for more; it stops early when ch is closed.
func takeWaiting[T any](ch <-chan T, buf []T, first T) []T {
	buf = append(buf, first)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return buf
			}
			buf = append(buf, v)
		default:
			return buf
		}
	}
}

// syncGroups makes the commit groups gs durable and completes them.
func (k *Kernel) syncGroups(gs []commitGroup) {
	var synced []file
	for _, g := range gs {
		if g.f == nil || k.err() != nil || slices.Contains(synced, g.f) {
			continue
		}
		if len(synced) == 0 {
			// How long the oldest write this fsync covers has waited
			// for it to start, at most about one fsync however heavy
			// the load, and the oldest Submit.
			k.stats.writeDelay.add(time.Since(g.written))
			for _, g := range gs {
				if len(g.acks) > 0 && len(g.acks[0].events) > 0 {
					k.stats.syncDelay.add(time.Since(g.acks[0].events[0].at))
					break
				}
			}
		}
		k.stats.fsyncs.Add(1)
		k.metric("log.fsync", 1, nil)
		t := time.Now()
		err := fsync.Data(g.f)
		d := time.Since(t)
		k.stats.fsyncNanos.Add(int64(d))
		k.stats.fsyncDur.add(d)
		if err != nil {
			k.fail(fmt.Errorf("syncing the log: %w", err))
		}
		synced = append(synced, g.f)
	}
	now := time.Now()
	if k.tracing() && k.cfg.Sync != framelog.SyncNever && k.err() == nil {
		through := 0
		for _, g := range gs {
			through = max(through, g.through)
		}
		k.trace(trace.Step{Action: trace.Sync, Through: through})
	}
	for _, g := range gs {
		err := g.err
		if err == nil {
			err = k.err()
		}
		for _, r := range g.acks {
			if err == nil && len(r.tr) > 0 {
				k.trace(trace.Step{Action: trace.Ack, Events: r.tr})
			}
			if err == nil && len(r.events) > 0 {
				d := now.Sub(r.events[0].at)
				k.stats.durable.add(d)
				k.metric("latency.submit_to_durable_us", float64(d.Microseconds()), nil)
			}
			if err == nil && r.cut {
				// Left out in part: never nil, whichever of this and
				// the end of its context the caller sees first.
				r.done <- context.Cause(r.ctx)
				continue
			}
			r.done <- err
		}
		if g.barrier != nil {
			g.barrier <- err
		}
		if err != nil {
			if w := g.work; w != nil {
				if w.flush != nil {
					w.flush <- err
				}
				if w.snap != nil && w.snap.done != nil {
					w.snap.done <- err
				}
			}
			continue
		}
		if len(g.jobs) == 0 && g.work == nil {
			continue
		}
		work := certWork{jobs: g.jobs}
		if g.work != nil {
			work.flush, work.snap = g.work.flush, g.work.snap
		}
		k.certWork <- work
	}
}

var errStaleState = errors.New("omega: the kernel's log reaches another state than its certificate chain: no decision can extend the chain; restore the log, or a snapshot the chain certifies")

var errSafeModeSnapshot = errors.New("omega: no snapshot in safe mode: it could prune what the damage report points at; Resume first")

// fail stops the kernel: every later call gets err.
func (c *core) fail(err error) {
	if c.err == nil {
		c.err = c.k.fail(err)
	}
}

// control serves Flush, Snapshot and Resume.
func (c *core) control(q ctlReq) {
	switch q.kind {
	case ctlFlush:
		c.coordinate(true)
		c.commit(&certWork{flush: q.done})
	case ctlSnapshot:
		if c.safe || c.stale {
			// A snapshot, and the pruning after it, could drop what the
			// damage report points at: none until Resume.
			q.done <- errSafeModeSnapshot
			return
		}
		c.coordinate(true)
		c.commit(nil)
		c.snapshot(q.done)
	case ctlResume:
		if c.err != nil {
			q.done <- c.err
			return
		}
		if c.stale {
			q.done <- errStaleState
			return
		}
		if err := c.k.recordResumedDamage(); err != nil {
			q.done <- err // still in safe mode
			return
		}
		c.resume()
		q.done <- nil
	}
}

// rotate starts the next log segment.
func (c *core) rotate() {
	c.commit(nil)
	c.syncNow()
	if c.err != nil {
		return
	}
	if err := c.j.w.Close(); err != nil {
		c.fail(err)
		return
	}
	c.syncFile.Close()
	path := c.k.segmentPath(c.seg + 1)
	if err := c.k.prepareSegment(c.seg + 1); err != nil {
		c.fail(err)
		return
	}
	w, err := framelog.Open(path, c.k.binding.Header(), &c.wopts)
	if err != nil {
		c.fail(fmt.Errorf("starting log segment %d: %w", c.seg+1, err))
		return
	}
	f, err := c.k.fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		c.fail(fmt.Errorf("starting log segment %d: %w", c.seg+1, err))
		return
	}
	c.seg++
	c.j.w, c.syncFile = w, f
	c.k.prepareNext(c.seg + 1)
}

// snapshot starts a new segment and has the snapshot of the kernel as the
// previous one left it written, once every batch before it is certified;
// done, when not nil, gets the result.
func (c *core) snapshot(done chan error) {
	c.sinceSn, c.evSn = 0, 0
	c.rotate()
	if c.err != nil {
		if done != nil {
			done <- c.err
		}
		return
	}
	snap := &Snapshot{
		ID:          c.seg,
		CreatedAtNs: uint64(c.k.cfg.Now().UnixNano()),
		BaseOffset:  framelog.HeaderSize,
		LastBatchID: c.j.last,
		Binding:     c.k.binding,
		State:       c.j.state,
		Pending:     c.j.Pending(),
	}
	c.commit(&certWork{snap: &snapJob{seq: c.seg, snap: snap, fps: c.fps.view(), done: done, through: c.records}})
}

// stop serves Close: it takes in the Submits already queued, decides what
// is released (unless q.ctx has ended), syncs, and ends the certifier.
func (c *core) stop(q ctlReq) {
	k := c.k
	c.finishPart()
drain:
	for {
		select {
		case r := <-k.submits:
			c.submit(r)
			c.finishPart()
		default:
			break drain
		}
	}
	if q.ctx == nil || q.ctx.Err() == nil {
		c.coordinate(true)
	}
	c.commit(nil)
	c.syncNow()
	close(k.signQ) // the presigner ends
	close(k.syncQ) // the syncer ends, and with it the certifier
	err := c.err
	if cerr := c.j.w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	c.syncFile.Close()
	q.done <- err
}
