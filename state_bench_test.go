package omega

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkBatches reconciles the bench workload of n events in batches of
// 32, carrying the State from batch to batch, as the runtime does.
func BenchmarkBatches(b *testing.B) {
	const k = 32
	for _, n := range []int{100_000, 1_000_000} {
		events := benchEvents(n)
		c, err := NewChecker(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var s *State
				for i := 0; i < n; i += k {
					out, err := c.Reconcile(s, events[i:min(n, i+k)])
					if err != nil || out.Result.Kind != KindMerge {
						b.Fatal(err, out.Result.Kind)
					}
					s = out.Result.Merge.Next
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkStateMemory reports the heap a State keeps per known id after n
// events merged in batches of 32 (bytes/id), with nothing else live.
func BenchmarkStateMemory(b *testing.B) {
	const k = 32
	for _, n := range []int{1 << 20, 2 << 20, 4 << 20} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c, err := NewChecker(nil)
			if err != nil {
				b.Fatal(err)
			}
			var perID float64
			for b.Loop() {
				events := benchEvents(k)
				heap := func() uint64 {
					runtime.GC()
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					return ms.HeapAlloc
				}
				before := heap()
				var s *State
				for i := 0; i < n; i += k {
					// The same 32 events, renumbered: only the State grows.
					for j := range events {
						events[j].ID = ID64(uint64(i+j) + 1)
						events[j].Lamport = uint64((i+j)/8 + 1)
					}
					out, err := c.Reconcile(s, events)
					if err != nil || out.Result.Kind != KindMerge {
						b.Fatal(err, out.Result.Kind)
					}
					s = out.Result.Merge.Next
				}
				c.ReleaseScratch()
				perID = float64(heap()-before) / float64(n)
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perID, "bytes/id")
		})
	}
}
