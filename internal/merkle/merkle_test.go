package merkle

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/omega-sheaf/omega/internal/digest"
)

type Hash [digest.Size]byte

func leaf(i int) Hash {
	var h Hash
	for j := range h {
		h[j] = byte(i)
	}
	return h
}

func leaves(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = leaf(i + 1)
	}
	return out
}

// refRoot is the RFC 6962 definition, recursively.
func refRoot(l []Hash) Hash {
	switch len(l) {
	case 0:
		return Hash{}
	case 1:
		return l[0]
	}
	k := split(len(l))
	a, b := refRoot(l[:k]), refRoot(l[k:])
	return digest.Of(digest.TraceNode, a[:], b[:])
}

// The trace_root vectors of vectors.json (SPEC 4): leaf i is 32 bytes of i.
func TestRootVectors(t *testing.T) {
	for n, want := range map[int]string{
		0: "0000000000000000000000000000000000000000000000000000000000000000",
		1: "0101010101010101010101010101010101010101010101010101010101010101",
		2: "72385bd94227d2c146532eaba2f2f3af197098ff3d0c853c9e26fbcacec92c5e",
		3: "60b02fd64f7d3a5ab6cb4c4c6afb9e6b97b704af1277c24ab6ddf9d7d4875b7c",
		5: "ce5a9fee8de64879dc3331f20daac72ffd24b26f5428f5683ff24c5d8d76ba44",
	} {
		got := Root(NewHasher(), leaves(n), nil)
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("Root(%d leaves) = %x, want %s", n, got, want)
		}
	}
}

func TestRootMatchesDefinition(t *testing.T) {
	h := NewHasher()
	hs := []*digest.Hasher{NewHasher(), NewHasher()}
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 100, 4095, 4096, 4097, 10000} {
		l := leaves(n)
		want := refRoot(l)
		if got := Root(h, l, nil); got != want {
			t.Errorf("Root(%d) = %x, want %x", n, got, want)
		}
		if got := RootParallel(hs, l, nil); got != want {
			t.Errorf("RootParallel(%d) = %x, want %x", n, got, want)
		}
	}
}

func TestProveCheck(t *testing.T) {
	h := NewHasher()
	for n := 1; n <= 40; n++ {
		l := leaves(n)
		root := Root(h, l, nil)
		for i := range n {
			path := Prove(h, l, i)
			if !Check(h, l[i], uint64(i), uint64(n), path, root) {
				t.Fatalf("Check(leaf %d of %d) = false, want true", i, n)
			}
			if n > 1 && Check(h, l[i], uint64((i+1)%n), uint64(n), path, root) {
				t.Fatalf("Check(leaf %d of %d at index %d) = true, want false", i, n, (i+1)%n)
			}
			if Check(h, l[i], uint64(n), uint64(n), path, root) {
				t.Fatalf("Check(leaf %d of %d at index %d) = true, want false", i, n, n)
			}
			for j := range path {
				bad := append([]Hash(nil), path...)
				bad[j][0] ^= 1
				if Check(h, l[i], uint64(i), uint64(n), bad, root) {
					t.Fatalf("Check with path[%d] flipped (leaf %d of %d) = true", j, i, n)
				}
			}
			if len(path) > 0 && Check(h, l[i], uint64(i), uint64(n), path[:len(path)-1], root) {
				t.Fatalf("Check with a short path (leaf %d of %d) = true", i, n)
			}
		}
	}
}

func BenchmarkRoot(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		l := leaves(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := NewHasher()
			scratch := make([]Hash, n/2+1)
			for b.Loop() {
				Root(h, l, scratch)
			}
		})
	}
}
