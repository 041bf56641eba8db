// The .omega frame log (SPEC 5).
//
// An .omega file is a 64-byte header followed by frames, back to back, with
// no padding and no index:
//
//	+--------------------+---------+---------+-----+---------+
//	| header (64 bytes)  | frame 0 | frame 1 | ... | frame n |
//	+--------------------+---------+---------+-----+---------+
//	0                    64
//
// The header, all integers little-endian:
//
//	offset  size  field
//	     0     8  magic          4F 4D 45 47 41 00 01 00 ("OMEGA", 0, 1, 0)
//	     8     2  schema_version u16
//	    10     1  endian_flag    1 (little-endian)
//	    11     1  hash_alg_id    1 (BLAKE3)
//	    12    14  reserved       zero
//	    26    32  schema_hash
//	    58     6  reserved       zero
//
// A frame:
//
//	+-------------+--------------+------------+------------+---------------------+
//	| frame_len   | frame_crc32  | frame_type | reserved   | payload             |
//	| u32         | u32          | u16        | u16 = 0    | frame_len-12 bytes  |
//	+-------------+--------------+------------+------------+---------------------+
//	0             4              8            10           12          frame_len
//	                             |<------- covered by frame_crc32 ---------------->|
//
// frame_len counts the whole frame, its 12-byte frame header included, so
// it is at least 12; readers also refuse a frame_len over the configured
// maximum (64 MiB by default). frame_crc32 is CRC-32/IEEE (hash/crc32's
// IEEE polynomial) over frame_type, reserved and payload as encoded. Frame
// types: 1 EVENT, 2 BATCH, 3 CERT, 4 SNAPSHOT, 5 STATE, 6 INCIDENT;
// 0x8000-0xFFFF belong to the embedding program; 0 and 7-0x7FFF are invalid.
//
// The layout constants below (HeaderSize, the magic, the field offsets,
// frameHeaderLen, the frame types) are frozen wire format: files written by
// one build are read by every other, and by other implementations. Never
// change them; a new layout needs a new magic.
//
// # Recovery
//
// The valid prefix of a log ends at the first bad frame: a frame_len below
// 12 or over the maximum, a frame_len running past the end of the input, a
// CRC that fails, or a CRC that holds over an invalid type or a non-zero
// reserved field. The bad frame is then classified:
//
//   - a CRC that holds means the bytes are what some writer meant to write,
//     so a bad type or reserved value is always corruption ([ErrCorrupt]);
//   - otherwise the bad frame is a torn tail ([ErrTornTail], the normal
//     result of a crash, including a last write that came back zeroed or as
//     garbage) when no valid frame starts at any later offset up to the end
//     of the input, and corruption when one does: data follows that must not
//     be dropped silently.
//
// The scan for a later frame checks the cheap fields first (length bounds,
// fit within the input, type, reserved) and computes a CRC only for
// candidates that pass, so garbage costs a few instructions per byte. A
// candidate's CRC costs the same whatever length it claims: it follows from
// CRCs of the input's prefixes, kept every 512 bytes from the first
// candidate on. So even a crafted input whose every few bytes pass the cheap
// checks and claim to run to its end is scanned in time linear in its
// length (about 1.4 s for 64 MiB of them); the scan stops at the first
// valid frame.
//
// Known limit: frame_len is outside the CRC. A flipped bit in the length of
// the very last frame makes it run past the end of the file or fail its CRC
// with nothing valid after it, which is exactly what a torn write looks like:
// the frame is reported as a torn tail and dropped (truncated when the log is
// opened for append). Any damage inside the last frame behaves the same way.
// Damage in an earlier frame is always caught as corruption, because the
// frames after it are still valid. The header carries no checksum either: a
// flipped bit in schema_version or schema_hash gives a different header,
// which binding checks refuse ([ErrSchemaMismatch], a binding error:
// it wraps [ErrBindingMismatch]).
//
// # Torn headers
//
// A file shorter than 64 bytes whose bytes are a prefix of a valid header or
// all zero (the empty file included), or whose 64 header bytes are all zero
// and are followed by nothing but zero bytes, is a creation cut short by a
// crash: the header and the directory are synced before the first append
// returns, so such a file holds no acknowledged frame. Readers report it as
// empty with a torn header ([FrameReader.TornHeader]), not as an error:
// [Recover] puts the torn tail at offset 0 and counts the whole file as
// malformed tail bytes. [OpenFrameLog] truncates such a file and writes the
// header anew.
//
// A zeroed header followed by any non-zero byte cannot come from a crash, as
// no frame is written before the header is durable: it is a damaged header,
// refused with a [*HeaderError] (field "zeroed", wrapping [ErrBadHeader]) by
// every reader, by Recover and by OpenFrameLog, which leaves the file
// untouched, so the frames after it can still be salvaged by hand. Any other
// short or malformed header is refused with ErrBadHeader too. One function,
// judgeHeader, applies these rules for every reader.

package omega

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Frozen wire format: header and frame layout (SPEC 5).
const (
	logMagic         = "OMEGA\x00\x01\x00"
	logOffSchemaVer  = 8
	logOffEndian     = 10
	logOffHashAlg    = 11
	logOffReserved1  = 12
	logOffSchemaHash = 26
	logOffReserved2  = 58
	logEndianLittle  = 1
	logHashAlgBLAKE3 = 1

	frameHeaderLen = 12 // frame_len u32 | frame_crc32 u32 | frame_type u16 | reserved u16
	frameOffCRC    = 4
	frameOffType   = 8
)

// maxFrameLenCap is the largest frame_len representable, and an int.
const maxFrameLenCap = min(math.MaxUint32, math.MaxInt)

// Buffer sizes; not part of the format.
const (
	frameReadChunk   = 64 << 10
	frameWriteBuffer = 64 << 10
	maxWriteBuffer   = 64 << 20 // a larger WriterOptions.BufferSize is this
)

// errInvalidReadCount reports an io.Reader whose Read returned a count
// below zero or over the buffer's length.
var errInvalidReadCount = errors.New("omega: io.Reader returned an invalid count")

// HeaderError reports a malformed .omega header: which field, where.
type HeaderError struct {
	Field  string // "magic", "endian_flag", "hash_alg_id", "reserved", "length" or "zeroed"
	Offset int    // offset of the first offending byte in the file
	Reason string
}

func (e *HeaderError) Error() string {
	return "omega: bad frame log header: " + e.Field + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns [ErrBadHeader].
func (e *HeaderError) Unwrap() error { return ErrBadHeader }

// FrameError reports the bad frame that ends a log's valid prefix.
type FrameError struct {
	Offset int64  // file offset of the bad frame's first byte (its frame_len)
	Err    error  // [ErrTornTail] or [ErrCorrupt]
	Reason string // what is wrong with the frame
}

func (e *FrameError) Error() string {
	kind := "corruption"
	if e.Err == ErrTornTail {
		kind = "torn tail"
	}
	return "omega: frame log: " + kind + " at offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Reason
}

// Unwrap returns [ErrTornTail] or [ErrCorrupt].
func (e *FrameError) Unwrap() error { return e.Err }

// Header is the .omega file header (SPEC 5). The magic, endian flag and hash
// algorithm are fixed and not represented.
type Header struct {
	SchemaVersion uint16
	SchemaHash    Hash
}

// AppendBinary appends the 64-byte encoding of h to b. It never fails.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	var e [HeaderSize]byte
	copy(e[:], logMagic)
	binary.LittleEndian.PutUint16(e[logOffSchemaVer:], h.SchemaVersion)
	e[logOffEndian] = logEndianLittle
	e[logOffHashAlg] = logHashAlgBLAKE3
	copy(e[logOffSchemaHash:], h.SchemaHash[:])
	return append(b, e[:]...), nil
}

// MarshalBinary returns the 64-byte encoding of h. It never fails.
func (h Header) MarshalBinary() ([]byte, error) { return h.AppendBinary(make([]byte, 0, HeaderSize)) }

// DecodeHeader decodes the header in the first [HeaderSize] bytes of b; the
// rest of b is ignored. It refuses a short b and a wrong magic, endian flag,
// hash algorithm or non-zero reserved byte with a [*HeaderError] naming the
// field. It does not apply the torn-header rule, which is about files:
// [FrameReader], [FrameScanner], [Recover] and [OpenFrameLog] do.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		if err := headerProblem(b); err != nil {
			return Header{}, err
		}
		return Header{}, &HeaderError{Field: "length", Offset: len(b), Reason: "header cut short at " + strconv.Itoa(len(b)) + " of 64 bytes"}
	}
	b = b[:HeaderSize]
	if err := headerProblem(b); err != nil {
		return Header{}, err
	}
	var h Header
	h.SchemaVersion = binary.LittleEndian.Uint16(b[logOffSchemaVer:])
	copy(h.SchemaHash[:], b[logOffSchemaHash:])
	return h, nil
}

// headerProblem checks the fixed fields among b's bytes, b being at most
// HeaderSize bytes from the start of a file. It returns nil when b is a valid
// header or a prefix of one.
func headerProblem(b []byte) *HeaderError {
	for i := 0; i < len(b) && i < len(logMagic); i++ {
		if b[i] != logMagic[i] {
			n := min(len(b), len(logMagic))
			return &HeaderError{Field: "magic", Offset: i, Reason: fmt.Sprintf("got % x, want % x", b[:n], logMagic[:n])}
		}
	}
	if len(b) > logOffEndian && b[logOffEndian] != logEndianLittle {
		return &HeaderError{Field: "endian_flag", Offset: logOffEndian, Reason: fmt.Sprintf("got %d, want %d", b[logOffEndian], logEndianLittle)}
	}
	if len(b) > logOffHashAlg && b[logOffHashAlg] != logHashAlgBLAKE3 {
		return &HeaderError{Field: "hash_alg_id", Offset: logOffHashAlg, Reason: fmt.Sprintf("got %d, want %d (BLAKE3)", b[logOffHashAlg], logHashAlgBLAKE3)}
	}
	for i := logOffReserved1; i < len(b); i++ {
		if i == logOffSchemaHash {
			i = logOffReserved2
			if i >= len(b) {
				break
			}
		}
		if b[i] != 0 {
			return &HeaderError{Field: "reserved", Offset: i, Reason: fmt.Sprintf("byte is 0x%02x, want 0", b[i])}
		}
	}
	return nil
}

// firstNonZero returns the index of the first non-zero byte of b, or -1.
func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// judgeHeader applies the header rules of SPEC 5 to a file whose first
// bytes are h: all of them when the file is shorter than HeaderSize, else
// the first HeaderSize. It is the one place where a header is judged: valid
// (hdr), torn (a creation cut short: the file reads as empty) or refused
// (err, a *HeaderError). For 64 zero bytes the verdict depends on what
// follows them, which nonZeroAfter reports: the offset of the first
// non-zero byte after the header, or -1 when there is none; nonZeroAfter is
// called only then, and its error is returned as it is.
func judgeHeader(h []byte, nonZeroAfter func() (int64, error)) (hdr Header, torn bool, err error) {
	if len(h) < HeaderSize {
		if headerProblem(h) == nil || firstNonZero(h) < 0 {
			return Header{}, true, nil
		}
		_, err := DecodeHeader(h)
		return Header{}, false, err
	}
	h = h[:HeaderSize]
	if firstNonZero(h) < 0 {
		off, err := nonZeroAfter()
		switch {
		case err != nil:
			return Header{}, false, err
		case off < 0:
			return Header{}, true, nil
		}
		// Nothing is written after a header before it is durable, so
		// this is damage, not a crash: refuse it, never drop the bytes.
		return Header{}, false, &HeaderError{Field: "zeroed", Offset: 0,
			Reason: fmt.Sprintf("all 64 header bytes are zero but the byte at offset %d is not: a damaged header, not a creation cut short", off)}
	}
	hdr, err = DecodeHeader(h)
	return hdr, false, err
}

// FrameType is the type of a frame (SPEC 5).
type FrameType uint16

// Frame types. Frozen wire format.
const (
	FrameEvent    FrameType = 1 // an event, in its canonical binary encoding
	FrameBatch    FrameType = 2 // a decided batch
	FrameCert     FrameType = 3 // a certificate
	FrameSnapshot FrameType = 4 // a snapshot manifest
	FrameState    FrameType = 5 // a section of snapshot state
	FrameIncident FrameType = 6 // a replay incident

	// FrameAppMin is the first of the types 0x8000-0xFFFF that belong to
	// the embedding program. Types 0 and 7-0x7FFF are invalid.
	FrameAppMin FrameType = 0x8000
)

// Valid reports whether t may appear in a log: 1-6 or 0x8000-0xFFFF.
func (t FrameType) Valid() bool { return validFrameType(uint16(t)) }

func validFrameType(t uint16) bool { return t-1 < uint16(FrameIncident) || t >= uint16(FrameAppMin) }

// String returns the SPEC name of t ("EVENT", ...), "APP(0x8001)" for a
// program type, or "INVALID(0x0007)".
func (t FrameType) String() string {
	switch t {
	case FrameEvent:
		return "EVENT"
	case FrameBatch:
		return "BATCH"
	case FrameCert:
		return "CERT"
	case FrameSnapshot:
		return "SNAPSHOT"
	case FrameState:
		return "STATE"
	case FrameIncident:
		return "INCIDENT"
	}
	if t >= FrameAppMin {
		return fmt.Sprintf("APP(0x%04x)", uint16(t))
	}
	return fmt.Sprintf("INVALID(0x%04x)", uint16(t))
}

// Frame is one frame read from a log.
//
// Payload's ownership depends on the reader: a [FrameScanner]'s payload
// aliases the scanned slice (zero copy, valid as long as that slice is), a
// [FrameReader]'s aliases the reader's buffer and is valid only until the
// next call to Next. Copy it to keep it. Its capacity is its length, so
// appending to it never overwrites a neighbouring frame.
type Frame struct {
	Type    FrameType
	Payload []byte
	Offset  int64 // file offset of the frame's first byte; the first frame is at HeaderSize
}

// appendCheckedFrame appends the encoding of a frame of type t holding
// payload to b. It refuses an invalid type with [ErrInvalidFrameType] and a
// frame over [DefaultMaxFrameLen] with [ErrFrameTooLarge], returning b
// unchanged. Tests build logs with it; a program writes frames through a
// [FrameWriter], over a bytes.Buffer for a log in memory.
func appendCheckedFrame(b []byte, t FrameType, payload []byte) ([]byte, error) {
	if err := checkFrameArgs(t, len(payload), DefaultMaxFrameLen); err != nil {
		return b, err
	}
	return appendFrame(b, t, payload), nil
}

func checkFrameArgs(t FrameType, payloadLen int, maxLen uint32) error {
	if !t.Valid() {
		return fmt.Errorf("%w: %s", ErrInvalidFrameType, t)
	}
	if uint64(payloadLen) > uint64(maxLen)-frameHeaderLen {
		return fmt.Errorf("%w: a %d-byte payload makes a frame over the maximum frame_len %d", ErrFrameTooLarge, payloadLen, maxLen)
	}
	return nil
}

// appendFrame appends a frame whose arguments have been checked.
func appendFrame(b []byte, t FrameType, payload []byte) []byte {
	n := frameHeaderLen + len(payload)
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	f := b[start:]
	binary.LittleEndian.PutUint32(f, uint32(n))
	binary.LittleEndian.PutUint32(f[frameOffType:], uint32(t)) // type, then reserved = 0
	copy(f[frameHeaderLen:], payload)
	binary.LittleEndian.PutUint32(f[frameOffCRC:], crc32.ChecksumIEEE(f[frameOffType:]))
	return b
}

// ReadOptions configures the frame readers and [Recover]. A nil
// *ReadOptions and zero fields mean the defaults.
type ReadOptions struct {
	// MaxFrameLen caps frame_len, the frame header included: a longer
	// frame is bad (SPEC 5). Zero or negative means DefaultMaxFrameLen;
	// values are clamped to [12, 1<<32-1] (1<<31-1 where int has 32 bits).
	MaxFrameLen int
}

func maxFrameLen(n int) uint32 {
	switch {
	case n <= 0:
		return DefaultMaxFrameLen
	case n < frameHeaderLen:
		return frameHeaderLen
	case uint64(n) > maxFrameLenCap:
		return maxFrameLenCap
	}
	return uint32(n)
}

func (o *ReadOptions) maxFrameLen() uint32 {
	if o == nil {
		return DefaultMaxFrameLen
	}
	return maxFrameLen(o.MaxFrameLen)
}

// frameProblem explains why the frame at the start of b is bad; b holds the
// frame's bytes up to its frame_len or up to the end of the input,
// whichever comes first. crcHeld reports a bad type or reserved field under
// a CRC that holds, which is always corruption. It returns "" for a valid
// frame.
func frameProblem(b []byte, maxLen uint32) (reason string, crcHeld bool) {
	if len(b) < frameHeaderLen {
		return fmt.Sprintf("frame header cut short: %d of 12 bytes", len(b)), false
	}
	n := binary.LittleEndian.Uint32(b)
	switch {
	case n < frameHeaderLen:
		return fmt.Sprintf("frame_len %d below 12", n), false
	case n > maxLen:
		return fmt.Sprintf("frame_len %d over the maximum %d", n, maxLen), false
	case uint64(n) > uint64(len(b)):
		return fmt.Sprintf("frame_len %d runs past the end of the input, %d bytes left", n, len(b)), false
	}
	f := b[:n]
	stored, got := binary.LittleEndian.Uint32(f[frameOffCRC:]), crc32.ChecksumIEEE(f[frameOffType:])
	if stored != got {
		return fmt.Sprintf("frame_crc32 %08x, computed %08x", stored, got), false
	}
	if t := binary.LittleEndian.Uint16(f[frameOffType:]); !validFrameType(t) {
		return fmt.Sprintf("invalid frame type 0x%04x under a valid crc", t), true
	}
	if r := binary.LittleEndian.Uint16(f[frameOffType+2:]); r != 0 {
		return fmt.Sprintf("reserved field 0x%04x under a valid crc", r), true
	}
	return "", false
}

// plausibleFrame applies the cheap checks of the later-frame scan to the
// 12-byte frame header h: length bounds, type, reserved. It returns the
// frame length.
func plausibleFrame(h []byte, maxLen uint32) (uint32, bool) {
	n := binary.LittleEndian.Uint32(h)
	tr := binary.LittleEndian.Uint32(h[frameOffType:])
	return n, n >= frameHeaderLen && n <= maxLen && tr>>16 == 0 && validFrameType(uint16(tr))
}

// laterFrame reports whether a valid frame starts in b at an offset of at
// least from; b ends where the input ends. The candidates' CRCs are checked
// with a crcTrail, so that the scan takes time linear in the bytes after
// from, whatever lengths the candidates claim.
func laterFrame(b []byte, from int, maxLen uint32) bool {
	var trail *crcTrail
	for p := from; p+frameHeaderLen <= len(b); p++ {
		n, ok := plausibleFrame(b[p:p+frameHeaderLen], maxLen)
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

// FrameScanner reads the frames of a log held in a byte slice (read whole,
// or mapped into memory), without copying: each [Frame]'s payload aliases the
// slice. It is the fast reader: no allocation or interface call per frame.
// A FrameScanner is not safe for concurrent use.
type FrameScanner struct {
	b      []byte
	off    int
	maxLen uint32
	hdr    Header
	torn   bool
	err    error // sticky: io.EOF, *HeaderError or *FrameError
}

// NewFrameScanner returns a scanner over the log in b, header included. It
// decodes the header at once; a bad header is returned by Header and Next.
// The scanner does not modify b; b must not change while frames are in use.
func NewFrameScanner(b []byte, opts *ReadOptions) *FrameScanner {
	s := &FrameScanner{b: b, off: HeaderSize, maxLen: opts.maxFrameLen()}
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
func (s *FrameScanner) Header() (Header, error) {
	if he, ok := s.err.(*HeaderError); ok {
		return Header{}, he
	}
	return s.hdr, nil
}

// TornHeader reports whether the log is a creation cut short (see the
// torn-header rule of SPEC 5): it is then empty, and Next returns io.EOF.
func (s *FrameScanner) TornHeader() bool { return s.torn }

// Next returns the next frame. It returns io.EOF only at the clean end of
// the log, a [*FrameError] at a bad frame (torn tail or corruption), or the
// [*HeaderError] of a bad header. The first error is returned by every later
// call.
func (s *FrameScanner) Next() (Frame, error) {
	if s.err != nil {
		return Frame{}, s.err
	}
	off := s.off
	rest := s.b[off:]
	if len(rest) >= frameHeaderLen {
		n := binary.LittleEndian.Uint32(rest)
		if n >= frameHeaderLen && n <= s.maxLen && uint64(n) <= uint64(len(rest)) {
			f := rest[:n:n]
			tr := binary.LittleEndian.Uint32(f[frameOffType:])
			if tr>>16 == 0 && validFrameType(uint16(tr)) &&
				crc32.ChecksumIEEE(f[frameOffType:]) == binary.LittleEndian.Uint32(f[frameOffCRC:]) {
				s.off = off + int(n)
				return Frame{Type: FrameType(tr), Payload: f[frameHeaderLen:], Offset: int64(off)}, nil
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
func (s *FrameScanner) Offset() int64 {
	if s.torn {
		return 0
	}
	return int64(s.off)
}

func (s *FrameScanner) bad() *FrameError {
	reason, crcHeld := frameProblem(s.b[s.off:], s.maxLen)
	e := &FrameError{Offset: int64(s.off), Err: ErrCorrupt, Reason: reason}
	if !crcHeld && !laterFrame(s.b, s.off+1, s.maxLen) {
		e.Err = ErrTornTail
	}
	return e
}

// FrameReader reads the frames of a log from an io.Reader, tar-style.
//
// It reads ahead in chunks of 64 KiB or one frame, whichever is larger. To
// tell a torn tail from corruption after a bad frame it must know whether a
// valid frame starts at any later offset: it then reads on, keeping a window
// of at most the maximum frame length plus one chunk, until it finds one
// (corruption) or reaches the end of the input (torn tail). So it reports a
// bad frame only after reading the rest of the input, or as far as the next
// valid frame, and never holds more than about one maximal frame in memory.
// Its verdicts are those of [FrameScanner] on the same bytes.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
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

// NewFrameReader returns a reader of the log read from r, header included.
// It reads nothing until Header or Next is called. It panics if r is nil,
// a programming error.
func NewFrameReader(r io.Reader, opts *ReadOptions) *FrameReader {
	if r == nil {
		panic("omega: NewFrameReader with a nil io.Reader")
	}
	return &FrameReader{rd: r, maxLen: opts.maxFrameLen()}
}

// fill makes at least need bytes available in buf[pos:end]. It returns
// io.EOF when the input ends first (everything left is then available), or
// the reader's error.
func (r *FrameReader) fill(need int) error {
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
func (r *FrameReader) trailPast() {
	if r.trail != nil {
		r.holdTrail()
		r.trail.advance(r.base + int64(r.pos))
	}
}

// holdTrail points the CRC trail at the bytes the reader holds.
func (r *FrameReader) holdTrail() { r.trail.buf, r.trail.base = r.buf[:r.end], r.base }

func (r *FrameReader) start() error {
	r.started = true
	err := r.readHeader()
	if err != nil && err != io.EOF {
		r.hdrErr = err
	}
	return err
}

// readHeader reads the header. It returns io.EOF for a torn header.
func (r *FrameReader) readHeader() error {
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
func (r *FrameReader) nonZeroAfterHeader() (int64, error) {
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
func (r *FrameReader) Header() (Header, error) {
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
func (r *FrameReader) TornHeader() bool { return r.torn }

// Next returns the next frame. It returns io.EOF only at the clean end of
// the log, a [*FrameError] at a bad frame (torn tail or corruption), the
// [*HeaderError] of a bad header, or the underlying reader's error. The
// first error is returned by every later call.
func (r *FrameReader) Next() (Frame, error) {
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
	n := binary.LittleEndian.Uint32(r.buf[r.pos:])
	if n >= frameHeaderLen && n <= r.maxLen {
		if r.end-r.pos < int(n) {
			if err := r.fill(int(n)); err != nil && err != io.EOF {
				r.err = err
				return Frame{}, err
			}
		}
		if r.end-r.pos >= int(n) {
			f := r.buf[r.pos : r.pos+int(n) : r.pos+int(n)]
			tr := binary.LittleEndian.Uint32(f[frameOffType:])
			if tr>>16 == 0 && validFrameType(uint16(tr)) &&
				crc32.ChecksumIEEE(f[frameOffType:]) == binary.LittleEndian.Uint32(f[frameOffCRC:]) {
				off := r.base + int64(r.pos)
				r.pos += int(n)
				return Frame{Type: FrameType(tr), Payload: f[frameHeaderLen:], Offset: off}, nil
			}
		}
	}
	r.err = r.bad()
	return Frame{}, r.err
}

// bad classifies the bad frame at buf[pos], reading ahead as needed. It
// returns a *FrameError, or a read error met on the way.
func (r *FrameReader) bad() error {
	// buf[pos:end] holds the frame up to frame_len or up to the end of
	// the input, as frameProblem requires, unless frame_len is out of
	// bounds, which frameProblem reports before looking further.
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
		n, ok := plausibleFrame(r.buf[r.pos:r.pos+frameHeaderLen], r.maxLen)
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
	s := NewFrameScanner(b, opts)
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

// SyncPolicy says when a [FrameWriter] makes appended frames durable.
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

// WriterOptions configures a [FrameWriter], also the one that
// [OpenCertStore] opens for cert.log. A nil *WriterOptions and zero fields
// mean the defaults.
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
}

// FrameWriter appends frames to a log, buffered, and makes them durable on
// Sync according to its [SyncPolicy]. A frame whose Append returned before a
// successful Sync survives a crash (SPEC 5).
//
// The first failed write, fsync or close puts the writer in a failed state:
// every later call returns that error, which wraps [ErrWriterFailed] and the
// cause. Data is never reported durable after a failed fsync: a retried
// fsync may succeed after the kernel dropped the dirty pages.
//
// A FrameWriter is not safe for concurrent use.
type FrameWriter struct {
	w       io.Writer
	syncer  interface{ Sync() error } // nil when w cannot sync
	closer  io.Closer                 // the file OpenFrameLog opened, else nil
	lock    lockable                  // the file whose appender's lock the writer holds, else nil
	file    io.ReaderAt               // the file OpenFrameLog opened, for readAt; else nil
	cut     int64                     // bytes OpenFrameLog cut off the end of the file in recovering it
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

func newFrameWriter(w io.Writer, size int64, opts *WriterOptions) (*FrameWriter, error) {
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
	fw := &FrameWriter{
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

// NewFrameWriter returns a writer of a new log to w: the header first, then
// the frames appended. Offsets count from the header's first byte. When w
// has a Sync() error method (an *os.File does), Sync calls it according to
// the policy; otherwise Sync only writes out the buffer. Close does not close
// w. It panics if w is nil, a programming error; an unknown sync policy is
// refused with an error wrapping [ErrUnknownSyncPolicy].
//
// When w is an *os.File holding a regular file, the writer takes the
// appender's lock on it, as OpenFrameLog does, and releases it at Close; a
// file another appender holds is refused with an error wrapping
// [ErrLocked].
func NewFrameWriter(w io.Writer, hdr Header, opts *WriterOptions) (*FrameWriter, error) {
	if w == nil {
		panic("omega: NewFrameWriter with a nil io.Writer")
	}
	fw, err := newFrameWriter(w, HeaderSize, opts)
	if err != nil {
		return nil, err
	}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if err := lockFile(f, f.Name()); err != nil {
				return nil, err
			}
			fw.lock = f
		}
	}
	fw.buf, _ = hdr.AppendBinary(fw.buf)
	return fw, nil
}

// OpenFrameLog opens the log at path for appending, creating it when it
// does not exist.
//
// A new file gets hdr as its header; the file and its directory are synced
// before OpenFrameLog returns. An existing file is recovered first: a file
// with a torn header (a creation cut short: see "Torn headers" above; a
// zeroed header followed by nothing but zero bytes included) is truncated
// and gets hdr as its header, and the file and its directory are synced; a
// torn tail is truncated (and synced); a header other than hdr is refused
// with an error wrapping [ErrSchemaMismatch] (an all-zero schema hash
// included, unless hdr's is zero too); a bad header, a zeroed header
// followed by a non-zero byte included, is refused with a [*HeaderError]
// (wrapping [ErrBadHeader]); corruption is refused with its
// [*FrameError] (wrapping [ErrCorrupt]); an unknown sync policy is refused
// with an error wrapping [ErrUnknownSyncPolicy]. A refused file is left
// untouched.
//
// The file is read with the options' MaxFrameLen. A last frame over it is a
// torn tail to the readers (SPEC 5), but when it is whole under a CRC that
// holds, it was written with a larger maximum: rather than cut it off,
// OpenFrameLog refuses the file with an error wrapping [ErrFrameTooLarge].
//
// The writer holds an exclusive appender's lock on the file from before it
// is read until Close (SPEC 8): a file that another writer or
// [CertStore] holds, in this process or, where flock(2) exists (Linux, the
// BSDs, macOS, illumos), in another, is refused with an error wrapping
// [ErrLocked] that names it, and left untouched. Elsewhere only appenders of
// the same process are kept apart. Closing the writer releases the lock and
// closes the file.
func OpenFrameLog(path string, hdr Header, opts *WriterOptions) (*FrameWriter, error) {
	return openFrameLog(osFS{}, path, hdr, opts, nil)
}

// openFrameLog is OpenFrameLog, calling visit, when not nil, with every
// valid frame of an existing log as recovery reads it, in order, before
// anything is truncated or written. The frame's payload is valid only
// during the call. An error of visit ends the open, leaving the file
// untouched, and is returned as it is.
func openFrameLog(fsys fileSystem, path string, hdr Header, opts *WriterOptions, visit func(Frame) error) (*FrameWriter, error) {
	var maxLen int
	if opts != nil {
		maxLen = opts.MaxFrameLen
		if opts.Sync > SyncNever {
			return nil, errUnknownPolicy(opts.Sync)
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
	if err := lockFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	var size, before int64
	if created {
		err = initFrameLog(fsys, f, path, hdr)
		size = HeaderSize
	} else {
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil {
			before = fi.Size()
			size, err = recoverFrameLog(fsys, f, path, hdr, maxLen, visit)
		}
	}
	var w *FrameWriter
	if err == nil {
		w, err = newFrameWriter(f, size, opts)
	}
	if err != nil {
		unlockFile(f)
		f.Close()
		return nil, err
	}
	w.closer, w.lock, w.file = f, f, f
	w.cut = max(0, before-size)
	return w, nil
}

// initFrameLog writes hdr as the whole content of f and syncs f and its
// directory, leaving f positioned after the header.
func initFrameLog(fsys fileSystem, f file, path string, hdr Header) error {
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
func checkOverlongTail(f file, path string, off int64, maxLen uint32) error {
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
	crc := crc32.NewIEEE()
	if _, err := io.Copy(crc, io.NewSectionReader(f, off+frameOffType, n-frameOffType)); err != nil {
		return err
	}
	if crc.Sum32() != binary.LittleEndian.Uint32(h[frameOffCRC:]) {
		return nil
	}
	return fmt.Errorf("%w: %s: the frame at offset %d is %d bytes, over the maximum %d, and whole under a CRC that holds; "+
		"it is not cut off: open the log with a MaxFrameLen of at least %d", ErrFrameTooLarge, path, off, n, maxLen, n)
}

// recoverFrameLog recovers the existing log in f for appending and leaves
// f positioned at its end, which it returns.
func recoverFrameLog(fsys fileSystem, f file, path string, hdr Header, maxLen int, visit func(Frame) error) (int64, error) {
	r := NewFrameReader(f, &ReadOptions{MaxFrameLen: maxLen})
	got, err := r.Header()
	if err != nil {
		return 0, err
	}
	if r.TornHeader() {
		// Nothing in the file was acknowledged. Make the truncation durable
		// before the header is written, so that no crash can leave a valid
		// header in front of the zero bytes that followed a zeroed one.
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		return HeaderSize, initFrameLog(fsys, f, path, hdr)
	}
	if got != hdr {
		return 0, fmt.Errorf("%w: %s has schema version %d, schema hash %s; want version %d, hash %s",
			ErrSchemaMismatch, path, got.SchemaVersion, got.SchemaHash, hdr.SchemaVersion, hdr.SchemaHash)
	}
	end := int64(HeaderSize)
	for {
		fr, err := r.Next()
		if err == nil {
			if visit != nil {
				if err := visit(fr); err != nil {
					return 0, err
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
				return 0, err
			}
			if err := f.Truncate(fe.Offset); err != nil {
				return 0, err
			}
			if err := f.Sync(); err != nil {
				return 0, err
			}
			end = fe.Offset
			break
		}
		return 0, err
	}
	_, err = f.Seek(end, io.SeekStart)
	return end, err
}

func (w *FrameWriter) fail(err error) error {
	w.err = fmt.Errorf("%w: %w", ErrWriterFailed, err)
	return w.err
}

// Append buffers a frame of type t holding payload and returns its offset
// in the log. Under SyncAlways it also syncs. It refuses an invalid type
// ([ErrInvalidFrameType]) or a frame over the maximum ([ErrFrameTooLarge])
// without failing the writer. payload is not retained.
func (w *FrameWriter) Append(t FrameType, payload []byte) (int64, error) {
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
		var h [frameHeaderLen]byte
		binary.LittleEndian.PutUint32(h[:], uint32(n))
		binary.LittleEndian.PutUint32(h[frameOffType:], uint32(t))
		crc := crc32.Update(crc32.ChecksumIEEE(h[frameOffType:]), crc32.IEEETable, payload)
		binary.LittleEndian.PutUint32(h[frameOffCRC:], crc)
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

// Size returns the length of the log in bytes, buffered frames included:
// the offset the next frame will get.
func (w *FrameWriter) Size() int64 { return w.size }

// readAt reads len(p) bytes of the log from offset off, buffered bytes
// included, for a writer OpenFrameLog opened. Bytes before the buffer are
// in the file; those in the buffer are copied from it, so a frame is
// readable as soon as Append returns. It only reads the writer's state, so
// callers may run it concurrently with each other, not with Append, Sync or
// Close.
func (w *FrameWriter) readAt(p []byte, off int64) error {
	start := w.size - int64(len(w.buf)) // offset of buf[0]
	if off < 0 || off > w.size-int64(len(p)) {
		return fmt.Errorf("omega: reading %d bytes at offset %d of a %d-byte log", len(p), off, w.size)
	}
	n := 0
	if off < start {
		n = int(min(int64(len(p)), start-off))
		if _, err := w.file.ReadAt(p[:n], off); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if n < len(p) {
		copy(p[n:], w.buf[off+int64(n)-start:])
	}
	return nil
}

func (w *FrameWriter) write(p []byte) error {
	n, err := w.w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *FrameWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.write(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

func (w *FrameWriter) sync() error {
	if err := w.flush(); err != nil {
		return err
	}
	if w.policy != SyncNever && w.syncer != nil {
		if err := w.syncer.Sync(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// Sync writes out the buffered frames and, unless the policy is SyncNever,
// syncs them: when Sync returns nil, every frame appended so far is durable.
func (w *FrameWriter) Sync() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriterClosed
	}
	return w.sync()
}

// Close syncs as Sync does, releases the appender's lock and closes the
// file OpenFrameLog opened (not an io.Writer given to NewFrameWriter). A
// failed writer still releases the lock, closes its file and returns its
// error. Closing twice returns [ErrWriterClosed].
func (w *FrameWriter) Close() error {
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
		unlockFile(w.lock)
		w.lock = nil
	}
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil && err == nil {
			err = w.fail(cerr)
		}
	}
	return err
}
