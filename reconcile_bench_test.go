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

func shuffled(events []Event) []Event {
	s := slices.Clone(events)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// BenchmarkReconcile reconciles the bench workload from genesis, in
// generated order and shuffled. Compare with BenchmarkReconcileFloor.
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
// (payload hash, event digest, one Merkle node) spread over both cores, plus
// sorting the ordering keys: the floor Reconcile is measured against.
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
							buf := make([]byte, 0, 128)
							var sink Hash
							for i := lo; i < hi; i++ {
								e := &in[i]
								ok := digest.Plain(e.Payload) == e.PayloadHash
								digests[i] = eventDigest(hs[w].ev, e, buf)
								var pair [64]byte
								copy(pair[:32], digests[i][:])
								copy(pair[32:], sink[:])
								sink = hs[w].node.Sum1(pair[:])
								if !ok {
									sink[0]++
								}
								keys[i] = sortKey{lamport: e.Lamport, nodeStrm: uint64(e.NodeID)<<16 | uint64(e.StreamID), hi: e.ID.Hi, lo: e.ID.Lo, idx: uint32(i)}
							}
						})
					}
					wg.Wait()
					sortKeys(&scratch{keys: keys, digests: digests})
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
