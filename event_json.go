package omega

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON form of events (SPEC 3).
//
// Output is compact, with all twelve fields in the table's order; ids are
// full decimal JSON integers, the payload hash 64 lowercase hex digits and
// the payload standard padded base64.
//
// Input is read by a strict scanner rather than encoding/json, which merges
// repeated keys and rounds large integers through float64. Besides the output
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

func jsonField(name []byte) int {
	switch string(name) {
	case "event_id":
		return jfEventID
	case "node_id":
		return jfNodeID
	case "stream_id":
		return jfStreamID
	case "lamport":
		return jfLamport
	case "mono_ts_ns":
		return jfMonoTSNs
	case "event_kind":
		return jfEventKind
	case "flags":
		return jfFlags
	case "deps_count":
		return jfDepsCount
	case "payload_len":
		return jfPayloadLen
	case "payload_hash":
		return jfPayloadHash
	case "deps":
		return jfDeps
	case "payload":
		return jfPayload
	}
	return -1
}

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
	d.skipSpace()
	if d.pos == len(d.data) {
		return d.fail("", "no JSON value")
	}
	if d.data[d.pos] != '{' {
		return d.notObject()
	}
	v, err := d.event()
	if err != nil {
		return err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.fail("", "trailing data after the event at byte offset %d", d.pos)
	}
	*e = v
	return nil
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

// events decodes the whole input as an array or JSON lines.
func (d *jsonDecoder) events() ([]Event, error) {
	d.skipSpace()
	if d.pos == len(d.data) {
		return []Event{}, nil
	}
	switch d.data[d.pos] {
	case '[':
		return d.array()
	case '{':
		d.lines = true
		return d.jsonLines()
	}
	return nil, d.fail("", "input is neither a JSON array nor JSON lines: it starts with %s at byte offset %d", quoteByte(d.data[d.pos]), d.pos)
}

// jsonDecoder is a strict scanner over one input. It never needs to skip an
// unknown value: the first problem ends decoding.
type jsonDecoder struct {
	data       []byte
	pos        int
	index      int  // position of the event being read, for errors
	lines      bool // JSON lines: a newline may not occur inside an event
	maxDeps    int
	maxPayload int
	scratch    []byte       // unescaped string contents
	count      BatchCounter // of an array or JSON lines
}

func newJSONDecoder(data []byte, lim Limits) jsonDecoder {
	return jsonDecoder{data: data, maxDeps: lim.maxDeps(), maxPayload: lim.maxPayload()}
}

func (d *jsonDecoder) fail(field, format string, args ...any) *EventError {
	return &EventError{Index: d.index, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// unexpected reports the byte at d.pos (or the end of input) where want was
// expected.
func (d *jsonDecoder) unexpected(field, want string) *EventError {
	if d.pos >= len(d.data) {
		return d.fail(field, "invalid JSON: input ends at byte offset %d, want %s", d.pos, want)
	}
	c := d.data[d.pos]
	if d.lines && c == '\n' {
		return d.fail(field, "line ends inside the event at byte offset %d, want %s", d.pos, want)
	}
	return d.fail(field, "invalid JSON: unexpected %s at byte offset %d, want %s", quoteByte(c), d.pos, want)
}

func (d *jsonDecoder) notObject() *EventError {
	switch {
	case d.isNull():
		return d.fail("", "null is not an event")
	case d.pos < len(d.data) && d.data[d.pos] != '\n':
		return d.fail("", "value at byte offset %d is not an event object: it starts with %s", d.pos, quoteByte(d.data[d.pos]))
	}
	return d.unexpected("", "an event object")
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// skipSpace skips JSON white space; newlines only outside events in JSON
// lines.
func (d *jsonDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\r', '\n':
			d.pos++
		default:
			return
		}
	}
}

// skipInside skips white space inside an event.
func (d *jsonDecoder) skipInside() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\r':
			d.pos++
		case '\n':
			if d.lines {
				return
			}
			d.pos++
		default:
			return
		}
	}
}

func (d *jsonDecoder) array() ([]Event, error) {
	d.pos++ // '['
	events := []Event{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
	} else {
		for {
			d.index = len(events)
			d.skipSpace()
			if d.pos >= len(d.data) || d.data[d.pos] != '{' {
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
			if d.pos < len(d.data) && d.data[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.pos < len(d.data) && d.data[d.pos] == ']' {
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
		if d.data[d.pos] != '{' {
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

// isNull reports whether the literal null starts at d.pos.
func (d *jsonDecoder) isNull() bool {
	return len(d.data)-d.pos >= 4 && string(d.data[d.pos:d.pos+4]) == "null"
}

// event decodes one object starting at d.pos, which holds '{'.
func (d *jsonDecoder) event() (Event, error) {
	start := d.pos
	d.pos++
	var (
		e                     Event
		seen                  uint32
		depsCount, payloadLen uint64
		deps                  []EventID
		payload               []byte
	)
	d.skipInside()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
	} else {
		for {
			d.skipInside()
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
				return Event{}, d.unexpected("", "a field name")
			}
			name, err := d.str("")
			if err != nil {
				return Event{}, err
			}
			f := jsonField(name)
			if f < 0 {
				return Event{}, d.fail("", "unknown field %s", quoteName(name))
			}
			field := jsonFieldNames[f]
			if seen&(1<<f) != 0 {
				return Event{}, d.fail(field, "repeated key")
			}
			seen |= 1 << f
			d.skipInside()
			if d.pos >= len(d.data) || d.data[d.pos] != ':' {
				return Event{}, d.unexpected(field, "':' after the field name")
			}
			d.pos++
			d.skipInside()
			if d.isNull() {
				return Event{}, d.fail(field, "null is not allowed")
			}
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
			d.skipInside()
			if d.pos < len(d.data) && d.data[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.pos < len(d.data) && d.data[d.pos] == '}' {
				d.pos++
				break
			}
			return Event{}, d.unexpected(field, "',' or '}' after the value")
		}
	}
	if missing := jsonRequired &^ seen; missing != 0 {
		f := bits.TrailingZeros32(uint32(missing))
		return Event{}, d.fail(jsonFieldNames[f], "missing from the event at byte offset %d", start)
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

func quoteName(name []byte) string {
	const max = 64
	if len(name) > max {
		return strconv.Quote(string(name[:max])) + "..."
	}
	return strconv.Quote(string(name))
}

// str reads a JSON string at d.pos (which holds '"') and returns its
// contents, unescaped. The result aliases d.data or d.scratch and is valid
// until the next call.
func (d *jsonDecoder) str(field string) ([]byte, error) {
	d.pos++
	start := d.pos
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return d.data[start:i], nil
		case c == '\\':
			d.pos = i
			d.scratch = append(d.scratch[:0], d.data[start:i]...)
			return d.strEscaped(field)
		case c < 0x20:
			d.pos = i
			return nil, d.unexpected(field, "a string character (control characters must be escaped)")
		}
	}
	d.pos = len(d.data)
	return nil, d.unexpected(field, "'\"' ending the string")
}

// strEscaped continues str from the first backslash, unescaping into
// d.scratch.
func (d *jsonDecoder) strEscaped(field string) ([]byte, error) {
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return d.scratch, nil
		case c < 0x20:
			return nil, d.unexpected(field, "a string character (control characters must be escaped)")
		case c != '\\':
			d.scratch = append(d.scratch, c)
			d.pos++
			continue
		}
		d.pos++
		if d.pos >= len(d.data) {
			break
		}
		switch c := d.data[d.pos]; c {
		case '"', '\\', '/':
			d.scratch = append(d.scratch, c)
		case 'b':
			d.scratch = append(d.scratch, '\b')
		case 'f':
			d.scratch = append(d.scratch, '\f')
		case 'n':
			d.scratch = append(d.scratch, '\n')
		case 'r':
			d.scratch = append(d.scratch, '\r')
		case 't':
			d.scratch = append(d.scratch, '\t')
		case 'u':
			r, ok := d.hex4(d.pos + 1)
			if !ok {
				return nil, d.fail(field, "invalid JSON: bad \\u escape at byte offset %d", d.pos-1)
			}
			d.pos += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := d.hex4(d.pos + 3); ok && d.data[d.pos+1] == '\\' && d.data[d.pos+2] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						d.pos += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			d.scratch = utf8.AppendRune(d.scratch, r)
		default:
			d.pos--
			return nil, d.fail(field, "invalid JSON: bad escape at byte offset %d", d.pos)
		}
		d.pos++
	}
	return nil, d.unexpected(field, "'\"' ending the string")
}

// hex4 reads four hex digits at i.
func (d *jsonDecoder) hex4(i int) (rune, bool) {
	if i < 0 || len(d.data)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// integer reads a JSON number at d.pos and returns its digits, refusing any
// number that is not an exact non-negative integer in canonical form.
func (d *jsonDecoder) integer(field string) ([]byte, error) {
	start := d.pos
	if d.pos >= len(d.data) {
		return nil, d.unexpected(field, "a JSON integer")
	}
	switch c := d.data[d.pos]; {
	case c == '-':
		return nil, d.fail(field, "negative number at byte offset %d; want an unsigned integer", start)
	case c < '0' || c > '9':
		return nil, d.unexpected(field, "a JSON integer")
	}
	i := d.pos
	for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
		i++
	}
	digits := d.data[start:i]
	if i < len(d.data) {
		switch d.data[i] {
		case '.':
			return nil, d.fail(field, "number with a fraction at byte offset %d; want an exact integer", start)
		case 'e', 'E':
			return nil, d.fail(field, "number with an exponent at byte offset %d; want an exact integer", start)
		}
	}
	if len(digits) > 1 && digits[0] == '0' {
		return nil, d.fail(field, "number with a leading zero at byte offset %d", start)
	}
	d.pos = i
	return digits, nil
}

// uint reads a JSON integer no greater than max; typ names the field's type.
func (d *jsonDecoder) uint(field string, max uint64, typ string) (uint64, error) {
	start := d.pos
	digits, err := d.integer(field)
	if err != nil {
		return 0, err
	}
	var v uint64
	if len(digits) > 20 {
		return 0, d.tooBig(field, digits, typ, start)
	}
	for _, c := range digits {
		hi, lo := bits.Mul64(v, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, d.tooBig(field, digits, typ, start)
		}
		v = lo
	}
	if v > max {
		return 0, d.tooBig(field, digits, typ, start)
	}
	return v, nil
}

func (d *jsonDecoder) tooBig(field string, digits []byte, typ string, at int) *EventError {
	if len(digits) > 40 {
		return d.fail(field, "a %d-digit number at byte offset %d exceeds the %s range", len(digits), at, typ)
	}
	return d.fail(field, "%s at byte offset %d exceeds the %s range", digits, at, typ)
}

// id reads a u128 id: a JSON integer or a decimal string.
func (d *jsonDecoder) id(field string) (EventID, error) {
	start := d.pos
	if d.pos < len(d.data) && d.data[d.pos] == '"' {
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
	digits, err := d.integer(field)
	if err != nil {
		return EventID{}, err
	}
	id, err := parseDecimal128(digits)
	if err != nil {
		return EventID{}, d.tooBig(field, digits, "u128", start)
	}
	return id, nil
}

// byteItem reads one integer 0..255 of a byte array.
func (d *jsonDecoder) byteItem(field string) (byte, error) {
	if d.isNull() {
		return 0, d.fail(field, "null is not allowed")
	}
	v, err := d.uint(field, math.MaxUint8, "byte")
	return byte(v), err
}

// arrayNext is called after an array item: it consumes ',' and reports true,
// or consumes ']' and reports false.
func (d *jsonDecoder) arrayNext(field string) (more bool, err error) {
	d.skipInside()
	if d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipInside()
			return true, nil
		case ']':
			d.pos++
			return false, nil
		}
	}
	return false, d.unexpected(field, "',' or ']' in the array")
}

// arrayStart consumes '[' and reports whether the array has items.
func (d *jsonDecoder) arrayStart() bool {
	d.pos++
	d.skipInside()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return false
	}
	return true
}

// hash reads 64 hex digits or an array of 32 byte values.
func (d *jsonDecoder) hash(field string) (Hash, error) {
	var h Hash
	start := d.pos
	if d.pos >= len(d.data) {
		return h, d.unexpected(field, "a hex string or an array of 32 bytes")
	}
	switch d.data[d.pos] {
	case '"':
		s, err := d.str(field)
		if err != nil {
			return h, err
		}
		if len(s) != 2*len(h) {
			return h, d.fail(field, "string at byte offset %d has %d characters; want %d hex digits", start, len(s), 2*len(h))
		}
		if _, err := hex.Decode(h[:], s); err != nil {
			return h, d.fail(field, "string at byte offset %d is not hex", start)
		}
		return h, nil
	case '[':
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
	if d.pos >= len(d.data) || d.data[d.pos] != '[' {
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
		if d.isNull() {
			return nil, d.fail(field, "null is not allowed")
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
	if d.pos >= len(d.data) {
		return nil, d.unexpected(field, "a base64 string or an array of bytes")
	}
	switch d.data[d.pos] {
	case '"':
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
	case '[':
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
