package engine

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkEngine prices the reconciler's deterministic core alone, one
// event an iteration: decoding the messages of 8 nodes (32 events each),
// the sequencer and the checker in batches of 32, without certifying. It
// reports the heap the engine keeps per accepted event (heap_B/event),
// which is what a reconciler's memory grows by with history.
//
//	go test -run '^$' -bench Engine -benchtime 1000000x -benchmem
func BenchmarkEngine(b *testing.B) {
	const nodes, perMsg = 8, 32
	msgs := make([]Message, 0, b.N/perMsg+1)
	for i := 0; i*perMsg < b.N; i++ {
		n := uint32(i%nodes + 1)
		var data []byte
		for k := range perMsg {
			e := ev(n, i/nodes*perMsg+k, fmt.Sprintf("payload %d", k))
			data, _ = e.AppendBinary(data)
		}
		msgs = append(msgs, Message{Seq: uint64(i + 1), TimeNs: int64(i), Data: data})
	}
	e := testEngine(b, 32, 1<<16, time.Hour)
	emit := func(Decision) error { return nil }
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for _, m := range msgs {
		if err := e.Apply(m, emit); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if e.stats.Merges == 0 || e.stats.Obstructions != 0 {
		b.Fatalf("stats %+v: want merges only", e.stats)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	runtime.KeepAlive(msgs)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(e.stats.Taken), "heap_B/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
