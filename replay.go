package omega

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/omega-sheaf/omega/internal/digest"
)

// ReplayOptions configures [Replay]. A nil *ReplayOptions and zero fields
// mean the defaults.
type ReplayOptions struct {
	// Certificates, when not nil, is the certificate chain the log's
	// batches were certified in, in chain order. Each BATCH must have the
	// certificate of its batch id, agreeing on created_at_ns, seed, kind,
	// witness and trace root, and each certificate after the snapshot must
	// have its BATCH (SPEC 7 step 4). Before any batch, a snapshot's
	// merged_state_hash and frontier_digest must be those of the last Merge
	// certificate whose batch id is at most the snapshot's last batch id
	// (zero hashes when there is none), else a field-11 incident at that
	// batch id. Replay compares; it does not verify signatures or links:
	// pass a chain [VerifyChain] accepted.
	Certificates []*Certificate
	// OtherChecker replays history under a checker other than the one that
	// made it, on purpose (to try a new checker version on old history):
	// the binding checks are skipped, and a clean replay is reported as
	// equivalent, never as deterministic.
	OtherChecker bool
	// MaxFrameLen caps frame_len, as in [ReadOptions].
	MaxFrameLen int
}

// ReplayOutcome says how a replay ended.
type ReplayOutcome uint8

const (
	// Deterministic: every batch re-executed to its recorded outcome and
	// the final state is the one expected.
	Deterministic ReplayOutcome = iota + 1
	// Equivalent: as Deterministic, under another checker than the one
	// that made the history (ReplayOptions.OtherChecker).
	Equivalent
	// Diverged: the report's Incident holds the first difference.
	Diverged
)

func (o ReplayOutcome) String() string {
	switch o {
	case Deterministic:
		return "deterministic"
	case Equivalent:
		return "equivalent"
	case Diverged:
		return "incident"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// ReplayedBatch is one re-executed batch of a replay report.
type ReplayedBatch struct {
	BatchID         uint64
	Kind            Kind
	Members         int  // distinct contents
	MergedStateHash Hash // after the batch
}

// ReplayReport is what [Replay] found.
type ReplayReport struct {
	Outcome  ReplayOutcome
	Incident *Incident // set when Outcome is Diverged
	// Batches lists the batches re-executed to their recorded outcome, in
	// log order; a diverging batch is not among them.
	Batches []ReplayedBatch
	// State is the State after the last batch in Batches, and LastBatchID
	// that batch's id (the snapshot's when none).
	State       *State
	LastBatchID uint64
	// Merges and Obstructions count the batches of Batches of each kind.
	//
	// They, LastBatchID and the torn tail (TornTail bytes at LogEnd) are
	// what replay alone cannot judge (SPEC 7): an Obstruction leaves the
	// merged state unchanged, so a BATCH frame that recorded one and is
	// missing (deleted, cut off in a torn tail, or re-typed into an
	// application frame) leaves the final hash as it was, and so does a
	// last batch id grown larger. Compare them with what the history is
	// known to hold, or give the certificate chain, which covers them: a
	// certificate without its BATCH frame is a field-11 incident.
	Merges       int
	Obstructions int
	// Pending holds the events logged but not decided when the replay
	// stopped, in canonical order without identical copies: neither
	// accepted by a Merge nor quarantined in an Obstruction's conflict set.
	// They are reported, not judged.
	Pending []Event
	// LogEnd is the offset after the last frame replay read: where the
	// log's valid frames end, or after an incident the end of the frame
	// that diverged. TornTail is the number of bytes after the valid
	// frames when replay read to the end: a torn tail (SPEC 5), the normal
	// trace of a crash, which replay reads as the end of the log. When it
	// is not zero, the torn tail starts at LogEnd.
	LogEnd   int64
	TornTail int64
	// Binding is the replayer's binding.
	Binding Binding
}

// Snapshot returns a snapshot of where the replay stopped: the report's
// State, pending events and last batch id, at base offset LogEnd, under the
// replayer's binding. id and createdAtNs are the manifest's. After an
// incident it returns nil: the history from the diverging batch on is not
// one to continue from, and a snapshot past it would hide it from the
// next replay.
func (r *ReplayReport) Snapshot(id, createdAtNs uint64) *Snapshot {
	if r.Outcome == Diverged {
		return nil
	}
	return &Snapshot{
		ID:          id,
		CreatedAtNs: createdAtNs,
		BaseOffset:  r.LogEnd,
		LastBatchID: r.LastBatchID,
		Binding:     r.Binding,
		State:       r.State,
		Pending:     r.Pending,
	}
}

// pending returns the snapshot's pending events; none for a nil snapshot.
func (s *Snapshot) pending() []Event {
	if s == nil {
		return nil
	}
	return s.Pending
}

// ErrReplayFormat reports a log or snapshot replay cannot read: a bad
// header, corruption, an invalid frame type, a malformed BATCH or EVENT
// payload, a base offset off the frame boundaries, or a batch the checker
// refuses to decide. Replay reports these as errors, not incidents (SPEC 7).
var ErrReplayFormat = errors.New("omega: replay format error")

// loggedEvent is an EVENT frame of the suffix, or a pending event of the
// snapshot. It holds no pointer, so a log of millions costs the collector
// nothing to scan.
type loggedEvent struct {
	off     int64  // its encoding's offset in the log; -1-off in eventLog.pend when negative
	n       uint32 // its encoding's length
	next    int32  // the next logged event with the same id, or -1
	tail    int32  // for the first logged event of an id: the last one with it
	hashed  bool
	decided bool
	shared  bool // another logged event has its id (set by catchUp)
	digest  Hash
}

// eventLog indexes the events logged so far by id. Their encodings were
// checked when they were added.
//
// Most batches name the events logged just before them, so the index is
// built lazily: events[window:], logged since the last BATCH, are searched
// directly while they are few, and the index catches up with the rest only
// when a lookup needs it.
type eventLog struct {
	log     []byte
	pend    []byte // the snapshot's pending events, encoded one after another
	events  []loggedEvent
	ids     []KnownID // ids[i].ID is events[i]'s id: what index indexes
	index   idTable   // id -> the first logged event with it, over events[:indexed]
	indexed int
	window  int // events[window:] were logged after the last BATCH frame
	h       *digest.Hasher
	lim     Limits // the checker's, which every logged event met when added
	// byDigest maps the first logged event of an id logged more than
	// chainScan times to where its copies are found by digest.
	byDigest map[int32]*copyIndex
}

// copyIndex finds the last logged copy of one id with a given digest.
type copyIndex struct {
	last map[Hash]int32
	upTo int32 // the last copy in last; the chain's later ones are not yet
}

// chainScan is the most copies of one id that resolve walks rather than
// indexes by digest: a log can hold any number of copies of an id, and
// walking them all for every batch that names one is quadratic.
const chainScan = 16

// windowScan is the most events since the last BATCH frame that a lookup
// scans rather than indexes.
const windowScan = 64

func (l *eventLog) reset(log []byte, n int, lim Limits) {
	l.log = log
	l.lim = lim
	l.byDigest = nil
	l.events = make([]loggedEvent, 0, n)
	l.ids = make([]KnownID, 0, n)
}

func (l *eventLog) add(off int64, n int, id EventID) {
	p := int32(len(l.events))
	l.events = append(l.events, loggedEvent{off: off, n: uint32(n), next: -1, tail: p})
	l.ids = append(l.ids, KnownID{ID: id})
}

// catchUp indexes every event logged so far.
func (l *eventLog) catchUp() {
	if l.indexed == len(l.events) {
		return
	}
	if l.indexed == 0 {
		l.index.reset(cap(l.events))
	}
	for ; l.indexed < len(l.events); l.indexed++ {
		p := int32(l.indexed)
		if q, dup := l.index.insert(l.ids, uint32(p)); dup {
			first := &l.events[q]
			l.events[first.tail].next = p
			first.tail = p
			first.shared, l.events[p].shared = true, true
		}
	}
}

// last returns the last logged event with id, or -1.
func (l *eventLog) last(id EventID) int32 {
	if len(l.events)-l.window <= windowScan {
		for p := len(l.events) - 1; p >= l.window; p-- {
			if l.ids[p].ID == id {
				return int32(p)
			}
		}
	}
	l.catchUp()
	q, ok := l.index.get(l.ids, id)
	if !ok {
		return -1
	}
	return l.events[q].tail
}

// addPending adds an event of the snapshot.
func (l *eventLog) addPending(e *Event) {
	off := len(l.pend)
	l.pend, _ = e.AppendBinary(l.pend)
	l.add(-1-int64(off), len(l.pend)-off, e.ID)
}

func (l *eventLog) enc(i int32) []byte {
	e := &l.events[i]
	if e.off < 0 {
		off := -1 - e.off
		return l.pend[off : off+int64(e.n)]
	}
	return l.log[e.off : e.off+int64(e.n)]
}

// event decodes logged event i, its payload aliasing the log.
func (l *eventLog) event(i int32) Event {
	e, _ := decodeEvent(l.enc(i), l.lim, true) // checked when added
	return e
}

func (l *eventLog) digestOf(i int32) Hash {
	e := &l.events[i]
	if !e.hashed {
		e.digest = l.h.Sum1(l.enc(i))
		e.hashed = true
	}
	return e.digest
}

// resolve returns the last logged event with m's id and digest, or -1 and
// the digest of the last logged event with m's id (zero if none).
func (l *eventLog) resolve(m Member) (int32, Hash) {
	l.catchUp()
	q, ok := l.index.get(l.ids, m.ID)
	if !ok {
		return -1, Hash{}
	}
	first := int32(q)
	last := l.digestOf(l.events[first].tail)
	if ci := l.copies(first); ci != nil {
		if at, ok := ci.last[m.Digest]; ok {
			return at, last
		}
		return -1, last
	}
	found := int32(-1)
	for i := first; i >= 0; i = l.events[i].next {
		if l.digestOf(i) == m.Digest {
			found = i
		}
	}
	return found, last
}

// copies returns the digest index of the copies of the id whose first
// logged event is first, brought up to date, or nil when there are at most
// chainScan of them.
func (l *eventLog) copies(first int32) *copyIndex {
	ci := l.byDigest[first]
	if ci == nil {
		n := 0
		for i := first; i >= 0 && n <= chainScan; i = l.events[i].next {
			n++
		}
		if n <= chainScan {
			return nil
		}
		if l.byDigest == nil {
			l.byDigest = make(map[int32]*copyIndex)
		}
		ci = &copyIndex{last: make(map[Hash]int32), upTo: -1}
		l.byDigest[first] = ci
	}
	i := first
	if ci.upTo >= 0 {
		i = l.events[ci.upTo].next
	}
	for ; i >= 0; i = l.events[i].next {
		ci.last[l.digestOf(i)] = i
		ci.upTo = i
	}
	return ci
}

// countEvents returns how many frames from offset base on look like EVENT
// frames, reading only their headers: a capacity, not a verdict.
func countEvents(log []byte, base int64) int {
	n := 0
	for off := base; off <= int64(len(log))-frameHeaderLen; {
		fl := int64(binary.LittleEndian.Uint32(log[off:]))
		if fl < frameHeaderLen || off+fl > int64(len(log)) {
			break
		}
		if FrameType(binary.LittleEndian.Uint16(log[off+frameOffType:])) == FrameEvent {
			n++
		}
		off += fl
	}
	return n
}

// Replay re-executes the batches of an event log with checker c and
// compares each recomputed outcome with the recorded one (SPEC 7).
//
// log is the whole log file, header included (read it whole or map it).
// snap is the snapshot to start from; nil means genesis, from offset 64.
// The BATCH frames from the snapshot's base offset on are re-executed in
// order, each from the State the previous ones reached; EVENT frames of the
// suffix and the snapshot's pending events are what members resolve to.
// After the last batch the final merged state hash must equal expected.
// seed is the replay seed every BATCH must carry.
//
// The first difference ends the replay with an [Incident] in the report
// (Outcome Diverged); a log replay cannot read ends it with an error
// wrapping ErrReplayFormat. A torn tail ends the log; it is reported, not
// an error. Replay is pure: it reads log and snap and changes neither; the
// events of the report's Pending alias log.
//
// It panics if c is nil.
func Replay(snap *Snapshot, log []byte, expected Hash, seed uint64, c *Checker, opts *ReplayOptions) (*ReplayReport, error) {
	if c == nil {
		panic("omega: Replay with a nil checker")
	}
	var o ReplayOptions
	if opts != nil {
		o = *opts
	}
	rp := &replayer{
		c:      c,
		log:    log,
		seed:   seed,
		opts:   o,
		want:   c.Binding().Digest(),
		events: eventLog{h: digest.New(digest.Event)},
		report: &ReplayReport{Binding: c.Binding()},
	}
	return rp.run(snap, expected)
}

type replayer struct {
	c      *Checker
	log    []byte
	seed   uint64
	opts   ReplayOptions
	want   Hash // the replayer's binding digest
	hdr    Header
	snap   *Snapshot
	events eventLog
	certs  []*Certificate // certificates after the snapshot, in chain order
	report *ReplayReport

	// Scratch of the batch being replayed: its record, events, and their
	// positions in events.
	rec   BatchRecord
	batch []Event
	idx   []int32
}

func (rp *replayer) run(snap *Snapshot, expected Hash) (*ReplayReport, error) {
	r := rp.report
	sc := NewFrameScanner(rp.log, &ReadOptions{MaxFrameLen: rp.opts.MaxFrameLen})
	hdr, err := sc.Header()
	if err != nil {
		return nil, fmt.Errorf("%w: log: %w", ErrReplayFormat, err)
	}
	if sc.TornHeader() {
		return nil, fmt.Errorf("%w: log: torn header, no frame to replay", ErrReplayFormat)
	}
	rp.hdr = hdr

	base := int64(HeaderSize)
	if snap != nil {
		if snap.BaseOffset < HeaderSize {
			return nil, fmt.Errorf("%w: snapshot base offset %d below %d", ErrReplayFormat, snap.BaseOffset, HeaderSize)
		}
		if snap.BaseOffset > int64(len(rp.log)) {
			return nil, fmt.Errorf("%w: snapshot base offset %d is past the log's end, %d", ErrReplayFormat, snap.BaseOffset, len(rp.log))
		}
		base = snap.BaseOffset
		r.State = snap.State
		r.LastBatchID = snap.LastBatchID
		rp.snap = snap
	}
	rp.events.reset(rp.log, countEvents(rp.log, base)+len(snap.pending()), rp.c.limits)
	for i := range snap.pending() {
		e := &snap.Pending[i]
		if err := e.Validate(rp.c.limits); err != nil {
			return nil, fmt.Errorf("%w: snapshot pending event %d: %w", ErrReplayFormat, i, err)
		}
		rp.events.addPending(e)
	}
	if rp.opts.Certificates != nil {
		for _, cert := range rp.opts.Certificates {
			if cert != nil && cert.BatchID > r.LastBatchID {
				rp.certs = append(rp.certs, cert)
			}
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
			rp.diverge(0, EventID{}, FieldBinding, d, rp.want)
			return rp.result(nil)
		}
		if snap != nil {
			if d := snap.Binding.Digest(); d != rp.want {
				rp.diverge(0, EventID{}, FieldBinding, d, rp.want)
				return rp.result(nil)
			}
		}
	}
	if rp.snapshotAgainstChain() {
		return rp.result(nil)
	}

	for {
		f, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, ErrTornTail) {
				break
			}
			return nil, fmt.Errorf("%w: log: %w", ErrReplayFormat, err)
		}
		if f.Offset < base {
			continue
		}
		if f.Offset > base && r.LogEnd == 0 {
			return nil, fmt.Errorf("%w: snapshot base offset %d is not on a frame boundary of the log", ErrReplayFormat, base)
		}
		r.LogEnd = f.Offset + frameHeaderLen + int64(len(f.Payload))
		switch f.Type {
		case FrameEvent:
			e, err := decodeEvent(f.Payload, rp.c.limits, true)
			if err != nil {
				return nil, fmt.Errorf("%w: EVENT frame at offset %d: %w", ErrReplayFormat, f.Offset, err)
			}
			rp.events.add(f.Offset+frameHeaderLen, len(f.Payload), e.ID)
		case FrameBatch:
			rec := &rp.rec
			if err := rec.decode(f.Payload); err != nil {
				return nil, fmt.Errorf("%w: BATCH frame at offset %d: %w", ErrReplayFormat, f.Offset, err)
			}
			rec.Members = grow(rec.Members, (len(f.Payload)-batchFixedLen)/batchMemberLen)
			rec.decodeMembers(f.Payload)
			skip := rp.before(rec)
			if !skip {
				if inc, err := rp.batch1(rec); inc || err != nil {
					return rp.result(err)
				}
			}
			rp.events.window = len(rp.events.events)
		}
	}
	end := sc.Offset()
	if r.LogEnd == 0 {
		// No frame at or after the base offset: it must be the end.
		if end != base {
			return nil, fmt.Errorf("%w: snapshot base offset %d is not on a frame boundary of the log (valid frames end at %d)", ErrReplayFormat, base, end)
		}
		r.LogEnd = base
	}
	r.TornTail = int64(len(rp.log)) - r.LogEnd
	if len(rp.certs) > 0 {
		// A certificate whose batch has no BATCH frame (SPEC 7 step 4).
		id := rp.certs[0].BatchID
		rp.diverge(id, EventID{}, FieldCertificate, u64Hash(id), Hash{})
		return rp.result(nil)
	}
	if final := r.State.MergedStateHash(); final != expected {
		rp.diverge(r.LastBatchID, EventID{}, FieldFinalState, expected, final)
		return rp.result(nil)
	}
	r.Outcome = Deterministic
	if rp.opts.OtherChecker {
		r.Outcome = Equivalent
	}
	return rp.result(nil)
}

// result ends the replay: the error, or the report with its pending events.
func (rp *replayer) result(err error) (*ReplayReport, error) {
	if err != nil {
		return nil, err
	}
	rp.pending()
	return rp.report, nil
}

// snapshotAgainstChain checks the snapshot against the certificate chain,
// when both are given, before any batch (SPEC 7): nothing signs a
// manifest, so its merged_state_hash and frontier_digest must be those of
// the last Merge certificate whose batch id is at most its last_batch_id
// (zero hashes when there is none). It reports whether it ended the replay
// with a field-11 incident at the snapshot's last batch id: expected is the
// certificate's merged_state_hash and observed the snapshot's, or when
// those agree, the two frontier digests.
func (rp *replayer) snapshotAgainstChain() bool {
	s := rp.snap
	if s == nil || rp.opts.Certificates == nil {
		return false
	}
	var merged, frontier Hash
	for _, c := range rp.opts.Certificates {
		if c != nil && c.BatchID <= s.LastBatchID && c.Kind == KindMerge && c.Merge != nil {
			merged, frontier = c.Merge.MergedStateHash, c.Merge.FrontierDigest
		}
	}
	switch {
	case s.State.MergedStateHash() != merged:
		rp.diverge(s.LastBatchID, EventID{}, FieldCertificate, merged, s.State.MergedStateHash())
	case s.State.FrontierDigest() != frontier:
		rp.diverge(s.LastBatchID, EventID{}, FieldCertificate, frontier, s.State.FrontierDigest())
	default:
		return false
	}
	return true
}

// before reports whether rec is a batch a snapshot not taken from a log
// already reflects, which replay skips (SPEC 7: such a snapshot replays
// only batches after its last_batch_id). Its base offset is 64, so the log
// is read from the start: BATCH frames up to the snapshot's last batch id,
// met before any batch is replayed, are skipped. The members of a skipped
// Merge count as decided; those of a skipped Obstruction are left to the
// batches that follow it, since the BATCH frame does not name its conflict
// set.
func (rp *replayer) before(rec *BatchRecord) bool {
	s := rp.snap
	if s == nil || s.BaseOffset != HeaderSize || len(rp.report.Batches) > 0 || rec.BatchID > s.LastBatchID {
		return false
	}
	if rec.Kind == KindMerge {
		for _, m := range rec.Members {
			if at, _ := rp.events.resolve(m); at >= 0 {
				rp.events.events[at].decided = true
			}
		}
	}
	return true
}

// batch1 replays one BATCH. It returns true when it ended the replay with
// an incident.
func (rp *replayer) batch1(rec *BatchRecord) (bool, error) {
	r := rp.report
	div := func(ev EventID, f IncidentField, expected, observed Hash) (bool, error) {
		rp.diverge(rec.BatchID, ev, f, expected, observed)
		return true, nil
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
	if rp.opts.Certificates != nil {
		if len(rp.certs) > 0 && rp.certs[0].BatchID < rec.BatchID {
			// The certificate's batch has no BATCH frame.
			id := rp.certs[0].BatchID
			rp.diverge(id, EventID{}, FieldCertificate, u64Hash(id), Hash{})
			return true, nil
		}
		if len(rp.certs) == 0 || rp.certs[0].BatchID != rec.BatchID {
			return div(EventID{}, FieldCertificate, u64Hash(rec.BatchID), Hash{})
		}
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
	// 5: members resolve, in canonical order. The common case hashes
	// nothing here: each member is taken to be the last event logged with
	// its id, the checker computes the digests anyway, and the result's
	// members must then equal the recorded ones: the same digests, in the
	// same order. Only when they do not does the exact resolution run, to
	// report the difference as SPEC 7 orders it.
	n := len(rec.Members)
	rp.batch = grow(rp.batch, n)
	rp.idx = grow(rp.idx, n)
	fast := true
	for i, m := range rec.Members {
		at := rp.events.last(m.ID)
		if at < 0 {
			fast = false
			break
		}
		rp.batch[i] = rp.events.event(at)
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
		if inc := rp.resolveMembers(rec); inc {
			return true, nil
		}
		out, err = rp.c.Reconcile(r.State, rp.batch)
	}
	// 6: re-execute and compare.
	if err != nil {
		return false, fmt.Errorf("%w: batch %d: %w", ErrReplayFormat, rec.BatchID, err)
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
	// Obstruction quarantines the members its conflict set names.
	idx := rp.idx
	if res.Kind == KindMerge {
		r.State = res.Merge.Next
		for _, at := range idx {
			rp.events.events[at].decided = true
		}
	} else {
		for i, at := range idx {
			if _, found := slices.BinarySearchFunc(res.Obstruction.ConflictSet, rec.Members[i].ID, EventID.Compare); found {
				rp.events.events[at].decided = true
			}
		}
	}
	r.LastBatchID = rec.BatchID
	if res.Kind == KindMerge {
		r.Merges++
	} else {
		r.Obstructions++
	}
	r.Batches = append(r.Batches, ReplayedBatch{BatchID: rec.BatchID, Kind: res.Kind, Members: len(rec.Members), MergedStateHash: merged})
	return false, nil
}

// resolveMembers resolves rec's members exactly (SPEC 7 step 5), filling
// the batch scratch. It reports whether it ended the replay with an
// incident: a member that resolves to no logged event, or one out of
// canonical order, the first of either in recorded order.
func (rp *replayer) resolveMembers(rec *BatchRecord) bool {
	for i, m := range rec.Members {
		at, last := rp.events.resolve(m)
		if at < 0 {
			rp.diverge(rec.BatchID, m.ID, FieldMember, m.Digest, last)
			return true
		}
		e := rp.events.event(at)
		rp.batch[i] = e
		rp.idx[i] = at
		if i > 0 {
			prev := rec.Members[i-1]
			c := rp.batch[i-1].Key().Compare(e.Key())
			if c > 0 || c == 0 && prev.Digest.Compare(m.Digest) >= 0 {
				rp.diverge(rec.BatchID, m.ID, FieldMember, m.Digest, prev.Digest)
				return true
			}
		}
	}
	return false
}

// diverge ends the replay with an incident.
func (rp *replayer) diverge(batch uint64, ev EventID, f IncidentField, expected, observed Hash) {
	r := rp.report
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
		MetadataDigest: IncidentMetadataDigest(stateDigest, rp.hdr.SchemaHash, rp.want,
			rp.seed, uint64(len(rp.log))),
	}
	inc.Seal()
	r.Outcome = Diverged
	r.Incident = inc
}

// pending fills the report's Pending: the contents logged and not
// decided, in canonical order. A logged copy counts as decided when it or
// an identical copy logged after it was: a batch resolves a member to the
// last copy logged before it, and glues the earlier ones with it. A copy
// logged again after the batch that decided its content is pending (SPEC
// 7: it meets 1002 when batched).
//
// It goes through the log once, from the end; only events whose id was
// logged more than once need their digests compared.
func (rp *replayer) pending() {
	l := &rp.events
	l.catchUp()
	type pend struct {
		e Event
		d Hash
	}
	var ps []pend
	decidedLater := make(map[Hash]bool)
	seen := make(map[Hash]bool)
	for i := int32(len(l.events)) - 1; i >= 0; i-- {
		e := &l.events[i]
		switch {
		case !e.shared:
			if !e.decided {
				ps = append(ps, pend{l.event(i), l.digestOf(i)})
			}
		case e.decided:
			decidedLater[l.digestOf(i)] = true
		default:
			if d := l.digestOf(i); !decidedLater[d] && !seen[d] {
				seen[d] = true
				ps = append(ps, pend{l.event(i), d})
			}
		}
	}
	slices.SortFunc(ps, func(a, b pend) int {
		if c := a.e.Key().Compare(b.e.Key()); c != 0 {
			return c
		}
		return a.d.Compare(b.d)
	})
	rp.report.Pending = make([]Event, len(ps))
	for i, p := range ps {
		rp.report.Pending[i] = p.e
	}
}

// u64Hash stores v as little-endian bytes at the start of a hash, the rest
// zero: how an incident carries an integer (SPEC 7).
func u64Hash(v uint64) (h Hash) {
	binary.LittleEndian.PutUint64(h[:], v)
	return h
}
