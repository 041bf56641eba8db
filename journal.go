package omega

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformedBatch reports a BATCH frame payload that does not decode: a
// wrong length, a non-zero pad, an unknown kind, or a member count that
// disagrees with the payload's length (SPEC 5).
var ErrMalformedBatch = errors.New("omega: malformed BATCH record")

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

// NewBatchRecord returns the BATCH record of a decided batch: out's result
// and binding, and meta. It refuses an output without a result. The record
// shares out's Members.
func NewBatchRecord(out Output, meta BatchMeta) (*BatchRecord, error) {
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
// holds what [Replay] needs to re-execute every batch (SPEC 5, 7). It
// decides with its checker from the State its last Merge reached, and
// refuses a batch id that does not increase.
//
// The journal writes through a [FrameWriter], whose sync policy says when
// frames are durable; a BATCH frame is durable once a Sync after it
// succeeded. A Journal is not safe for concurrent use.
type Journal struct {
	w     *FrameWriter
	c     *Checker
	state *State
	last  uint64
	buf   []byte
}

// NewJournal returns a journal that appends to w, deciding with c from the
// State state (nil is genesis) after the batch lastBatchID (0 when none).
// It panics if w or c is nil.
func NewJournal(w *FrameWriter, c *Checker, state *State, lastBatchID uint64) *Journal {
	if w == nil || c == nil {
		panic("omega: NewJournal with a nil writer or checker")
	}
	return &Journal{w: w, c: c, state: state, last: lastBatchID}
}

// State returns the State the journal's decisions reached.
func (j *Journal) State() *State { return j.state }

// LastBatchID returns the id of the last batch decided, or the lastBatchID
// the journal started from.
func (j *Journal) LastBatchID() uint64 { return j.last }

// LogEvents appends one EVENT frame per event, in the order given, and
// returns the offset of the first. An event that does not validate is
// refused before anything is written.
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
	for i := range events {
		j.buf, _ = events[i].AppendBinary(j.buf[:0])
		if _, err := j.w.Append(FrameEvent, j.buf); err != nil {
			return 0, err
		}
	}
	return first, nil
}

// Decide reconciles events, which must already be logged (see LogEvents:
// the rest of an obstructed batch is re-checked without being logged
// again), and appends the BATCH frame of the decision. A Merge moves the
// journal's State on. meta.BatchID must be greater than the last batch id.
// When Decide refuses the batch (a batch id out of order, a batch over
// MaxBatchContents), nothing is appended: the logged events stay pending,
// as Replay reports them, for a later batch to decide.
func (j *Journal) Decide(events []Event, meta BatchMeta) (Output, error) {
	if meta.BatchID <= j.last {
		return Output{}, fmt.Errorf("%w: batch id %d after %d", ErrBatchOrder, meta.BatchID, j.last)
	}
	out, err := j.c.Reconcile(j.state, events)
	if err != nil {
		return Output{}, err
	}
	rec, err := NewBatchRecord(out, meta)
	if err != nil {
		return Output{}, err
	}
	if j.buf, err = rec.AppendBinary(j.buf[:0]); err != nil {
		return Output{}, err
	}
	if _, err := j.w.Append(FrameBatch, j.buf); err != nil {
		return Output{}, err
	}
	j.last = meta.BatchID
	if out.Result.Kind == KindMerge {
		j.state = out.Result.Merge.Next
	}
	return out, nil
}
