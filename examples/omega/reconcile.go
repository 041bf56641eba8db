package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

type reconcileOpts struct {
	input       string
	batchID     uint64
	replaySeed  uint64
	output      string
	snapshot    string
	snapshotOut string
	log         string
	createdAt   uint64
}

func (o *reconcileOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.input, "input", "", "the events: a JSON array, JSON lines or an .omega log of EVENT frames (required)")
	fs.Uint64Var(&o.batchID, "batch-id", 0, "the batch id, at least 1 (required)")
	fs.Uint64Var(&o.replaySeed, "replay-seed", 0, "the replay seed recorded with the batch")
	fs.StringVar(&o.output, "output", "", "also write the checker output, with batch id and replay seed, to this file")
	fs.StringVar(&o.snapshot, "snapshot", "", "a snapshot whose State is the prior (omitted: genesis)")
	fs.StringVar(&o.snapshotOut, "snapshot-out", "", "write the State after the batch to this snapshot file")
	fs.StringVar(&o.log, "log", "", "append the batch's EVENT frames and its BATCH frame to this event log (created when missing); a log with batches needs --snapshot with the state after its last one")
	fs.Uint64Var(&o.createdAt, "created-at-ns", 0, "created_at_ns of the BATCH frame and the snapshot (default: the current time)")
}

func reconcileFlags(fs *flag.FlagSet) { new(reconcileOpts).declare(fs) }

// isFrameLog reports whether b is to be read as a frame log: when its first
// byte is the first of the .omega magic, 'O' (4F 4D 45 47 41 00 01 00), or
// zero (a header cut short by a crash may be zeroed). No JSON input starts
// with either, so a damaged header is reported as such, not as bad JSON.
func isFrameLog(b []byte) bool {
	return len(b) > 0 && (b[0] == 'O' || b[0] == 0)
}

// logTail says how a frame log read by reconcile ended, when not cleanly.
type logTail struct {
	torn   bool
	offset int64
}

func runReconcile(args []string) ([]byte, error) {
	var o reconcileOpts
	fs := newFlagSet("reconcile")
	o.declare(fs)
	if err := parseFlags(fs, args, "input", "batch-id"); err != nil {
		return nil, err
	}
	if o.batchID == 0 {
		return nil, inputErrorf("reconcile: batch id 0 refused: batch ids start at 1")
	}
	data, err := os.ReadFile(o.input)
	if err != nil {
		return nil, err
	}
	var (
		events []omega.Event
		tail   logTail
	)
	if len(bytes.TrimSpace(data)) == 0 {
		// An empty batch is "[]"; an empty file is more likely one that
		// was never written or was cut short.
		return nil, inputErrorf("reconcile: %s is empty; an empty batch is written []", o.input)
	}
	if isFrameLog(data) {
		events, tail, err = readEventLog(data)
	} else {
		events, err = omega.DecodeEventsJSON(data, omega.Limits{})
	}
	if err != nil {
		return nil, err
	}
	checker, err := omega.NewChecker(nil)
	if err != nil {
		return nil, err
	}
	createdAt := o.createdAt
	if !flagSet(fs, "created-at-ns") {
		createdAt = uint64(time.Now().UnixNano())
	}
	meta := omega.BatchMeta{BatchID: o.batchID, ReplaySeed: o.replaySeed, CreatedAtNs: createdAt}
	var (
		prior *omega.State
		snap  *omega.Snapshot
	)
	if o.snapshot != "" {
		if snap, err = omega.LoadSnapshotFile(o.snapshot); err != nil {
			return nil, err
		}
		if err := snap.Binding.Check(checker.Binding()); err != nil {
			return nil, fmt.Errorf("reconcile: snapshot %s: %w", o.snapshot, err)
		}
		if o.batchID <= snap.LastBatchID {
			return nil, inputErrorf("reconcile: batch id %d is not greater than the snapshot's last batch id %d", o.batchID, snap.LastBatchID)
		}
		prior = snap.State
	}
	// The event log is written last: it is the record replay goes by, so
	// a batch is in it only once every other file the command writes is.
	// A failure before that leaves the log as it was, for a retry. The
	// journal is opened first, though, to refuse a batch that would not
	// continue the log before anything is written.
	// A missing log is created at the end, with nothing to continue.
	var j *omega.Journal
	if _, err := os.Stat(o.log); o.log != "" && err == nil {
		if j, err = openJournal(o.log, checker, snap, o.replaySeed); err != nil {
			return nil, err
		}
		defer j.Close()
		if err := continuesLog(o.log, j, o.batchID, prior); err != nil {
			return nil, err
		}
	}
	out, err := checker.Reconcile(prior, events)
	if err != nil {
		return nil, err
	}
	checkerOutput := out.AppendJSON(nil)
	if o.snapshotOut != "" {
		next := prior
		if out.Result.Kind == omega.KindMerge {
			next = out.Result.Merge.Next
		}
		snap := &omega.Snapshot{
			ID:          o.batchID,
			CreatedAtNs: createdAt,
			BaseOffset:  framelog.HeaderSize,
			LastBatchID: o.batchID,
			Binding:     checker.Binding(),
			State:       next,
		}
		if err := snap.WriteFile(o.snapshotOut); err != nil {
			return nil, err
		}
	}

	if o.output != "" {
		// {"batch_id":B,"replay_seed":S,"created_at_ns":T,"result":{...},"binding":{...}}
		f := []byte(`{"batch_id":`)
		f = strconv.AppendUint(f, o.batchID, 10)
		f = append(f, `,"replay_seed":`...)
		f = strconv.AppendUint(f, o.replaySeed, 10)
		f = append(f, `,"created_at_ns":`...)
		f = strconv.AppendUint(f, createdAt, 10)
		f = append(f, ',')
		f = append(f, checkerOutput[1:]...) // the object's fields, after its '{'
		f = append(f, '\n')
		if err := os.WriteFile(o.output, f, 0o644); err != nil {
			return nil, err
		}
	}
	if o.log != "" && j == nil {
		if j, err = openJournal(o.log, checker, snap, o.replaySeed); err != nil {
			return nil, err
		}
		defer j.Close()
	}
	if j != nil {
		if _, err := j.LogEvents(events); err != nil {
			return nil, err
		}
		if err := j.Record(out, meta); err != nil {
			return nil, err
		}
		if err := j.Close(); err != nil { // Close syncs
			return nil, err
		}
	}

	b := []byte(`{"status":"ok","command":"reconcile","batch_id":`)
	b = strconv.AppendUint(b, o.batchID, 10)
	b = append(b, `,"replay_seed":`...)
	b = strconv.AppendUint(b, o.replaySeed, 10)
	b = append(b, `,"checker_output":`...)
	b = append(b, checkerOutput...)
	if tail.torn {
		b = append(b, `,"tail":"torn","tail_offset":`...)
		b = strconv.AppendInt(b, tail.offset, 10)
	}
	if o.log != "" || o.snapshotOut != "" {
		b = append(b, `,"created_at_ns":`...)
		b = strconv.AppendUint(b, createdAt, 10)
	}
	if o.log != "" {
		b = append(b, `,"log":`...)
		b = append(b, marshal(o.log)...)
	}
	if o.snapshotOut != "" {
		b = append(b, `,"snapshot_out":`...)
		b = append(b, marshal(o.snapshotOut)...)
	}
	return append(b, '}'), nil
}

// openJournal opens the event log at path as a journal, rebuilt from the
// snapshot (nil: genesis) with seed. A log that does not replay from there
// is not one this batch can continue: an input error, like the others
// continuesLog reports.
func openJournal(path string, checker *omega.Checker, snap *omega.Snapshot, seed uint64) (*omega.Journal, error) {
	j, err := omega.OpenJournal(context.Background(), path, checker,
		&omega.JournalOptions{Snapshot: snap, ReplaySeed: seed, Writer: framelog.WriterOptions{Sync: framelog.SyncBatch}})
	if errors.Is(err, omega.ErrDivergence) {
		return nil, inputErrorf("reconcile: %s does not continue from the state and replay seed given (%v); pass the snapshot taken after its last batch with --snapshot, and its --replay-seed", path, err)
	}
	return j, err
}

// continuesLog refuses a batch that would not continue the event log at
// path, whose journal is j: its id must be greater than the log's last
// batch id, and prior the state the log ends in, so that the log replays.
// The state after batch N comes from the snapshot taken after it
// (--snapshot-out, then --snapshot).
func continuesLog(path string, j *omega.Journal, batchID uint64, prior *omega.State) error {
	if batchID <= j.LastBatchID() {
		return inputErrorf("reconcile: batch id %d is not greater than %d, the last batch of %s", batchID, j.LastBatchID(), path)
	}
	if got, want := prior.MergedStateHash(), j.State().MergedStateHash(); got != want {
		return inputErrorf("reconcile: %s ends in state %s after batch %d, but the batch would be decided from state %s; pass the snapshot taken after batch %d with --snapshot",
			path, want, j.LastBatchID(), got, j.LastBatchID())
	}
	return nil
}

// readEventLog reads the events of a frame log: every frame must be an EVENT
// bound to this schema. A torn tail ends the events; corruption is an error.
// A decoding error is an *omega.EventError whose Index is the frame's
// position among the log's frames. Reading stops at the first event past
// omega.MaxBatchContents distinct contents, a batch too large to reconcile.
func readEventLog(data []byte) ([]omega.Event, logTail, error) {
	s := framelog.NewScanner(data, nil)
	hdr, err := s.Header()
	if err != nil {
		return nil, logTail{}, err
	}
	if s.TornHeader() {
		return nil, logTail{torn: true}, nil
	}
	// An unbound log is refused: its events' schema is unknown.
	if err := omega.DefaultBinding().CheckHeader(hdr); err != nil {
		return nil, logTail{}, err
	}
	var (
		events []omega.Event
		count  omega.BatchCounter
	)
	for i := 0; ; i++ {
		f, err := s.Next()
		switch {
		case err == io.EOF:
			return events, logTail{}, nil
		case errors.Is(err, framelog.ErrTornTail):
			return events, logTail{torn: true, offset: s.Offset()}, nil
		case err != nil:
			return nil, logTail{}, err
		}
		if f.Type != framelog.FrameEvent {
			return nil, logTail{}, inputErrorf("reconcile: frame %d at offset %d is a %s frame; the input must hold EVENT frames only", i, f.Offset, f.Type)
		}
		e, err := omega.DecodeEvent(f.Payload, omega.Limits{})
		if err != nil {
			var ee *omega.EventError
			if errors.As(err, &ee) {
				return nil, logTail{}, &omega.EventError{Index: i, Field: ee.Field, Reason: ee.Reason + " (frame at offset " + strconv.FormatInt(f.Offset, 10) + ")"}
			}
			return nil, logTail{}, err
		}
		events = append(events, e)
		if err := count.Check(events); err != nil {
			return nil, logTail{}, fmt.Errorf("reconcile: frame %d at offset %d: %w", i, f.Offset, err)
		}
	}
}
