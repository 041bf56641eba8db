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
	h   *blake3.Hasher
	key [8]uint32 // the derived context key, for the one-chunk fast path
}

// New returns a Hasher for purpose, ready to write.
func New(purpose string) *Hasher {
	ctx := Context(purpose)
	return &Hasher{h: blake3.NewDeriveKey(ctx), key: contextKey(ctx)}
}

// Reset discards everything written, keeping the derived context key.
func (h *Hasher) Reset() { h.h.Reset() }

// Write adds p to the key material. It never fails.
func (h *Hasher) Write(p []byte) { h.h.Write(p) }

// Sum returns the digest of everything written since the last Reset.
func (h *Hasher) Sum() (out [Size]byte) {
	h.h.Sum(out[:0])
	return out
}

// Sum1 resets h, writes p and returns the digest: D(purpose, p).
func (h *Hasher) Sum1(p []byte) [Size]byte {
	if len(p) <= chunkLen {
		return hashChunk(&h.key, flagDeriveKeyMaterial, p)
	}
	h.h.Reset()
	h.h.Write(p)
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
	h.h.Reset()
	h.h.Write(a)
	h.h.Write(b)
	return h.Sum()
}

// Of returns D(purpose, the concatenation of parts). It derives the context
// key on every call: use a [Hasher] on hot paths.
func Of(purpose string, parts ...[]byte) [Size]byte {
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
