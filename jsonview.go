package omega

import (
	"fmt"
	"math"
)

// Reading the views of SPEC 4 and 6 (result_json_decode.go, cert_json.go)
// with the strict reader of jsonread.go, in two passes: members finds where
// each field's value lies, then each is read by its field's rules. Which
// fields a view has depends on one of them (a result's kind, a
// certificate's cert_type) and the members may come in any order, so the
// values are read once every member is known.

// jsonView reads one view from its input, keeping the first error, which
// wraps kind: the sentinel of the view being decoded.
type jsonView struct {
	r    jsonReader
	kind error
	err  error
}

func newJSONView(kind error, b []byte) *jsonView {
	return &jsonView{r: jsonReader{data: b}, kind: kind}
}

// malformedJSON returns an error wrapping kind, the sentinel of the view
// being decoded, that names the field at fault.
func malformedJSON(kind error, field, format string, args ...any) error {
	return fmt.Errorf("%w: JSON %s: %s", kind, field, fmt.Sprintf(format, args...))
}

func (v *jsonView) fail(field, format string, args ...any) {
	if v.err == nil {
		v.err = malformedJSON(v.kind, field, format, args...)
	}
}

// check keeps err, a reader's, as the view's error unless one came first,
// and reports whether there is none. A problem of no one field is what's:
// the object being read.
func (v *jsonView) check(err error, what string) bool {
	if v.err != nil {
		return false
	}
	if err == nil {
		return true
	}
	field, reason := what, err.Error()
	if je, ok := err.(*jsonError); ok {
		reason = je.reason
		if je.field != "" {
			field = je.field
		}
	}
	v.fail(field, "%s", reason)
	return false
}

// whole is the span of the whole input.
func (v *jsonView) whole() jsonSpan { return jsonSpan{0, len(v.r.data)} }

// at places the reader at s, unless there was an error.
func (v *jsonView) at(s jsonSpan) bool {
	v.r.pos = s.start
	return v.err == nil
}

// object reads the object of what at s, with its members from names: where
// their values lie, and which it holds (see members). s may have white
// space around the object, as a whole input may, but nothing else.
// After an error it returns len(names) empty spans, for the reads that
// follow to skip.
func (v *jsonView) object(s jsonSpan, what string, names []string) (spans []jsonSpan, seen uint64, at int) {
	if v.at(s) {
		v.r.skipSpace()
		at = v.r.pos
		if !v.r.next('{') {
			v.fail(what, "not a JSON object")
		} else {
			var err error
			spans, seen, err = v.r.members(names)
			if v.check(err, what) {
				if v.r.skipSpace(); v.r.pos < s.end {
					v.fail(what, "data after the object")
				}
			}
		}
	}
	if v.err != nil {
		return make([]jsonSpan, len(names)), 0, at
	}
	return spans, seen, at
}

// fields is object for an object that must hold every one of names.
func (v *jsonView) fields(s jsonSpan, what string, names []string) []jsonSpan {
	spans, seen, at := v.object(s, what, names)
	if v.err == nil {
		v.check(v.r.missing(names, seen, 1<<len(names)-1, what, at), what)
	}
	return spans
}

func (v *jsonView) str(s jsonSpan, field string) string {
	if !v.at(s) {
		return ""
	}
	b, err := v.r.str(field)
	v.check(err, field)
	return string(b)
}

func (v *jsonView) uint(s jsonSpan, field string, max uint64, typ string) uint64 {
	if !v.at(s) {
		return 0
	}
	x, err := v.r.uint(field, max, typ)
	v.check(err, field)
	return x
}

func (v *jsonView) u128(s jsonSpan, field string) EventID {
	if !v.at(s) {
		return EventID{}
	}
	id, err := v.r.u128(field)
	v.check(err, field)
	return id
}

// hex fills dst from lowercase hex, as the views write it.
func (v *jsonView) hex(dst []byte, s jsonSpan, field string) {
	if v.at(s) {
		v.check(v.r.hex(dst, field, true), field)
	}
}

func (v *jsonView) hash(s jsonSpan, field string) (h Hash) {
	v.hex(h[:], s, field)
	return h
}

// items reads the array at s, calling item to read each item at v.r.pos,
// which is not null.
func (v *jsonView) items(s jsonSpan, field string, item func() error) {
	if !v.at(s) {
		return
	}
	if !v.r.next('[') {
		v.check(v.r.unexpected(field, "a JSON array"), field)
		return
	}
	for more := v.r.arrayStart(); more; {
		err := v.r.refuseNull(field)
		if err == nil {
			err = item()
		}
		if err == nil {
			more, err = v.r.arrayNext(field)
		}
		if !v.check(err, field) {
			return
		}
	}
}

// ids reads an array of u128 ids.
func (v *jsonView) ids(s jsonSpan, field string) []EventID {
	ids := []EventID{}
	v.items(s, field, func() error {
		id, err := v.r.u128(field)
		ids = append(ids, id)
		return err
	})
	return ids
}

// hashes reads an array of hashes in lowercase hex.
func (v *jsonView) hashes(s jsonSpan, field string) []Hash {
	hs := []Hash{}
	v.items(s, field, func() error {
		var h Hash
		err := v.r.hex(h[:], field, true)
		hs = append(hs, h)
		return err
	})
	return hs
}

// checkerVersion reads a checker_version: an array of three u16, in the
// binding view and the certificate view alike.
func (v *jsonView) checkerVersion(s jsonSpan) (cv [3]uint16) {
	const field = "checker_version"
	n := 0
	v.items(s, field, func() error {
		x, err := v.r.uint(field, math.MaxUint16, "u16")
		if n < len(cv) {
			cv[n] = uint16(x)
		}
		n++
		return err
	})
	if v.err == nil && n != len(cv) {
		v.fail(field, "%d numbers, want %d", n, len(cv))
	}
	return cv
}
