package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

type ingestOpts struct{ input string }

func (o *ingestOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.input, "input", "", "the .omega frame log to inspect (required)")
}

func ingestFlags(fs *flag.FlagSet) { new(ingestOpts).declare(fs) }

type headerOutput struct {
	SchemaVersion uint16     `json:"schema_version"`
	SchemaHash    omega.Hash `json:"schema_hash"`
	SchemaBound   bool       `json:"schema_bound"`
}

// frameLogSummary is what recovery finds in a frame log: ingest prints it,
// and explain prints it for a frame log.
type frameLogSummary struct {
	Header                headerOutput   `json:"header"`
	TornHeader            bool           `json:"torn_header"`
	Frames                int            `json:"frames"`
	FramesByType          map[string]int `json:"frames_by_type"`
	ValidBytesAfterHeader int64          `json:"valid_bytes_after_header"`
	MalformedTailBytes    int64          `json:"malformed_tail_bytes"`
	Tail                  string         `json:"tail"`
	TailOffset            int64          `json:"tail_offset"`
	Reason                string         `json:"reason,omitempty"`
}

type ingestOutput struct {
	Status  string `json:"status"`
	Command string `json:"command"`
	Input   string `json:"input"`
	frameLogSummary
}

func runIngest(args []string) ([]byte, error) {
	var o ingestOpts
	fs := newFlagSet("ingest")
	o.declare(fs)
	if err := parseFlags(fs, args, "input"); err != nil {
		return nil, err
	}
	// The log is streamed, not read whole: memory does not grow with it.
	f, err := os.Open(o.input)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec, err := framelog.RecoverFrom(f, nil)
	if err != nil {
		return nil, err
	}
	sum, err := summarizeRecovery(rec)
	if err != nil {
		return nil, err
	}
	return marshal(ingestOutput{Status: "ok", Command: "ingest", Input: o.input, frameLogSummary: sum}), nil
}

// summarizeFrameLog recovers the frame log b and describes it. The error is
// that of a bad header, or of a header bound to another schema.
func summarizeFrameLog(b []byte) (frameLogSummary, error) {
	rec, err := framelog.Recover(b, nil)
	if err != nil {
		return frameLogSummary{}, err // a *HeaderError: exit 10
	}
	return summarizeRecovery(rec)
}

// summarizeRecovery describes a recovered frame log. The error is that of a
// header bound to another schema.
func summarizeRecovery(rec framelog.Recovery) (frameLogSummary, error) {
	size := rec.TailOffset + rec.TailBytes
	// An unbound header, written by the original system's tools, is
	// reported as such; any other header must be this checker's (SPEC
	// section 4).
	bound := !rec.TornHeader && rec.Header.Bound()
	if bound {
		if err := omega.DefaultBinding().CheckHeader(rec.Header); err != nil {
			return frameLogSummary{}, err
		}
	}
	out := frameLogSummary{
		Header: headerOutput{
			SchemaVersion: rec.Header.SchemaVersion,
			SchemaHash:    rec.Header.SchemaHash,
			SchemaBound:   bound,
		},
		TornHeader:            rec.TornHeader,
		Frames:                rec.Frames,
		FramesByType:          map[string]int{},
		ValidBytesAfterHeader: rec.ValidBytes,
		MalformedTailBytes:    rec.TailBytes,
		Tail:                  rec.Tail.String(),
		TailOffset:            rec.TailOffset,
	}
	for t, n := range rec.FramesByType {
		out.FramesByType[t.String()] = n
	}
	switch {
	case rec.TornHeader && size < framelog.HeaderSize:
		out.Reason = fmt.Sprintf("header cut short: %d of %d bytes, a log creation interrupted before its header was written", size, framelog.HeaderSize)
	case rec.TornHeader:
		out.Reason = fmt.Sprintf("header all zero and %d zero bytes after it: a log creation interrupted before its header was written", size-framelog.HeaderSize)
	case rec.Err != nil:
		out.Reason = rec.Err.Reason
	}
	return out, nil
}
