package omega

import "fmt"

// Bound reports whether h names the schema of its log's events: whether its
// schema hash is not all zero. The original system's tools wrote an all-zero
// schema hash; such a log is unbound (SPEC 4).
func (h Header) Bound() bool { return !h.SchemaHash.IsZero() }

// Check reports whether a log with header h may be read by a checker with
// binding want (SPEC 4): nil when h carries want's schema version and schema
// hash, else an error wrapping [ErrSchemaMismatch], a binding error. An
// unbound header (see [Header.Bound]) is refused too, as the runtime refuses
// it: its events' schema is unknown. A reader that accepts unbound logs and
// reports them as such, as the example command's ingest does, asks Bound
// first:
//
//	if hdr.Bound() {
//		err = hdr.Check(want)
//	}
//
// Replay does not use Check: there any binding difference, an unbound header
// included, is an incident (SPEC 7).
func (h Header) Check(want Binding) error {
	if !h.Bound() {
		return fmt.Errorf("%w: the header's schema hash is all zero (an unbound log), so its events' schema is unknown; want schema version %d, hash %v",
			ErrSchemaMismatch, want.SchemaVersion, want.SchemaHash)
	}
	if h.SchemaHash != want.SchemaHash || h.SchemaVersion != want.SchemaVersion {
		return fmt.Errorf("%w: the header has schema version %d, hash %v; want version %d, hash %v",
			ErrSchemaMismatch, h.SchemaVersion, h.SchemaHash, want.SchemaVersion, want.SchemaHash)
	}
	return nil
}
