package omega

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/omega-sheaf/omega/internal/digest"
)

// ReplayOptions configures [Replay] and [NewReplayer]. A nil
// *ReplayOptions and zero fields mean the defaults.
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
	// UncertifiedSuffix accepts, with Certificates given, the BATCH frames
	// that follow the chain's last certificate: the ordinary trace of a
	// crash between syncing a BATCH frame and appending its certificate
	// (SPEC 8), which a restart certifies from the BATCH frame. They are
	// replayed like the others and listed in [ReplayReport].Uncertified
	// instead of ending the replay with a field-11 incident, so that the
	// caller can certify them ([ReplayedBatch] holds what Certify takes).
	// A BATCH without its certificate that a later certificate follows is
	// still field 11, and so is a certificate without its BATCH.
	UncertifiedSuffix bool
	// OtherChecker replays history under a checker other than the one that
	// made it, on purpose (to try a new checker version on old history):
	// the binding checks are skipped, and a clean replay is reported as
	// equivalent, never as deterministic.
	OtherChecker bool
	// MaxFrameLen caps frame_len, as in [framelog.ReadOptions].
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

// ReplayedBatch is one batch re-executed to its recorded outcome.
type ReplayedBatch struct {
	BatchID         uint64
	Kind            Kind
	Members         int  // distinct contents
	MergedStateHash Hash // after the batch
	// Uncertified marks a batch of the uncertified suffix (see
	// [ReplayOptions].UncertifiedSuffix).
	Uncertified bool
	// Record is the batch's BATCH frame, decoded, and Output what the
	// checker recomputed from it, which equals the recorded outcome: a
	// caller re-certifies the batch byte for byte with Certify(Output,
	// Output.Binding, b.Meta(), the previous certificate's hash, signer).
	// [Replayer.Next] sets both, for the caller to keep; the Batches of a
	// [ReplayReport] leave them zero, so that a report does not hold every
	// batch's result.
	Record *BatchRecord
	Output Output
}

// Meta returns the batch's facts as its BATCH frame records them: what
// [Certify] takes beside the output. It needs b.Record.
func (b *ReplayedBatch) Meta() BatchMeta {
	return BatchMeta{BatchID: b.Record.BatchID, ReplaySeed: b.Record.ReplaySeed, CreatedAtNs: b.Record.CreatedAtNs}
}

// ReplayReport is what [Replay] or a [Replayer] found.
type ReplayReport struct {
	Outcome  ReplayOutcome
	Incident *Incident // set when Outcome is Diverged
	// Batches lists the batches re-executed to their recorded outcome, in
	// log order, without their Record and Output; a diverging batch is not
	// among them. [Replay] fills it; [Replayer.Finish] leaves it nil, its
	// batches having been yielded one by one by [Replayer.Next].
	Batches []ReplayedBatch
	// State is the State after the last batch re-executed, and LastBatchID
	// that batch's id (the snapshot's when none).
	State       *State
	LastBatchID uint64
	// Merges and Obstructions count the batches re-executed of each kind.
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
	// Uncertified lists, in log order, the ids of the batches of the
	// uncertified suffix (see [ReplayOptions].UncertifiedSuffix).
	Uncertified []uint64
	// Pending holds the events logged but not decided when the replay
	// stopped, in canonical order without identical copies: neither
	// accepted by a Merge nor quarantined in an Obstruction's conflict set.
	// They are reported, not judged. They belong to the report.
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
// an error. Replay is pure: it reads log and snap and changes neither.
//
// Replay is a [Replayer] over the one segment log, run to its end, with
// the report's Batches filled. Beside it, a second goroutine checks the
// log's frames and decodes its events ahead of the batches that need them,
// so a replay uses two cores; it is gone when Replay returns.
//
// It panics if c is nil.
func Replay(snap *Snapshot, log []byte, expected Hash, seed uint64, c *Checker, opts *ReplayOptions) (*ReplayReport, error) {
	if c == nil {
		panic("omega: Replay with a nil checker")
	}
	rp := NewReplayer(snap, []io.Reader{bytes.NewReader(log)}, seed, c, opts)
	rp.size = int64(len(log))
	rp.pre = startPreScan(log, rp.readOptions(), c.limits)
	defer rp.pre.stop()
	ctx := context.Background()
	var batches []ReplayedBatch
	for {
		b, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		b.Record, b.Output = nil, Output{}
		batches = append(batches, *b)
	}
	r, err := rp.Finish(ctx, expected)
	if err != nil {
		return nil, err
	}
	r.Batches = batches
	return r, nil
}

// loggedEvent is an EVENT frame of the suffix, or a pending event of the
// snapshot. It holds no pointer, so a log of millions costs the collector
// nothing to scan.
type loggedEvent struct {
	segOff  int64  // its encoding's offset in its segment, to read it again
	wpos    int64  // its encoding's offset in eventLog.win, while held there
	n       uint32 // its encoding's length
	seg     int32  // its segment; -1 for a pending event of the snapshot
	next    int32  // the next logged event with the same id, or -1
	tail    int32  // for the first logged event of an id: the last one with it
	held    heldIn // where its encoding is
	hashed  bool
	decided bool
	shared  bool // another logged event has its id (set by catchUp)
	digest  Hash
}

// heldIn says where the replayer holds a logged event's encoding.
type heldIn uint8

const (
	inWindow  heldIn = iota // eventLog.win: logged since the last BATCH frame
	inKept                  // eventLog.kept: not decided, or not to be read again
	inSegment               // nowhere: decided, read again from its segment at need
)

// eventLog indexes the events logged so far by id, and holds the encodings
// replay may still need. Their encodings were checked when they were
// added.
//
// Most batches name the events logged just before them, so the index is
// built lazily: events[window:], logged since the last BATCH, are searched
// directly while they are few, and the index catches up with the rest only
// when a lookup needs it.
//
// Their encodings are in win, one reused buffer, until the next BATCH
// frame; then those not decided, which a later batch or the report's
// pending events need, are copied to kept, and those decided are let go
// when their segment can be read again at an offset (io.ReaderAt), else
// kept too (see [Replayer]).
type eventLog struct {
	segs    []*segment
	win     []byte           // the encodings of events[window:]
	kept    map[int32][]byte // encodings held beyond their window
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
	// undecided counts the logged events no batch has decided.
	undecided int
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

// maxIdleWindow is the largest window buffer kept for the next batch's
// events; a larger one, grown for one large batch, is let go.
const maxIdleWindow = 16 << 20

func (l *eventLog) init(segs []*segment, lim Limits) {
	l.segs = segs
	l.lim = lim
	l.kept = make(map[int32][]byte)
	l.h = digest.New(digest.Event)
}

// add adds the event whose encoding enc was read at offset off of segment
// seg. It copies enc.
func (l *eventLog) add(seg int, off int64, enc []byte, id EventID) {
	l.grow()
	p := int32(len(l.events))
	l.events = append(l.events, loggedEvent{segOff: off, wpos: int64(len(l.win)), n: uint32(len(enc)), seg: int32(seg), next: -1, tail: p})
	l.undecided++
	l.ids = append(l.ids, KnownID{ID: id})
	l.win = append(l.win, enc...)
}

// maxReserve is the most logged events reserve makes room for at once.
const maxReserve = 1 << 22

// reserve makes room for n more logged events.
func (l *eventLog) reserve(n int) {
	l.events = slices.Grow(l.events, n)
	l.ids = slices.Grow(l.ids, n)
}

// grow makes room for one more logged event, doubling: append's growth
// of a large slice (a quarter at a time) would allocate and clear five
// times what a long log finally holds.
func (l *eventLog) grow() {
	if len(l.events) < cap(l.events) && len(l.ids) < cap(l.ids) {
		return
	}
	n := max(2*len(l.events), 1024)
	l.events = slices.Grow(l.events, n-len(l.events))
	l.ids = slices.Grow(l.ids, n-len(l.ids))
}

// addPending adds an event of the snapshot. Its encoding is kept for as
// long as the replay runs: no segment holds it.
func (l *eventLog) addPending(e *Event) {
	l.grow()
	p := int32(len(l.events))
	enc, _ := e.AppendBinary(nil)
	l.events = append(l.events, loggedEvent{n: uint32(len(enc)), seg: -1, next: -1, tail: p, held: inKept})
	l.undecided++
	l.ids = append(l.ids, KnownID{ID: e.ID})
	l.kept[p] = enc
}

// endWindow ends the window at a BATCH frame: the encodings of the events
// logged since the previous one leave win, copied to kept (all in one
// allocation) unless the event is decided and its segment can be read
// again.
func (l *eventLog) endWindow() {
	var n int64
	for i := l.window; i < len(l.events); i++ {
		if l.events[i].held == inWindow && !l.readAgain(int32(i)) {
			n += int64(l.events[i].n)
		}
	}
	keep := make([]byte, 0, n)
	for i := l.window; i < len(l.events); i++ {
		e := &l.events[i]
		if e.held != inWindow {
			continue // a pending event of the snapshot
		}
		if l.readAgain(int32(i)) {
			e.held = inSegment
			continue
		}
		at := len(keep)
		keep = append(keep, l.win[e.wpos:e.wpos+int64(e.n)]...)
		l.kept[int32(i)] = keep[at:len(keep):len(keep)]
		e.held = inKept
	}
	l.window = len(l.events)
	l.win = l.win[:0]
	if cap(l.win) > maxIdleWindow {
		l.win = nil
	}
}

// readAgain reports whether event i need not be held in memory: it is
// decided, so its digest is known, and its segment can be read at an
// offset.
func (l *eventLog) readAgain(i int32) bool {
	e := &l.events[i]
	return e.decided && e.seg >= 0 && l.segs[e.seg].ra != nil
}

// decide records that a batch decided event i, whose digest is d: accepted
// by a Merge or quarantined in an Obstruction's conflict set. A kept
// encoding its segment holds is let go.
func (l *eventLog) decide(i int32, d Hash) {
	e := &l.events[i]
	if !e.decided {
		l.undecided--
	}
	e.decided, e.hashed, e.digest = true, true, d
	if e.held == inKept && l.readAgain(i) {
		delete(l.kept, i)
		e.held = inSegment
	}
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

// enc returns the encoding of logged event i. One that is held nowhere is
// read again from its segment, into a new slice, and must still have its
// digest.
func (l *eventLog) enc(i int32) ([]byte, error) {
	e := &l.events[i]
	switch e.held {
	case inWindow:
		return l.win[e.wpos : e.wpos+int64(e.n) : e.wpos+int64(e.n)], nil
	case inKept:
		return l.kept[i], nil
	}
	b := make([]byte, e.n)
	if n, err := l.segs[e.seg].ra.ReadAt(b, e.segOff); n != len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("omega: replay: reading again the event at offset %d of log segment %d: %w", e.segOff, e.seg, err)
	}
	if l.h.Sum1(b) != e.digest {
		return nil, fmt.Errorf("%w: log segment %d changed while replayed: the event at offset %d is not the one read before", ErrReplayFormat, e.seg, e.segOff)
	}
	return b, nil
}

// event decodes logged event i, its payload aliasing the encoding enc
// returns.
func (l *eventLog) event(i int32) (Event, error) {
	b, err := l.enc(i)
	if err != nil {
		return Event{}, err
	}
	e, _ := decodeEvent(b, l.lim, true) // checked when added
	return e, nil
}

// digestOf returns the digest of logged event i, computing it once. Only an
// event held in memory can lack it: one let go is decided, and deciding an
// event records its digest.
func (l *eventLog) digestOf(i int32) Hash {
	e := &l.events[i]
	if !e.hashed {
		b, _ := l.enc(i)
		e.digest = l.h.Sum1(b)
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

// u64Hash stores v as little-endian bytes at the start of a hash, the rest
// zero: how an incident carries an integer (SPEC 7).
func u64Hash(v uint64) (h Hash) {
	binary.LittleEndian.PutUint64(h[:], v)
	return h
}
