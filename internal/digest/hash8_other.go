//go:build !amd64 || purego

package digest

// hashChunks8 sets out[i] to hashChunk(key, base, msgs[i]) for i < n,
// leaving the rest of out alone. n must be in 0..8, and every msgs[i] at
// most one chunk (1024 bytes): it panics otherwise, a caller's error.
func hashChunks8(key *[8]uint32, base uint32, msgs *[8][]byte, n int, out *[8][Size]byte) {
	checkChunks8(msgs, n)
	hashChunks8Generic(key, base, msgs, n, out)
}

// hashPairs8 sets out[i] to hashPair(key, base, l[i], r[i]) for i < n
// (n in 0..8), reading every input before it writes an output.
func hashPairs8(key *[8]uint32, base uint32, l, r *[8]*[Size]byte, n int, out *[8][Size]byte) {
	hashPairs8Generic(key, base, l, r, n, out)
}
