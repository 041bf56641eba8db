package omega

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/omega-sheaf/omega/framelog"
)

// Replayer re-executes the batches of an event log read as a stream, one
// batch at a time, and compares each recomputed outcome with the recorded
// one (SPEC 7). [Replay] is a Replayer over a log held in memory; the rules,
// the incidents and their ids are the same.
//
// The log may come in several segments, read in order: a segment after the
// first has its own header, which must equal the first one's, and its
// frames continue the first segment's. Offsets in the report, in incidents
// and in a snapshot's base offset are those of the one log the segments
// make: the first segment, then each later one's bytes after its 64-byte
// header. An event logged in one segment may be a member of a batch in a
// later one. Only the last segment may end in a torn tail (an earlier one
// is recovered before the next is started), or have a torn header, when a
// crash cut its creation short: it then holds no frame.
//
// Call [Replayer.Next] for each re-executed batch until it returns io.EOF,
// then [Replayer.Finish] for the report; or Finish alone. Next yields each
// batch's decoded BATCH record and recomputed checker output, enough to
// certify it again byte for byte ([Certify]).
//
// # Memory
//
// A Replayer never holds the log. It keeps, for each EVENT frame of the
// suffix, a fixed record of about 100 bytes (its id, digest, segment and
// offset, and an index entry); the State, which grows with the known ids,
// as any State does; and the encodings of the events it may still need:
//
//   - those logged since the last BATCH frame, in one reused buffer: most
//     batches name the events logged just before them;
//   - those not yet decided (the rest of an obstructed batch awaiting its
//     re-check, events never batched yet), copied out of that buffer at the
//     next BATCH frame and let go when a batch decides them;
//   - the snapshot's pending events.
//
// A decided event's encoding is let go when its segment is also an
// io.ReaderAt (an *os.File, a *bytes.Reader): in the rare case that a later
// batch names it again, it is read back from there, and must still have its
// digest. From a segment that is not an io.ReaderAt every event's encoding
// is kept, so memory grows with the bytes of the EVENT frames. No BATCH
// frame is kept, nor, unless the caller keeps them, the batches Next
// yields.
//
// Batches are re-executed one after the other, each from the State the
// previous one reached; within a batch, the checker works on as many
// goroutines as its Workers option allows ([CheckerOptions]).
//
// A Replayer is not safe for concurrent use. It reads its segments from
// their current positions; when it ends with an incident it reads (or
// seeks) each to its end to measure the log, which the incident's metadata
// digest covers.
type Replayer struct {
	c    *Checker
	seed uint64
	opts ReplayOptions
	want Hash // the replayer's binding digest
	snap *Snapshot
	segs []*segment
	size int64 // the log's length when known before reading it, else -1

	started  bool
	done     bool  // the end of the log, or an incident, was reached
	finished bool  // Finish completed the report
	err      error // the first error other than a context's, returned from then on

	rd       *framelog.Reader // reads segs[seg]
	pre      *preScan         // when not nil, the frames of the one segment, scanned ahead
	seg      int
	hdr      framelog.Header // the first segment's
	segStart int64           // the log offset of the current segment's first frame
	end      int64           // the log offset after the last frame read
	base     int64           // the snapshot's base offset
	seen     bool            // a frame at or after base has been read
	length   int64           // the log's length once measured, else -1
	frames   int             // frames read since the context was last checked

	events eventLog
	certs  []*Certificate // certificates after the snapshot not yet paired, in chain order
	report *ReplayReport

	// Scratch of the batch being replayed: its events, and their positions
	// in events.
	batch []Event
	idx   []int32
}

// segment is one segment of the log, counting the bytes read from it.
type segment struct {
	r  io.Reader
	ra io.ReaderAt // r, when it is one
	n  int64       // bytes read from r
}

func (s *segment) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && n <= len(p) {
		s.n += int64(n)
	}
	return n, err
}

// rest returns the number of bytes left to read from s, by seeking to its
// end when it is an io.Seeker, else by reading them.
func (s *segment) rest() (int64, error) {
	if sk, ok := s.r.(io.Seeker); ok {
		if cur, err := sk.Seek(0, io.SeekCurrent); err == nil {
			if end, err := sk.Seek(0, io.SeekEnd); err == nil && end >= cur {
				return end - cur, nil
			}
		}
	}
	return io.Copy(io.Discard, s.r)
}

// ctxFrames is how many frames Next reads between two looks at its
// context, when they hold no BATCH.
const ctxFrames = 4096

// NewReplayer returns a replayer of the log made of segments, in order,
// from the snapshot snap (nil means genesis) with checker c; seed is the
// replay seed every BATCH must carry. It reads nothing until Next or Finish
// is called, and it changes neither snap nor opts.
//
// It panics if c or a segment is nil.
func NewReplayer(snap *Snapshot, segments []io.Reader, seed uint64, c *Checker, opts *ReplayOptions) *Replayer {
	if c == nil {
		panic("omega: NewReplayer with a nil checker")
	}
	segs := make([]*segment, len(segments))
	for i, r := range segments {
		if r == nil {
			panic("omega: NewReplayer with a nil segment")
		}
		segs[i] = &segment{r: r}
		segs[i].ra, _ = r.(io.ReaderAt)
	}
	var o ReplayOptions
	if opts != nil {
		o = *opts
	}
	rp := &Replayer{
		c:      c,
		seed:   seed,
		opts:   o,
		want:   c.Binding().Digest(),
		snap:   snap,
		segs:   segs,
		size:   -1,
		length: -1,
		report: &ReplayReport{Binding: c.Binding()},
	}
	rp.events.init(segs, c.limits)
	return rp
}

// Next re-executes the next batch of the log and returns it, its Record and
// Output the caller's to keep. It returns io.EOF when the replay is over:
// at the end of the log, or at the first difference, an [Incident] that
// [Replayer.Finish] reports. A log replay cannot read gives an error
// wrapping [ErrReplayFormat]; an error reading a segment is returned
// wrapped. Either is returned again by every later call.
//
// Next looks at ctx before each batch, and every few thousand frames
// between two batches: when ctx is done it returns ctx.Err(), having
// consumed whole frames only, and a later call with another context goes
// on from there.
func (rp *Replayer) Next(ctx context.Context) (*ReplayedBatch, error) {
	if rp.err != nil {
		return nil, rp.err
	}
	if rp.done {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !rp.started {
		rp.started = true
		if err := rp.start(); err != nil {
			return nil, rp.fail(err)
		}
		if rp.done {
			return nil, io.EOF
		}
	}
	for {
		f, local, err := rp.frame()
		if err == io.EOF {
			if err := rp.atEnd(); err != nil {
				return nil, rp.fail(err)
			}
			rp.done = true
			return nil, io.EOF
		}
		if err != nil {
			return nil, rp.fail(err)
		}
		b, err := rp.take(f, local)
		if err != nil {
			return nil, rp.fail(err)
		}
		if b != nil {
			return b, nil
		}
		if rp.done {
			return nil, io.EOF
		}
		if rp.frames++; rp.frames >= ctxFrames {
			rp.frames = 0
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
}

// Finish replays the rest of the log, discarding its batches, checks the
// final merged state hash against expected (else a field-9 incident) and
// returns the report, with its pending events. Its errors are Next's. The
// report's Batches is nil. Once it has returned a report, later calls
// return the same report.
func (rp *Replayer) Finish(ctx context.Context, expected Hash) (*ReplayReport, error) {
	if rp.finished {
		return rp.report, nil
	}
	for {
		_, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	r := rp.report
	if r.Incident == nil {
		if final := r.State.MergedStateHash(); final != expected {
			if err := rp.diverge(r.LastBatchID, EventID{}, FieldFinalState, expected, final); err != nil {
				return nil, rp.fail(err)
			}
		} else if rp.opts.OtherChecker {
			r.Outcome = Equivalent
		} else {
			r.Outcome = Deterministic
		}
	}
	rp.pending()
	rp.finished = true
	return r, nil
}

func (rp *Replayer) fail(err error) error {
	rp.err = err
	return err
}

func (rp *Replayer) readOptions() *framelog.ReadOptions {
	return &framelog.ReadOptions{MaxFrameLen: rp.opts.MaxFrameLen}
}

// where names the segment being read in errors.
func (rp *Replayer) where() string {
	if rp.seg == 0 {
		return "log"
	}
	return fmt.Sprintf("log segment %d", rp.seg)
}

// readErr wraps an error of the frame reader: a bad header or frame is a
// format error; any other is the segment's reader's.
func (rp *Replayer) readErr(err error) error {
	var he *framelog.HeaderError
	var fe *framelog.FrameError
	if errors.As(err, &he) || errors.As(err, &fe) {
		return fmt.Errorf("%w: %s: %w", ErrReplayFormat, rp.where(), err)
	}
	return fmt.Errorf("omega: replay: reading %s: %w", rp.where(), err)
}

// start reads the first segment's header and makes the checks that come
// before any batch (SPEC 7).
func (rp *Replayer) start() error {
	if len(rp.segs) == 0 {
		return fmt.Errorf("%w: no log segment", ErrReplayFormat)
	}
	rp.rd = framelog.NewReader(rp.segs[0], rp.readOptions())
	hdr, err := rp.rd.Header()
	if err != nil {
		return rp.readErr(err)
	}
	if rp.rd.TornHeader() {
		return fmt.Errorf("%w: log: torn header, no frame to replay", ErrReplayFormat)
	}
	rp.hdr = hdr
	rp.segStart, rp.end, rp.base = framelog.HeaderSize, framelog.HeaderSize, framelog.HeaderSize

	r := rp.report
	snap := rp.snap
	if snap != nil {
		if snap.BaseOffset < framelog.HeaderSize {
			return fmt.Errorf("%w: snapshot base offset %d below %d", ErrReplayFormat, snap.BaseOffset, framelog.HeaderSize)
		}
		if rp.size >= 0 && snap.BaseOffset > rp.size {
			return fmt.Errorf("%w: snapshot base offset %d is past the log's end, %d", ErrReplayFormat, snap.BaseOffset, rp.size)
		}
		rp.base = snap.BaseOffset
		r.State = snap.State
		r.LastBatchID = snap.LastBatchID
	}
	if rp.size > rp.base {
		// A log of known length holds at most this many events: room for
		// them now spares growing (copying and clearing) the event
		// records as the log is read. Room left unused is never touched.
		rp.events.reserve(int(min((rp.size-rp.base)/(framelog.FrameHeaderLen+eventHeaderLen), maxReserve)))
	}
	for i := range snap.pending() {
		e := &snap.Pending[i]
		if err := e.Validate(rp.c.limits); err != nil {
			return fmt.Errorf("%w: snapshot pending event %d: %w", ErrReplayFormat, i, err)
		}
		rp.events.addPending(e)
	}
	for _, cert := range rp.opts.Certificates {
		if cert != nil && cert.BatchID > r.LastBatchID {
			rp.certs = append(rp.certs, cert)
		}
	}

	// Binding checks before any batch (SPEC 7): the log's header, then the
	// snapshot.
	if !rp.opts.OtherChecker {
		logBinding := Binding{
			CheckerVersion: rp.c.binding.CheckerVersion,
			SchemaVersion:  hdr.SchemaVersion,
			SchemaHash:     hdr.SchemaHash,
			CatalogHash:    rp.c.binding.CatalogHash,
		}
		if d := logBinding.Digest(); d != rp.want {
			return rp.diverge(0, EventID{}, FieldBinding, d, rp.want)
		}
		if snap != nil {
			if d := snap.Binding.Digest(); d != rp.want {
				return rp.diverge(0, EventID{}, FieldBinding, d, rp.want)
			}
		}
	}
	return rp.snapshotAgainstChain()
}

// snapshotAgainstChain checks the snapshot against the certificate chain,
// when both are given, before any batch (SPEC 7): nothing signs a
// manifest, so its merged_state_hash and frontier_digest must be those of
// the last Merge certificate whose batch id is at most its last_batch_id
// (zero hashes when there is none). A difference ends the replay with a
// field-11 incident at the snapshot's last batch id: expected is the
// certificate's merged_state_hash and observed the snapshot's, or when
// those agree, the two frontier digests.
func (rp *Replayer) snapshotAgainstChain() error {
	s := rp.snap
	if s == nil || rp.opts.Certificates == nil {
		return nil
	}
	var merged, frontier Hash
	for _, c := range rp.opts.Certificates {
		if c != nil && c.BatchID <= s.LastBatchID && c.Kind == KindMerge && c.Merge != nil {
			merged, frontier = c.Merge.MergedStateHash, c.Merge.FrontierDigest
		}
	}
	switch {
	case s.State.MergedStateHash() != merged:
		return rp.diverge(s.LastBatchID, EventID{}, FieldCertificate, merged, s.State.MergedStateHash())
	case s.State.FrontierDigest() != frontier:
		return rp.diverge(s.LastBatchID, EventID{}, FieldCertificate, frontier, s.State.FrontierDigest())
	}
	return nil
}

// frame returns the next frame of the log, at its offset in the log, and
// its offset in its segment. It returns io.EOF at the end of the last
// segment, or at its torn tail.
func (rp *Replayer) frame() (framelog.Frame, int64, error) {
	for {
		var f framelog.Frame
		var err error
		if rp.pre != nil {
			f, err = rp.pre.Next()
		} else {
			f, err = rp.rd.Next()
		}
		switch {
		case err == nil:
			local := f.Offset
			f.Offset += rp.segStart - framelog.HeaderSize
			rp.end = f.Offset + framelog.FrameHeaderLen + int64(len(f.Payload))
			return f, local, nil
		case errors.Is(err, framelog.ErrTornTail):
			if rp.seg < len(rp.segs)-1 {
				return framelog.Frame{}, 0, fmt.Errorf("%w: %s ends in a torn tail, and a later segment follows it: %w", ErrReplayFormat, rp.where(), err)
			}
			return framelog.Frame{}, 0, io.EOF
		case err != io.EOF:
			return framelog.Frame{}, 0, rp.readErr(err)
		case rp.seg == len(rp.segs)-1:
			return framelog.Frame{}, 0, io.EOF
		}
		if err := rp.nextSegment(); err != nil {
			return framelog.Frame{}, 0, err
		}
	}
}

// nextSegment starts reading the next segment, whose frames follow the
// previous one's.
func (rp *Replayer) nextSegment() error {
	rp.seg++
	rp.segStart = rp.end
	rp.rd = framelog.NewReader(rp.segs[rp.seg], rp.readOptions())
	hdr, err := rp.rd.Header()
	if err != nil {
		return rp.readErr(err)
	}
	if rp.rd.TornHeader() {
		if rp.seg < len(rp.segs)-1 {
			return fmt.Errorf("%w: %s has a torn header, and a later segment follows it", ErrReplayFormat, rp.where())
		}
		return nil // no frame: its Next returns io.EOF
	}
	if hdr != rp.hdr {
		return fmt.Errorf("%w: %s: header (schema version %d, hash %v) differs from the first segment's (%d, %v)",
			ErrReplayFormat, rp.where(), hdr.SchemaVersion, hdr.SchemaHash, rp.hdr.SchemaVersion, rp.hdr.SchemaHash)
	}
	return nil
}

// take processes frame f, at offset local in its segment. It returns the
// batch a BATCH frame re-executed, or nil.
func (rp *Replayer) take(f framelog.Frame, local int64) (*ReplayedBatch, error) {
	if f.Offset < rp.base {
		return nil, nil
	}
	if f.Offset > rp.base && !rp.seen {
		return nil, fmt.Errorf("%w: snapshot base offset %d is not on a frame boundary of the log", ErrReplayFormat, rp.base)
	}
	rp.seen = true
	rp.report.LogEnd = rp.end
	switch f.Type {
	case framelog.FrameEvent:
		var id EventID
		var err error
		if rp.pre != nil && rp.pre.decoded {
			id, err = rp.pre.id, rp.pre.derr
		} else {
			var e Event
			e, err = decodeEvent(f.Payload, rp.c.limits, true)
			id = e.ID
		}
		if err != nil {
			return nil, fmt.Errorf("%w: EVENT frame at offset %d: %w", ErrReplayFormat, f.Offset, err)
		}
		rp.events.add(rp.seg, local+framelog.FrameHeaderLen, f.Payload, id)
	case framelog.FrameBatch:
		rec := new(BatchRecord)
		if err := rec.decode(f.Payload); err != nil {
			return nil, fmt.Errorf("%w: BATCH frame at offset %d: %w", ErrReplayFormat, f.Offset, err)
		}
		rec.Members = make([]Member, (len(f.Payload)-batchFixedLen)/batchMemberLen)
		rec.decodeMembers(f.Payload)
		var b *ReplayedBatch
		if !rp.before(rec) {
			var err error
			if b, err = rp.replay(rec); err != nil || rp.done {
				return nil, err
			}
		}
		rp.events.endWindow()
		return b, nil
	}
	return nil, nil
}

// atEnd closes the log at its end: the base offset must have been met,
// the torn tail is measured, and no certificate may be left without its
// BATCH (SPEC 7 step 4).
func (rp *Replayer) atEnd() error {
	r := rp.report
	if !rp.seen {
		// No frame at or after the base offset: it must be the end.
		if rp.end != rp.base {
			return fmt.Errorf("%w: snapshot base offset %d is not on a frame boundary of the log (valid frames end at %d)", ErrReplayFormat, rp.base, rp.end)
		}
		r.LogEnd = rp.base
	}
	n, err := rp.logLength()
	if err != nil {
		return err
	}
	r.TornTail = n - r.LogEnd
	if len(rp.certs) > 0 {
		// A certificate whose batch has no BATCH frame.
		id := rp.certs[0].BatchID
		return rp.diverge(id, EventID{}, FieldCertificate, u64Hash(id), Hash{})
	}
	return nil
}

// logLength returns the length of the log, header included, that the
// segments make: the first segment, then each later one's bytes after its
// 64-byte header. The segments not read to their ends yet are read, or
// sought, to them.
func (rp *Replayer) logLength() (int64, error) {
	if rp.size >= 0 {
		return rp.size, nil
	}
	if rp.length >= 0 {
		return rp.length, nil
	}
	var total int64
	for k, s := range rp.segs {
		n := s.n
		if k >= rp.seg {
			rest, err := s.rest()
			if err != nil {
				return 0, fmt.Errorf("omega: replay: measuring log segment %d: %w", k, err)
			}
			n += rest
			s.n = n
		}
		if k > 0 {
			n = max(0, n-framelog.HeaderSize)
		}
		total += n
	}
	rp.length = total
	return total, nil
}

// before reports whether rec is a batch a snapshot not taken from a log
// already reflects, which replay skips (SPEC 7: such a snapshot replays
// only batches after its last_batch_id). Its base offset is 64, so the log
// is read from the start: BATCH frames up to the snapshot's last batch id,
// met before any batch is replayed, are skipped. The members of a skipped
// Merge count as decided; those of a skipped Obstruction are left to the
// batches that follow it, since the BATCH frame does not name its conflict
// set.
func (rp *Replayer) before(rec *BatchRecord) bool {
	s := rp.snap
	r := rp.report
	if s == nil || s.BaseOffset != framelog.HeaderSize || r.Merges+r.Obstructions > 0 || rec.BatchID > s.LastBatchID {
		return false
	}
	if rec.Kind == KindMerge {
		for _, m := range rec.Members {
			if at, _ := rp.events.resolve(m); at >= 0 {
				rp.events.decide(at, m.Digest)
			}
		}
	}
	return true
}

// replay re-executes one BATCH. It returns the batch, or nil when it ended
// the replay with an incident.
func (rp *Replayer) replay(rec *BatchRecord) (*ReplayedBatch, error) {
	r := rp.report
	div := func(ev EventID, f IncidentField, expected, observed Hash) (*ReplayedBatch, error) {
		return nil, rp.diverge(rec.BatchID, ev, f, expected, observed)
	}
	// 1-3: order, seed, binding.
	if rec.BatchID <= r.LastBatchID {
		return div(EventID{}, FieldOrder, u64Hash(rec.BatchID), u64Hash(r.LastBatchID))
	}
	if rec.ReplaySeed != rp.seed {
		return div(EventID{}, FieldReplaySeed, u64Hash(rec.ReplaySeed), u64Hash(rp.seed))
	}
	if !rp.opts.OtherChecker && rec.BindingDigest != rp.want {
		return div(EventID{}, FieldBinding, rec.BindingDigest, rp.want)
	}
	// 4: the certificate of the batch.
	uncertified := false
	if rp.opts.Certificates != nil {
		switch {
		case len(rp.certs) > 0 && rp.certs[0].BatchID < rec.BatchID:
			// The certificate's batch has no BATCH frame.
			id := rp.certs[0].BatchID
			return nil, rp.diverge(id, EventID{}, FieldCertificate, u64Hash(id), Hash{})
		case len(rp.certs) == 0 && rp.opts.UncertifiedSuffix:
			// After the chain's last certificate: the crash window
			// between a BATCH frame and its certificate.
			uncertified = true
		case len(rp.certs) == 0 || rp.certs[0].BatchID != rec.BatchID:
			return div(EventID{}, FieldCertificate, u64Hash(rec.BatchID), Hash{})
		}
		if !uncertified {
			cert := rp.certs[0]
			rp.certs = rp.certs[1:]
			switch {
			case cert.CreatedAtNs != rec.CreatedAtNs:
				return div(EventID{}, FieldCreatedAt, u64Hash(rec.CreatedAtNs), u64Hash(cert.CreatedAtNs))
			case cert.ReplaySeed != rec.ReplaySeed:
				return div(EventID{}, FieldReplaySeed, u64Hash(rec.ReplaySeed), u64Hash(cert.ReplaySeed))
			case cert.Kind != rec.Kind:
				return div(EventID{}, FieldKind, u64Hash(uint64(rec.Kind)), u64Hash(uint64(cert.Kind)))
			case cert.WitnessHash != rec.WitnessHash:
				return div(EventID{}, FieldWitnessHash, rec.WitnessHash, cert.WitnessHash)
			case cert.TraceRoot != rec.TraceRoot:
				return div(EventID{}, FieldTraceRoot, rec.TraceRoot, cert.TraceRoot)
			}
		}
	}
	// 5: members resolve, in canonical order. The common case hashes
	// nothing here: each member is taken to be the last event logged with
	// its id, the checker computes the digests anyway, and the result's
	// members must then equal the recorded ones: the same digests, in the
	// same order. Only when they do not does the exact resolution run, to
	// report the difference as SPEC 7 orders it.
	n := len(rec.Members)
	rp.batch = grow(rp.batch, n)
	rp.idx = grow(rp.idx, n)
	defer clear(rp.batch) // it aliases encodings the log may let go
	fast := true
	for i, m := range rec.Members {
		at := rp.events.last(m.ID)
		if at < 0 {
			fast = false
			break
		}
		e, err := rp.events.event(at)
		if err != nil {
			return nil, err
		}
		rp.batch[i] = e
		rp.idx[i] = at
	}
	var (
		out Output
		err error
	)
	if fast {
		out, err = rp.c.Reconcile(r.State, rp.batch)
		fast = err == nil && slices.Equal(out.Result.Members, rec.Members)
	}
	if !fast {
		inc, rerr := rp.resolveMembers(rec)
		if inc || rerr != nil {
			return nil, rerr
		}
		out, err = rp.c.Reconcile(r.State, rp.batch)
	}
	// 6: re-execute and compare.
	if err != nil {
		return nil, fmt.Errorf("%w: batch %d: %w", ErrReplayFormat, rec.BatchID, err)
	}
	res := out.Result
	var offending EventID
	merged := res.PriorStateHash
	if res.Kind == KindObstruction {
		offending = res.Obstruction.Event
	} else {
		merged = res.Merge.MergedStateHash
	}
	switch {
	case res.Kind != rec.Kind:
		return div(offending, FieldKind, u64Hash(uint64(rec.Kind)), u64Hash(uint64(res.Kind)))
	case res.WitnessHash != rec.WitnessHash:
		return div(offending, FieldWitnessHash, rec.WitnessHash, res.WitnessHash)
	case merged != rec.MergedStateHash:
		return div(offending, FieldMergedStateHash, rec.MergedStateHash, merged)
	case res.TraceRoot != rec.TraceRoot:
		return div(offending, FieldTraceRoot, rec.TraceRoot, res.TraceRoot)
	}

	// The batch is decided as recorded: a Merge accepts every member, an
	// Obstruction quarantines the members its conflict set names. Each
	// member's event has the member's digest: it was resolved by it, or
	// the checker found it.
	if res.Kind == KindMerge {
		r.State = res.Merge.Next
		r.Merges++
		for i, at := range rp.idx[:n] {
			rp.events.decide(at, rec.Members[i].Digest)
		}
	} else {
		r.Obstructions++
		for i, at := range rp.idx[:n] {
			if _, found := slices.BinarySearchFunc(res.Obstruction.ConflictSet, rec.Members[i].ID, EventID.Compare); found {
				rp.events.decide(at, rec.Members[i].Digest)
			}
		}
	}
	r.LastBatchID = rec.BatchID
	if uncertified {
		r.Uncertified = append(r.Uncertified, rec.BatchID)
	}
	return &ReplayedBatch{
		BatchID:         rec.BatchID,
		Kind:            res.Kind,
		Members:         n,
		MergedStateHash: merged,
		Uncertified:     uncertified,
		Record:          rec,
		Output:          out,
	}, nil
}

// resolveMembers resolves rec's members exactly (SPEC 7 step 5), filling
// the batch scratch. It reports whether it ended the replay with an
// incident: a member that resolves to no logged event, or one out of
// canonical order, the first of either in recorded order.
func (rp *Replayer) resolveMembers(rec *BatchRecord) (bool, error) {
	for i, m := range rec.Members {
		at, last := rp.events.resolve(m)
		if at < 0 {
			return true, rp.diverge(rec.BatchID, m.ID, FieldMember, m.Digest, last)
		}
		e, err := rp.events.event(at)
		if err != nil {
			return false, err
		}
		rp.batch[i] = e
		rp.idx[i] = at
		if i > 0 {
			prev := rec.Members[i-1]
			c := rp.batch[i-1].key().Compare(e.key())
			if c > 0 || c == 0 && prev.Digest.Compare(m.Digest) >= 0 {
				return true, rp.diverge(rec.BatchID, m.ID, FieldMember, m.Digest, prev.Digest)
			}
		}
	}
	return false, nil
}

// diverge ends the replay with an incident. Its metadata digest covers the
// log's length, which it measures first; it returns the error of that.
func (rp *Replayer) diverge(batch uint64, ev EventID, f IncidentField, expected, observed Hash) error {
	n, err := rp.logLength()
	if err != nil {
		return err
	}
	var stateDigest Hash // zero without a snapshot
	if rp.snap != nil {
		stateDigest = rp.snap.StateDigest()
	}
	inc := &Incident{
		BatchID:  batch,
		EventID:  ev,
		Field:    f,
		Expected: expected,
		Observed: observed,
		MetadataDigest: incidentMetadataDigest(stateDigest, rp.hdr.SchemaHash, rp.want,
			rp.seed, uint64(n)),
	}
	inc.Seal()
	rp.report.Outcome = Diverged
	rp.report.Incident = inc
	rp.done = true
	return nil
}

// pending fills the report's Pending: the contents logged and not
// decided, in canonical order. A logged copy counts as decided when it or
// an identical copy logged after it was: a batch resolves a member to the
// last copy logged before it, and glues the earlier ones with it. A copy
// logged again after the batch that decided its content is pending (SPEC
// 7: it meets 1002 when batched).
//
// It goes through the log once, from the end; only events whose id was
// logged more than once need their digests compared. An event not decided
// is held in memory, so nothing is read again.
func (rp *Replayer) pending() {
	l := &rp.events
	if l.undecided == 0 {
		// Every logged event was decided: nothing is pending, and
		// nothing need be indexed to say so.
		rp.report.Pending = []Event{}
		return
	}
	l.catchUp()
	type pend struct {
		e Event
		d Hash
	}
	var ps []pend
	event := func(i int32) Event {
		e, _ := l.event(i) // not decided: held in memory
		return e
	}
	decidedLater := make(map[Hash]bool)
	seen := make(map[Hash]bool)
	for i := int32(len(l.events)) - 1; i >= 0; i-- {
		e := &l.events[i]
		switch {
		case !e.shared:
			if !e.decided {
				ps = append(ps, pend{event(i), l.digestOf(i)})
			}
		case e.decided:
			decidedLater[l.digestOf(i)] = true
		default:
			if d := l.digestOf(i); !decidedLater[d] && !seen[d] {
				seen[d] = true
				ps = append(ps, pend{event(i), d})
			}
		}
	}
	slices.SortFunc(ps, func(a, b pend) int {
		if c := a.e.key().Compare(b.e.key()); c != 0 {
			return c
		}
		return a.d.Compare(b.d)
	})
	rp.report.Pending = make([]Event, len(ps))
	for i, p := range ps {
		rp.report.Pending[i] = p.e
	}
}
