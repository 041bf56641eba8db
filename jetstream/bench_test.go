package jetstream_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/jetstream"
	"github.com/omega-sheaf/omega/jetstream/natstest"
)

// BenchmarkPipeline measures events per second end to end on one
// machine: publishers publish (each waiting for the server's
// acknowledgements of one call before the next), one reconciler decides
// and certifies, and publishes every certificate to OMEGA_CERTS. An
// iteration is one event; the clock stops when the last event's
// certificate is published. It reports the latency from the start of the
// Publish of an event to the publication of its certificate, p50 and p99.
// At rate=max the publishers go as fast as the server acknowledges, which
// is faster than one reconciler decides: the backlog, and the latency,
// grow with the run. At a fixed rate (events/s, all publishers together)
// below the pipeline's, the latency is that of a pipeline keeping up.
//
//	go test -run '^$' -bench Pipeline -benchtime 200000x -benchmem
func BenchmarkPipeline(b *testing.B) {
	for _, sync := range []string{"always", "lazily"} {
		for _, pubs := range []int{8, 64} {
			for _, per := range []int{32, 256} {
				for _, rate := range []int{0, 20000, 50000} {
					name := fmt.Sprintf("sync=%s/publishers=%d/per_call=%d/rate=%d", sync, pubs, per, rate)
					if rate == 0 {
						name = fmt.Sprintf("sync=%s/publishers=%d/per_call=%d/rate=max", sync, pubs, per)
					}
					b.Run(name, func(b *testing.B) {
						benchPipeline(b, pubs, per, rate, sync == "lazily")
					})
				}
			}
		}
	}
}

func benchPipeline(b *testing.B, pubs, perCall, rate int, lazily bool) {
	s := startServer(b, "", &natstest.Options{SyncLazily: lazily})
	j := connect(b, s)
	setup(b, j, nil)
	n := b.N
	// Every publisher's events, made before the clock starts.
	events := make([][]omega.Event, pubs)
	for p := range pubs {
		events[p] = nodeEvents(uint32(p+1), (n+pubs-1)/pubs)
	}
	start := make(map[omega.EventID][2]int, n) // the index in sent of each event
	for p := range events {
		for i, e := range events[p] {
			start[e.ID] = [2]int{p, i}
		}
	}
	sent := make([][]time.Time, pubs)
	for p := range sent {
		sent[p] = make([]time.Time, len(events[p]))
	}
	total := 0
	for p := range events {
		total += len(events[p])
	}
	var lat []time.Duration
	var mu sync.Mutex
	decided := 0
	done := make(chan struct{})
	a := startReconciler(b, j, b.TempDir(), &jetstream.Config{OnDecision: func(d omega.Decision) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range d.Output.Result.Members {
			k := start[m.ID]
			lat = append(lat, now.Sub(sent[k[0]][k[1]]))
		}
		if decided += len(d.Output.Result.Members); decided == total {
			close(done)
		}
	}})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	t0 := time.Now()
	for p := range pubs {
		wg.Go(func() {
			evs := events[p]
			for i := 0; i < len(evs); i += perCall {
				if rate > 0 {
					// The publishers take turns: together, rate events/s.
					at := t0.Add(time.Duration(float64(i*pubs+p*perCall) / float64(rate) * float64(time.Second)))
					time.Sleep(time.Until(at))
				}
				chunk := evs[i:min(i+perCall, len(evs))]
				now := time.Now()
				mu.Lock()
				for k := range chunk {
					sent[p][i+k] = now
				}
				mu.Unlock()
				if err := jetstream.Publish(ctx, j, omega.Limits{}, chunk...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := jetstream.PublishFlush(ctx, j); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d events certified in 10 minutes", decided, total)
	}
	b.StopTimer()
	if err := a.stop(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
