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

// Writes of any sizes, before and after the input outgrows the buffered
// chunk, and a Hasher reused after streaming, give BLAKE3's bytes.
func TestHasherWritePieces(t *testing.T) {
	h := New(IDs)
	ref := blake3.NewDeriveKey(Context(IDs))
	for _, n := range []int{0, 1, 16, 1023, 1024, 1025, 1536, 3000, 512, 2048, 7} {
		p := input(n)
		for _, piece := range []int{1, 16, 48, 500, 1024, 4096} {
			ref.Reset()
			ref.Write(p)
			var want [Size]byte
			ref.Sum(want[:0])
			h.Reset()
			for q := p; len(q) > 0; q = q[min(piece, len(q)):] {
				h.Write(q[:min(piece, len(q))])
			}
			if got := h.Sum(); got != want {
				t.Fatalf("%d bytes written %d at a time = %x, want %x", n, piece, got, want)
			}
			if got := h.Sum(); got != want {
				t.Fatalf("second Sum of %d bytes = %x, want %x", n, got, want)
			}
			if got := h.Sum1(p); got != want {
				t.Fatalf("Sum1 after Writes of %d bytes = %x, want %x", n, got, want)
			}
		}
	}
}

// A Hasher's Reset and Write cost no allocation once its streaming hasher
// exists, and none at all for input of one chunk.
func TestHasherAllocs(t *testing.T) {
	h := New(Batch)
	small, large := input(512), input(1536)
	if n := testing.AllocsPerRun(100, func() { h.Reset(); h.Write(small); h.Sum() }); n != 0 {
		t.Errorf("one-chunk Write+Sum: %v allocations, want 0", n)
	}
	h.Write(large)
	if n := testing.AllocsPerRun(100, func() { h.Reset(); h.Write(large); h.Sum() }); n != 0 {
		t.Errorf("reused streaming Write+Sum: %v allocations, want 0", n)
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
