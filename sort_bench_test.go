package omega

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkSortKeys(b *testing.B) {
	const n = 1_000_000
	base := make([]sortKey, n)
	for i := range base {
		base[i] = sortKey{lamport: uint64(i/8 + 1), nodeStrm: uint64(i%32)<<16 | uint64(i%8), lo: uint64(i + 1), idx: uint32(i)}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { base[i], base[j] = base[j], base[i] })
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			sc := &scratch{keys: make([]sortKey, n), digests: make([]Hash, n)}
			b.ReportAllocs()
			for b.Loop() {
				copy(sc.keys, base)
				sortKeys(sc, workers)
			}
		})
	}
}
