package omega

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
)

// BatchRecord is the payload of a BATCH frame (SPEC 5): one decided batch,
// as the event log records it, enough for [Replay] to re-execute it.
//
//	batch_id u64 | replay_seed u64 | created_at_ns u64 | kind u8 | 7 zero bytes |
//	witness_hash [32] | merged_state_hash [32] | trace_root [32] |
//	binding_digest [32] | member_count u32 | members (event_id u128 || digest [32])
type BatchRecord struct {
	BatchID     uint64
	ReplaySeed  uint64
	CreatedAtNs uint64
	Kind        Kind
	WitnessHash Hash
	// MergedStateHash is the merged state hash after a Merge, and the prior
	// State's for an Obstruction (which changes no state).
	MergedStateHash Hash
	TraceRoot       Hash
	BindingDigest   Hash // of the checker that decided the batch
	// Members are the batch's distinct contents in canonical order: the
	// result's Members.
	Members []Member
}

// Layout of a BATCH payload.
const (
	batchOffKind    = 24
	batchOffWitness = 32
	batchOffMembers = 32 + 4*32 // member_count
	batchFixedLen   = batchOffMembers + 4
	batchMemberLen  = 16 + 32
)

// BatchRecord returns the BATCH record of the decided batch out: its result
// and binding, and meta. It refuses an output without a result. The record
// shares out's Members.
func (out Output) BatchRecord(meta BatchMeta) (*BatchRecord, error) {
	r := out.Result
	if r == nil {
		return nil, fmt.Errorf("%w: no result", ErrCannotCertify)
	}
	rec := &BatchRecord{
		BatchID:         meta.BatchID,
		ReplaySeed:      meta.ReplaySeed,
		CreatedAtNs:     meta.CreatedAtNs,
		Kind:            r.Kind,
		WitnessHash:     r.WitnessHash,
		MergedStateHash: r.PriorStateHash,
		TraceRoot:       r.TraceRoot,
		BindingDigest:   out.Binding.Digest(),
		Members:         r.Members,
	}
	switch {
	case r.Kind == KindMerge && r.Merge != nil:
		rec.MergedStateHash = r.Merge.MergedStateHash
	case r.Kind == KindObstruction && r.Obstruction != nil:
	default:
		return nil, fmt.Errorf("%w: result of kind %d with mismatched fields", ErrCannotCertify, r.Kind)
	}
	return rec, nil
}

// AppendBinary appends the BATCH payload of r to b. It refuses a kind other
// than Merge or Obstruction and more than 2^32-1 members.
func (r *BatchRecord) AppendBinary(b []byte) ([]byte, error) {
	if r.Kind != KindMerge && r.Kind != KindObstruction {
		return b, fmt.Errorf("%w: kind %d", ErrMalformedBatch, r.Kind)
	}
	if uint64(len(r.Members)) > 1<<32-1 {
		return b, fmt.Errorf("%w: %d members", ErrMalformedBatch, len(r.Members))
	}
	b = binary.LittleEndian.AppendUint64(b, r.BatchID)
	b = binary.LittleEndian.AppendUint64(b, r.ReplaySeed)
	b = binary.LittleEndian.AppendUint64(b, r.CreatedAtNs)
	b = append(b, byte(r.Kind), 0, 0, 0, 0, 0, 0, 0)
	b = append(b, r.WitnessHash[:]...)
	b = append(b, r.MergedStateHash[:]...)
	b = append(b, r.TraceRoot[:]...)
	b = append(b, r.BindingDigest[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Members)))
	for _, m := range r.Members {
		b = appendID(b, m.ID)
		b = append(b, m.Digest[:]...)
	}
	return b, nil
}

// MarshalBinary returns the BATCH payload of r.
func (r *BatchRecord) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, batchFixedLen+batchMemberLen*len(r.Members)))
}

// DecodeBatchRecord decodes a BATCH payload, which must fill b exactly.
// Every refusal wraps ErrMalformedBatch. The record does not retain b.
func DecodeBatchRecord(b []byte) (*BatchRecord, error) {
	var r BatchRecord
	if err := r.decode(b); err != nil {
		return nil, err
	}
	r.Members = make([]Member, (len(b)-batchFixedLen)/batchMemberLen)
	r.decodeMembers(b)
	return &r, nil
}

// decode checks b and fills every field of r but Members, whose count b
// then justifies.
func (r *BatchRecord) decode(b []byte) error {
	if len(b) < batchFixedLen {
		return fmt.Errorf("%w: %d bytes, the fixed part is %d", ErrMalformedBatch, len(b), batchFixedLen)
	}
	kind := Kind(b[batchOffKind])
	if kind != KindMerge && kind != KindObstruction {
		return fmt.Errorf("%w: kind %d", ErrMalformedBatch, kind)
	}
	for i, p := range b[batchOffKind+1 : batchOffWitness] {
		if p != 0 {
			return fmt.Errorf("%w: pad byte %d is %#x", ErrMalformedBatch, batchOffKind+1+i, p)
		}
	}
	n := uint64(binary.LittleEndian.Uint32(b[batchOffMembers:]))
	if rest := uint64(len(b) - batchFixedLen); rest != n*batchMemberLen {
		return fmt.Errorf("%w: member_count %d needs %d bytes, payload has %d", ErrMalformedBatch, n, n*batchMemberLen, rest)
	}
	r.BatchID = binary.LittleEndian.Uint64(b)
	r.ReplaySeed = binary.LittleEndian.Uint64(b[8:])
	r.CreatedAtNs = binary.LittleEndian.Uint64(b[16:])
	r.Kind = kind
	copy(r.WitnessHash[:], b[batchOffWitness:])
	copy(r.MergedStateHash[:], b[batchOffWitness+32:])
	copy(r.TraceRoot[:], b[batchOffWitness+64:])
	copy(r.BindingDigest[:], b[batchOffWitness+96:])
	return nil
}

// decodeMembers fills r.Members, already of the right length, from b.
func (r *BatchRecord) decodeMembers(b []byte) {
	p := b[batchFixedLen:]
	for i := range r.Members {
		r.Members[i].ID = readID(p)
		copy(r.Members[i].Digest[:], p[16:batchMemberLen])
		p = p[batchMemberLen:]
	}
}

// Journal writes an event log as batches are decided: the EVENT frames of
// the events, then the BATCH frame of each decision, so that the log alone
// holds what [Replay] needs to re-execute every batch (SPEC 5, 7). It keeps
// the State its last Merge reached, the last batch id, and the events
// logged but not yet decided (pending, as SPEC 7 counts them), so that a
// snapshot can be taken from it at any point.
//
// The journal writes through a [framelog.Writer] and syncs it as its policy
// says: [Journal.Record] and [Journal.Decide] sync before they return, so
// that a recorded decision, and every event logged before it, survives a
// crash; events logged since are durable once [Journal.Sync] returns. A
// Journal is not safe for concurrent use.
type Journal struct {
	w       *framelog.Writer
	c       *Checker
	state   *State
	last    uint64
	pending *flightTable[Hash, *Event] // by event digest: logged, not decided
	// trusted skips Record's check that every member is pending: the
	// Kernel records only batches of its own pending events.
	trusted bool
	buf     []byte
	owned   bool // w was opened by OpenJournal, and is closed by Close
}

// NewJournal returns a journal that appends to w, deciding with c from the
// State state (nil is genesis) after the batch lastBatchID (0 when none),
// with no event pending. It panics if w or c is nil.
func NewJournal(w *framelog.Writer, c *Checker, state *State, lastBatchID uint64) *Journal {
	if w == nil || c == nil {
		panic("omega: NewJournal with a nil writer or checker")
	}
	return &Journal{w: w, c: c, state: state.Commit(), last: lastBatchID, pending: newFlightTable[Hash, *Event](digestHash)}
}

// State returns the State the journal's decisions reached.
func (j *Journal) State() *State { return j.state }

// LastBatchID returns the id of the last batch recorded, or the lastBatchID
// the journal started from.
func (j *Journal) LastBatchID() uint64 { return j.last }

// LogEvents appends one EVENT frame per event, in the order given, and
// returns the offset of the first. An event that does not validate is
// refused before anything is written. Logged events are pending until a
// recorded batch decides them.
func (j *Journal) LogEvents(events []Event) (int64, error) {
	for i := range events {
		if err := events[i].Validate(j.c.limits); err != nil {
			var fe *EventError
			if errors.As(err, &fe) {
				fe.Index = i
			}
			return 0, err
		}
	}
	first := j.w.Size()
	h := digest.New(digest.Event)
	for i := range events {
		e := &events[i]
		j.buf, _ = e.AppendBinary(j.buf[:0])
		if _, err := j.w.Append(framelog.FrameEvent, j.buf); err != nil {
			return 0, err
		}
		h.Reset()
		h.Write(j.buf)
		c := cloneEvent(e)
		j.pending.Put(h.Sum(), &c)
	}
	return first, nil
}

// claim makes e, whose digest is d, pending unless an event of digest d
// is pending already (it reports false then), for logEncoded to log: the
// event stays pending until a recorded batch decides it; the journal keeps
// e, which must not change.
func (j *Journal) claim(e *Event, d Hash) bool {
	p := j.pending.Ref(d)
	if *p != nil {
		return false
	}
	*p = e
	return true
}

// logEncoded appends the EVENT frame of an event claim made pending, which
// the caller validated: enc is its canonical encoding.
func (j *Journal) logEncoded(enc []byte) error {
	_, err := j.w.Append(framelog.FrameEvent, enc)
	return err
}

// Decide reconciles events, which must already be logged (see LogEvents:
// the rest of an obstructed batch is re-checked without being logged
// again), and records the decision as Record does. When Decide refuses the
// batch (an error of Record's, a batch over MaxBatchContents), nothing is
// appended: the logged events stay pending, as Replay reports them, for a
// later batch to decide.
func (j *Journal) Decide(events []Event, meta BatchMeta) (Output, error) {
	if err := j.checkOrder(meta); err != nil {
		return Output{}, err
	}
	out, err := j.c.Reconcile(j.state, events)
	if err != nil {
		return Output{}, err
	}
	if err := j.Record(out, meta); err != nil {
		return Output{}, err
	}
	return out, nil
}

// Record appends the BATCH frame of out, a decision the caller already has,
// as batch meta.BatchID. out must have been decided by the journal's
// checker from the journal's State, every member must be pending (logged
// and not decided since) or carry an id the State knows (an accepted event
// decided again without being logged again, which the checker obstructs by
// 1002; the journal keeps no digests of decided events, so it cannot tell
// whether such a content was ever logged), and meta.BatchID must be
// greater than the last batch id; otherwise Record returns an error
// wrapping [ErrJournal] and appends nothing.
//
// Record syncs the log before it returns (see [Journal]). A Merge moves
// the journal's State on, committing it (see [State.Commit]); the batch's
// members are decided: all of a Merge's, the members an Obstruction's
// conflict set names. When the append or the sync fails, the journal
// stays where it was; a failed write or sync leaves the writer failed (see
// [framelog.Writer]), and the BATCH frame may or may not be found on reopening.
func (j *Journal) Record(out Output, meta BatchMeta) error {
	return j.record(out, meta, true)
}

// record is Record, syncing the log before the journal moves on when sync
// is set. The Kernel records every batch ready at one moment unsynced and
// then syncs once for all of them (group commit, SPEC 8): a failed sync
// fails the kernel, which then acknowledges none of them.
func (j *Journal) record(out Output, meta BatchMeta, sync bool) error {
	if err := j.checkOrder(meta); err != nil {
		return err
	}
	r := out.Result
	if r == nil {
		return fmt.Errorf("%w: an output without a result", ErrJournal)
	}
	if out.Binding != j.c.Binding() {
		return fmt.Errorf("%w: batch %d was decided under binding %s, the journal's checker has %s",
			ErrJournal, meta.BatchID, out.Binding.Digest(), j.c.Binding().Digest())
	}
	if r.PriorStateHash != j.state.MergedStateHash() {
		return fmt.Errorf("%w: batch %d was decided from state %s, the journal is at state %s after batch %d",
			ErrJournal, meta.BatchID, r.PriorStateHash, j.state.MergedStateHash(), j.last)
	}
	for _, m := range r.Members {
		if j.trusted {
			break
		}
		if !j.pending.Has(m.Digest) && !j.known(m.ID) {
			return fmt.Errorf("%w: batch %d: member %v (digest %s) is not a logged event awaiting a decision; log it (again) first",
				ErrJournal, meta.BatchID, m.ID, m.Digest)
		}
	}
	rec, err := out.BatchRecord(meta)
	if err != nil {
		return err
	}
	if j.buf, err = rec.AppendBinary(j.buf[:0]); err != nil {
		return err
	}
	if _, err := j.w.Append(framelog.FrameBatch, j.buf); err != nil {
		return err
	}
	// The decision is acknowledged when Record returns: it is durable
	// then, with the events it names, logged before it.
	if sync {
		if err := j.w.Sync(); err != nil {
			return err
		}
	}
	j.last = meta.BatchID
	if r.Kind == KindMerge {
		j.state = r.Merge.Next.Commit()
		for _, m := range r.Members {
			j.pending.Delete(m.Digest)
		}
	} else {
		for _, m := range r.Members {
			if _, in := slices.BinarySearchFunc(r.Obstruction.ConflictSet, m.ID, EventID.Compare); in {
				j.pending.Delete(m.Digest)
			}
		}
	}
	return nil
}

func (j *Journal) known(id EventID) bool {
	_, ok := j.state.Lamport(id)
	return ok
}

func (j *Journal) checkOrder(meta BatchMeta) error {
	if meta.BatchID <= j.last {
		return fmt.Errorf("%w: batch id %d is not greater than the last batch id %d", ErrJournal, meta.BatchID, j.last)
	}
	return nil
}

// Pending returns the events logged and not yet decided, in canonical
// order, one per content. The slice is the caller's; the events share
// their lists with the journal's copies.
func (j *Journal) Pending() []Event {
	type pend struct {
		d Hash
		e Event
	}
	ps := make([]pend, 0, j.pending.Len())
	for d, e := range j.pending.All() {
		ps = append(ps, pend{d, *e})
	}
	slices.SortFunc(ps, func(a, b pend) int {
		if c := a.e.key().Compare(b.e.key()); c != 0 {
			return c
		}
		return a.d.Compare(b.d)
	})
	out := make([]Event, len(ps))
	for i, p := range ps {
		out[i] = p.e
	}
	return out
}

// Snapshot syncs the log and returns a snapshot of the journal at its end:
// its State, last batch id and pending events, at base offset the log's
// size, under the checker's binding. id and createdAtNs are the
// manifest's. Replaying the log from it gives what replaying the whole log
// does.
func (j *Journal) Snapshot(id, createdAtNs uint64) (*Snapshot, error) {
	if err := j.w.Sync(); err != nil {
		return nil, err
	}
	return &Snapshot{
		ID:          id,
		CreatedAtNs: createdAtNs,
		BaseOffset:  j.w.Size(),
		LastBatchID: j.last,
		Binding:     j.c.Binding(),
		State:       j.state,
		Pending:     j.Pending(),
	}, nil
}

// JournalOptions configures [OpenJournal]. A nil *JournalOptions and zero
// fields mean the defaults.
type JournalOptions struct {
	// Snapshot is where rebuilding starts: the log is replayed from its
	// base offset, with its State and pending events. Nil means genesis.
	Snapshot *Snapshot
	// ReplaySeed is the seed every BATCH frame of the log carries (SPEC 7,
	// step 2), as the journal's batches must.
	ReplaySeed uint64
	// Writer configures the log's writer: its sync policy (default
	// SyncBatch: one sync per recorded batch, and one per Journal.Sync;
	// SyncAlways: one per frame as well; SyncNever makes nothing durable,
	// for tests) and frame size cap. Its FS, when set, must also have the
	// ReadFile, ReadDir, Stat, Rename, Remove and MkdirAll methods of
	// package os (the journal refuses one that lacks some); its Visit is
	// called as the log is recovered.
	Writer framelog.WriterOptions
}

// OpenJournal opens the event log at path for appending, creating it with
// the checker's header when missing, and rebuilds the journal it was
// written by: it recovers the log (a torn tail, the trace of a crash, is cut
// off; corruption is refused and the file left untouched), then replays it
// from opts.Snapshot, checking that every batch reproduces its recorded
// outcome, to reach the State, the last batch id and the pending events the
// log's last complete frame left. Events whose EVENT frames survived a
// crash but whose batch did not are pending again, for a later batch.
//
// A log that does not replay is refused with the [*Incident] (an
// [ErrDivergence]) or the format error replay met, and nothing is written.
// The journal holds the log's appender lock (see [framelog.Open]) until
// Close. ctx bounds the replay.
func OpenJournal(ctx context.Context, path string, c *Checker, opts *JournalOptions) (*Journal, error) {
	var wo *framelog.WriterOptions
	if opts != nil {
		wo = &opts.Writer
	}
	fsys, err := fileSystemOf(wo, "OpenJournal")
	if err != nil {
		return nil, err
	}
	return openJournal(ctx, fsys, path, c, opts)
}

func openJournal(ctx context.Context, fsys fileSystem, path string, c *Checker, opts *JournalOptions) (*Journal, error) {
	var o JournalOptions
	if opts != nil {
		o = *opts
	}
	b := c.Binding()
	o.Writer.FS = fsys
	w, err := framelog.Open(path, b.Header(), &o.Writer)
	if err != nil {
		return nil, err
	}
	j, err := rebuildJournal(ctx, fsys, path, w, c, &o)
	if err != nil {
		w.Close()
		return nil, err
	}
	j.owned = true
	return j, nil
}

// rebuildJournal replays the log w has just recovered.
func rebuildJournal(ctx context.Context, fsys fileSystem, path string, w *framelog.Writer, c *Checker, o *JournalOptions) (*Journal, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The recovered log ends at w.Size(); nothing lies beyond it now.
	rp := NewReplayer(o.Snapshot, []io.Reader{io.NewSectionReader(f, 0, w.Size())}, o.ReplaySeed, c,
		&ReplayOptions{MaxFrameLen: o.Writer.MaxFrameLen})
	for {
		if _, err := rp.Next(ctx); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
	}
	// The log's own outcome is the expectation: what is checked is that
	// each batch reproduces what it recorded.
	r, err := rp.Finish(ctx, rp.report.State.MergedStateHash())
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("omega: journal %s does not replay: %w", path, err)
	}
	j := NewJournal(w, c, r.State, r.LastBatchID)
	for i := range r.Pending {
		j.pending.Put(r.Pending[i].Digest(), &r.Pending[i])
	}
	return j, nil
}

// Sync makes every frame the journal has appended durable, as the
// writer's sync policy allows (see [framelog.Writer.Sync]): the events logged
// since the last recorded batch, which Record would otherwise sync with
// the next decision.
func (j *Journal) Sync() error { return j.w.Sync() }

// Close closes the log a journal opened with [OpenJournal] holds (syncing
// it under its policy and releasing its lock); for a journal made with
// [NewJournal], whose writer is the caller's, it does nothing.
func (j *Journal) Close() error {
	if !j.owned {
		return nil
	}
	return j.w.Close()
}
