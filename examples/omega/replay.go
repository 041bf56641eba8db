package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

type replayOpts struct {
	snapshot     string
	logSuffix    segmentList
	expectedHex  string
	replaySeed   uint64
	certLog      string
	incidentDir  string
	otherChecker bool
	uncertified  bool
	divBatch     uint64
	divEvent     string
}

// segmentList collects the files of a log given in segments, one flag per
// file, in order.
type segmentList []string

func (l *segmentList) String() string { return strings.Join(*l, ",") }

func (l *segmentList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func (o *replayOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.snapshot, "snapshot", "", "the snapshot to start from (omitted: genesis)")
	fs.Var(&o.logSuffix, "log_suffix", "the event log of EVENT and BATCH frames (required; also --log-suffix); given again, the log's next segment")
	fs.Var(&o.logSuffix, "log-suffix", "the same as --log_suffix")
	fs.StringVar(&o.expectedHex, "expected_hash_hex", "", "the merged state hash the last batch must reach, 64 hex digits (required; also --expected-hash-hex)")
	fs.StringVar(&o.expectedHex, "expected-hash-hex", "", "the same as --expected_hash_hex")
	fs.Uint64Var(&o.replaySeed, "replay-seed", 0, "the replay seed every BATCH must carry (omitted: the seed of the log's first BATCH frame)")
	fs.StringVar(&o.certLog, "cert-log", "", "a certificate log whose chain every batch must agree with")
	fs.StringVar(&o.incidentDir, "incident-dir", "", "write an incident here as <incident_id>.json and append it to incidents.omega")
	fs.BoolVar(&o.otherChecker, "other-checker", false, "replay under this checker on purpose although another made the history: skip the binding checks and report equivalent")
	fs.BoolVar(&o.uncertified, "uncertified-suffix", false, "with --cert-log, accept and list as uncertified the batches after the certificate log's last certificate")
	fs.Uint64Var(&o.divBatch, "divergence_batch_id", 0, "the batch id where a divergence is expected, as the original system's replay took it (also --divergence-batch-id): replay finds the divergence itself and reports whether it is there")
	fs.Uint64Var(&o.divBatch, "divergence-batch-id", 0, "the same as --divergence_batch_id")
	fs.StringVar(&o.divEvent, "divergence_event_id", "", "the event id (decimal u128) where a divergence is expected (also --divergence-event-id)")
	fs.StringVar(&o.divEvent, "divergence-event-id", "", "the same as --divergence_event_id")
}

func replayFlags(fs *flag.FlagSet) { new(replayOpts).declare(fs) }

// replayOutput is what replay prints when every batch re-executed to its
// recorded outcome.
type replayOutput struct {
	Status         string        `json:"status"`
	Command        string        `json:"command"`
	Result         string        `json:"result"`
	ReplaySeed     uint64        `json:"replay_seed"`
	SeedFrom       string        `json:"replay_seed_from"` // "flag", "log" (its first BATCH frame), or "default" (a log without batches)
	Batches        int           `json:"batches"`
	Merges         int           `json:"merges"`
	Obstructions   int           `json:"obstructions"`
	Members        int           `json:"members"`
	Pending        int           `json:"pending"`
	LastBatchID    uint64        `json:"last_batch_id"`
	FinalStateHash string        `json:"final_state_hash"`
	LogEnd         int64         `json:"log_end"`
	TornTailBytes  int64         `json:"torn_tail_bytes"`
	TornTailOffset *int64        `json:"torn_tail_offset,omitempty"`
	Certificates   *int          `json:"certificates,omitempty"`
	Uncertified    []uint64      `json:"uncertified,omitempty"`
	Expected       *expectedDiv  `json:"expected_divergence,omitempty"`
	PerBatch       []replayBatch `json:"per_batch"`
}

// expectedDiv is the divergence --divergence_batch_id and
// --divergence_event_id name, and whether replay found it there.
type expectedDiv struct {
	BatchID uint64 `json:"batch_id"`
	EventID string `json:"event_id"`
	Found   bool   `json:"found"`
}

type replayBatch struct {
	BatchID         uint64 `json:"batch_id"`
	Kind            string `json:"kind"`
	Members         int    `json:"members"`
	MergedStateHash string `json:"merged_state_hash"`
	Uncertified     bool   `json:"uncertified,omitempty"`
}

// incidentError is a replay that found a difference: exit 30, the incident
// printed under "incident".
type incidentError struct {
	inc      *omega.Incident
	expect   *expectedDiv // the divergence the flags expected, if given
	written  string       // the incident's JSON file, when --incident-dir was given
	writeErr error        // why it could not be written there
}

func (e *incidentError) Error() string {
	msg := fmt.Sprintf("replay incident: %s differs at batch %d (event %v)", e.inc.Field, e.inc.BatchID, e.inc.EventID)
	if e.writeErr != nil {
		msg += "; the incident was not written: " + e.writeErr.Error()
	}
	return msg
}

// Unwrap returns the incident, an error in the omega.ErrDivergence category.
func (e *incidentError) Unwrap() error { return e.inc }

func runReplay(args []string) ([]byte, error) {
	var o replayOpts
	fs := newFlagSet("replay")
	o.declare(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if len(o.logSuffix) == 0 {
		return nil, usageErrorf("replay: missing --log_suffix (or --log-suffix)")
	}
	if o.uncertified && o.certLog == "" {
		return nil, usageErrorf("replay: --uncertified-suffix needs --cert-log")
	}
	if o.expectedHex == "" {
		return nil, usageErrorf("replay: missing --expected_hash_hex")
	}
	var expect *expectedDiv
	if flagSet(fs, "divergence_batch_id") || flagSet(fs, "divergence-batch-id") || o.divEvent != "" {
		expect = &expectedDiv{BatchID: o.divBatch, EventID: "0"}
		if o.divEvent != "" {
			id, err := omega.ParseEventID(o.divEvent)
			if err != nil {
				return nil, usageErrorf("replay: --divergence_event_id: %v", err)
			}
			expect.EventID = id.String()
		}
	}
	expected, err := omega.ParseHash(o.expectedHex)
	if err != nil {
		return nil, usageErrorf("replay: --expected_hash_hex: %v", err)
	}
	seedFrom := "flag"
	if !flagSet(fs, "replay-seed") {
		// The seed the log was written with, so that a log written with
		// any seed replays without the flag.
		seed, ok, err := firstBatchSeed(o.logSuffix)
		if err != nil {
			return nil, err
		}
		seedFrom = "default"
		if ok {
			o.replaySeed, seedFrom = seed, "log"
		}
	}
	segments := make([]io.Reader, len(o.logSuffix))
	for i, path := range o.logSuffix {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		segments[i] = f
	}
	var snap *omega.Snapshot
	if o.snapshot != "" {
		if snap, err = omega.LoadSnapshotFile(o.snapshot); err != nil {
			return nil, err
		}
	}
	var opts omega.ReplayOptions
	opts.OtherChecker = o.otherChecker
	opts.UncertifiedSuffix = o.uncertified
	if o.certLog != "" {
		dir, err := certLogDir(o.certLog)
		if err != nil {
			return nil, err
		}
		o.certLog = dir
		b, err := os.ReadFile(filepath.Join(o.certLog, "cert.log"))
		if err != nil {
			return nil, err
		}
		// A cert.log that verify would fail as a log fails here with the
		// same check, exit 20, as it does for certify.
		certs, _, err := readCertLog(b)
		if err != nil {
			return nil, failed(fmt.Errorf("replay: %s: %w", o.certLog, err))
		}
		opts.Certificates = certs
		if opts.Certificates == nil {
			opts.Certificates = []*omega.Certificate{}
		}
	}
	checker, err := omega.NewChecker(nil)
	if err != nil {
		return nil, err
	}
	// The log is streamed, not read whole: the replayer keeps the events
	// it may still need, and reads a decided one again from its file.
	ctx := context.Background()
	rp := omega.NewReplayer(snap, segments, o.replaySeed, checker, &opts)
	var perBatch []replayBatch
	members := 0
	for {
		b, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		members += b.Members
		perBatch = append(perBatch, replayBatch{BatchID: b.BatchID, Kind: b.Kind.String(), Members: b.Members,
			MergedStateHash: b.MergedStateHash.String(), Uncertified: b.Uncertified})
	}
	rep, err := rp.Finish(ctx, expected)
	if err != nil {
		return nil, err
	}
	if rep.Outcome == omega.Diverged {
		ie := &incidentError{inc: rep.Incident, expect: expect}
		if expect != nil {
			expect.Found = rep.Incident.BatchID == expect.BatchID && (o.divEvent == "" || rep.Incident.EventID.String() == expect.EventID)
		}
		if o.incidentDir != "" {
			// A directory that cannot take the incident does not hide
			// it: the exit code and the output are still the incident's.
			if err := rep.Incident.WriteFile(o.incidentDir, logHeader()); err != nil {
				ie.writeErr = err
			} else {
				ie.written = filepath.Join(o.incidentDir, rep.Incident.ID.String()+".json")
			}
		}
		return nil, ie
	}

	out := replayOutput{
		Status:         "ok",
		Command:        "replay",
		Result:         rep.Outcome.String(),
		ReplaySeed:     o.replaySeed,
		SeedFrom:       seedFrom,
		Batches:        len(perBatch),
		Merges:         rep.Merges,
		Obstructions:   rep.Obstructions,
		Members:        members,
		Pending:        len(rep.Pending),
		LastBatchID:    rep.LastBatchID,
		FinalStateHash: rep.State.MergedStateHash().String(),
		LogEnd:         rep.LogEnd,
		TornTailBytes:  rep.TornTail,
		Uncertified:    rep.Uncertified,
		Expected:       expect, // not found: the replay is deterministic
		PerBatch:       perBatch,
	}
	if out.PerBatch == nil {
		out.PerBatch = []replayBatch{}
	}
	if rep.TornTail > 0 {
		out.TornTailOffset = &rep.LogEnd
	}
	if opts.Certificates != nil {
		n := len(opts.Certificates)
		out.Certificates = &n
	}
	return marshal(out), nil
}

// firstBatchSeed returns the replay seed of the first BATCH frame of the
// log's segments, and whether there is one. A log it cannot read gives no
// seed and no error: replay reports what is wrong with it.
func firstBatchSeed(paths []string) (uint64, bool, error) {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return 0, false, err
		}
		r := framelog.NewReader(f, nil)
		for {
			fr, err := r.Next()
			if err != nil {
				break
			}
			if fr.Type == framelog.FrameBatch {
				rec, err := omega.DecodeBatchRecord(fr.Payload)
				f.Close()
				if err != nil {
					return 0, false, nil
				}
				return rec.ReplaySeed, true, nil
			}
		}
		f.Close()
	}
	return 0, false, nil
}

// incidentDecimal shows, for an incident in a field that holds an integer
// (a replay seed, a batch id, a created_at_ns), the expected and observed
// values as decimals beside the raw bytes.
type incidentDecimal struct {
	Expected string `json:"expected"`
	Observed string `json:"observed"`
}

func incidentDecimals(err error) *incidentDecimal {
	var ie *incidentError
	if !errors.As(err, &ie) {
		return nil
	}
	switch ie.inc.Field {
	case omega.FieldReplaySeed, omega.FieldOrder, omega.FieldCreatedAt:
		le := func(h omega.Hash) string { return strconv.FormatUint(binary.LittleEndian.Uint64(h[:8]), 10) }
		return &incidentDecimal{Expected: le(ie.inc.Expected), Observed: le(ie.inc.Observed)}
	}
	return nil
}

// incidentJSON returns the incident's JSON view for the error output.
func incidentJSON(err error) (json.RawMessage, string) {
	var ie *incidentError
	if !errors.As(err, &ie) {
		return nil, ""
	}
	b, _ := ie.inc.MarshalJSON()
	return b, ie.written
}
