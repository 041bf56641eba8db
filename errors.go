package omega

import (
	"errors"
	"fmt"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/errcat"
)

// Error categories. Every sentinel error of omega, and every error type,
// wraps at most one of these, so a program picks its response with one
// errors.Is; the specific sentinels stay for those who need them. They are
// the classes of the example command's exit codes (SPEC 9): 10, 20 and 30.
//
//   - [ErrFormat]: bytes or values that are not in the form they must be,
//     or are bound to another schema or checker. Refuse the input; nothing
//     was signed or decided. [framelog.ErrBadHeader], [framelog.ErrTornTail], [framelog.ErrCorrupt],
//     [ErrBindingMismatch] (and [ErrSchemaMismatch], which wraps it),
//     [ErrMalformedEvent], [ErrMalformedBatch], [ErrMalformedIncident],
//     [ErrMalformedResult], [ErrMalformedSnapshot], [ErrReplayFormat],
//     [ErrBatchTooLarge], [ErrBadKey], [ErrInvalidState] and
//     [ErrCannotCertify]; the types [*framelog.HeaderError], [*framelog.FrameError],
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
// that accept one test [framelog.ErrTornTail] before the category.
//
// Errors of a program's own making, and I/O, belong to no category:
// [ErrNotEd25519], [framelog.ErrInvalidFrameType], [framelog.ErrFrameTooLarge],
// [framelog.ErrWriterClosed], [framelog.ErrWriterFailed] (which wraps the I/O error),
// [framelog.ErrUnknownSyncPolicy], [ErrLocked] (a file another appender holds),
// [ErrJournal] (a decision the program hands a
// journal out of turn), [ErrKernelClosed], predicates.ErrInvalidEntry, options out of range,
// and the errors of files, readers and writers, passed through.
var (
	// ErrFormat is the category of input that does not decode, or is bound
	// to another schema or checker.
	ErrFormat = errcat.ErrFormat
	// ErrVerification is the category of a certificate, chain or proof that
	// does not verify.
	ErrVerification = errcat.ErrVerification
	// ErrDivergence is the category of a replay incident.
	ErrDivergence = errcat.ErrDivergence
)

// Errors in the [ErrFormat] category: each wraps ErrFormat, and the error
// types of this category ([*framelog.HeaderError], [*framelog.FrameError], [*EventError],
// [*BindingError], [*SnapshotError]) unwrap to one of them, or wrap one
// with %w. Every error of the frame log wraps one of these or of the
// uncategorised errors below, or is the error of the underlying file,
// reader or writer, passed through (a writer's wrapped with
// [framelog.ErrWriterFailed]).
var (
	// ErrBindingMismatch is returned when an output, a log or a certificate was
	// made under another binding than the one expected.
	ErrBindingMismatch = errcat.ErrBindingMismatch
	// ErrSchemaMismatch reports a log whose header differs from the one
	// the caller expects. It is a binding error (SPEC 4): it wraps
	// [ErrBindingMismatch], so errors.Is matches either. It is
	// [framelog.ErrSchemaMismatch].
	ErrSchemaMismatch = framelog.ErrSchemaMismatch
	// ErrMalformedEvent is the sentinel of every event decoding and validation
	// failure; the concrete error is an [*EventError].
	ErrMalformedEvent = newSentinel(ErrFormat, "omega: malformed event")
	// ErrMalformedBatch reports a BATCH frame payload that does not decode: a
	// wrong length, a non-zero pad, an unknown kind, or a member count that
	// disagrees with the payload's length (SPEC 5).
	ErrMalformedBatch = newSentinel(ErrFormat, "omega: malformed BATCH record")
	// ErrMalformedIncident reports an INCIDENT payload that does not decode.
	ErrMalformedIncident = newSentinel(ErrFormat, "omega: malformed incident")
	// ErrMalformedResult reports a JSON view of a result, a binding or a checker
	// output that does not decode, or whose recomputable fields do not follow
	// from the others.
	ErrMalformedResult = newSentinel(ErrFormat, "omega: malformed result")
	// ErrMalformedSnapshot is the sentinel of every snapshot that cannot be
	// encoded or decoded; the concrete error is a [*SnapshotError].
	ErrMalformedSnapshot = newSentinel(ErrFormat, "omega: malformed snapshot")
	// ErrReplayFormat reports a log or snapshot replay cannot read: a bad
	// header, corruption, an invalid frame type, a malformed BATCH or EVENT
	// payload, a base offset off the frame boundaries, or a batch the checker
	// refuses to decide; and for a log read in segments, no segment, a segment
	// whose header differs from the first one's, or a torn tail or header
	// before the last segment. Replay reports these as errors, not incidents
	// (SPEC 7).
	ErrReplayFormat = newSentinel(ErrFormat, "omega: replay format error")
	// ErrBatchTooLarge is returned for a batch of more than [MaxBatchContents]
	// distinct contents.
	ErrBatchTooLarge = newSentinel(ErrFormat, "omega: batch too large")
	// ErrBadKey reports key bytes that are not one Ed25519 key in the expected
	// PEM form: no PEM block, a PEM block of the wrong type or with headers,
	// anything but whitespace around the block (a second block included), DER
	// that does not parse, or a key of another algorithm (which also wraps
	// [ErrNotEd25519]).
	ErrBadKey = newSentinel(ErrFormat, "omega: bad key")
	// ErrInvalidState is returned by [NewState] for contents no sequence of
	// merges could produce.
	ErrInvalidState = newSentinel(ErrFormat, "omega: invalid state")
	// ErrCannotCertify reports an output or batch metadata that no
	// certificate can hold: no result, batch id 0, or a result whose fields
	// disagree with its kind or exceed the body's count fields.
	ErrCannotCertify = newSentinel(ErrFormat, "omega: cannot certify")
)

// Errors in the [ErrVerification] category: each wraps ErrVerification.
// Every error of [Verify] and [VerifyChain] wraps exactly one of
// ErrMalformedCertificate to ErrChainState, or [ErrBindingMismatch] for a
// binding failure.
var (
	// ErrMalformedCertificate reports an envelope that does not decode.
	ErrMalformedCertificate = newSentinel(ErrVerification, "omega: malformed certificate")
	// ErrBodyHash reports a body_hash that is not D("cert body", body).
	ErrBodyHash = newSentinel(ErrVerification, "omega: certificate body hash mismatch")
	// ErrCertID reports a cert_id that is not the certificate's content id.
	ErrCertID = newSentinel(ErrVerification, "omega: certificate id mismatch")
	// ErrUnknownKey reports an issuer_key_id that is not in the key ring.
	ErrUnknownKey = newSentinel(ErrVerification, "omega: certificate signed by an unknown key")
	// ErrBadSignature reports a signature that does not verify.
	ErrBadSignature = newSentinel(ErrVerification, "omega: bad certificate signature")
	// ErrDigestMismatch reports a body digest that does not follow from the
	// others (merged state hash, witness, overlap context digest).
	ErrDigestMismatch = newSentinel(ErrVerification, "omega: certificate digest mismatch")
	// ErrChainLink reports a prev_cert_hash that is not the previous
	// certificate's cert_hash: a certificate missing, repeated or moved.
	ErrChainLink = newSentinel(ErrVerification, "omega: certificate chain link broken")
	// ErrBatchOrder reports a batch_id not greater than the previous one.
	ErrBatchOrder = newSentinel(ErrVerification, "omega: certificate batch id out of order")
	// ErrChainState reports a prior_state_hash that is not the merged state
	// of the last Merge before it, or a frontier_digest that does not extend
	// the previous Merge's.
	ErrChainState = newSentinel(ErrVerification, "omega: certificate chain state mismatch")
	// ErrObstructionInvalid is returned by [Checker.VerifyObstruction] when an
	// obstruction's evidence does not establish its violation.
	ErrObstructionInvalid = newSentinel(ErrVerification, "omega: obstruction does not verify")
	// ErrPriorMismatch is returned by [Checker.VerifyObstruction] when the
	// violation depends on history and the trusted prior State given is not the
	// one the obstruction names.
	ErrPriorMismatch = newSentinel(ErrVerification, "omega: obstruction names another prior state")
	// ErrNotIncluded is returned when an inclusion proof does not lead to the
	// trace root, or when a result has no such event.
	ErrNotIncluded = newSentinel(ErrVerification, "omega: event not included")
)

// Errors in no category: a program's own mistakes, and I/O.
var (
	// ErrNotEd25519 reports a signer whose public key is not an Ed25519 key.
	ErrNotEd25519 = errors.New("omega: signer is not an Ed25519 key")
	// ErrLocked reports a file that another appender holds (SPEC 8): another
	// process, or another [framelog.Open], [framelog.NewWriter],
	// [OpenCertStore] or [OpenJournal] in this process. The error wrapping it
	// names the file. It is [framelog.ErrLocked].
	ErrLocked = framelog.ErrLocked
	// ErrJournal reports a batch a [Journal] refuses to record: a batch id that
	// does not increase, an output decided from another State or by another
	// checker, or a member that was not logged. Nothing is appended.
	ErrJournal = errors.New("omega: journal refused the batch")
	// ErrKernelClosed reports a call on a [Kernel] that Close has closed.
	ErrKernelClosed = errors.New("omega: kernel closed")
)

func newSentinel(cat error, msg string) error { return errcat.New(cat, msg) }

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
