package omega

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/omega-sheaf/omega/internal/digest"
)

// benchEvents is the bench workload of the example command: payload
// "event-{i}", event_id i+1, node i%32, stream i%8, lamport i/8+1, no deps.
func benchEvents(n int) []Event {
	events := make([]Event, n)
	for i := range events {
		p := strconv.AppendInt([]byte("event-"), int64(i), 10)
		events[i] = Event{
			ID:          ID64(uint64(i) + 1),
			NodeID:      uint32(i % 32),
			StreamID:    uint16(i % 8),
			Lamport:     uint64(i/8 + 1),
			PayloadHash: digest.Plain(p),
			Deps:        []EventID{},
			Payload:     p,
		}
	}
	return events
}

var benchSizes = []int{10_000, 100_000, 1_000_000}

// warmUps is how many times a benchmark that allocates its results runs
// before it is timed.
const warmUps = 5

func shuffled(events []Event) []Event {
	s := slices.Clone(events)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// BenchmarkReconcile reconciles the bench workload from genesis, in
// generated order and shuffled. Compare with BenchmarkReconcileFloor.
//
// Each size is reconciled a few times before timing starts, so that what is
// measured is a service reconciling batch after batch: the checker's
// scratch is sized, and the heap has grown to hold a batch's results
// instead of taking fresh pages from the kernel for them.
func BenchmarkReconcile(b *testing.B) {
	c, err := NewChecker(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes {
		events := benchEvents(n)
		for _, order := range []string{"ordered", "shuffled"} {
			in := events
			if order == "shuffled" {
				in = shuffled(events)
			}
			b.Run(fmt.Sprintf("%s/%d", order, n), func(b *testing.B) {
				for range warmUps {
					if _, err := c.Reconcile(nil, in); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					out, err := c.Reconcile(nil, in)
					if err != nil || out.Result.Kind != KindMerge {
						b.Fatal(err, out.Result.Kind)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkReconcileFloor does only the hashing SPEC requires per event
// (payload hash, event digest, one Merkle node), eight events at a time
// with the 8-lane hashing Reconcile uses and its early payload reads,
// spread over both cores, plus sorting the ordering keys: the floor
// Reconcile is measured against.
func BenchmarkReconcileFloor(b *testing.B) {
	const workers = 2
	for _, n := range benchSizes {
		events := benchEvents(n)
		for _, order := range []string{"ordered", "shuffled"} {
			in := events
			if order == "shuffled" {
				in = shuffled(events)
			}
			b.Run(fmt.Sprintf("%s/%d", order, n), func(b *testing.B) {
				digests := make([]Hash, n)
				keys := make([]sortKey, n)
				var hs [workers]struct{ ev, node *digest.Hasher }
				for w := range hs {
					hs[w].ev, hs[w].node = digest.New(digest.Event), digest.New(digest.TraceNode)
				}
				b.ReportAllocs()
				for b.Loop() {
					var wg sync.WaitGroup
					for w := range workers {
						lo, hi := w*n/workers, (w+1)*n/workers
						wg.Go(func() {
							var bufs [8][128]byte
							var sink [digest.Size]byte
							for g := lo; g < hi; g += 8 {
								m := min(8, hi-g)
								sink[1] ^= touchPayloads(in[min(g+8, hi):min(g+16, hi)]) // as hashAll
								var encs, payloads [8][]byte
								var eds, phs, nodes [8][digest.Size]byte
								var l, r [8]*[digest.Size]byte
								for j := range m {
									e := &in[g+j]
									payloads[j] = e.Payload
									enc := e.appendHeader(bufs[j][:0])
									encs[j] = append(enc, e.Payload...)
								}
								digest.PlainMany(&payloads, m, &phs)
								hs[w].ev.SumMany(&encs, m, &eds)
								for j := range m {
									l[j], r[j] = &eds[j], &sink
								}
								hs[w].node.SumPairs(&l, &r, m, &nodes)
								sink = nodes[0]
								for j := range m {
									i := g + j
									e := &in[i]
									digests[i] = eds[j]
									if phs[j] != e.PayloadHash {
										sink[0]++
									}
									keys[i] = sortKey{lamport: e.Lamport, nodeStrm: uint64(e.NodeID)<<16 | uint64(e.StreamID), hi: e.ID.Hi, lo: e.ID.Lo, idx: uint32(i)}
								}
							}
						})
					}
					wg.Wait()
					sortKeys(&scratch{keys: keys, digests: digests}, workers)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
