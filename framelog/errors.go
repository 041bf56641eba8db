package framelog

import (
	"errors"
	"fmt"

	"github.com/omega-sheaf/omega/internal/errcat"
	"github.com/omega-sheaf/omega/internal/filelock"
)

// Format errors. Each wraps omega.ErrFormat (the same value as
// [github.com/omega-sheaf/omega.ErrFormat]); the error types [*HeaderError]
// and [*FrameError] unwrap to one of them.
var (
	// ErrBadHeader reports a malformed or short .omega file header.
	ErrBadHeader = formatError("omega: bad frame log header")
	// ErrTornTail reports a bad frame with no valid frame after it: the
	// normal result of a crash during a write.
	ErrTornTail = formatError("omega: torn tail")
	// ErrCorrupt reports a bad frame followed by a valid one, or a frame
	// whose CRC holds over an invalid type or reserved field.
	ErrCorrupt = formatError("omega: corrupt frame log")
	// ErrSchemaMismatch reports a log whose header differs from the one
	// the caller expects. It is a binding error (SPEC 4): it wraps
	// omega.ErrBindingMismatch, so errors.Is matches either.
	ErrSchemaMismatch = fmt.Errorf("%w: frame log bound to another schema", errcat.ErrBindingMismatch)
)

func formatError(msg string) error { return errcat.New(errcat.ErrFormat, msg) }

// Errors in no category: a program's own mistakes, and I/O.
var (
	// ErrInvalidFrameType reports an attempt to write a frame of type 0 or
	// 7-0x7FFF.
	ErrInvalidFrameType = errors.New("omega: invalid frame type")
	// ErrFrameTooLarge reports an attempt to write a frame over the maximum
	// frame length.
	ErrFrameTooLarge = errors.New("omega: frame too large")
	// ErrWriterClosed reports a use of a closed [Writer].
	ErrWriterClosed = errors.New("omega: frame writer closed")
	// ErrWriterFailed wraps the first write, fsync or close error of a
	// [Writer]; every later call returns the same error.
	ErrWriterFailed = errors.New("omega: frame writer failed")
	// ErrUnknownSyncPolicy reports a [WriterOptions] whose Sync is not one
	// of the [SyncPolicy] constants.
	ErrUnknownSyncPolicy = errors.New("omega: unknown sync policy")
	// ErrLocked reports a file that another appender holds (SPEC 8): another
	// process, or another [Open] or [NewWriter] in this process, or an omega
	// certificate store. The error wrapping it names the file.
	ErrLocked = filelock.ErrLocked
)

// Constants of the format. Frozen wire format.
const (
	// HeaderSize is the length of the .omega file header, and the offset of
	// the first frame (SPEC 5).
	HeaderSize = 64
	// FrameHeaderLen is the length of a frame's header: frame_len, frame_crc32,
	// frame_type and reserved. A frame's payload starts this many bytes after
	// its offset.
	FrameHeaderLen = 12
	// DefaultMaxFrameLen is the largest frame_len (frame header included)
	// that readers accept and writers produce when the options leave
	// MaxFrameLen zero.
	DefaultMaxFrameLen = 64 << 20
)
