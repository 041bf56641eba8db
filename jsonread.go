package omega

import (
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Strict JSON reading, shared by the three JSON decoders: events (SPEC 3,
// event_json.go), the checker output, result and binding views (SPEC 4,
// result_json_decode.go) and the certificate view (SPEC 6, cert_json.go).
//
// encoding/json is not strict enough for any of them: it merges repeated
// keys, rounds large integers through float64 and takes null for an empty
// value. jsonReader scans the bytes itself and holds each rule once:
//   - an object's keys are the fields of what it holds, each at most once:
//     an unknown or repeated key is refused, whatever its escapes;
//   - null is refused where a field's value or a list item is wanted;
//   - integers are exact: digits only, no sign, fraction, exponent or
//     leading zero, within the field's range; a u128 is read in full
//     decimal, never through a float;
//   - hex has the field's exact length, in lowercase (the views) or in
//     either case (event input);
//   - string escapes are honoured everywhere, as in any JSON reader.
//
// The reader stops at the first problem and reports it as a *jsonError
// naming the field; each decoder turns that into its own error: the event
// decoder an [*EventError] with the event's position, the views (through
// jsonView, jsonview.go) an error wrapping the view's sentinel.

// jsonReader is a strict scanner over one input. Byte offsets in its
// errors count from the start of data.
type jsonReader struct {
	data    []byte
	pos     int
	lines   bool   // JSON lines of events: a newline may not occur inside an event
	scratch []byte // unescaped string contents
}

// jsonError is a reader's refusal: the field at fault ("" for the object
// or input as a whole) and why.
type jsonError struct {
	field, reason string
}

func (e *jsonError) Error() string { return "JSON " + e.field + ": " + e.reason }

// fail returns a refusal. It is kept out of line: refusals are rare, and
// inlined at each of its many call sites it bloats the reads that succeed.
//
//go:noinline
func (r *jsonReader) fail(field, format string, args ...any) *jsonError {
	return &jsonError{field: field, reason: fmt.Sprintf(format, args...)}
}

// unexpected reports the byte at r.pos (or the end of input) where want was
// expected.
func (r *jsonReader) unexpected(field, want string) *jsonError {
	if r.pos >= len(r.data) {
		return r.fail(field, "invalid JSON: input ends at byte offset %d, want %s", r.pos, want)
	}
	c := r.data[r.pos]
	if r.lines && c == '\n' {
		return r.fail(field, "line ends inside the event at byte offset %d, want %s", r.pos, want)
	}
	return r.fail(field, "invalid JSON: unexpected %s at byte offset %d, want %s", quoteByte(c), r.pos, want)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func quoteName(name []byte) string {
	const max = 64
	if len(name) > max {
		return strconv.Quote(string(name[:max])) + "..."
	}
	return strconv.Quote(string(name))
}

// next reports whether the byte at r.pos is c.
func (r *jsonReader) next(c byte) bool { return r.pos < len(r.data) && r.data[r.pos] == c }

// skipSpace skips JSON white space, newlines included: between the events
// of JSON lines, or anywhere outside JSON lines.
func (r *jsonReader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\r', '\n':
			r.pos++
		default:
			return
		}
	}
}

// skipInside skips white space inside a value: in JSON lines it stops at a
// newline, which may not occur inside an event.
func (r *jsonReader) skipInside() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\r':
			r.pos++
		case '\n':
			if r.lines {
				return
			}
			r.pos++
		default:
			return
		}
	}
}

// isNull reports whether the literal null starts at r.pos.
func (r *jsonReader) isNull() bool {
	return len(r.data)-r.pos >= 4 && string(r.data[r.pos:r.pos+4]) == "null"
}

// refuseNull refuses a null where the value of field, or one of its items,
// is wanted: no field of any of omega's JSON forms may be null. It runs at
// every member and item, so it stays small enough to inline.
func (r *jsonReader) refuseNull(field string) error {
	if !r.isNull() {
		return nil
	}
	return &jsonError{field: field, reason: "null is not allowed"}
}

// Objects are read as objectStart, then member and the value and
// objectNext for as long as objectNext reports more, then missing.

// objectStart consumes '{', which the caller has seen at r.pos, and reports
// whether the object has members.
func (r *jsonReader) objectStart() bool {
	r.pos++
	r.skipInside()
	if r.next('}') {
		r.pos++
		return false
	}
	return true
}

// member reads a key and its ':' and returns the key's index in names,
// which must not be in seen yet; it adds it. Then it skips to the value,
// which must not be null. hint is where to start looking: the index after
// the previous key, since members usually come in names' order. names holds
// at most 64 names.
func (r *jsonReader) member(names []string, seen *uint64, hint int) (int, error) {
	r.skipInside()
	if !r.next('"') {
		return -1, r.unexpected("", "a field name")
	}
	name, err := r.str("")
	if err != nil {
		return -1, err
	}
	f := -1
	for k := range names {
		i := hint + k
		if i >= len(names) {
			i -= len(names)
		}
		if names[i] == string(name) {
			f = i
			break
		}
	}
	if f < 0 {
		return -1, r.fail("", "unknown field %s", quoteName(name))
	}
	field := names[f]
	if *seen&(1<<f) != 0 {
		return -1, r.fail(field, "repeated key")
	}
	*seen |= 1 << f
	r.skipInside()
	if !r.next(':') {
		return -1, r.unexpected(field, "':' after the field name")
	}
	r.pos++
	r.skipInside()
	return f, r.refuseNull(field)
}

// objectNext is called after a member's value, of field: it consumes ','
// and reports true, or consumes '}' and reports false.
func (r *jsonReader) objectNext(field string) (more bool, err error) {
	r.skipInside()
	if r.pos >= len(r.data) {
		return false, r.fail(field, "invalid JSON: object not closed: input ends at byte offset %d, want ',' or '}' after the value", r.pos)
	}
	switch r.data[r.pos] {
	case ',':
		r.pos++
		return true, nil
	case '}':
		r.pos++
		return false, nil
	}
	return false, r.unexpected(field, "',' or '}' after the value")
}

// missing refuses an object, of what starting at byte offset at, that lacks
// a required field: it names the first, in names' order.
func (r *jsonReader) missing(names []string, seen, required uint64, what string, at int) error {
	if m := required &^ seen; m != 0 {
		return r.fail(names[bits.TrailingZeros64(m)], "missing from the %s at byte offset %d", what, at)
	}
	return nil
}

// jsonSpan is where a value lies in the reader's data: data[start:end].
type jsonSpan struct{ start, end int }

// members reads the object at r.pos, which holds '{', up to its '}', and
// returns where the value of each key lies, spans[i] for names[i], and
// which keys it holds, bit i for names[i]. It checks the values' JSON
// syntax, not their form: the caller reads each span with the reads below.
// A problem between members is the object's, not a field's.
func (r *jsonReader) members(names []string) (spans []jsonSpan, seen uint64, err error) {
	spans = make([]jsonSpan, len(names))
	hint := 0
	for more := r.objectStart(); more; {
		f, err := r.member(names, &seen, hint)
		if err != nil {
			return nil, 0, err
		}
		hint = f + 1
		start := r.pos
		if err := r.skip(names[f]); err != nil {
			return nil, 0, err
		}
		spans[f] = jsonSpan{start, r.pos}
		if more, err = r.objectNext(""); err != nil {
			return nil, 0, err
		}
	}
	return spans, seen, nil
}

// skip moves past one JSON value of any type at r.pos, checking its syntax
// as any JSON reader does; what it skips, the caller reads again strictly.
func (r *jsonReader) skip(field string) error {
	var buf [16]byte
	open := buf[:0] // the enclosing '[' and '{', innermost last
	for {
		// A value at r.pos.
		r.skipInside()
		if r.pos >= len(r.data) {
			return r.unexpected(field, "a JSON value")
		}
		switch c := r.data[r.pos]; {
		case c == '{' || c == '[':
			r.pos++
			r.skipInside()
			if r.next(closer(c)) {
				r.pos++
				break
			}
			open = append(open, c)
			if c == '{' {
				if err := r.skipKey(field); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, err := r.str(field); err != nil {
				return err
			}
		case c == '-' || '0' <= c && c <= '9':
			if err := r.skipNumber(field); err != nil {
				return err
			}
		case c == 't' && r.literal("true"), c == 'f' && r.literal("false"), c == 'n' && r.literal("null"):
		default:
			return r.unexpected(field, "a JSON value")
		}
		// After a value: close what it ends, until a ',' starts the next.
		for {
			if len(open) == 0 {
				return nil
			}
			r.skipInside()
			c := open[len(open)-1]
			if r.next(',') {
				r.pos++
				if c == '{' {
					if err := r.skipKey(field); err != nil {
						return err
					}
				}
				break
			}
			if !r.next(closer(c)) {
				return r.unexpected(field, fmt.Sprintf("',' or %s", quoteByte(closer(c))))
			}
			r.pos++
			open = open[:len(open)-1]
		}
	}
}

// closer returns the byte that closes what open opens: '}' for '{', ']'
// for '['.
func closer(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

// skipKey moves past a key and its ':' inside a value being skipped.
func (r *jsonReader) skipKey(field string) error {
	r.skipInside()
	if !r.next('"') {
		return r.unexpected(field, "a field name")
	}
	if _, err := r.str(field); err != nil {
		return err
	}
	r.skipInside()
	if !r.next(':') {
		return r.unexpected(field, "':' after the field name")
	}
	r.pos++
	return nil
}

// literal consumes the literal s if it starts at r.pos.
func (r *jsonReader) literal(s string) bool {
	if len(r.data)-r.pos >= len(s) && string(r.data[r.pos:r.pos+len(s)]) == s {
		r.pos += len(s)
		return true
	}
	return false
}

// skipNumber moves past a number in JSON's grammar, exact or not.
func (r *jsonReader) skipNumber(field string) error {
	if r.next('-') {
		r.pos++
	}
	digits := func() error {
		start := r.pos
		for r.pos < len(r.data) && '0' <= r.data[r.pos] && r.data[r.pos] <= '9' {
			r.pos++
		}
		if r.pos == start {
			return r.unexpected(field, "a digit")
		}
		return nil
	}
	if r.next('0') {
		r.pos++
	} else if err := digits(); err != nil {
		return err
	}
	if r.next('.') {
		r.pos++
		if err := digits(); err != nil {
			return err
		}
	}
	if r.next('e') || r.next('E') {
		r.pos++
		if r.next('+') || r.next('-') {
			r.pos++
		}
		return digits()
	}
	return nil
}

// arrayStart consumes '[', which the caller has seen at r.pos, and reports
// whether the array has items.
func (r *jsonReader) arrayStart() bool {
	r.pos++
	r.skipInside()
	if r.next(']') {
		r.pos++
		return false
	}
	return true
}

// arrayNext is called after an array item: it consumes ',' and reports true,
// or consumes ']' and reports false.
func (r *jsonReader) arrayNext(field string) (more bool, err error) {
	r.skipInside()
	if r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ',':
			r.pos++
			r.skipInside()
			return true, nil
		case ']':
			r.pos++
			return false, nil
		}
	}
	return false, r.unexpected(field, "',' or ']' in the array")
}

// str reads a JSON string at r.pos and returns its contents, unescaped.
// The result aliases r.data or r.scratch and is valid until the next call.
func (r *jsonReader) str(field string) ([]byte, error) {
	if !r.next('"') {
		return nil, r.unexpected(field, "a JSON string")
	}
	r.pos++
	start := r.pos
	for i := start; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			r.pos = i + 1
			return r.data[start:i], nil
		case c == '\\':
			r.pos = i
			r.scratch = append(r.scratch[:0], r.data[start:i]...)
			return r.strEscaped(field)
		case c < 0x20:
			r.pos = i
			return nil, r.unexpected(field, "a string character (control characters must be escaped)")
		}
	}
	r.pos = len(r.data)
	return nil, r.unexpected(field, "'\"' ending the string")
}

// strEscaped continues str from the first backslash, unescaping into
// r.scratch.
func (r *jsonReader) strEscaped(field string) ([]byte, error) {
	for r.pos < len(r.data) {
		c := r.data[r.pos]
		switch {
		case c == '"':
			r.pos++
			return r.scratch, nil
		case c < 0x20:
			return nil, r.unexpected(field, "a string character (control characters must be escaped)")
		case c != '\\':
			r.scratch = append(r.scratch, c)
			r.pos++
			continue
		}
		r.pos++
		if r.pos >= len(r.data) {
			break
		}
		switch c := r.data[r.pos]; c {
		case '"', '\\', '/':
			r.scratch = append(r.scratch, c)
		case 'b':
			r.scratch = append(r.scratch, '\b')
		case 'f':
			r.scratch = append(r.scratch, '\f')
		case 'n':
			r.scratch = append(r.scratch, '\n')
		case 'r':
			r.scratch = append(r.scratch, '\r')
		case 't':
			r.scratch = append(r.scratch, '\t')
		case 'u':
			c, ok := r.hex4(r.pos + 1)
			if !ok {
				return nil, r.fail(field, "invalid JSON: bad \\u escape at byte offset %d", r.pos-1)
			}
			r.pos += 4
			if utf16.IsSurrogate(c) {
				if c2, ok := r.hex4(r.pos + 3); ok && r.data[r.pos+1] == '\\' && r.data[r.pos+2] == 'u' {
					if dec := utf16.DecodeRune(c, c2); dec != utf8.RuneError {
						c = dec
						r.pos += 6
					} else {
						c = utf8.RuneError
					}
				} else {
					c = utf8.RuneError
				}
			}
			r.scratch = utf8.AppendRune(r.scratch, c)
		default:
			r.pos--
			return nil, r.fail(field, "invalid JSON: bad escape at byte offset %d", r.pos)
		}
		r.pos++
	}
	return nil, r.unexpected(field, "'\"' ending the string")
}

// hex4 reads four hex digits at i.
func (r *jsonReader) hex4(i int) (rune, bool) {
	if i < 0 || len(r.data)-i < 4 {
		return 0, false
	}
	var v rune
	for _, c := range r.data[i : i+4] {
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
		v = v<<4 | rune(c)
	}
	return v, true
}

// integer reads a JSON number at r.pos and returns its digits, refusing any
// number that is not an exact non-negative integer in canonical form.
func (r *jsonReader) integer(field string) ([]byte, error) {
	start := r.pos
	if r.pos >= len(r.data) {
		return nil, r.unexpected(field, "a JSON integer")
	}
	switch c := r.data[r.pos]; {
	case c == '-':
		return nil, r.fail(field, "negative number at byte offset %d; want an unsigned integer", start)
	case c < '0' || c > '9':
		return nil, r.unexpected(field, "a JSON integer")
	}
	i := r.pos
	for i < len(r.data) && '0' <= r.data[i] && r.data[i] <= '9' {
		i++
	}
	digits := r.data[start:i]
	if i < len(r.data) {
		switch r.data[i] {
		case '.':
			return nil, r.fail(field, "number with a fraction at byte offset %d; want an exact integer", start)
		case 'e', 'E':
			return nil, r.fail(field, "number with an exponent at byte offset %d; want an exact integer", start)
		}
	}
	if len(digits) > 1 && digits[0] == '0' {
		return nil, r.fail(field, "number with a leading zero at byte offset %d", start)
	}
	r.pos = i
	return digits, nil
}

// uint reads a JSON integer no greater than max; typ names the field's type.
func (r *jsonReader) uint(field string, max uint64, typ string) (uint64, error) {
	start := r.pos
	digits, err := r.integer(field)
	if err != nil {
		return 0, err
	}
	var v uint64
	if len(digits) > 20 {
		return 0, r.tooBig(field, digits, typ, start)
	}
	for _, c := range digits {
		hi, lo := bits.Mul64(v, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, r.tooBig(field, digits, typ, start)
		}
		v = lo
	}
	if v > max {
		return 0, r.tooBig(field, digits, typ, start)
	}
	return v, nil
}

func (r *jsonReader) tooBig(field string, digits []byte, typ string, at int) *jsonError {
	if len(digits) > 40 {
		return r.fail(field, "a %d-digit number at byte offset %d exceeds the %s range", len(digits), at, typ)
	}
	return r.fail(field, "%s at byte offset %d exceeds the %s range", digits, at, typ)
}

// u128 reads a u128 written as a JSON integer, in full decimal.
func (r *jsonReader) u128(field string) (EventID, error) {
	start := r.pos
	digits, err := r.integer(field)
	if err != nil {
		return EventID{}, err
	}
	id, err := parseDecimal128(digits)
	if err != nil {
		return EventID{}, r.tooBig(field, digits, "u128", start)
	}
	return id, nil
}

// hex reads a string of exactly 2*len(dst) hex digits into dst: lowercase
// when lower is set, as the views write them (SPEC 4 and 6), in either case
// otherwise, as event input may (SPEC 3).
func (r *jsonReader) hex(dst []byte, field string, lower bool) error {
	start := r.pos
	s, err := r.str(field)
	if err != nil {
		return err
	}
	if len(s) != 2*len(dst) {
		return r.fail(field, "string at byte offset %d has %d characters; want %d hex digits", start, len(s), 2*len(dst))
	}
	if lower {
		for _, c := range s {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return r.fail(field, "string at byte offset %d is not lowercase hex", start)
			}
		}
	}
	if _, err := hex.Decode(dst, s); err != nil {
		return r.fail(field, "string at byte offset %d is not hex", start)
	}
	return nil
}
