package omega

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/merkle"
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
				mergeInBatches(b, c, events, k, false)
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

// BenchmarkBatchesFloor does, for each batch of 32 of the bench workload,
// only the hashing SPEC 4 requires of a Merge: payload hashes and event
// digests (eight lanes at a time, as Reconcile hashes them), the trace
// root, and the batch, ids, heads, state, frontier and witness digests, on
// one goroutine, as a batch of 32 is decided. It is the floor
// BenchmarkBatches is measured against: no validation, sorting, id index or
// State.
func BenchmarkBatchesFloor(b *testing.B) {
	const k = 32
	n := 1_000_000
	events := benchEvents(n)
	ev, node := digest.New(digest.Event), digest.New(digest.TraceNode)
	batchH, idsH, headsH := digest.New(digest.Batch), digest.New(digest.IDs), digest.New(digest.Heads)
	stateH, frontierH, witnessH := digest.New(digest.State), digest.New(digest.Frontier), digest.New(digest.MergeWitness)
	var (
		bufs              [8][128]byte
		encs, payloads    [8][]byte
		eds, phs          [8][digest.Size]byte
		leaves, tree      []Hash
		records, ids, hds []byte
		state, frontier   Hash
	)
	leaves, tree = make([]Hash, k), make([]Hash, k)
	b.ReportAllocs()
	for b.Loop() {
		for lo := 0; lo < n; lo += k {
			batch := events[lo:min(n, lo+k)]
			for g := 0; g < len(batch); g += 8 {
				m := min(8, len(batch)-g)
				for j := range m {
					e := &batch[g+j]
					payloads[j] = e.Payload
					encs[j] = append(e.appendHeader(bufs[j][:0]), e.Payload...)
				}
				digest.PlainMany(&payloads, m, &phs)
				ev.SumMany(&encs, m, &eds)
				for j := range m {
					leaves[g+j] = eds[j]
				}
			}
			root := merkle.Root(node, leaves[:len(batch)], tree)
			records, ids, hds = records[:0], ids[:0], hds[:0]
			for i := range batch {
				e := &batch[i]
				records = appendID(append(records, e.PayloadHash[:]...), e.ID)
				ids = appendID(ids, e.ID)
				hds = binary.LittleEndian.AppendUint32(hds, e.NodeID)
				hds = binary.LittleEndian.AppendUint16(hds, e.StreamID)
				hds = binary.LittleEndian.AppendUint64(hds, e.Lamport)
				hds = appendID(hds, e.ID)
			}
			batchH.Reset()
			batchH.Write(records)
			batchDigest := Hash(batchH.Sum())
			idsH.Reset()
			idsH.Write(ids)
			idsDigest := Hash(idsH.Sum())
			headsH.Reset()
			headsH.Write(hds)
			_ = headsH.Sum()
			state = stateH.Sum2(state[:], batchDigest[:])
			frontier = frontierH.Sum2(frontier[:], idsDigest[:])
			var tail [2 * digest.Size]byte
			copy(tail[:], idsDigest[:])
			copy(tail[digest.Size:], root[:])
			w := witnessH.Sum2(state[:], tail[:])
			frontier[0] ^= w[0]
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBatchesDeps is BenchmarkBatches with 4M events, each but the
// first batches' depending on a random event of an earlier batch, and
// every State committed, as the runtime's are: the lookups of new ids and
// of dependencies in an index larger than the cache.
func BenchmarkBatchesDeps(b *testing.B) {
	const n, k = 4 << 20, 32
	events := benchEvents(n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 2 * k; i < n; i++ {
		events[i].Deps = []EventID{events[r.IntN(i/k*k-k)].ID}
	}
	c, err := NewChecker(nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		mergeInBatches(b, c, events, k, true)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// mergeInBatches reconciles events in batches of k, from no State, each on
// the State the one before merged to, committed first when commit is set,
// and returns the last. Every batch must merge.
func mergeInBatches(b *testing.B, c *Checker, events []Event, k int, commit bool) *State {
	var s *State
	for i := 0; i < len(events); i += k {
		out, err := c.Reconcile(s, events[i:min(len(events), i+k)])
		if err != nil || out.Result.Kind != KindMerge {
			b.Fatal(err, out.Result.Kind)
		}
		if s = out.Result.Merge.Next; commit {
			s = s.Commit()
		}
	}
	return s
}
