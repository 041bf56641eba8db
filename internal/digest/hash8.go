package digest

import (
	"github.com/zeebo/blake3"
)

// Eight-lane hashing. The checker hashes many short, independent inputs
// (payload hashes, event digests, Merkle nodes); on amd64 with AVX2 one
// compression works on eight of them at once, each lane its own message,
// for a fraction of eight scalar compressions; elsewhere the same functions
// hash one input at a time. They take their lanes in fixed-size arrays,
// with n (0 to 8; more panics) saying how many are in use, so callers keep
// them on the stack; none allocates. Lanes i >= n of out are left as they
// were.

// The AVX2 compression is generated, unrolled, in hash8_amd64.s.
//go:generate go run gen_hash8.go

// SumMany sets out[i] = D(purpose, msgs[i]), as [Hasher.Sum1] does, for
// i < n. Inputs over one chunk (1024 bytes) take the streaming path, lane
// by lane. out must not overlap the inputs. It leaves h reset.
func (h *Hasher) SumMany(msgs *[8][]byte, n int, out *[8][Size]byte) {
	h.Reset()
	short, long := splitLong(msgs, n)
	hashChunks8(&h.key, flagDeriveKeyMaterial, &short, n, out)
	for i := range n {
		if long&(1<<i) != 0 {
			out[i] = h.Sum1(msgs[i])
		}
	}
}

// PlainMany sets out[i] to the unkeyed BLAKE3-256 of msgs[i], as [Plain]
// does, for i < n. out must not overlap the inputs.
func PlainMany(msgs *[8][]byte, n int, out *[8][Size]byte) {
	short, long := splitLong(msgs, n)
	hashChunks8(&iv, 0, &short, n, out)
	for i := range n {
		if long&(1<<i) != 0 {
			out[i] = blake3.Sum256(msgs[i])
		}
	}
}

// SumPairs sets out[i] = D(purpose, *l[i] || *r[i]), as [Hasher.SumPair]
// does, for i < n: up to eight Merkle nodes at once. out may overlap the
// values l and r point to, as when a tree level is hashed in place: every
// input is read before any output is written.
func (h *Hasher) SumPairs(l, r *[8]*[Size]byte, n int, out *[8][Size]byte) {
	hashPairs8(&h.key, flagDeriveKeyMaterial, l, r, n, out)
}

// splitLong returns msgs[:n] with every input over one chunk replaced by
// nil, and a bit set for each lane replaced.
func splitLong(msgs *[8][]byte, n int) (short [8][]byte, long uint8) {
	for i := range n {
		if len(msgs[i]) > chunkLen {
			long |= 1 << i
			continue
		}
		short[i] = msgs[i]
	}
	return short, long
}

const errChunks8 = "omega: digest: hashChunks8 input over one chunk"

// checkChunks8 panics if msgs[:n] holds an input over one chunk.
func checkChunks8(msgs *[8][]byte, n int) {
	for i := range n {
		if len(msgs[i]) > chunkLen {
			panic(errChunks8)
		}
	}
}

// hashChunks8Generic is hashChunks8 one lane at a time, trusting that no
// input is over one chunk.
func hashChunks8Generic(key *[8]uint32, base uint32, msgs *[8][]byte, n int, out *[8][Size]byte) {
	for i := range n {
		out[i] = hashChunk(key, base, msgs[i])
	}
}

// hashPairs8Generic is hashPairs8 one lane at a time. It reads every input
// before it writes an output, which lets out alias the inputs.
func hashPairs8Generic(key *[8]uint32, base uint32, l, r *[8]*[Size]byte, n int, out *[8][Size]byte) {
	var res [8][Size]byte
	for i := range n {
		res[i] = hashPair(key, base, l[i], r[i])
	}
	copy(out[:n], res[:n])
}
