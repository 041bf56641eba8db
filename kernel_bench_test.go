package omega

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/framelog"
)

// BenchmarkKernel measures events/s end to end: concurrent submitters,
// batches of 32, durable group commit (Submit returns after the fsync that
// covers it), certificates signed and synced. It reports fsyncs per event
// and the submit-to-certificate latency. Each submitter has one call in
// flight, so the submitters times the events per call are the events in
// flight: 64 x 32 gives the most events/s, 32 x 32 about a tenth fewer at
// half the latency. With deps, each event after a submitter's first call
// depends on a random one of the events that submitter had acknowledged.
func BenchmarkKernel(b *testing.B) {
	for _, bc := range []struct {
		submitters, perCall int
		sync                framelog.SyncPolicy
		deps                bool
	}{
		{8, 32, framelog.SyncBatch, false},
		{64, 32, framelog.SyncBatch, false},
		{32, 32, framelog.SyncBatch, false},
		{32, 8, framelog.SyncBatch, false},
		{64, 1, framelog.SyncBatch, false},
		{8, 32, framelog.SyncNever, false},
		{64, 32, framelog.SyncBatch, true},
	} {
		workload := ""
		if bc.deps {
			workload = "deps/" // before sync=, so that a pattern for the others does not match it
		}
		name := fmt.Sprintf("submitters=%d/per_call=%d/%ssync=%v", bc.submitters, bc.perCall, workload, map[framelog.SyncPolicy]string{framelog.SyncBatch: "group", framelog.SyncNever: "never"}[bc.sync])
		b.Run(name, func(b *testing.B) {
			k, err := OpenKernel(context.Background(), b.TempDir(), &KernelConfig{Signer: kernelKey, Sync: bc.sync, FlushInterval: 10 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Uint64
			perSubmitter := (b.N + bc.submitters*bc.perCall - 1) / (bc.submitters * bc.perCall)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			var wg sync.WaitGroup
			for s := range bc.submitters {
				wg.Go(func() {
					es := make([]Event, bc.perCall)
					var acked []EventID // with deps: this submitter's, acknowledged
					deps := make([]EventID, bc.perCall)
					r := rand.New(rand.NewPCG(uint64(s), 1))
					for range perSubmitter {
						for i := range es {
							id := next.Add(1)
							es[i] = Event{ID: ID64(id), NodeID: uint32(s + 1), Lamport: id, Payload: benchPayload, PayloadHash: benchPayloadHash, Deps: []EventID{}}
							if bc.deps && len(acked) > 0 {
								deps[i] = acked[r.IntN(len(acked))]
								es[i].Deps = deps[i : i+1 : i+1]
							}
						}
						if err := k.Submit(context.Background(), es...); err != nil {
							b.Error(err)
							return
						}
						if bc.deps {
							for i := range es {
								acked = append(acked, es[i].ID)
							}
						}
					}
				})
			}
			wg.Wait()
			if err := k.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed, cpu := time.Since(start), processCPU()-cpu0
			b.StopTimer()
			st := k.Stats()
			n := float64(st.Accepted)
			b.ReportMetric(n/elapsed.Seconds(), "events/s")
			if cpu > 0 {
				// CPU time per event, user and system, of the whole
				// process: steadier than the rate on a shared machine.
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu_ns/event")
			}
			b.ReportMetric(float64(st.LogFsyncs)/n, "fsyncs/event")
			b.ReportMetric(float64(st.SubmitToCertificate.P50.Microseconds()), "p50_cert_us")
			b.ReportMetric(float64(st.SubmitToCertificate.P99.Microseconds()), "p99_cert_us")
			b.ReportMetric(float64(st.SubmitToDurable.P99.Microseconds()), "p99_durable_us")
			b.ReportMetric(float64(st.SubmitToFsyncStart.Max.Microseconds()), "max_fsync_wait_us")
			b.ReportMetric(float64(st.SubmitToFsyncStart.P99.Microseconds()), "p99_fsync_wait_us")
			b.ReportMetric(float64(st.WriteToFsyncStart.Max.Microseconds()), "max_write_to_fsync_us")
			b.ReportMetric(float64(st.WriteToFsyncStart.P99.Microseconds()), "p99_write_to_fsync_us")
			b.ReportMetric(float64(st.LogFsync.Max.Microseconds()), "max_fsync_us")
			// The medians of an event's way to durable: from Submit to
			// the start of the fsync that covers it, from its frame's
			// write to that start, and the fsync itself.
			b.ReportMetric(float64(st.SubmitToDurable.P50.Microseconds()), "p50_durable_us")
			b.ReportMetric(float64(st.SubmitToFsyncStart.P50.Microseconds()), "p50_fsync_wait_us")
			b.ReportMetric(float64(st.WriteToFsyncStart.P50.Microseconds()), "p50_write_to_fsync_us")
			b.ReportMetric(float64(st.LogFsync.P50.Microseconds()), "p50_fsync_us")
			b.ReportMetric(n/float64(st.Batches), "events/batch")
			if st.LogFsyncs > 0 {
				b.ReportMetric(float64(st.LogFsyncTime.Microseconds())/float64(st.LogFsyncs), "us/log_fsync")
				b.ReportMetric(float64(st.LogFsyncTime)/float64(elapsed), "log_fsync_busy")
			}
			if st.CertFsyncs > 0 {
				b.ReportMetric(float64(st.CertFsyncTime.Microseconds())/float64(st.CertFsyncs), "us/cert_fsync")
			}
			if err := k.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

var benchPayload = []byte("a payload of a few dozen bytes, as events carry")
var benchPayloadHash = PayloadHash(benchPayload)

// submitIndependent submits n events (rounded up to 256) with no
// dependencies, ids 1 on, 256 a call.
func submitIndependent(b *testing.B, k *Kernel, n int) {
	es := make([]Event, 256)
	for i := 0; i < n; i += len(es) {
		for j := range es {
			id := uint64(i + j + 1)
			es[j] = Event{ID: ID64(id), NodeID: uint32(id % 64), Lamport: id, Payload: benchPayload, PayloadHash: benchPayloadHash, Deps: []EventID{}}
		}
		if err := k.Submit(context.Background(), es...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKernelMemory reports the heap a kernel holds after accepting
// b.N events (run it with -benchtime 10000000x for the figure at 10^7).
func BenchmarkKernelMemory(b *testing.B) {
	k, err := OpenKernel(context.Background(), b.TempDir(), &KernelConfig{Signer: kernelKey, Sync: framelog.SyncNever, SnapshotEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close(context.Background())
	submitIndependent(b, k, b.N)
	if err := k.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/float64(k.Stats().Accepted), "heap_bytes/event")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap_MiB")
}

// BenchmarkKernelOpen reports how long opening takes, and what it
// allocates, after a history of events (10^7 takes about a minute to set
// up): with the default snapshots, opening replays the segments after the
// newest one and checks the frames of the others.
func BenchmarkKernelOpen(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			cfg := &KernelConfig{Signer: kernelKey, Sync: framelog.SyncNever}
			k, err := OpenKernel(context.Background(), dir, cfg)
			if err != nil {
				b.Fatal(err)
			}
			submitIndependent(b, k, n)
			if err := k.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				k, err := OpenKernel(context.Background(), dir, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if st := k.Status(); st.SafeMode {
					b.Fatalf("safe mode: %+v", st)
				}
				b.StopTimer()
				if err := k.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
