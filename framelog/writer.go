// Writing the .omega frame log (SPEC 5): Writer, its sync policies,
// and Open, which recovers an existing log before appending to it.
// doc.go describes the format.

package framelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/omega-sheaf/omega/internal/filelock"
	"github.com/omega-sheaf/omega/internal/fsync"
)

// Buffer sizes; not part of the format.
const (
	frameWriteBuffer = 64 << 10
	maxWriteBuffer   = 64 << 20 // a larger WriterOptions.BufferSize is this
)

// SyncPolicy says when a [Writer] makes appended frames durable.
type SyncPolicy uint8

const (
	// SyncBatch (the default) syncs when the caller calls Sync, typically
	// once per batch: a group commit.
	SyncBatch SyncPolicy = iota
	// SyncAlways syncs at the end of every Append.
	SyncAlways
	// SyncNever never syncs: Sync and Close only hand the buffered bytes
	// to the operating system. Nothing is durable; for tests, benchmarks
	// and scratch files.
	SyncNever
)

// WriterOptions configures a [Writer], also those that omega's journals and
// certificate stores open. A nil *WriterOptions and zero fields mean the
// defaults.
type WriterOptions struct {
	Sync SyncPolicy
	// MaxFrameLen caps frame_len as in ReadOptions; Append refuses a
	// longer frame with ErrFrameTooLarge. Readers of the log need a
	// MaxFrameLen at least as large.
	MaxFrameLen int
	// BufferSize is how many bytes are buffered before a write; zero or
	// negative means 64 KiB, and more than 64 MiB means 64 MiB. A frame
	// larger than the buffer is written directly.
	BufferSize int
	// FS is the file system Open reaches the file through; nil means
	// package os. NewWriter ignores it.
	FS FS
	// Visit, when not nil, is called by Open with every valid frame of an
	// existing log as recovery reads it, in order, before anything is
	// truncated or written: a program indexes its log in the same pass that
	// recovers it. The frame's payload is valid only during the call. An
	// error of Visit ends Open, leaving the file untouched, and is returned
	// as it is. NewWriter ignores it.
	Visit func(Frame) error
}

// Writer appends frames to a log, buffered, and makes them durable on
// Sync according to its [SyncPolicy]. A frame whose Append returned before a
// successful Sync survives a crash (SPEC 5).
//
// The first failed write, fsync or close puts the writer in a failed state:
// every later call returns that error, which wraps [ErrWriterFailed] and the
// cause. Data is never reported durable after a failed fsync: a retried
// fsync may succeed after the kernel dropped the dirty pages.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	syncer  interface{ Sync() error } // nil when w cannot sync
	closer  io.Closer                 // the file Open opened, else nil
	lock    filelock.File             // the file whose appender's lock the writer holds, else nil
	file    io.ReaderAt               // the file Open opened, for ReadAt; else nil
	cut     int64                     // bytes Open cut off the end of the file in recovering it
	buf     []byte
	bufSize int
	maxLen  uint32
	policy  SyncPolicy
	size    int64 // offset of the next frame: the log's length, buffered bytes included
	err     error // sticky failure
	closed  bool
}

func errUnknownPolicy(p SyncPolicy) error {
	return fmt.Errorf("%w %d", ErrUnknownSyncPolicy, p)
}

func newWriter(w io.Writer, size int64, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.Sync > SyncNever {
		return nil, errUnknownPolicy(o.Sync)
	}
	if o.BufferSize <= 0 {
		o.BufferSize = frameWriteBuffer
	}
	o.BufferSize = min(o.BufferSize, maxWriteBuffer)
	fw := &Writer{
		w:       w,
		buf:     make([]byte, 0, o.BufferSize),
		bufSize: o.BufferSize,
		maxLen:  maxFrameLen(o.MaxFrameLen),
		policy:  o.Sync,
		size:    size,
	}
	if s, ok := w.(interface{ Sync() error }); ok {
		fw.syncer = s
	}
	return fw, nil
}

// NewWriter returns a writer of a new log to w: the header first, then
// the frames appended. Offsets count from the header's first byte. When w
// has a Sync() error method (an *os.File does), Sync calls it according to
// the policy; otherwise Sync only writes out the buffer. Close does not close
// w. It panics if w is nil, a programming error; an unknown sync policy is
// refused with an error wrapping [ErrUnknownSyncPolicy].
//
// When w is an *os.File holding a regular file, the writer takes the
// appender's lock on it, as Open does, and releases it at Close; a
// file another appender holds is refused with an error wrapping
// [ErrLocked].
func NewWriter(w io.Writer, hdr Header, opts *WriterOptions) (*Writer, error) {
	if w == nil {
		panic("omega: NewWriter with a nil io.Writer")
	}
	fw, err := newWriter(w, HeaderSize, opts)
	if err != nil {
		return nil, err
	}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if err := filelock.Lock(f, f.Name()); err != nil {
				return nil, err
			}
			fw.lock = f
		}
	}
	fw.buf, _ = hdr.AppendBinary(fw.buf)
	return fw, nil
}

// Open opens the log at path for appending, creating it when it
// does not exist.
//
// A new file gets hdr as its header; the file and its directory are synced
// before Open returns. An existing file is recovered first: a file
// with a torn header (a creation cut short, by the torn-header rule of
// SPEC 5; a zeroed header followed by nothing but zero bytes included) is
// truncated and gets hdr as its header, and the file and its directory are
// synced; a torn tail is truncated (and synced); a header other than hdr is
// refused with an error wrapping [ErrSchemaMismatch] (an all-zero schema
// hash included, unless hdr's is zero too); a bad header, a zeroed header
// followed by a non-zero byte included, is refused with a [*HeaderError]
// (wrapping [ErrBadHeader]); corruption is refused with its [*FrameError]
// (wrapping [ErrCorrupt]); an unknown sync policy is refused with an error
// wrapping [ErrUnknownSyncPolicy]. A refused file is left untouched.
//
// The file is read with the options' MaxFrameLen. A last frame over it is a
// torn tail to the readers (SPEC 5), but when it is whole under a CRC that
// holds, it was written with a larger maximum: rather than cut it off,
// Open refuses the file with an error wrapping [ErrFrameTooLarge].
//
// The writer holds an exclusive appender's lock on the file from before it
// is read until Close (SPEC 8): a file that another writer (an omega
// certificate store's included) holds, in this process or, where flock(2)
// exists (Linux, the BSDs, macOS, illumos), in another, is refused with an error wrapping
// [ErrLocked] that names it, and left untouched. Elsewhere only appenders of
// the same process are kept apart. Closing the writer releases the lock and
// closes the file.
func Open(path string, hdr Header, opts *WriterOptions) (*Writer, error) {
	var (
		maxLen int
		fsys   FS = OS{}
		visit  func(Frame) error
	)
	if opts != nil {
		maxLen, visit = opts.MaxFrameLen, opts.Visit
		if opts.Sync > SyncNever {
			return nil, errUnknownPolicy(opts.Sync)
		}
		if opts.FS != nil {
			fsys = opts.FS
		}
	}
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = fsys.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, err
	}
	// The lock comes before anything is read or written: recovery may
	// truncate, which another appender's frames must never meet.
	if err := filelock.Lock(f, path); err != nil {
		f.Close()
		return nil, err
	}
	var size, cut int64
	if created {
		err = initFrameLog(fsys, f, path, hdr)
		size = HeaderSize
	} else {
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil {
			var tornHeader bool
			size, tornHeader, err = recoverFrameLog(fsys, f, path, hdr, maxLen, visit)
			cut = fi.Size() - size
			if tornHeader {
				cut = fi.Size() // all of it; the header is new
			}
		}
	}
	var w *Writer
	if err == nil {
		w, err = newWriter(f, size, opts)
	}
	if err != nil {
		filelock.Unlock(f)
		f.Close()
		return nil, err
	}
	w.closer, w.lock, w.file = f, f, f
	w.cut = cut
	return w, nil
}

// initFrameLog writes hdr as the whole content of f and syncs f and its
// directory, leaving f positioned after the header.
func initFrameLog(fsys FS, f File, path string, hdr Header) error {
	h, _ := hdr.AppendBinary(nil)
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(h, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	_, err := f.Seek(HeaderSize, io.SeekStart)
	return err
}

// checkOverlongTail refuses to cut a torn tail that is a whole frame over
// maxLen: a frame_len over the maximum makes a bad frame (SPEC 5), but one
// that ends within the file under a CRC that holds was written by a writer
// with a larger maximum, and truncating it would drop a durable frame.
func checkOverlongTail(f File, path string, off int64, maxLen uint32) error {
	var h [frameHeaderLen]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return nil // cut short: torn indeed
	}
	n := int64(binary.LittleEndian.Uint32(h[:]))
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if n <= int64(maxLen) || off+n > fi.Size() {
		return nil
	}
	// Only the CRC counts, not the type or reserved field: under a larger
	// maximum, a frame whose CRC holds is valid or, by SPEC 5, corrupt,
	// never torn.
	if ok, err := frameCRCValidAt(f, off, h[:]); !ok {
		return err
	}
	return fmt.Errorf("%w: %s: the frame at offset %d is %d bytes, over the maximum %d, and whole under a CRC that holds; "+
		"it is not cut off: open the log with a MaxFrameLen of at least %d", ErrFrameTooLarge, path, off, n, maxLen, n)
}

// recoverFrameLog recovers the existing log in f for appending and leaves
// f positioned at its end, which it returns, and whether the header was
// torn (and is new).
func recoverFrameLog(fsys FS, f File, path string, hdr Header, maxLen int, visit func(Frame) error) (int64, bool, error) {
	r := NewReader(f, &ReadOptions{MaxFrameLen: maxLen})
	got, err := r.Header()
	if err != nil {
		return 0, false, err
	}
	if r.TornHeader() {
		// Nothing in the file was acknowledged. Make the truncation durable
		// before the header is written, so that no crash can leave a valid
		// header in front of the zero bytes that followed a zeroed one.
		if err := f.Truncate(0); err != nil {
			return 0, false, err
		}
		if err := f.Sync(); err != nil {
			return 0, false, err
		}
		return HeaderSize, true, initFrameLog(fsys, f, path, hdr)
	}
	if got != hdr {
		return 0, false, fmt.Errorf("%w: %s has schema version %d, schema hash %x; want version %d, hash %x",
			ErrSchemaMismatch, path, got.SchemaVersion, got.SchemaHash, hdr.SchemaVersion, hdr.SchemaHash)
	}
	end := int64(HeaderSize)
	for {
		fr, err := r.Next()
		if err == nil {
			if visit != nil {
				if err := visit(fr); err != nil {
					return 0, false, err
				}
			}
			end = fr.Offset + frameHeaderLen + int64(len(fr.Payload))
			continue
		}
		if err == io.EOF {
			break
		}
		if fe, ok := err.(*FrameError); ok && fe.Err == ErrTornTail {
			if err := checkOverlongTail(f, path, fe.Offset, maxFrameLen(maxLen)); err != nil {
				return 0, false, err
			}
			if err := f.Truncate(fe.Offset); err != nil {
				return 0, false, err
			}
			if err := f.Sync(); err != nil {
				return 0, false, err
			}
			end = fe.Offset
			break
		}
		return 0, false, err
	}
	_, err = f.Seek(end, io.SeekStart)
	return end, false, err
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("%w: %w", ErrWriterFailed, err)
	return w.err
}

// Append buffers a frame of type t holding payload and returns its offset
// in the log. Under SyncAlways it also syncs. It refuses an invalid type
// ([ErrInvalidFrameType]) or a frame over the maximum ([ErrFrameTooLarge])
// without failing the writer. payload is not retained.
func (w *Writer) Append(t FrameType, payload []byte) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, ErrWriterClosed
	}
	if err := checkFrameArgs(t, len(payload), w.maxLen); err != nil {
		return 0, err
	}
	n := frameHeaderLen + len(payload)
	if len(w.buf)+n > w.bufSize && len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	off := w.size
	if n <= w.bufSize {
		w.buf = appendFrame(w.buf, t, payload)
	} else {
		h := frameHeader(t, payload)
		if err := w.write(h[:]); err != nil {
			return 0, err
		}
		if err := w.write(payload); err != nil {
			return 0, err
		}
	}
	w.size += int64(n)
	if w.policy == SyncAlways {
		if err := w.sync(); err != nil {
			return 0, err
		}
	}
	return off, nil
}

// Cut returns how many bytes Open cut off the file in recovering it: a torn
// tail, or all of a file whose header was torn (a creation cut short), whose
// header Open then wrote anew. It is 0 for a log that ended cleanly and for
// a Writer made by NewWriter.
func (w *Writer) Cut() int64 { return w.cut }

// Size returns the length of the log in bytes, buffered frames included:
// the offset the next frame will get.
func (w *Writer) Size() int64 { return w.size }

// ReadAt reads len(p) bytes of the log from offset off into p, buffered
// frames included, so a frame is readable as soon as Append returns: bytes
// before the buffer come from the file, the rest from the buffer. It
// returns len(p) and nil, or an error for a range outside the log or for
// file bytes a Writer made by NewWriter cannot read (its io.Writer is not
// the file Open opens). It reads only the writer's state, so calls may run
// concurrently with each other, not with Append, Sync or Close.
func (w *Writer) ReadAt(p []byte, off int64) (int, error) {
	start := w.size - int64(len(w.buf)) // offset of buf[0]
	if off < 0 || off > w.size-int64(len(p)) {
		return 0, fmt.Errorf("omega: reading %d bytes at offset %d of a %d-byte log", len(p), off, w.size)
	}
	n := 0
	if off < start {
		if w.file == nil {
			return 0, fmt.Errorf("omega: reading offset %d of a log written through an io.Writer: only the buffer, from offset %d, is readable", off, start)
		}
		n = int(min(int64(len(p)), start-off))
		if _, err := w.file.ReadAt(p[:n], off); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	if n < len(p) {
		copy(p[n:], w.buf[off+int64(n)-start:])
	}
	return len(p), nil
}

func (w *Writer) write(p []byte) error {
	n, err := w.w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.write(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

func (w *Writer) sync() error {
	if err := w.flush(); err != nil {
		return err
	}
	if w.policy != SyncNever && w.syncer != nil {
		if err := fsync.Data(w.syncer); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// Sync writes out the buffered frames and, unless the policy is SyncNever,
// syncs them: when Sync returns nil, every frame appended so far is durable.
func (w *Writer) Sync() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriterClosed
	}
	return w.sync()
}

// Close syncs as Sync does, releases the appender's lock and closes the
// file Open opened (not an io.Writer given to NewWriter). A
// failed writer still releases the lock, closes its file and returns its
// error. Closing twice returns [ErrWriterClosed].
func (w *Writer) Close() error {
	if w.closed {
		if w.err != nil {
			return w.err
		}
		return ErrWriterClosed
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.sync()
	}
	if w.lock != nil {
		filelock.Unlock(w.lock)
		w.lock = nil
	}
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil && err == nil {
			err = w.fail(cerr)
		}
	}
	return err
}
