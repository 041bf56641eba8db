//go:build amd64 && !purego

package digest

import (
	"encoding/binary"
	"sync"
)

// compress8 runs BLAKE3's compression function (counter 0) on eight lanes
// at once. Lane i's block is *lo[i] || *hi[i], its block length blen[i] and
// its flags flags[i]; its chaining value is *key if key is not nil, else
// cv[w][i] for w = 0..7. compress8 sets cv[w][i] to the lane's first eight
// output words. Every pointer in lo and hi must be valid, also in lanes
// whose output is not wanted.
//
//go:noescape
func compress8(cv *[8][8]uint32, key *[8]uint32, lo, hi *[8]*[32]byte, blen, flags *[8]uint32)

// cpuid returns CPUID leaf leaf, subleaf sub.
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 returns the low word of XCR0, the state components the operating
// system saves.
func xgetbv0() (eax uint32)

// hasAVX2 reports whether the CPU has AVX2 and the operating system saves
// the YMM registers, checked on first use.
var hasAVX2 = sync.OnceValue(func() bool {
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&(osxsave|avx) != osxsave|avx {
		return false
	}
	if xgetbv0()&6 != 6 { // XMM and YMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
})

// hashChunks8 sets out[i] to hashChunk(key, base, msgs[i]) for i < n,
// leaving the rest of out alone. n must be in 0..8, and every msgs[i] at
// most one chunk (1024 bytes): it panics otherwise, a caller's error.
func hashChunks8(key *[8]uint32, base uint32, msgs *[8][]byte, n int, out *[8][Size]byte) {
	if hasAVX2() {
		hashChunks8AVX2(key, base, msgs, n, out)
		return
	}
	checkChunks8(msgs, n)
	hashChunks8Generic(key, base, msgs, n, out)
}

// hashPairs8 sets out[i] to hashPair(key, base, l[i], r[i]) for i < n
// (n in 0..8), reading every input before it writes an output.
func hashPairs8(key *[8]uint32, base uint32, l, r *[8]*[Size]byte, n int, out *[8][Size]byte) {
	if hasAVX2() {
		hashPairs8AVX2(key, base, l, r, n, out)
		return
	}
	hashPairs8Generic(key, base, l, r, n, out)
}

// lanes8 is compress8's working set, with room to zero-pad each lane's
// last block.
type lanes8 struct {
	cv          [8][8]uint32
	lo, hi      [8]*[32]byte
	blen, flags [8]uint32
	pad         [8][blockLen]byte
}

// storeLane returns lane i's output.
func (s *lanes8) storeLane(i int) (out [Size]byte) {
	i &= 7
	for w := range s.cv {
		binary.LittleEndian.PutUint32(out[4*w:], s.cv[w][i])
	}
	return out
}

func hashChunks8AVX2(key *[8]uint32, base uint32, msgs *[8][]byte, n int, out *[8][Size]byte) {
	if n <= 0 {
		return
	}
	var s lanes8
	var last [8]int // index of each lane's last block
	blocks := 0
	for i := range n {
		l := len(msgs[i])
		if l > chunkLen {
			panic(errChunks8)
		}
		last[i] = max(l-1, 0) / blockLen
		blocks = max(blocks, last[i]+1)
	}
	// Lanes beyond n hash zeros, and lanes past their last block hash
	// that block again; their outputs are never read.
	for i := n; i < 8; i++ {
		s.lo[i], s.hi[i] = (*[32]byte)(s.pad[i][:32]), (*[32]byte)(s.pad[i][32:])
	}
	for b := range blocks {
		if b == 1 {
			key = nil // chain from here on
		}
		for i := range n {
			if b > last[i] {
				continue
			}
			p := msgs[i][b*blockLen:]
			flags := base
			if b == 0 {
				flags |= flagChunkStart
			}
			s.blen[i] = blockLen
			if b == last[i] {
				flags |= flagChunkEnd | flagRoot
				if len(p) < blockLen {
					copy(s.pad[i][:], p)
					s.blen[i] = uint32(len(p))
					p = s.pad[i][:]
				}
			}
			s.flags[i] = flags
			s.lo[i], s.hi[i] = (*[32]byte)(p[:32]), (*[32]byte)(p[32:64])
		}
		compress8(&s.cv, key, &s.lo, &s.hi, &s.blen, &s.flags)
		for i := range n {
			if b == last[i] {
				out[i] = s.storeLane(i)
			}
		}
	}
}

func hashPairs8AVX2(key *[8]uint32, base uint32, l, r *[8]*[Size]byte, n int, out *[8][Size]byte) {
	if n <= 0 {
		return
	}
	var s lanes8
	for i := range 8 {
		if i < n {
			s.lo[i], s.hi[i] = l[i], r[i]
		} else {
			s.lo[i], s.hi[i] = l[0], r[0]
		}
	}
	f := base | flagChunkStart | flagChunkEnd | flagRoot
	s.blen = [8]uint32{blockLen, blockLen, blockLen, blockLen, blockLen, blockLen, blockLen, blockLen}
	s.flags = [8]uint32{f, f, f, f, f, f, f, f}
	compress8(&s.cv, key, &s.lo, &s.hi, &s.blen, &s.flags)
	for i := range n {
		out[i] = s.storeLane(i)
	}
}
