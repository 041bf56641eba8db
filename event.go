package omega

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/omega-sheaf/omega/internal/digest"
)

// EventID is an unsigned 128-bit event identifier (SPEC 3). Its binary form
// is 16 bytes, low 8 bytes first.
type EventID struct {
	Hi, Lo uint64
}

// ID64 returns the EventID with value v.
func ID64(v uint64) EventID { return EventID{Lo: v} }

// Compare returns -1, 0 or +1 as id is numerically less than, equal to or
// greater than o.
func (id EventID) Compare(o EventID) int {
	switch {
	case id.Hi < o.Hi:
		return -1
	case id.Hi > o.Hi:
		return 1
	case id.Lo < o.Lo:
		return -1
	case id.Lo > o.Lo:
		return 1
	}
	return 0
}

// IsZero reports whether id is 0.
func (id EventID) IsZero() bool { return id == EventID{} }

// AppendBinary appends the 16-byte little-endian form of id to b.
func (id EventID) AppendBinary(b []byte) ([]byte, error) { return appendID(b, id), nil }

// String returns id in decimal.
func (id EventID) String() string { return string(id.appendDecimal(nil)) }

// MarshalText writes id in decimal, the form of SPEC 3's JSON view.
func (id EventID) MarshalText() ([]byte, error) { return id.appendDecimal(nil), nil }

// UnmarshalText parses a decimal id (digits only, no sign, no leading zero).
func (id *EventID) UnmarshalText(b []byte) error {
	v, err := parseDecimal128(b)
	if err != nil {
		return fieldErr("event_id", "%q: %v", b, err)
	}
	*id = v
	return nil
}

// ParseEventID parses a u128 written in decimal: digits only, no sign, no
// whitespace, no leading zero except "0" itself. Its error is an
// [*EventError] for the field event_id.
func ParseEventID(s string) (EventID, error) {
	id, err := parseDecimal128([]byte(s))
	if err != nil {
		return EventID{}, fieldErr("event_id", "%q: %v", s, err)
	}
	return id, nil
}

// MarshalJSON writes id as a JSON integer in full decimal, as SPEC's JSON
// views do.
func (id EventID) MarshalJSON() ([]byte, error) { return id.appendDecimal(nil), nil }

// UnmarshalJSON reads a JSON integer or a decimal string (the original
// system's form), exactly: no sign, fraction, exponent or leading zero.
func (id *EventID) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	v, err := parseDecimal128(b)
	if err != nil {
		return fieldErr("event_id", "%s: %v", b, err)
	}
	*id = v
	return nil
}

func (id EventID) appendDecimal(b []byte) []byte {
	if id.Hi == 0 {
		return strconv.AppendUint(b, id.Lo, 10)
	}
	// Peel off 19 decimal digits at a time: 10^19 is the largest power of
	// ten below 2^64.
	const chunk = 1e19
	var parts [3]uint64
	n := 0
	hi, lo := id.Hi, id.Lo
	for hi != 0 {
		qhi := hi / chunk
		r := hi % chunk
		qlo, rem := bits.Div64(r, lo, chunk)
		parts[n] = rem
		n++
		hi, lo = qhi, qlo
	}
	b = strconv.AppendUint(b, lo, 10)
	for i := n - 1; i >= 0; i-- {
		var buf [19]byte
		s := strconv.AppendUint(buf[:0], parts[i], 10)
		for range 19 - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return b
}

var errBadDecimal = errors.New("not a canonical unsigned decimal")

func parseDecimal128(s []byte) (EventID, error) {
	if len(s) == 0 || (s[0] == '0' && len(s) > 1) {
		return EventID{}, errBadDecimal
	}
	var id EventID
	for _, c := range s {
		if c < '0' || c > '9' {
			return EventID{}, errBadDecimal
		}
		// id = id*10 + digit, refusing overflow past 2^128-1.
		h1, l1 := bits.Mul64(id.Lo, 10)
		h2, l2 := bits.Mul64(id.Hi, 10)
		if h2 != 0 {
			return EventID{}, errors.New("exceeds 2^128-1")
		}
		hi, carry := bits.Add64(l2, h1, 0)
		if carry != 0 {
			return EventID{}, errors.New("exceeds 2^128-1")
		}
		lo, carry := bits.Add64(l1, uint64(c-'0'), 0)
		hi, carry = bits.Add64(hi, 0, carry)
		if carry != 0 {
			return EventID{}, errors.New("exceeds 2^128-1")
		}
		id = EventID{Hi: hi, Lo: lo}
	}
	return id, nil
}

// Hash is a 32-byte digest.
type Hash [32]byte

// String returns h in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether every byte of h is zero.
func (h Hash) IsZero() bool { return h == Hash{} }

// Compare orders hashes as 32-byte strings, like bytes.Compare.
func (h Hash) Compare(o Hash) int { return bytes.Compare(h[:], o[:]) }

// MarshalText writes h as 64 lowercase hex digits.
func (h Hash) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, h[:]), nil
}

// UnmarshalText reads 64 hex digits, in either case.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("omega: hash: want %d hex digits, have %d", 2*len(h), len(b))
	}
	var v Hash
	if _, err := hex.Decode(v[:], b); err != nil {
		return fmt.Errorf("omega: hash: %q is not hex", b)
	}
	*h = v
	return nil
}

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// Event is one event of the seed schema (SPEC 3). deps_count and payload_len
// are not stored: they are len(Deps) and len(Payload), so they cannot
// disagree with the lists.
type Event struct {
	ID          EventID
	NodeID      uint32
	StreamID    uint16
	Lamport     uint64
	MonoTSNs    uint64
	Kind        uint16
	Flags       uint16
	PayloadHash Hash      // carried as given; a wrong one violates predicate 2001
	Deps        []EventID // in the order given; duplicates allowed
	Payload     []byte
}

// Layout of the canonical encoding (SPEC 3). Frozen wire format.
const (
	eventHeaderLen  = 80 // bytes before deps
	offNodeID       = 16
	offStreamID     = 20
	offLamport      = 22
	offMonoTS       = 30
	offKind         = 38
	offFlags        = 40
	offDepsCount    = 42
	offPayloadLen   = 44
	offPayloadHash  = 48
	maxDepsCount    = math.MaxUint16
	defaultMaxBytes = 16 << 20
)

// Limits caps what a decoder accepts. The zero value means the defaults of
// SPEC 3: up to 65535 deps (the field's maximum) and 16 MiB of payload.
type Limits struct {
	MaxDeps    int // 0 means 65535; values above 65535 mean 65535
	MaxPayload int // 0 means 16 MiB
}

func (l Limits) maxDeps() int {
	if l.MaxDeps <= 0 || l.MaxDeps > maxDepsCount {
		return maxDepsCount
	}
	return l.MaxDeps
}

func (l Limits) maxPayload() int {
	if l.MaxPayload <= 0 {
		return defaultMaxBytes
	}
	return int(min(uint64(l.MaxPayload), math.MaxUint32)) // payload_len is a u32
}

// EventError reports a structural problem with one event: the field and,
// when the event came from a list, its position.
type EventError struct {
	Index  int    // position of the event in its input, or -1
	Field  string // the SPEC 3 field name, or "" for the event as a whole
	Reason string
}

func (e *EventError) Error() string {
	var b []byte
	b = append(b, "omega: event"...)
	if e.Index >= 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(e.Index), 10)
	}
	if e.Field != "" {
		b = append(b, ": field "...)
		b = append(b, e.Field...)
	}
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	return string(b)
}

// Unwrap returns [ErrMalformedEvent].
func (e *EventError) Unwrap() error { return ErrMalformedEvent }

func fieldErr(field, format string, args ...any) *EventError {
	return &EventError{Index: -1, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks the structural rules of SPEC 3 against lim: the deps and
// payload lengths. It does not check the payload hash: a wrong one is a
// predicate 2001 violation, for the checker to report.
func (e *Event) Validate(lim Limits) error {
	if n := len(e.Deps); n > lim.maxDeps() {
		return fieldErr("deps_count", "%d deps exceed the limit of %d", n, lim.maxDeps())
	}
	if n := len(e.Payload); n > lim.maxPayload() {
		return fieldErr("payload_len", "%d payload bytes exceed the limit of %d", n, lim.maxPayload())
	}
	return nil
}

// EncodedLen returns the length of e's canonical encoding.
func (e *Event) EncodedLen() int { return eventHeaderLen + 16*len(e.Deps) + len(e.Payload) }

// AppendBinary appends e's canonical encoding (SPEC 3) to b. It fails only
// when a list is too long for its count field.
func (e *Event) AppendBinary(b []byte) ([]byte, error) {
	if len(e.Deps) > maxDepsCount {
		return b, fieldErr("deps_count", "%d deps do not fit in a u16", len(e.Deps))
	}
	if uint64(len(e.Payload)) > math.MaxUint32 {
		return b, fieldErr("payload_len", "%d payload bytes do not fit in a u32", len(e.Payload))
	}
	b = slices.Grow(b, e.EncodedLen())
	b = e.appendHeader(b)
	for _, d := range e.Deps {
		b = appendID(b, d)
	}
	return append(b, e.Payload...), nil
}

// MarshalBinary returns e's canonical encoding.
func (e *Event) MarshalBinary() ([]byte, error) { return e.AppendBinary(nil) }

// UnmarshalBinary decodes a canonical encoding with the default [Limits].
// The event does not retain b.
func (e *Event) UnmarshalBinary(b []byte) error {
	v, err := DecodeEvent(b, Limits{})
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// appendHeader appends the fixed 80-byte part of the encoding. The caller
// has checked the list lengths.
func (e *Event) appendHeader(b []byte) []byte {
	b = appendID(b, e.ID)
	b = binary.LittleEndian.AppendUint32(b, e.NodeID)
	b = binary.LittleEndian.AppendUint16(b, e.StreamID)
	b = binary.LittleEndian.AppendUint64(b, e.Lamport)
	b = binary.LittleEndian.AppendUint64(b, e.MonoTSNs)
	b = binary.LittleEndian.AppendUint16(b, e.Kind)
	b = binary.LittleEndian.AppendUint16(b, e.Flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e.Deps)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Payload)))
	return append(b, e.PayloadHash[:]...)
}

// DecodeEvent decodes one canonical encoding, which must fill b exactly.
// It refuses short input, trailing bytes and lengths over lim, naming the
// field, and allocates no more than b's length justifies. The event does not
// retain b.
func DecodeEvent(b []byte, lim Limits) (Event, error) { return decodeEvent(b, lim, false) }

// decodeEvent is DecodeEvent; with alias set, the event's payload aliases b
// (its capacity capped, so appending to it cannot reach b's other bytes).
func decodeEvent(b []byte, lim Limits, alias bool) (Event, error) {
	if len(b) < eventHeaderLen {
		return Event{}, fieldErr(fieldAt(len(b)), "input ends after %d bytes, inside the 80-byte fixed part", len(b))
	}
	depsCount := int(binary.LittleEndian.Uint16(b[offDepsCount:]))
	payloadLen := uint64(binary.LittleEndian.Uint32(b[offPayloadLen:]))
	if depsCount > lim.maxDeps() {
		return Event{}, fieldErr("deps_count", "%d exceeds the limit of %d", depsCount, lim.maxDeps())
	}
	if payloadLen > uint64(lim.maxPayload()) {
		return Event{}, fieldErr("payload_len", "%d exceeds the limit of %d", payloadLen, lim.maxPayload())
	}
	rest := uint64(len(b) - eventHeaderLen)
	need := uint64(depsCount)*16 + payloadLen
	switch {
	case rest < uint64(depsCount)*16:
		return Event{}, fieldErr("deps", "deps_count %d needs %d bytes, input has %d", depsCount, depsCount*16, rest)
	case rest < need:
		return Event{}, fieldErr("payload", "payload_len %d needs %d bytes, input has %d", payloadLen, payloadLen, rest-uint64(depsCount)*16)
	case rest > need:
		return Event{}, fieldErr("payload", "%d trailing bytes after the payload_len %d bytes", rest-need, payloadLen)
	}
	e := Event{
		ID:       readID(b),
		NodeID:   binary.LittleEndian.Uint32(b[offNodeID:]),
		StreamID: binary.LittleEndian.Uint16(b[offStreamID:]),
		Lamport:  binary.LittleEndian.Uint64(b[offLamport:]),
		MonoTSNs: binary.LittleEndian.Uint64(b[offMonoTS:]),
		Kind:     binary.LittleEndian.Uint16(b[offKind:]),
		Flags:    binary.LittleEndian.Uint16(b[offFlags:]),
	}
	copy(e.PayloadHash[:], b[offPayloadHash:])
	p := b[eventHeaderLen:]
	if depsCount > 0 {
		e.Deps = make([]EventID, depsCount)
		for i := range e.Deps {
			e.Deps[i] = readID(p[16*i:])
		}
	} else {
		e.Deps = []EventID{}
	}
	if alias {
		e.Payload = p[16*depsCount : len(p) : len(p)]
	} else {
		e.Payload = append([]byte{}, p[16*depsCount:]...)
	}
	return e, nil
}

// fieldAt names the fixed-part field that contains byte offset off.
func fieldAt(off int) string {
	switch {
	case off < offNodeID:
		return "event_id"
	case off < offStreamID:
		return "node_id"
	case off < offLamport:
		return "stream_id"
	case off < offMonoTS:
		return "lamport"
	case off < offKind:
		return "mono_ts_ns"
	case off < offFlags:
		return "event_kind"
	case off < offDepsCount:
		return "flags"
	case off < offPayloadLen:
		return "deps_count"
	case off < offPayloadHash:
		return "payload_len"
	}
	return "payload_hash"
}

// smallEvent is the encoded size up to which an event's whole encoding is
// built in one buffer and hashed in one call: one BLAKE3 chunk, the
// digest package's fast path. Larger encodings are streamed. Event.Digest,
// the checker's hashAll and BatchCounter all size their buffers by it.
const smallEvent = digest.ChunkSize

// Digest returns the event digest D("event", canonical encoding). It derives
// a hasher per call; bulk paths such as [Reconcile] reuse theirs.
func (e *Event) Digest() Hash {
	var buf [smallEvent]byte
	return eventDigest(digest.New(digest.Event), e, buf[:0])
}

// eventDigest hashes e's canonical encoding with h (a D("event") hasher),
// using scratch for the fixed part and the deps. Lists longer than their
// count fields cannot reach here: decoding and Reconcile validate first.
func eventDigest(h *digest.Hasher, e *Event, scratch []byte) Hash {
	b := e.appendHeader(scratch[:0])
	for _, d := range e.Deps {
		b = appendID(b, d)
	}
	if len(b)+len(e.Payload) <= cap(b) {
		// The whole encoding fits the caller's buffer: one call, which
		// takes the hasher's one-chunk fast path for small events.
		return h.Sum1(append(b, e.Payload...))
	}
	h.Reset()
	h.Write(b)
	h.Write(e.Payload)
	return h.Sum()
}

// PayloadHash returns BLAKE3-256(payload), the payload_hash an event with
// that payload must carry (SPEC 2).
func PayloadHash(payload []byte) Hash { return digest.Plain(payload) }

// PayloadHashOK reports whether PayloadHash is BLAKE3-256(Payload).
func (e *Event) PayloadHashOK() bool { return digest.Plain(e.Payload) == e.PayloadHash }

// orderKey is the ordering key of SPEC 3: (lamport, node_id, stream_id,
// event_id), compared numerically in that order.
type orderKey struct {
	Lamport  uint64
	NodeID   uint32
	StreamID uint16
	ID       EventID
}

// key returns e's ordering key.
func (e *Event) key() orderKey {
	return orderKey{Lamport: e.Lamport, NodeID: e.NodeID, StreamID: e.StreamID, ID: e.ID}
}

// Compare orders keys numerically, field by field.
func (k orderKey) Compare(o orderKey) int {
	switch {
	case k.Lamport != o.Lamport:
		return cmpU64(k.Lamport, o.Lamport)
	case k.NodeID != o.NodeID:
		return cmpU64(uint64(k.NodeID), uint64(o.NodeID))
	case k.StreamID != o.StreamID:
		return cmpU64(uint64(k.StreamID), uint64(o.StreamID))
	}
	return k.ID.Compare(o.ID)
}

// Compare orders events canonically (SPEC 3): by ordering key, then by
// event digest. It is total over distinct contents; identical copies compare
// equal. It hashes both events unless their keys differ.
func (a *Event) Compare(b *Event) int {
	if c := a.key().Compare(b.key()); c != 0 {
		return c
	}
	return a.Digest().Compare(b.Digest())
}

func cmpU64(a, b uint64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

func appendID(b []byte, id EventID) []byte {
	b = binary.LittleEndian.AppendUint64(b, id.Lo)
	return binary.LittleEndian.AppendUint64(b, id.Hi)
}

func readID(b []byte) EventID {
	return EventID{Lo: binary.LittleEndian.Uint64(b), Hi: binary.LittleEndian.Uint64(b[8:])}
}

// idsBytes returns ids(x1..xn) of SPEC 2: the 16-byte encodings of ids, in
// the order given. Digests over id lists (the checker's, a result view's,
// a certificate's) all hash it.
func idsBytes(ids []EventID) []byte {
	b := make([]byte, 0, 16*len(ids))
	for _, id := range ids {
		b = appendID(b, id)
	}
	return b
}
