// Package merkle computes omega's trace root (SPEC 4): a Merkle tree of RFC
// 6962 shape over 32-byte leaves used as given, with interior nodes
// D("trace node", left || right), and its inclusion proofs (RFC 6962
// section 2.1.1).
package merkle

import (
	"math/bits"
	"sync"

	"github.com/omega-sheaf/omega/internal/digest"
)

// Node is a 32-byte node or leaf. Functions take any type with that
// underlying array, so callers keep their own named hash type.
type Node interface{ ~[digest.Size]byte }

// NewHasher returns a node hasher. Hashers are not safe for concurrent use.
func NewHasher() *digest.Hasher { return digest.New(digest.TraceNode) }

func node[H Node](h *digest.Hasher, l, r *H) H {
	a, b := [digest.Size]byte(*l), [digest.Size]byte(*r)
	return H(h.SumPair(&a, &b))
}

// split returns the largest power of two smaller than n (n >= 2).
func split(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// Root returns the tree's root over leaves: 32 zero bytes for none, the leaf
// itself for one. scratch, if it has room for len(leaves)/2+1 hashes, is used
// instead of allocating.
func Root[H Node](h *digest.Hasher, leaves []H, scratch []H) H {
	switch len(leaves) {
	case 0:
		return H{}
	case 1:
		return leaves[0]
	}
	// Bottom-up pairing that carries an odd last node up unchanged builds
	// exactly the RFC 6962 shape (split at the largest power of two).
	need := (len(leaves) + 1) / 2
	if cap(scratch) < need {
		scratch = make([]H, need)
	}
	level := scratch[:need]
	pairLevel(h, level, leaves)
	for n := need; n > 1; {
		m := (n + 1) / 2
		pairLevel(h, level[:m], level[:n])
		n = m
	}
	return level[0]
}

// pairLevel sets dst[i] to the node over src[2i] and src[2i+1], carrying
// an odd last node up unchanged; len(dst) == (len(src)+1)/2. dst may be
// src's own first half (a level hashed in place): each group of eight
// nodes reads its children before it writes, and writes only over entries
// already read.
func pairLevel[H Node](h *digest.Hasher, dst, src []H) {
	pairs := len(src) / 2
	for g := 0; g < pairs; g += 8 {
		n := min(8, pairs-g)
		var (
			lv, rv [8][digest.Size]byte
			l, r   [8]*[digest.Size]byte
		)
		for j := range n {
			lv[j], rv[j] = [digest.Size]byte(src[2*(g+j)]), [digest.Size]byte(src[2*(g+j)+1])
			l[j], r[j] = &lv[j], &rv[j]
		}
		var out [8][digest.Size]byte
		h.SumPairs(&l, &r, n, &out)
		for j := range n {
			dst[g+j] = H(out[j])
		}
	}
	if len(src)%2 == 1 {
		dst[pairs] = src[len(src)-1]
	}
}

// RootParallel is Root computed on up to `workers` goroutines (hashers[i]
// belongs to worker i, and len(hashers) >= workers). It gives the same root
// as Root. It splits the tree at its top levels, where RFC 6962's shape puts
// a perfect left subtree beside the rest.
func RootParallel[H Node](hashers []*digest.Hasher, leaves []H, scratch []H) H {
	workers := len(hashers)
	if workers < 2 || len(leaves) < 4096 {
		return Root(hashers[0], leaves, scratch)
	}
	if cap(scratch) < len(leaves)/2+2 {
		scratch = make([]H, len(leaves)/2+2)
	}
	k := split(len(leaves))
	var left H
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		left = RootParallel(hashers[:workers/2], leaves[:k], scratch[:0:k/2+1])
	}()
	right := RootParallel(hashers[workers/2:], leaves[k:], scratch[k/2+1:k/2+1])
	wg.Wait()
	return node(hashers[0], &left, &right)
}

// Prove returns the inclusion proof of leaf index: the sibling hashes from
// the leaf up. It returns nil when index is out of range.
func Prove[H Node](h *digest.Hasher, leaves []H, index int) []H {
	if index < 0 || index >= len(leaves) {
		return nil
	}
	path := []H{}
	for len(leaves) > 1 {
		k := split(len(leaves))
		if index < k {
			path = append(path, Root(h, leaves[k:], nil))
			leaves = leaves[:k]
		} else {
			path = append(path, Root(h, leaves[:k], nil))
			leaves = leaves[k:]
			index -= k
		}
	}
	// Collected top-down; a proof lists siblings from the leaf up.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// Check reports whether path proves that leaf is leaf number index of a
// tree of size leaves whose root is root (RFC 6962 section 2.1.1).
func Check[H Node](h *digest.Hasher, leaf H, index, size uint64, path []H, root H) bool {
	if index >= size {
		return false
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = node(h, &p, &r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = node(h, &r, &p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && r == root
}
