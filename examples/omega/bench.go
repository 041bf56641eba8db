package main

import (
	"flag"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/omega-sheaf/omega"
)

const maxBenchRuns = 100

type benchOpts struct {
	events  int
	workers int
	runs    int
}

func (o *benchOpts) declare(fs *flag.FlagSet) {
	fs.IntVar(&o.events, "events", 100_000, "the batch size, 1.."+strconv.Itoa(omega.MaxBatchContents))
	fs.IntVar(&o.workers, "workers", 0, "the checker's goroutines; 0 means GOMAXPROCS (the output shows the number used)")
	fs.IntVar(&o.runs, "runs", 3, "the timed runs, after one warm-up run, 1.."+strconv.Itoa(maxBenchRuns))
}

func benchFlags(fs *flag.FlagSet) { new(benchOpts).declare(fs) }

type benchOutput struct {
	Status         string  `json:"status"`
	Command        string  `json:"command"`
	Events         int     `json:"events"`
	Runs           int     `json:"runs"`
	Workers        int     `json:"workers"`
	EventsPerSec   float64 `json:"events_per_sec"`
	NsPerEvent     float64 `json:"ns_per_event"`
	BestNsPerEvent float64 `json:"best_ns_per_event"`
	AllocsPerEvent float64 `json:"allocs_per_event"`
	BytesPerEvent  float64 `json:"bytes_per_event"`
	Kind           string  `json:"kind"`
}

func runBench(args []string) ([]byte, error) {
	var o benchOpts
	fs := newFlagSet("bench")
	o.declare(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case o.events < 1 || o.events > omega.MaxBatchContents:
		return nil, usageErrorf("bench: --events %d out of range 1..%d", o.events, omega.MaxBatchContents)
	case o.workers < 0 || o.workers > omega.MaxWorkers:
		return nil, usageErrorf("bench: --workers %d out of range 0..%d", o.workers, omega.MaxWorkers)
	case o.runs < 1 || o.runs > maxBenchRuns:
		return nil, usageErrorf("bench: --runs %d out of range 1..%d", o.runs, maxBenchRuns)
	}
	checker, err := omega.NewChecker(&omega.CheckerOptions{Workers: o.workers})
	if err != nil {
		return nil, err
	}
	events := benchEvents(o.events)

	reconcile := func() error {
		out, err := checker.Reconcile(nil, events)
		if err != nil {
			return err
		}
		if out.Result.Kind != omega.KindMerge || len(out.Result.Members) != len(events) {
			return fmt.Errorf("bench: the workload gave a %s of %d contents, want a merge of %d", out.Result.Kind, len(out.Result.Members), len(events))
		}
		return nil
	}
	if err := reconcile(); err != nil { // warm-up: the checker's scratch memory
		return nil, err
	}
	var (
		times               []time.Duration
		mallocs, allocBytes uint64
		before, after       runtime.MemStats
	)
	for range o.runs {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		err := reconcile()
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		if err != nil {
			return nil, err
		}
		times = append(times, elapsed)
		mallocs += after.Mallocs - before.Mallocs
		allocBytes += after.TotalAlloc - before.TotalAlloc
	}
	slices.Sort(times)
	median := times[len(times)/2]
	workers := o.workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := float64(o.events)
	perRun := n * float64(o.runs)
	return marshal(benchOutput{
		Status:         "ok",
		Command:        "bench",
		Events:         o.events,
		Runs:           o.runs,
		Workers:        workers,
		EventsPerSec:   math.Round(n / median.Seconds()),
		NsPerEvent:     sig4(float64(median.Nanoseconds()) / n),
		BestNsPerEvent: sig4(float64(times[0].Nanoseconds()) / n),
		AllocsPerEvent: sig4(float64(mallocs) / perRun),
		BytesPerEvent:  sig4(float64(allocBytes) / perRun),
		Kind:           "merge",
	}), nil
}

// benchEvents returns the bench workload: event i has payload "event-i",
// event_id i+1, node i%32, stream i%8, lamport i/8+1, no dependencies and a
// correct payload hash. It merges from genesis.
func benchEvents(n int) []omega.Event {
	events := make([]omega.Event, n)
	for i := range events {
		p := strconv.AppendInt([]byte("event-"), int64(i), 10)
		events[i] = omega.Event{
			ID:          omega.ID64(uint64(i) + 1),
			NodeID:      uint32(i % 32),
			StreamID:    uint16(i % 8),
			Lamport:     uint64(i/8 + 1),
			PayloadHash: omega.PayloadHash(p),
			Deps:        []omega.EventID{},
			Payload:     p,
		}
	}
	return events
}

// sig4 rounds x to four significant digits.
func sig4(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	return v
}
