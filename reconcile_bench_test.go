package omega

import (
	"fmt"
	"math/rand/v2"
	"runtime/metrics"
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

// warmUp runs f, untimed, until the garbage collector has completed four
// cycles (at most 60 times): by then the heap has all but reached the size
// that running f keeps it at, and what f allocates mostly reuses freed
// memory instead of taking fresh pages from the kernel, as it does in a
// service that has run a while. At a million events that takes more than
// a dozen runs, whose timing would measure the heap's growth.
func warmUp(b *testing.B, f func()) {
	b.Helper()
	cycles := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	for start, i := cycles(), 0; cycles() < start+4 && i < 60; i++ {
		f()
	}
}

func shuffled(events []Event) []Event {
	return shuffle(slices.Clone(events))
}

// shuffle puts events in a fixed pseudo-random order and returns them.
func shuffle(events []Event) []Event {
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	return events
}

var benchOrders = []string{"ordered", "shuffled"}

// benchInput returns the bench workload of n events in order, generated
// or shuffled. Each benchmark makes its own, so that only one input is
// live while it runs, as in a service.
func benchInput(n int, order string) []Event {
	if order == "shuffled" {
		return shuffle(benchEvents(n))
	}
	return benchEvents(n)
}

// BenchmarkReconcile reconciles the bench workload from genesis, in
// generated order and shuffled. Compare with BenchmarkReconcileFloor.
//
// Each input is reconciled until the heap has reached its working size
// (warmUp) before timing starts, so that what is measured is a service
// reconciling batch after batch.
func BenchmarkReconcile(b *testing.B) {
	c, err := NewChecker(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes {
		for _, order := range benchOrders {
			b.Run(fmt.Sprintf("%s/%d", order, n), func(b *testing.B) {
				in := benchInput(n, order)
				warmUp(b, func() {
					if _, err := c.Reconcile(nil, in); err != nil {
						b.Fatal(err)
					}
				})
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
		for _, order := range benchOrders {
			b.Run(fmt.Sprintf("%s/%d", order, n), func(b *testing.B) {
				in := benchInput(n, order)
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
