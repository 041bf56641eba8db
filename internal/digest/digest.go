// Package digest holds omega's domain-separated BLAKE3 digests (SPEC 2).
//
// D(purpose, bytes) is BLAKE3-256 in derive_key mode with the context string
// "omega v1 " + purpose. A [Hasher] derives its context key once, when it is
// made, so each use afterwards costs what plain keyed hashing costs. Hashers
// are not safe for concurrent use: give each goroutine its own.
package digest

import "github.com/zeebo/blake3"

// Size is the length of every omega digest in bytes.
const Size = 32

// ChunkSize is the length of a BLAKE3 chunk. Input of at most ChunkSize
// bytes given in one call ([Hasher.Sum1], [Hasher.SumMany]) takes the
// one-chunk fast path.
const ChunkSize = chunkLen

// The purposes of SPEC 2. Each names one digest; the context string is
// "omega v1 " followed by the purpose.
const (
	Event              = "event"
	Schema             = "schema"
	Catalog            = "catalog"
	Binding            = "binding"
	Batch              = "batch"
	State              = "state"
	IDs                = "ids"
	Frontier           = "frontier"
	Heads              = "heads"
	TraceNode          = "trace node"
	MergeWitness       = "merge witness"
	ObstructionWitness = "obstruction witness"
	CertBody           = "cert body"
	CertID             = "cert id"
	KeyID              = "key id"
	Cert               = "cert"
	SnapshotState      = "snapshot state"
	IncidentMetadata   = "incident metadata"
	Incident           = "incident"
)

// Context returns the BLAKE3 derive_key context string for purpose.
func Context(purpose string) string { return "omega v1 " + purpose }

// Hasher computes D(purpose, ·) for one purpose. The zero value is not usable;
// call [New].
//
// Written input stays in the Hasher's own one-chunk buffer until it outgrows
// a BLAKE3 chunk (1024 bytes), and is then hashed with the fast path; only
// longer input makes, once, a streaming hasher, which Reset keeps for reuse.
type Hasher struct {
	ctx string
	key [8]uint32      // the derived context key, for the one-chunk fast path
	h   *blake3.Hasher // for input over one chunk; made on first use
	// streaming says that the input written since the last Reset went to
	// h; until then it is buf[:n].
	streaming bool
	n         int
	buf       [chunkLen]byte
}

// New returns a Hasher for purpose, ready to write.
func New(purpose string) *Hasher {
	return &Hasher{ctx: Context(purpose), key: keyOf(purpose)}
}

// keyOf returns the context key of purpose: from the table computed ahead
// of time for omega's purposes, else derived.
func keyOf(purpose string) [8]uint32 {
	if k, ok := purposeKey(purpose); ok {
		return k
	}
	return contextKey(Context(purpose))
}

// stream switches h to its streaming hasher, reset, and returns it.
func (h *Hasher) stream() *blake3.Hasher {
	if h.h == nil {
		h.h = blake3.NewDeriveKey(h.ctx)
	} else {
		h.h.Reset()
	}
	h.streaming, h.n = true, 0
	return h.h
}

// Reset discards everything written, keeping the derived context key.
func (h *Hasher) Reset() { h.streaming, h.n = false, 0 }

// Write adds p to the key material. It never fails.
func (h *Hasher) Write(p []byte) {
	if !h.streaming {
		if h.n+len(p) <= chunkLen {
			h.n += copy(h.buf[h.n:], p)
			return
		}
		n := h.n
		h.stream().Write(h.buf[:n])
	}
	h.h.Write(p)
}

// Sum returns the digest of everything written since the last Reset.
func (h *Hasher) Sum() (out [Size]byte) {
	if !h.streaming {
		return hashChunk(&h.key, flagDeriveKeyMaterial, h.buf[:h.n])
	}
	h.h.Sum(out[:0])
	return out
}

// Sum1 returns D(purpose, p). It leaves h reset.
func (h *Hasher) Sum1(p []byte) [Size]byte {
	h.Reset()
	if len(p) <= chunkLen {
		return hashChunk(&h.key, flagDeriveKeyMaterial, p)
	}
	h.stream().Write(p)
	out := h.Sum()
	h.Reset()
	return out
}

// SumPair returns D(purpose, l || r) for two 32-byte values, such as the
// children of a Merkle node.
func (h *Hasher) SumPair(l, r *[Size]byte) [Size]byte {
	return hashPair(&h.key, flagDeriveKeyMaterial, l, r)
}

// Sum2 returns D(purpose, a || b). It leaves h reset.
func (h *Hasher) Sum2(a, b []byte) [Size]byte {
	h.Reset()
	if len(a)+len(b) <= chunkLen {
		var buf [chunkLen]byte
		n := copy(buf[:], a)
		n += copy(buf[n:], b)
		return hashChunk(&h.key, flagDeriveKeyMaterial, buf[:n])
	}
	s := h.stream()
	s.Write(a)
	s.Write(b)
	out := h.Sum()
	h.Reset()
	return out
}

// Of returns D(purpose, the concatenation of parts). Short inputs cost one
// keyed hash; longer ones a streaming hasher.
func Of(purpose string, parts ...[]byte) [Size]byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n <= chunkLen {
		var buf [chunkLen]byte
		b := buf[:0]
		for _, p := range parts {
			b = append(b, p...)
		}
		k := keyOf(purpose)
		return hashChunk(&k, flagDeriveKeyMaterial, b)
	}
	h := New(purpose)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum()
}

// Plain returns the unkeyed BLAKE3-256 of p (SPEC 2's payload_hash).
func Plain(p []byte) [Size]byte {
	if len(p) <= chunkLen {
		return hashChunk(&iv, 0, p)
	}
	return blake3.Sum256(p)
}
