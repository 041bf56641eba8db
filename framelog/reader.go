// Reading the .omega frame log (SPEC 5): Scanner over a byte slice,
// Reader over a stream, the scan for a later valid frame that tells a
// torn tail from corruption, and Recover. doc.go describes the format
// and the recovery rules these apply.

package framelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// frameReadChunk is how many bytes a Reader reads at once, at least;
// not part of the format.
const frameReadChunk = 64 << 10

// errInvalidReadCount reports an io.Reader whose Read returned a count
// below zero or over the buffer's length.
var errInvalidReadCount = errors.New("omega: io.Reader returned an invalid count")

// ReadOptions configures the frame readers and [Recover]. A nil
// *ReadOptions and zero fields mean the defaults.
type ReadOptions struct {
	// MaxFrameLen caps frame_len, the frame header included: a longer
	// frame is bad (SPEC 5). Zero or negative means DefaultMaxFrameLen;
	// values are clamped to [12, 1<<32-1] (1<<31-1 where int has 32 bits).
	MaxFrameLen int
}

func (o *ReadOptions) maxFrameLen() uint32 {
	if o == nil {
		return DefaultMaxFrameLen
	}
	return maxFrameLen(o.MaxFrameLen)
}

// laterFrame reports whether a valid frame starts in b at an offset of at
// least from; b ends where the input ends. It applies the validity rule
// (frameHead, then the CRC) at every offset, checking the candidates' CRCs
// with a crcTrail, so that the scan takes time linear in the bytes after
// from, whatever lengths the candidates claim.
func laterFrame(b []byte, from int, maxLen uint32) bool {
	var trail *crcTrail
	for p := from; p+frameHeaderLen <= len(b); p++ {
		n, _, ok := frameHead(b[p:p+frameHeaderLen], maxLen)
		if !ok || uint64(n) > uint64(len(b)-p) {
			continue
		}
		if trail == nil {
			trail = newCRCTrail(int64(p), b, 0)
		}
		if trail.frameCRCHolds(int64(p), n, binary.LittleEndian.Uint32(b[p+frameOffCRC:])) {
			return true
		}
	}
	return false
}

// Scanner reads the frames of a log held in a byte slice (read whole,
// or mapped into memory), without copying: each [Frame]'s payload aliases the
// slice. It is the fast reader: no allocation or interface call per frame.
// A Scanner is not safe for concurrent use.
type Scanner struct {
	b      []byte
	off    int
	maxLen uint32
	hdr    Header
	torn   bool
	err    error // sticky: io.EOF, *HeaderError or *FrameError
}

// NewScanner returns a scanner over the log in b, header included. It
// decodes the header at once; a bad header is returned by Header and Next.
// The scanner does not modify b; b must not change while frames are in use.
func NewScanner(b []byte, opts *ReadOptions) *Scanner {
	s := &Scanner{b: b, off: HeaderSize, maxLen: opts.maxFrameLen()}
	hdr, torn, err := judgeHeader(b[:min(len(b), HeaderSize)], func() (int64, error) {
		if i := firstNonZero(b[HeaderSize:]); i >= 0 {
			return int64(HeaderSize + i), nil
		}
		return -1, nil
	})
	switch {
	case torn:
		s.torn, s.err, s.off = true, io.EOF, len(b)
	case err != nil:
		s.err, s.off = err, 0 // no valid prefix
	default:
		s.hdr = hdr
	}
	return s
}

// Header returns the log's header, or the error that refused it. A torn
// header gives the zero Header and a nil error; see TornHeader.
func (s *Scanner) Header() (Header, error) {
	if he, ok := s.err.(*HeaderError); ok {
		return Header{}, he
	}
	return s.hdr, nil
}

// TornHeader reports whether the log is a creation cut short (see the
// torn-header rule of SPEC 5): it is then empty, and Next returns io.EOF.
func (s *Scanner) TornHeader() bool { return s.torn }

// Next returns the next frame. It returns io.EOF only at the clean end of
// the log, a [*FrameError] at a bad frame (torn tail or corruption), or the
// [*HeaderError] of a bad header. The first error is returned by every later
// call.
func (s *Scanner) Next() (Frame, error) {
	if s.err != nil {
		return Frame{}, s.err
	}
	off := s.off
	rest := s.b[off:]
	if len(rest) >= frameHeaderLen {
		if n, t, ok := frameHead(rest, s.maxLen); ok && uint64(n) <= uint64(len(rest)) {
			if f := rest[:n:n]; frameCRCValid(f) {
				s.off = off + int(n)
				return Frame{Type: t, Payload: f[frameHeaderLen:], Offset: int64(off)}, nil
			}
		}
	} else if len(rest) == 0 {
		s.err = io.EOF
		return Frame{}, io.EOF
	}
	s.err = s.bad()
	return Frame{}, s.err
}

// Offset returns the offset of the next frame: after io.EOF or an error,
// the end of the valid prefix.
func (s *Scanner) Offset() int64 {
	if s.torn {
		return 0
	}
	return int64(s.off)
}

func (s *Scanner) bad() *FrameError {
	reason, crcHeld := frameProblem(s.b[s.off:], s.maxLen)
	e := &FrameError{Offset: int64(s.off), Err: ErrCorrupt, Reason: reason}
	if !crcHeld && !laterFrame(s.b, s.off+1, s.maxLen) {
		e.Err = ErrTornTail
	}
	return e
}

// Reader reads the frames of a log from an io.Reader, tar-style.
//
// It reads ahead in chunks of 64 KiB or one frame, whichever is larger. To
// tell a torn tail from corruption after a bad frame it must know whether a
// valid frame starts at any later offset: it then reads on, keeping a window
// of at most the maximum frame length plus one chunk, until it finds one
// (corruption) or reaches the end of the input (torn tail). So it reports a
// bad frame only after reading the rest of the input, or as far as the next
// valid frame, and never holds more than about one maximal frame in memory.
// Its verdicts are those of [Scanner] on the same bytes.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	rd       io.Reader
	maxLen   uint32
	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	base     int64 // file offset of buf[0]
	rerr     error // error from rd, io.EOF included
	started  bool  // header read
	hdr      Header
	hdrErr   error // what refused the header: a *HeaderError or a read error
	torn     bool
	err      error     // sticky: io.EOF, *HeaderError, *FrameError or a read error
	trail    *crcTrail // while bad scans for a later frame
}

// NewReader returns a reader of the log read from r, header included.
// It reads nothing until Header or Next is called. It panics if r is nil,
// a programming error.
func NewReader(r io.Reader, opts *ReadOptions) *Reader {
	if r == nil {
		panic("omega: NewReader with a nil io.Reader")
	}
	return &Reader{rd: r, maxLen: opts.maxFrameLen()}
}

// fill makes at least need bytes available in buf[pos:end]. It returns
// io.EOF when the input ends first (everything left is then available), or
// the reader's error.
func (r *Reader) fill(need int) error {
	if r.end-r.pos >= need {
		return nil
	}
	if need > len(r.buf)-r.pos && r.pos > 0 {
		r.trailPast()
		r.base += int64(r.pos)
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.pos = 0
	}
	empty := 0
	for r.end-r.pos < need {
		if r.rerr != nil {
			return r.rerr
		}
		if r.end == len(r.buf) {
			// Grow by doubling as bytes arrive, so that a frame_len
			// claiming more than the input holds costs no more memory
			// than twice what was read.
			nb := make([]byte, max(2*len(r.buf), frameReadChunk))
			r.trailPast()
			r.base += int64(r.pos)
			r.end = copy(nb, r.buf[r.pos:r.end])
			r.pos = 0
			r.buf = nb
		}
		n, err := r.rd.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			err = fmt.Errorf("%w %d for a %d-byte buffer", errInvalidReadCount, n, len(r.buf)-r.end)
			n = 0
		}
		r.end += n
		if err != nil {
			r.rerr = err
		} else if n == 0 {
			if empty++; empty >= 100 {
				r.rerr = io.ErrNoProgress
			}
		}
	}
	return nil
}

// trailPast advances the later-frame scan's CRC trail, when bad is
// running one, past the bytes before pos, which fill is about to drop.
func (r *Reader) trailPast() {
	if r.trail != nil {
		r.holdTrail()
		r.trail.advance(r.base + int64(r.pos))
	}
}

// holdTrail points the CRC trail at the bytes the reader holds.
func (r *Reader) holdTrail() { r.trail.buf, r.trail.base = r.buf[:r.end], r.base }

func (r *Reader) start() error {
	r.started = true
	err := r.readHeader()
	if err != nil && err != io.EOF {
		r.hdrErr = err
	}
	return err
}

// readHeader reads the header. It returns io.EOF for a torn header.
func (r *Reader) readHeader() error {
	err := r.fill(HeaderSize)
	if err != nil && err != io.EOF {
		return err
	}
	hdr, torn, err := judgeHeader(r.buf[r.pos:min(r.end, r.pos+HeaderSize)], r.nonZeroAfterHeader)
	switch {
	case torn:
		r.torn = true
		return io.EOF
	case err != nil:
		return err
	}
	r.hdr = hdr
	r.pos += HeaderSize
	return nil
}

// nonZeroAfterHeader reads past a zeroed header to the first non-zero byte
// and returns its offset, or -1 at the end of the input. It drops the bytes
// it has looked at, so it holds no more than one chunk whatever the file's
// length; the reader is done with the input afterwards either way.
func (r *Reader) nonZeroAfterHeader() (int64, error) {
	r.pos += HeaderSize
	for {
		if i := firstNonZero(r.buf[r.pos:r.end]); i >= 0 {
			return r.base + int64(r.pos+i), nil
		}
		r.pos = r.end
		if err := r.fill(1); err == io.EOF {
			return -1, nil
		} else if err != nil {
			return 0, err
		}
	}
}

// Header reads the header if needed and returns it, or the error that
// refused it. A torn header gives the zero Header and a nil error; see
// TornHeader.
func (r *Reader) Header() (Header, error) {
	if !r.started {
		r.err = r.start()
	}
	if r.hdrErr != nil {
		return Header{}, r.hdrErr
	}
	return r.hdr, nil
}

// TornHeader reports whether the log is a creation cut short (see the
// torn-header rule of SPEC 5): it is then empty, and Next returns io.EOF.
// It is meaningful after Header or Next has been called.
func (r *Reader) TornHeader() bool { return r.torn }

// Next returns the next frame. It returns io.EOF only at the clean end of
// the log, a [*FrameError] at a bad frame (torn tail or corruption), the
// [*HeaderError] of a bad header, or the underlying reader's error. The
// first error is returned by every later call.
func (r *Reader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	if !r.started {
		if r.err = r.start(); r.err != nil {
			return Frame{}, r.err
		}
	}
	if r.end-r.pos < frameHeaderLen {
		if err := r.fill(frameHeaderLen); err != nil {
			if err != io.EOF {
				r.err = err
				return Frame{}, err
			}
			if r.end == r.pos {
				r.err = io.EOF
				return Frame{}, io.EOF
			}
			r.err = r.bad()
			return Frame{}, r.err
		}
	}
	if n, t, ok := frameHead(r.buf[r.pos:r.end], r.maxLen); ok {
		if r.end-r.pos < int(n) {
			if err := r.fill(int(n)); err != nil && err != io.EOF {
				r.err = err
				return Frame{}, err
			}
		}
		if r.end-r.pos >= int(n) {
			if f := r.buf[r.pos : r.pos+int(n) : r.pos+int(n)]; frameCRCValid(f) {
				off := r.base + int64(r.pos)
				r.pos += int(n)
				return Frame{Type: t, Payload: f[frameHeaderLen:], Offset: off}, nil
			}
		}
	}
	r.err = r.bad()
	return Frame{}, r.err
}

// bad classifies the bad frame at buf[pos], reading ahead as needed. It
// returns a *FrameError, or a read error met on the way.
func (r *Reader) bad() error {
	// frameProblem needs the frame up to its frame_len or up to the end of
	// the input, which Next reads only for a frame whose header passes
	// frameHead. A frame_len over the maximum frameProblem reports before
	// looking further, so nothing past the maximum is read for it.
	if r.end-r.pos >= frameHeaderLen {
		if n := binary.LittleEndian.Uint32(r.buf[r.pos:]); n <= r.maxLen {
			if err := r.fill(int(n)); err != nil && err != io.EOF {
				return err
			}
		}
	}
	reason, crcHeld := frameProblem(r.buf[r.pos:r.end], r.maxLen)
	e := &FrameError{Offset: r.base + int64(r.pos), Err: ErrCorrupt, Reason: reason}
	if crcHeld {
		return e
	}
	// The candidates' CRCs are checked with a crcTrail, as laterFrame does;
	// fill advances it past the bytes it drops.
	defer func() { r.trail = nil }()
	for {
		r.pos++
		if err := r.fill(frameHeaderLen); err == io.EOF {
			e.Err = ErrTornTail
			return e
		} else if err != nil {
			return err
		}
		n, _, ok := frameHead(r.buf[r.pos:r.pos+frameHeaderLen], r.maxLen)
		if !ok {
			continue
		}
		if r.trail == nil {
			r.trail = newCRCTrail(r.base+int64(r.pos), nil, 0)
		}
		if err := r.fill(int(n)); err == io.EOF {
			continue // runs past the end; a later, shorter candidate may fit
		} else if err != nil {
			return err
		}
		r.holdTrail()
		stored := binary.LittleEndian.Uint32(r.buf[r.pos+frameOffCRC:])
		if r.trail.frameCRCHolds(r.base+int64(r.pos), n, stored) {
			return e
		}
	}
}

// TailKind says how a log's valid prefix ends.
type TailKind uint8

const (
	TailClean   TailKind = iota // the log ends after its last valid frame
	TailTorn                    // a torn tail follows (or the header is torn)
	TailCorrupt                 // a corrupt frame follows
)

// String returns "clean", "torn" or "corrupt", as the ingest command prints.
func (k TailKind) String() string {
	switch k {
	case TailClean:
		return "clean"
	case TailTorn:
		return "torn"
	case TailCorrupt:
		return "corrupt"
	}
	return "TailKind(" + strconv.Itoa(int(k)) + ")"
}

// Recovery describes a log as recovery finds it (SPEC 5, SPEC 9 ingest).
type Recovery struct {
	Header       Header
	TornHeader   bool              // a creation cut short: no frames; Tail is TailTorn at offset 0
	Frames       int               // valid frames
	FramesByType map[FrameType]int // valid frames by type
	ValidBytes   int64             // bytes of valid frames after the header
	Tail         TailKind
	TailOffset   int64       // end of the valid prefix: HeaderSize+ValidBytes, or 0 for a torn header
	TailBytes    int64       // bytes from TailOffset to the end of the input (malformed_tail_bytes)
	Err          *FrameError // the bad frame ending the valid prefix; nil when Tail is TailClean or the header is torn
}

// Recover reads the log in b and reports its valid prefix and how it ends.
// A damaged body is described in the result, not returned as an error; the
// error is the [*HeaderError] of a bad header (wrapping [ErrBadHeader]).
func Recover(b []byte, opts *ReadOptions) (Recovery, error) {
	s := NewScanner(b, opts)
	hdr, err := s.Header()
	if err != nil {
		return Recovery{}, err
	}
	rec := Recovery{Header: hdr, TornHeader: s.TornHeader(), FramesByType: map[FrameType]int{}}
	if rec.TornHeader {
		rec.Tail, rec.TailBytes = TailTorn, int64(len(b))
		return rec, nil
	}
	for {
		f, err := s.Next()
		if err == nil {
			rec.Frames++
			rec.FramesByType[f.Type]++
			continue
		}
		if fe, ok := err.(*FrameError); ok {
			rec.Err, rec.Tail = fe, TailTorn
			if fe.Err == ErrCorrupt {
				rec.Tail = TailCorrupt
			}
		}
		break
	}
	rec.TailOffset = s.Offset()
	rec.ValidBytes = rec.TailOffset - HeaderSize
	rec.TailBytes = int64(len(b)) - rec.TailOffset
	return rec, nil
}
