package digest

import (
	"encoding/binary"
)

// A fast path for inputs of at most one BLAKE3 chunk (1024 bytes): most of
// omega's digests (payload hashes of small payloads, event digests, Merkle
// nodes) hash a few blocks, where a general streaming hasher's bookkeeping
// costs as much as the compression itself. The output is BLAKE3's, bit for
// bit; tests check it against github.com/zeebo/blake3 at every length.

const (
	chunkLen = 1024
	blockLen = 64

	flagChunkStart        = 1 << 0
	flagChunkEnd          = 1 << 1
	flagRoot              = 1 << 3
	flagDeriveKeyContext  = 1 << 5
	flagDeriveKeyMaterial = 1 << 6
)

var iv = [8]uint32{
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

// compress is generated, unrolled, in compress_gen.go.
//go:generate go run gen_compress.go

// hashChunk hashes p (len(p) <= chunkLen) as a single-chunk BLAKE3 input
// under key and base flags, returning the 32-byte root output.
func hashChunk(key *[8]uint32, base uint32, p []byte) [Size]byte {
	cv := *key
	flags := base | flagChunkStart
	var m [16]uint32
	for len(p) > blockLen {
		loadBlock(&m, (*[blockLen]byte)(p))
		cv = compress(&cv, &m, blockLen, flags)
		flags = base
		p = p[blockLen:]
	}
	if len(p) == blockLen {
		loadBlock(&m, (*[blockLen]byte)(p))
	} else {
		var last [blockLen]byte
		copy(last[:], p)
		loadBlock(&m, &last)
	}
	return storeCV(compress(&cv, &m, uint32(len(p)), flags|flagChunkEnd|flagRoot))
}

// hashPair hashes the 64-byte input l || r, one block, under key.
func hashPair(key *[8]uint32, base uint32, l, r *[Size]byte) [Size]byte {
	var m [16]uint32
	loadHalf((*[8]uint32)(m[:8]), l)
	loadHalf((*[8]uint32)(m[8:]), r)
	return storeCV(compress(key, &m, blockLen, base|flagChunkStart|flagChunkEnd|flagRoot))
}

func loadBlock(m *[16]uint32, b *[blockLen]byte) {
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
}

func loadHalf(m *[8]uint32, b *[Size]byte) {
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
}

func storeCV(cv [8]uint32) (out [Size]byte) {
	for i, w := range cv {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// contextKey derives BLAKE3's derive_key context key for a context of at
// most one chunk (every omega purpose is far shorter).
func contextKey(context string) (k [8]uint32) {
	out := hashChunk(&iv, flagDeriveKeyContext, []byte(context))
	for i := range k {
		k[i] = binary.LittleEndian.Uint32(out[4*i:])
	}
	return k
}
