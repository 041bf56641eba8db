package omega

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
)

// benchHistory journals the bench workload of n events in batches of k and
// returns the log and its final merged state hash.
func benchHistory(b *testing.B, n, k int) ([]byte, Hash) {
	b.Helper()
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), &framelog.WriterOptions{Sync: framelog.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewChecker(nil)
	if err != nil {
		b.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	events := benchEvents(n)
	for i := 0; i < n; i += k {
		batch := events[i:min(n, i+k)]
		if _, err := j.LogEvents(batch); err != nil {
			b.Fatal(err)
		}
		out, err := j.Decide(batch, BatchMeta{BatchID: uint64(i/k + 1), ReplaySeed: 1})
		if err != nil || out.Result.Kind != KindMerge {
			b.Fatal(err, out.Result.Kind)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), j.State().MergedStateHash()
}

// BenchmarkReplay replays a log of the bench workload in batches of 32, and
// beside it reconciles the same batches in sequence from genesis: the work
// replay repeats, without reading the log.
func BenchmarkReplay(b *testing.B) {
	const k = 32
	for _, n := range []int{100_000, 1_000_000} {
		log, final := benchHistory(b, n, k)
		c, err := NewChecker(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("replay/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(log)))
			for b.Loop() {
				r, err := Replay(nil, log, final, 1, c, nil)
				if err != nil || r.Outcome != Deterministic {
					b.Fatal(err, r.Outcome)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		events := benchEvents(n)
		b.Run(fmt.Sprintf("reconcile/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s := mergeInBatches(b, c, events, k, false); s.MergedStateHash() != final {
					b.Fatal("reconcile reached another state than the log's")
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
