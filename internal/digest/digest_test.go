package digest

import (
	"fmt"
	"testing"

	"github.com/zeebo/blake3"
)

func input(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + n)
	}
	return p
}

// The one-chunk fast path must give BLAKE3's bytes at every length, across
// the block and chunk boundaries and past them.
func TestFastPathMatchesBLAKE3(t *testing.T) {
	h := New(TraceNode)
	ref := blake3.NewDeriveKey(Context(TraceNode))
	for n := 0; n <= 2*chunkLen+1; n++ {
		p := input(n)
		if got, want := Plain(p), blake3.Sum256(p); got != want {
			t.Fatalf("Plain(%d bytes) = %x, want %x", n, got, want)
		}
		ref.Reset()
		ref.Write(p)
		var want [Size]byte
		ref.Sum(want[:0])
		if got := h.Sum1(p); got != want {
			t.Fatalf("Sum1(%d bytes) = %x, want %x", n, got, want)
		}
		k := n / 3
		if got := Of(TraceNode, p[:k], p[k:]); got != want {
			t.Fatalf("Of(%d+%d bytes) = %x, want %x", k, n-k, got, want)
		}
		if got := h.Sum2(p[:k], p[k:]); got != want {
			t.Fatalf("Sum2(%d+%d bytes) = %x, want %x", k, n-k, got, want)
		}
		if n == 2*Size {
			if got := h.SumPair((*[Size]byte)(p[:Size]), (*[Size]byte)(p[Size:])); got != want {
				t.Fatalf("SumPair = %x, want %x", got, want)
			}
		}
		h.Reset()
		h.Write(p[:k])
		h.Write(p[k:])
		if got := h.Sum(); got != want {
			t.Fatalf("Write+Sum(%d bytes) = %x, want %x", n, got, want)
		}
	}
}

func BenchmarkSum1(b *testing.B) {
	for _, n := range []int{8, 64, 96, 1024} {
		p := input(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := New(Event)
			b.SetBytes(int64(n))
			for b.Loop() {
				h.Sum1(p)
			}
		})
		b.Run(fmt.Sprint("zeebo/", n), func(b *testing.B) {
			h := blake3.NewDeriveKey(Context(Event))
			var out [Size]byte
			b.SetBytes(int64(n))
			for b.Loop() {
				h.Reset()
				h.Write(p)
				h.Sum(out[:0])
			}
		})
	}
}
