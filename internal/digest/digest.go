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
type Hasher struct {
	ctx string
	key [8]uint32      // the derived context key, for the one-chunk fast path
	h   *blake3.Hasher // for streaming; made on first use
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

func (h *Hasher) stream() *blake3.Hasher {
	if h.h == nil {
		h.h = blake3.NewDeriveKey(h.ctx)
	}
	return h.h
}

// Reset discards everything written, keeping the derived context key.
func (h *Hasher) Reset() { h.stream().Reset() }

// Write adds p to the key material. It never fails.
func (h *Hasher) Write(p []byte) { h.stream().Write(p) }

// Sum returns the digest of everything written since the last Reset.
func (h *Hasher) Sum() (out [Size]byte) {
	h.stream().Sum(out[:0])
	return out
}

// Sum1 resets h, writes p and returns the digest: D(purpose, p).
func (h *Hasher) Sum1(p []byte) [Size]byte {
	if len(p) <= chunkLen {
		return hashChunk(&h.key, flagDeriveKeyMaterial, p)
	}
	s := h.stream()
	s.Reset()
	s.Write(p)
	return h.Sum()
}

// SumPair returns D(purpose, l || r) for two 32-byte values, such as the
// children of a Merkle node.
func (h *Hasher) SumPair(l, r *[Size]byte) [Size]byte {
	return hashPair(&h.key, flagDeriveKeyMaterial, l, r)
}

// Sum2 returns D(purpose, a || b).
func (h *Hasher) Sum2(a, b []byte) [Size]byte {
	if len(a)+len(b) <= chunkLen {
		var buf [chunkLen]byte
		n := copy(buf[:], a)
		n += copy(buf[n:], b)
		return hashChunk(&h.key, flagDeriveKeyMaterial, buf[:n])
	}
	s := h.stream()
	s.Reset()
	s.Write(a)
	s.Write(b)
	return h.Sum()
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
