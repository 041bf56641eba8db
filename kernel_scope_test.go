package omega

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/trace"
)

// TestKernelSmallScope runs every sequence of up to five actions over
// formal/OMEGA.cfg's instance (two nodes, one faulty; ids 1 and 2;
// lamports 1 and 2; batches of two; one crash) against the real kernel,
// and reads each run's trace through the model. Of the events the instance
// allows it takes four: node 1's two (the second depending on the first)
// and two of the faulty node's (one reusing id 1, one reusing id 2 with a
// wrong payload hash); the other actions are a flush (Decide) and a crash
// that keeps only what was synced, directory entries included, followed by
// the restart. Where the rapid mirror samples long runs, this covers every
// short one.
func TestKernelSmallScope(t *testing.T) {
	longTest(t)
	if raceEnabled {
		t.Skip("thousands of short runs; the race detector sees the same code in the other kernel tests")
	}
	depth := 5
	if testing.Short() {
		depth = 4
	}
	a := kev(1, 1, 1, "a")
	b := kev(2, 1, 2, "b", 1)
	f1 := kev(1, 2, 1, "f1")    // reuses a's id
	f2 := kev(2, 2, 2, "f2", 1) // reuses b's id
	f2.PayloadHash[0] ^= 1
	actions := []scopeAction{
		{"Receive(a)", &a}, {"Receive(b)", &b}, {"Receive(f1)", &f1}, {"Receive(f2)", &f2},
		{"Decide", nil}, {"Crash", nil},
	}
	base := scratchDir(t)
	runs := 0
	var seq []int
	var walk func()
	walk = func() {
		if len(seq) > 0 {
			runs++
			if err := runScope(t, filepath.Join(base, fmt.Sprint(runs)), actions, seq); err != nil {
				var names []string
				for _, i := range seq {
					names = append(names, actions[i].name)
				}
				t.Fatalf("%s: %v", strings.Join(names, ", "), err)
			}
		}
		if len(seq) == depth {
			return
		}
		crashed := false
		for _, i := range seq {
			crashed = crashed || actions[i].name == "Crash"
		}
		for i, a := range actions {
			if a.name == "Crash" && crashed {
				continue // MaxCrashes = 1
			}
			seq = append(seq, i)
			walk()
			seq = seq[:len(seq)-1]
		}
	}
	walk()
	t.Logf("%d runs of up to %d actions", runs, depth)
}

type scopeAction struct {
	name string
	ev   *Event
}

// runScope runs one sequence of actions on a new kernel under root, then
// flushes, closes and validates the trace.
func runScope(t *testing.T, root string, actions []scopeAction, seq []int) error {
	defer os.RemoveAll(root)
	var mu sync.Mutex
	var history []trace.Step
	var steps []opStep
	var k *Kernel
	var rec *recFS
	var start map[string][]byte
	open := func(root string) error {
		rec = newRecFS()
		start = readTree(t, root)
		var d decisions
		cfg := crashConfig(rec, &d, framelog.SyncBatch)
		cfg.BatchSize = 2
		cfg.Trace = func(s trace.Step) {
			mu.Lock()
			steps = append(steps, opStep{rec.Len(), s})
			mu.Unlock()
		}
		var err error
		k, err = OpenKernel(context.Background(), filepath.Join(root, "data"), cfg)
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := open(root); err != nil {
		return err
	}
	ctx := context.Background()
	for n, i := range seq {
		switch a := actions[i]; {
		case a.ev != nil:
			if err := k.Submit(ctx, *a.ev); err != nil {
				return err
			}
		case a.name == "Decide":
			if err := k.Flush(ctx); err != nil {
				return err
			}
		case a.name == "Crash":
			ops := rec.Ops()
			k.Close(ctx)
			mu.Lock()
			for _, s := range steps {
				if s.ops <= len(ops) && s.step.Action != trace.Crash {
					history = append(history, s.step)
				}
			}
			history = append(history, trace.Step{Action: trace.Crash})
			steps = nil
			mu.Unlock()
			next := fmt.Sprintf("%s.%d", root, n)
			defer os.RemoveAll(next)
			crashFiles(t, start, root, ops, crashSynced, next, 1)
			if err := open(next); err != nil {
				return err
			}
		}
	}
	if err := k.Flush(ctx); err != nil {
		return err
	}
	if err := k.Close(ctx); err != nil {
		return err
	}
	for _, s := range steps {
		history = append(history, s.step)
	}
	return validateTrace(history, 2)
}
