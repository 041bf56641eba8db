package omega

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/model"
	"github.com/omega-sheaf/omega/trace"
)

// Every kernel a test opens through openKernel reports its steps, and
// closeKernel reads them through the formal model (internal/model, the Go
// transcription of formal/OMEGA.tla): each step must be one the model's
// action of that name allows, and every invariant must hold after it. A
// data directory's trace spans every kernel opened on it in the test.

// traces holds the trace of each data directory, across reopenings.
var traces sync.Map // dir -> *dirTrace

type dirTrace struct {
	mu    sync.Mutex
	steps []trace.Step
	skip  string // why this directory's trace is not validated
}

func (d *dirTrace) record(s trace.Step) {
	d.mu.Lock()
	d.steps = append(d.steps, s)
	d.mu.Unlock()
}

// traceKernel has cfg report the kernel's steps into dir's trace.
func traceKernel(dir string, cfg *KernelConfig) *dirTrace {
	v, _ := traces.LoadOrStore(dir, &dirTrace{})
	d := v.(*dirTrace)
	if cfg.Trace == nil {
		cfg.Trace = d.record
	}
	if cfg.Sync == framelog.SyncNever {
		d.skip = "SyncNever acknowledges what is not durable, which the model does not allow"
	}
	return d
}

// untraced stops the validation of dir's trace, for why: the test does
// to the files what the model leaves out (damage, which it reads only as
// the cause of safe mode, or removing what is durable).
func untraced(dir, why string) {
	v, _ := traces.LoadOrStore(dir, &dirTrace{})
	d := v.(*dirTrace)
	d.mu.Lock()
	d.skip = why
	d.mu.Unlock()
}

// checkTrace validates dir's trace so far.
func checkTrace(t testing.TB, dir string, batchSize int) {
	t.Helper()
	v, ok := traces.Load(dir)
	if !ok {
		return
	}
	d := v.(*dirTrace)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.skip != "" {
		return
	}
	if err := validateTrace(d.steps, batchSize); err != nil {
		t.Errorf("the kernel's trace breaks the model: %v", err)
	}
}

func validateTrace(steps []trace.Step, batchSize int) error {
	if batchSize == 0 {
		batchSize = DefaultBatchSize
	}
	_, err := model.Validate(model.Config{BatchSize: batchSize}, steps)
	var se *model.StepError
	if errors.As(err, &se) {
		var b strings.Builder
		for i := max(0, se.Index-traceContext); i <= se.Index; i++ {
			fmt.Fprintf(&b, "\n  %d: %s", i, stepString(steps[i]))
		}
		return fmt.Errorf("%w; the steps before it:%s", err, b.String())
	}
	return err
}

func stepString(s trace.Step) string {
	var b strings.Builder
	b.WriteString(string(s.Action))
	for _, e := range s.Events {
		fmt.Fprintf(&b, " %d@%d(%x)", e.ID.Lo, e.Lamport, e.Digest[:2])
		if len(e.Deps) > 0 {
			b.WriteString("<-")
			for i, d := range e.Deps {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprint(&b, d.Lo)
			}
		}
	}
	switch s.Action {
	case trace.Decide:
		fmt.Fprintf(&b, " %s batch %d", s.Outcome, s.BatchID)
		if s.Outcome == trace.Obstruction {
			fmt.Fprintf(&b, " by %d at %d conflict %v", s.Predicate, s.At.Lo, s.Conflict)
		}
	case trace.Receive:
		if s.Held {
			b.WriteString(" held")
		}
	case trace.Sync, trace.Snapshot:
		fmt.Fprintf(&b, " through %d", s.Through)
	case trace.Certify:
		fmt.Fprintf(&b, " batch %d %s", s.BatchID, s.Outcome)
	case trace.Restart:
		fmt.Fprintf(&b, " next %d safe %v holding %d", s.NextBatch, s.Safe, len(s.Holding))
	}
	return b.String()
}

// traceContext is how many steps before a failing one an error shows.
var traceContext = 60
