package omega

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"slices"
	"strconv"
)

// JSON form of events (SPEC 3).
//
// Output is compact, with all twelve fields in the table's order; ids are
// full decimal JSON integers, the payload hash 64 lowercase hex digits and
// the payload standard padded base64.
//
// Input is read by the strict reader of jsonread.go rather than
// encoding/json, which merges repeated keys and rounds large integers
// through float64. Besides the output
// form it accepts the original system's forms: ids as decimal strings, hashes
// and payloads as arrays of integers 0..255, and hex in either case. JSON
// string escapes are honoured everywhere, as in any JSON reader. A payload in
// base64 must be canonical (RFC 4648 section 3.5: zero padding bits, no line
// breaks) so that decoding then encoding gives back the same text.

// JSON field names, in the order of the SPEC 3 table.
const (
	jfEventID = iota
	jfNodeID
	jfStreamID
	jfLamport
	jfMonoTSNs
	jfEventKind
	jfFlags
	jfDepsCount
	jfPayloadLen
	jfPayloadHash
	jfDeps
	jfPayload
	jfCount
)

var jsonFieldNames = [jfCount]string{
	"event_id", "node_id", "stream_id", "lamport", "mono_ts_ns", "event_kind",
	"flags", "deps_count", "payload_len", "payload_hash", "deps", "payload",
}

// jsonRequired has a bit set for every field that must be present:
// all but deps_count and payload_len, which are derived from the lists.
const jsonRequired = (1<<jfCount - 1) &^ (1<<jfDepsCount | 1<<jfPayloadLen)

// MarshalJSON returns e in the JSON output form of SPEC 3. It has a value
// receiver so that Event, *Event and []Event all marshal through
// encoding/json in this form.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// AppendJSON appends e in the compact JSON output form of SPEC 3 to b and
// returns the extended slice. deps_count and payload_len are written as the
// list lengths.
func (e *Event) AppendJSON(b []byte) []byte {
	// Fixed text and numbers take under 300 bytes; a dep at most 40.
	b = slices.Grow(b, 300+40*len(e.Deps)+base64.StdEncoding.EncodedLen(len(e.Payload)))
	b = append(b, `{"event_id":`...)
	b = e.ID.appendDecimal(b)
	b = append(b, `,"node_id":`...)
	b = strconv.AppendUint(b, uint64(e.NodeID), 10)
	b = append(b, `,"stream_id":`...)
	b = strconv.AppendUint(b, uint64(e.StreamID), 10)
	b = append(b, `,"lamport":`...)
	b = strconv.AppendUint(b, e.Lamport, 10)
	b = append(b, `,"mono_ts_ns":`...)
	b = strconv.AppendUint(b, e.MonoTSNs, 10)
	b = append(b, `,"event_kind":`...)
	b = strconv.AppendUint(b, uint64(e.Kind), 10)
	b = append(b, `,"flags":`...)
	b = strconv.AppendUint(b, uint64(e.Flags), 10)
	b = append(b, `,"deps_count":`...)
	b = strconv.AppendUint(b, uint64(len(e.Deps)), 10)
	b = append(b, `,"payload_len":`...)
	b = strconv.AppendUint(b, uint64(len(e.Payload)), 10)
	b = append(b, `,"payload_hash":"`...)
	b = hex.AppendEncode(b, e.PayloadHash[:])
	b = append(b, `","deps":[`...)
	for i, d := range e.Deps {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.appendDecimal(b)
	}
	b = append(b, `],"payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Payload)
	return append(b, `"}`...)
}

// UnmarshalJSON decodes one event in any JSON form SPEC 3 accepts, with the
// default [Limits] and the rules of [DecodeEventsJSON]. Errors are
// [*EventError] values with Index -1. Unlike most unmarshalers it rejects a
// JSON null, as SPEC 3 does. e is changed only on success and does not retain
// b.
func (e *Event) UnmarshalJSON(b []byte) error {
	d := newJSONDecoder(b, Limits{})
	d.index = -1
	v, err := d.one()
	if err != nil {
		return d.eventError(err)
	}
	*e = v
	return nil
}

// one decodes the whole input as one event.
func (d *jsonDecoder) one() (Event, error) {
	d.skipSpace()
	if d.pos == len(d.data) {
		return Event{}, d.fail("", "no JSON value")
	}
	if !d.next('{') {
		return Event{}, d.notObject()
	}
	v, err := d.event()
	if err != nil {
		return Event{}, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return Event{}, d.fail("", "trailing data after the event at byte offset %d", d.pos)
	}
	return v, nil
}

// DecodeEventsJSON decodes events in the JSON forms of SPEC 3 from data,
// which is either a JSON array of event objects or JSON lines: one object per
// line, blank lines allowed. The first byte that is not white space tells
// which: '[' or '{'. Input that is empty or only white space holds no events.
//
// Decoding is strict: exactly the twelve field names, no repeated keys, no
// null, exact integers within each field's range, deps_count and payload_len
// (optional) equal to the list lengths, and lists within lim (see [Limits];
// the zero value gives the defaults). Every decoding failure, JSON syntax included, is
// an [*EventError] whose Index is the position of the event being read,
// counting from 0 (blank lines do not count), and whose Field names the
// JSON field, or is "" for a problem with the event as a whole or between
// events; syntax errors give the 0-based byte offset in the Reason. A problem
// just after an event, before the next ',' or line, belongs to that event;
// trailing data after an array gets the index a next event would have. In
// JSON lines an event must fit on its line. A wrong payload_hash is not an error here: it is a
// predicate 2001 violation for the checker.
//
// The events are a batch: decoding stops at the first event that brings
// them past [MaxBatchContents] distinct contents, with an error wrapping
// [ErrBatchTooLarge] (not an *EventError), so that a batch [Checker.Reconcile]
// would refuse is refused without decoding the rest of it. Identical copies
// count once, as Reconcile counts them (see [BatchCounter]).
//
// Decoded events have non-nil Deps and Payload, as from [DecodeEvent], and
// do not retain data.
func DecodeEventsJSON(data []byte, lim Limits) ([]Event, error) {
	d := newJSONDecoder(data, lim)
	return d.events()
}

// jsonDecoder reads events with a strict jsonReader (see jsonread.go). It
// never needs to skip an unknown value: the first problem ends decoding.
type jsonDecoder struct {
	jsonReader
	index      int // position of the event being read, for errors
	maxDeps    int
	maxPayload int
	count      BatchCounter // of an array or JSON lines
}

func newJSONDecoder(data []byte, lim Limits) jsonDecoder {
	return jsonDecoder{jsonReader: jsonReader{data: data}, maxDeps: lim.maxDeps(), maxPayload: lim.maxPayload()}
}

// eventError gives a reader's error the position of the event being read:
// an [*EventError]. Other errors, the batch limit's, are returned as they
// are.
func (d *jsonDecoder) eventError(err error) error {
	if je, ok := err.(*jsonError); ok {
		return &EventError{Index: d.index, Field: je.field, Reason: je.reason}
	}
	return err
}

// events decodes the whole input as an array or JSON lines.
func (d *jsonDecoder) events() ([]Event, error) {
	var (
		events []Event
		err    error
	)
	d.skipSpace()
	switch {
	case d.pos == len(d.data):
		return []Event{}, nil
	case d.next('['):
		events, err = d.array()
	case d.next('{'):
		d.lines = true
		events, err = d.jsonLines()
	default:
		err = d.fail("", "input is neither a JSON array nor JSON lines: it starts with %s at byte offset %d", quoteByte(d.data[d.pos]), d.pos)
	}
	if err != nil {
		return nil, d.eventError(err)
	}
	return events, nil
}

func (d *jsonDecoder) notObject() error {
	switch {
	case d.isNull():
		return d.fail("", "null is not an event")
	case d.pos < len(d.data) && d.data[d.pos] != '\n':
		return d.fail("", "value at byte offset %d is not an event object: it starts with %s", d.pos, quoteByte(d.data[d.pos]))
	}
	return d.unexpected("", "an event object")
}

func (d *jsonDecoder) array() ([]Event, error) {
	events := []Event{}
	if d.arrayStart() {
		for {
			d.index = len(events)
			d.skipSpace()
			if !d.next('{') {
				return nil, d.notObject()
			}
			e, err := d.event()
			if err != nil {
				return nil, err
			}
			events = append(events, e)
			if err := d.count.Check(events); err != nil {
				return nil, err
			}
			d.skipSpace()
			if d.next(',') {
				d.pos++
				continue
			}
			if d.next(']') {
				d.pos++
				break
			}
			return nil, d.unexpected("", "',' or ']' after the event")
		}
	}
	d.index = len(events)
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.fail("", "trailing data after the array at byte offset %d", d.pos)
	}
	return events, nil
}

func (d *jsonDecoder) jsonLines() ([]Event, error) {
	events := []Event{}
	for {
		d.skipSpace() // blank lines
		if d.pos == len(d.data) {
			return events, nil
		}
		d.index = len(events)
		if !d.next('{') {
			return nil, d.notObject()
		}
		e, err := d.event()
		if err != nil {
			return nil, err
		}
		d.skipInside()
		if d.pos < len(d.data) && d.data[d.pos] != '\n' {
			return nil, d.fail("", "trailing data after the event on its line at byte offset %d", d.pos)
		}
		events = append(events, e)
		if err := d.count.Check(events); err != nil {
			return nil, err
		}
	}
}

// event decodes one object starting at d.pos, which holds '{'.
func (d *jsonDecoder) event() (Event, error) {
	start := d.pos
	var (
		e                     Event
		seen                  uint64
		hint                  int
		depsCount, payloadLen uint64
		deps                  []EventID
		payload               []byte
	)
	for more := d.objectStart(); more; {
		f, err := d.member(jsonFieldNames[:], &seen, hint)
		if err != nil {
			return Event{}, err
		}
		hint = f + 1
		field := jsonFieldNames[f]
		var v uint64
		switch f {
		case jfEventID:
			e.ID, err = d.id(field)
		case jfNodeID:
			v, err = d.uint(field, math.MaxUint32, "u32")
			e.NodeID = uint32(v)
		case jfStreamID:
			v, err = d.uint(field, math.MaxUint16, "u16")
			e.StreamID = uint16(v)
		case jfLamport:
			e.Lamport, err = d.uint(field, math.MaxUint64, "u64")
		case jfMonoTSNs:
			e.MonoTSNs, err = d.uint(field, math.MaxUint64, "u64")
		case jfEventKind:
			v, err = d.uint(field, math.MaxUint16, "u16")
			e.Kind = uint16(v)
		case jfFlags:
			v, err = d.uint(field, math.MaxUint16, "u16")
			e.Flags = uint16(v)
		case jfDepsCount:
			depsCount, err = d.uint(field, math.MaxUint16, "u16")
			if err == nil && depsCount > uint64(d.maxDeps) {
				err = d.fail(field, "%d exceeds the limit of %d deps", depsCount, d.maxDeps)
			}
		case jfPayloadLen:
			payloadLen, err = d.uint(field, math.MaxUint32, "u32")
			if err == nil && payloadLen > uint64(d.maxPayload) {
				err = d.fail(field, "%d exceeds the limit of %d payload bytes", payloadLen, d.maxPayload)
			}
		case jfPayloadHash:
			e.PayloadHash, err = d.hash(field)
		case jfDeps:
			deps, err = d.deps(field, depsCount)
		case jfPayload:
			payload, err = d.payload(field, payloadLen)
		}
		if err != nil {
			return Event{}, err
		}
		if more, err = d.objectNext(field); err != nil {
			return Event{}, err
		}
	}
	if err := d.missing(jsonFieldNames[:], seen, jsonRequired, "event", start); err != nil {
		return Event{}, err
	}
	if seen&(1<<jfDepsCount) != 0 && depsCount != uint64(len(deps)) {
		return Event{}, d.fail("deps_count", "%d does not match len(deps) = %d", depsCount, len(deps))
	}
	if seen&(1<<jfPayloadLen) != 0 && payloadLen != uint64(len(payload)) {
		return Event{}, d.fail("payload_len", "%d does not match the payload's length %d", payloadLen, len(payload))
	}
	e.Deps = deps
	e.Payload = payload
	return e, nil
}

// id reads a u128 id: a JSON integer or, in the original system's form, a
// decimal string.
func (d *jsonDecoder) id(field string) (EventID, error) {
	start := d.pos
	if !d.next('"') {
		return d.u128(field)
	}
	s, err := d.str(field)
	if err != nil {
		return EventID{}, err
	}
	id, err := parseDecimal128(s)
	if err != nil {
		if len(s) > 40 {
			s = s[:40]
		}
		return EventID{}, d.fail(field, "string %s at byte offset %d is not a u128 in canonical decimal: %v", quoteName(s), start, err)
	}
	return id, nil
}

// byteItem reads one integer 0..255 of a byte array.
func (d *jsonDecoder) byteItem(field string) (byte, error) {
	if err := d.refuseNull(field); err != nil {
		return 0, err
	}
	v, err := d.uint(field, math.MaxUint8, "byte")
	return byte(v), err
}

// hash reads 64 hex digits, in either case, or an array of 32 byte values.
func (d *jsonDecoder) hash(field string) (Hash, error) {
	var h Hash
	start := d.pos
	switch {
	case d.next('"'):
		err := d.hex(h[:], field, false)
		return h, err
	case d.next('['):
		n := 0
		for more := d.arrayStart(); more; {
			if n == len(h) {
				return h, d.fail(field, "array at byte offset %d has more than %d items", start, len(h))
			}
			v, err := d.byteItem(field)
			if err != nil {
				return h, err
			}
			h[n] = v
			n++
			if more, err = d.arrayNext(field); err != nil {
				return h, err
			}
		}
		if n != len(h) {
			return h, d.fail(field, "array at byte offset %d has %d items; want %d", start, n, len(h))
		}
		return h, nil
	}
	return h, d.unexpected(field, "a hex string or an array of 32 bytes")
}

// deps reads an array of ids. hint is deps_count when it came first.
func (d *jsonDecoder) deps(field string, hint uint64) ([]EventID, error) {
	if !d.next('[') {
		return nil, d.unexpected(field, "an array of ids")
	}
	start := d.pos
	// Each item takes at least two bytes of input.
	if rest := uint64(len(d.data)-d.pos) / 2; hint > rest {
		hint = rest
	}
	deps := make([]EventID, 0, hint)
	for more := d.arrayStart(); more; {
		if len(deps) == d.maxDeps {
			return nil, d.fail(field, "array at byte offset %d has more than the limit of %d deps", start, d.maxDeps)
		}
		if err := d.refuseNull(field); err != nil {
			return nil, err
		}
		id, err := d.id(field)
		if err != nil {
			return nil, err
		}
		deps = append(deps, id)
		if more, err = d.arrayNext(field); err != nil {
			return nil, err
		}
	}
	return deps, nil
}

// canonicalBase64 decodes standard padded base64 with zero padding bits
// (RFC 4648 section 3.5). It is read-only, like base64.StdEncoding. Strict
// still skips CR and LF, so payload refuses them first.
var canonicalBase64 = base64.StdEncoding.Strict()

// payload reads standard padded base64 or an array of byte values. hint is
// payload_len when it came first.
func (d *jsonDecoder) payload(field string, hint uint64) ([]byte, error) {
	start := d.pos
	switch {
	case d.next('"'):
		s, err := d.str(field)
		if err != nil {
			return nil, err
		}
		if len(s)%4 != 0 {
			return nil, d.fail(field, "string at byte offset %d is not padded standard base64: length %d is not a multiple of 4", start, len(s))
		}
		if n := canonicalBase64.DecodedLen(len(s)) - paddingLen(s); n > d.maxPayload {
			return nil, d.fail(field, "%d bytes exceed the limit of %d payload bytes", n, d.maxPayload)
		}
		for i, c := range s {
			if c == '\r' || c == '\n' {
				return nil, d.fail(field, "string at byte offset %d is not standard base64: line break at character %d", start, i)
			}
		}
		p, err := canonicalBase64.AppendDecode(make([]byte, 0, canonicalBase64.DecodedLen(len(s))), s)
		if err != nil {
			return nil, d.fail(field, "string at byte offset %d is not canonical padded standard base64: %v", start, err)
		}
		return p, nil
	case d.next('['):
		if rest := uint64(len(d.data)-d.pos) / 2; hint > rest {
			hint = rest
		}
		p := make([]byte, 0, hint)
		for more := d.arrayStart(); more; {
			if len(p) == d.maxPayload {
				return nil, d.fail(field, "array at byte offset %d has more than the limit of %d payload bytes", start, d.maxPayload)
			}
			v, err := d.byteItem(field)
			if err != nil {
				return nil, err
			}
			p = append(p, v)
			if more, err = d.arrayNext(field); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	return nil, d.unexpected(field, "a base64 string or an array of bytes")
}

func paddingLen(s []byte) int {
	n := 0
	for i := len(s) - 1; i >= 0 && n < 2 && s[i] == '='; i-- {
		n++
	}
	return n
}
