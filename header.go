package omega

import (
	"fmt"

	"github.com/omega-sheaf/omega/framelog"
)

// Header returns the frame log header of logs whose events b's checker
// reads: b's schema version and schema hash (SPEC 5).
func (b Binding) Header() framelog.Header {
	return framelog.Header{SchemaVersion: b.SchemaVersion, SchemaHash: b.SchemaHash}
}

// CheckHeader reports whether a log with header h may be read by a checker
// with binding b (SPEC 4): nil when h carries b's schema version and schema
// hash, else an error wrapping [ErrSchemaMismatch], a binding error. An
// unbound header (see [framelog.Header.Bound]) is refused too, as the
// runtime refuses it: its events' schema is unknown. A reader that accepts
// unbound logs and reports them as such, as the example command's ingest
// does, asks Bound first:
//
//	if hdr.Bound() {
//		err = want.CheckHeader(hdr)
//	}
//
// Replay does not use CheckHeader: there any binding difference, an unbound
// header included, is an incident (SPEC 7).
func (b Binding) CheckHeader(h framelog.Header) error {
	if !h.Bound() {
		return fmt.Errorf("%w: the header's schema hash is all zero (an unbound log), so its events' schema is unknown; want schema version %d, hash %v",
			ErrSchemaMismatch, b.SchemaVersion, b.SchemaHash)
	}
	if Hash(h.SchemaHash) != b.SchemaHash || h.SchemaVersion != b.SchemaVersion {
		return fmt.Errorf("%w: the header has schema version %d, hash %v; want version %d, hash %v",
			ErrSchemaMismatch, h.SchemaVersion, Hash(h.SchemaHash), b.SchemaVersion, b.SchemaHash)
	}
	return nil
}
