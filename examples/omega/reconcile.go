package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"strconv"

	"github.com/omega-sheaf/omega"
)

type reconcileOpts struct {
	input      string
	batchID    uint64
	replaySeed uint64
	output     string
}

func (o *reconcileOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.input, "input", "", "the events: a JSON array, JSON lines or an .omega log of EVENT frames (required)")
	fs.Uint64Var(&o.batchID, "batch-id", 0, "the batch id, at least 1 (required)")
	fs.Uint64Var(&o.replaySeed, "replay-seed", 0, "the replay seed recorded with the batch")
	fs.StringVar(&o.output, "output", "", "also write the checker output, with batch id and replay seed, to this file")
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
	out, err := checker.Reconcile(nil, events)
	if err != nil {
		return nil, err
	}
	checkerOutput := out.AppendJSON(nil)

	if o.output != "" {
		// {"batch_id":B,"replay_seed":S,"result":{...},"binding":{...}}
		f := []byte(`{"batch_id":`)
		f = strconv.AppendUint(f, o.batchID, 10)
		f = append(f, `,"replay_seed":`...)
		f = strconv.AppendUint(f, o.replaySeed, 10)
		f = append(f, ',')
		f = append(f, checkerOutput[1:]...) // the object's fields, after its '{'
		f = append(f, '\n')
		if err := os.WriteFile(o.output, f, 0o644); err != nil {
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
	return append(b, '}'), nil
}

// readEventLog reads the events of a frame log: every frame must be an EVENT
// bound to this schema. A torn tail ends the events; corruption is an error.
// A decoding error is an *omega.EventError whose Index is the frame's
// position among the log's frames.
func readEventLog(data []byte) ([]omega.Event, logTail, error) {
	s := omega.NewFrameScanner(data, nil)
	hdr, err := s.Header()
	if err != nil {
		return nil, logTail{}, err
	}
	if s.TornHeader() {
		return nil, logTail{torn: true}, nil
	}
	if _, err := checkHeader(hdr, false); err != nil {
		return nil, logTail{}, err
	}
	var events []omega.Event
	for i := 0; ; i++ {
		f, err := s.Next()
		switch {
		case err == io.EOF:
			return events, logTail{}, nil
		case errors.Is(err, omega.ErrTornTail):
			return events, logTail{torn: true, offset: s.Offset()}, nil
		case err != nil:
			return nil, logTail{}, err
		}
		if f.Type != omega.FrameEvent {
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
	}
}
