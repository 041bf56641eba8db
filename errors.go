package omega

import (
	"errors"
	"fmt"
)

// Error categories. Every sentinel error of omega, and every error type,
// wraps at most one of these, so a program picks its response with one
// errors.Is; the specific sentinels stay for those who need them. They are
// the classes of the example command's exit codes (SPEC 9): 10, 20 and 30.
//
//   - [ErrFormat]: bytes or values that are not in the form they must be,
//     or are bound to another schema or checker. Refuse the input; nothing
//     was signed or decided. [ErrBadHeader], [ErrTornTail], [ErrCorrupt],
//     [ErrBindingMismatch] (and [ErrSchemaMismatch], which wraps it),
//     [ErrMalformedEvent], [ErrMalformedBatch], [ErrMalformedIncident],
//     [ErrMalformedResult], [ErrMalformedSnapshot], [ErrReplayFormat],
//     [ErrBatchTooLarge], [ErrBadKey], [ErrInvalidState] and
//     [ErrCannotCertify]; the types [*HeaderError], [*FrameError],
//     [*EventError], [*BindingError] and [*SnapshotError].
//   - [ErrVerification]: a certificate, signature, chain, inclusion proof or
//     obstruction that does not verify: evidence that something was altered,
//     forged or lost. [ErrMalformedCertificate], [ErrBodyHash], [ErrCertID],
//     [ErrUnknownKey], [ErrBadSignature], [ErrDigestMismatch],
//     [ErrChainLink], [ErrBatchOrder], [ErrChainState],
//     [ErrObstructionInvalid], [ErrPriorMismatch] and [ErrNotIncluded].
//   - [ErrDivergence]: a replay that did not reproduce the recorded history:
//     an [*Incident], as [ReplayReport.Err] returns it.
//
// [*ChainError] and [*CertLogError] take the category of the error they
// wrap. A certificate made under another binding fails [Verify] with a
// [*BindingError], a format error: the certificate may be sound, for
// another checker. A torn tail is the normal trace of a crash; readers
// that accept one test [ErrTornTail] before the category.
//
// Errors of a program's own making, and I/O, belong to no category:
// [ErrNotEd25519], [ErrInvalidFrameType], [ErrFrameTooLarge],
// [ErrWriterClosed], [ErrWriterFailed] (which wraps the I/O error),
// [ErrUnknownSyncPolicy], [ErrLocked] (a file another appender holds),
// [ErrJournal] (a decision the program hands a
// journal out of turn), predicates.ErrInvalidEntry, options out of range,
// and the errors of files, readers and writers, passed through.
var (
	// ErrFormat is the category of input that does not decode, or is bound
	// to another schema or checker.
	ErrFormat = errors.New("omega: format error")
	// ErrVerification is the category of a certificate, chain or proof that
	// does not verify.
	ErrVerification = errors.New("omega: verification failed")
	// ErrDivergence is the category of a replay incident.
	ErrDivergence = errors.New("omega: replay diverged")
)

// sentinel is a specific error of one category: its message, and the
// category it unwraps to.
type sentinel struct {
	msg string
	cat error
}

func newSentinel(cat error, msg string) error { return &sentinel{msg: msg, cat: cat} }

func (e *sentinel) Error() string { return e.msg }

// Unwrap returns the category.
func (e *sentinel) Unwrap() error { return e.cat }

// Error describes the first difference the incident records. An *Incident
// is an error in the [ErrDivergence] category, so that a program can
// return it; [ReplayReport.Err] does.
func (inc *Incident) Error() string {
	return fmt.Sprintf("omega: replay incident: %v differs at batch %d (event %v)", inc.Field, inc.BatchID, inc.EventID)
}

// Unwrap returns [ErrDivergence].
func (inc *Incident) Unwrap() error { return ErrDivergence }

// Err returns the report's incident, as an error wrapping [ErrDivergence],
// when the replay diverged, and nil otherwise.
func (r *ReplayReport) Err() error {
	switch {
	case r.Outcome != Diverged:
		return nil
	case r.Incident == nil:
		return ErrDivergence
	}
	return r.Incident
}
