package main

import (
	"flag"
	"math"
	"os"
	"strconv"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

type historyOpts struct {
	generateOpts
	log           string
	batchSize     int
	replaySeed    uint64
	createdAt     uint64
	obstructEvery int
	snapshot      string
	snapshotAt    uint64
}

func (o *historyOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.log, "log", "", "the event log to write: EVENT and BATCH frames (required; an existing file is replaced)")
	fs.IntVar(&o.count, "count", 0, "the number of events, 1.."+strconv.Itoa(maxGenerateCount)+" (required)")
	fs.IntVar(&o.batchSize, "batch-size", 32, "events per batch, 1.."+strconv.Itoa(omega.MaxBatchContents))
	fs.IntVar(&o.nodes, "nodes", 4, "the number of nodes, 1.."+strconv.Itoa(maxNodes))
	fs.IntVar(&o.streams, "streams", 2, "the number of streams per node, 1.."+strconv.Itoa(maxStreams))
	fs.Uint64Var(&o.seed, "seed", 0, "the seed of the event generator")
	fs.Uint64Var(&o.replaySeed, "replay-seed", 0, "the replay seed every BATCH carries")
	fs.Uint64Var(&o.createdAt, "created-at-ns", baseMonoTSNs, "created_at_ns of the first batch; each next batch adds 1")
	fs.IntVar(&o.obstructEvery, "obstruct-every", 0, "every Nth batch also carries a new content under an already accepted id (a 1002 obstruction), whose rest is re-checked as the next batch; 0: never")
	fs.StringVar(&o.snapshot, "snapshot", "", "also write a snapshot taken from the log after batch --snapshot-at")
	fs.Uint64Var(&o.snapshotAt, "snapshot-at", 0, "the batch id after which --snapshot is taken (required with --snapshot)")
}

func historyFlags(fs *flag.FlagSet) { new(historyOpts).declare(fs) }

type historyOutput struct {
	Status         string          `json:"status"`
	Command        string          `json:"command"`
	Log            string          `json:"log"`
	Events         int             `json:"events"`
	Batches        int             `json:"batches"`
	Merges         int             `json:"merges"`
	Obstructions   int             `json:"obstructions"`
	LastBatchID    uint64          `json:"last_batch_id"`
	ReplaySeed     uint64          `json:"replay_seed"`
	FinalStateHash string          `json:"final_state_hash"`
	LogBytes       int64           `json:"log_bytes"`
	Snapshot       *historySnapOut `json:"snapshot,omitempty"`
}

type historySnapOut struct {
	Path            string `json:"path"`
	LastBatchID     uint64 `json:"last_batch_id"`
	BaseOffset      int64  `json:"base_checkpoint_offset"`
	MergedStateHash string `json:"merged_state_hash"`
	Pending         int    `json:"pending"`
}

// snapshotFromLog takes a snapshot of the log at path as it stood at offset
// off, where its merged state hash was hash: it replays the log's first off
// bytes, which must be deterministic, and keeps the State and the events
// logged but not yet decided there.
func snapshotFromLog(path string, off int64, hash omega.Hash, seed uint64, c *omega.Checker, id, createdAt uint64) (*omega.Snapshot, error) {
	log, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rep, err := omega.Replay(nil, log[:off], hash, seed, c, nil)
	if err != nil {
		return nil, err
	}
	if rep.Outcome != omega.Deterministic {
		return nil, &incidentError{inc: rep.Incident}
	}
	return rep.Snapshot(id, createdAt), nil
}

// runGenerateHistory writes a multi-batch event log with a Journal, so that
// replay has real history to re-execute.
func runGenerateHistory(args []string) ([]byte, error) {
	var o historyOpts
	fs := newFlagSet("generate-history")
	o.declare(fs)
	if err := parseFlags(fs, args, "log", "count"); err != nil {
		return nil, err
	}
	switch {
	case o.count < 1 || o.count > maxGenerateCount:
		return nil, usageErrorf("generate-history: --count %d out of range 1..%d", o.count, maxGenerateCount)
	case o.batchSize < 1 || o.batchSize > omega.MaxBatchContents:
		return nil, usageErrorf("generate-history: --batch-size %d out of range 1..%d", o.batchSize, omega.MaxBatchContents)
	case o.nodes < 1 || o.nodes > maxNodes:
		return nil, usageErrorf("generate-history: --nodes %d out of range 1..%d", o.nodes, maxNodes)
	case o.streams < 1 || o.streams > maxStreams:
		return nil, usageErrorf("generate-history: --streams %d out of range 1..%d", o.streams, maxStreams)
	case o.obstructEvery < 0:
		return nil, usageErrorf("generate-history: --obstruct-every %d is negative", o.obstructEvery)
	case (o.snapshot == "") != !flagSet(fs, "snapshot-at"):
		return nil, usageErrorf("generate-history: --snapshot and --snapshot-at go together")
	}
	// Batch id b gets created_at_ns --created-at-ns + b - 1; there are at
	// most two batches per --batch-size events (one and its re-check).
	if most := 2 * uint64((o.count+o.batchSize-1)/o.batchSize); o.createdAt > math.MaxUint64-(most-1) {
		return nil, usageErrorf("generate-history: --created-at-ns %d leaves no room for %d batches below 2^64", o.createdAt, most)
	}
	if err := removeForRewrite(o.log); err != nil {
		return nil, err
	}
	checker, err := omega.NewChecker(nil)
	if err != nil {
		return nil, err
	}
	w, err := framelog.Open(o.log, logHeader(), &framelog.WriterOptions{Sync: framelog.SyncNever})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	j := omega.NewJournal(w, checker, nil, 0)

	out := historyOutput{Status: "ok", Command: "generate-history", Log: o.log, Events: o.count, ReplaySeed: o.replaySeed}
	var (
		snapOff  int64 // the log's length after the BATCH of --snapshot-at
		snapHash omega.Hash
	)
	decide := func(batch []omega.Event) (omega.Output, error) {
		id := j.LastBatchID() + 1
		res, err := j.Decide(batch, omega.BatchMeta{BatchID: id, ReplaySeed: o.replaySeed, CreatedAtNs: o.createdAt + id - 1})
		if err != nil {
			return res, err
		}
		out.Batches++
		if res.Result.Kind == omega.KindMerge {
			out.Merges++
		} else {
			out.Obstructions++
		}
		if id == o.snapshotAt {
			snapOff, snapHash = w.Size(), j.State().MergedStateHash()
		}
		return res, nil
	}

	g := newGenerator(o.generateOpts)
	var accepted []omega.Event // one accepted event per batch, for the conflicts
	for n := 0; n < o.count; {
		batch := make([]omega.Event, 0, o.batchSize+1)
		for len(batch) < o.batchSize && n < o.count {
			e, _ := g.nextEvent()
			e.Deps = append([]omega.EventID(nil), e.Deps...) // the generator reuses its lists
			batch = append(batch, e)
			n++
		}
		conflict := o.obstructEvery > 0 && len(accepted) > 0 && (out.Batches+1)%o.obstructEvery == 0
		if conflict {
			// A new content under an id accepted earlier: 1002.
			bad := accepted[len(accepted)-1]
			bad.Payload = []byte("redelivered with other content")
			bad.PayloadHash = omega.PayloadHash(bad.Payload)
			bad.Deps = []omega.EventID{}
			batch = append(batch, bad)
		}
		if _, err := j.LogEvents(batch); err != nil {
			return nil, err
		}
		res, err := decide(batch)
		if err != nil {
			return nil, err
		}
		if res.Result.Kind == omega.KindObstruction {
			// Quarantine the conflict set and re-check the rest, not
			// logged again.
			rest := batch[:0:0]
			for _, e := range batch {
				if !containsID(res.Result.Obstruction.ConflictSet, e.ID) {
					rest = append(rest, e)
				}
			}
			if res, err = decide(rest); err != nil {
				return nil, err
			}
			if res.Result.Kind != omega.KindMerge {
				return nil, inputErrorf("generate-history: the re-check of batch %d did not merge", j.LastBatchID())
			}
		}
		accepted = append(accepted, batch[0])
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if o.snapshot != "" {
		if snapOff == 0 {
			return nil, usageErrorf("generate-history: --snapshot-at %d is not among the %d batches", o.snapshotAt, out.Batches)
		}
		s, err := snapshotFromLog(o.log, snapOff, snapHash, o.replaySeed, checker, o.snapshotAt, o.createdAt+o.snapshotAt-1)
		if err != nil {
			return nil, err
		}
		if err := s.WriteFile(o.snapshot); err != nil {
			return nil, err
		}
		out.Snapshot = &historySnapOut{Path: o.snapshot, LastBatchID: s.LastBatchID, BaseOffset: s.BaseOffset,
			MergedStateHash: s.State.MergedStateHash().String(), Pending: len(s.Pending)}
	}
	out.LastBatchID = j.LastBatchID()
	out.FinalStateHash = j.State().MergedStateHash().String()
	out.LogBytes = w.Size()
	return marshal(out), nil
}

func containsID(ids []omega.EventID, id omega.EventID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
