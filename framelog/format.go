package framelog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
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

	frameHeaderLen = FrameHeaderLen // frame_len u32 | frame_crc32 u32 | frame_type u16 | reserved u16
	frameOffCRC    = 4
	frameOffType   = 8
)

// maxFrameLenCap is the largest frame_len representable, and an int.
const maxFrameLenCap = min(math.MaxUint32, math.MaxInt)

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
	SchemaHash    [32]byte
}

// Bound reports whether h names the schema of its log's events: whether its
// schema hash is not all zero. The original system's tools wrote an all-zero
// schema hash; such a log is unbound (SPEC 4), and omega's Binding.CheckHeader
// refuses it.
func (h Header) Bound() bool { return h.SchemaHash != [32]byte{} }

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
// [Reader], [Scanner], [Recover] and [Open] do.
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
// Payload's ownership depends on the reader: a [Scanner]'s payload
// aliases the scanned slice (zero copy, valid as long as that slice is), a
// [Reader]'s aliases the reader's buffer and is valid only until the
// next call to Next. Copy it to keep it. Its capacity is its length, so
// appending to it never overwrites a neighbouring frame.
type Frame struct {
	Type    FrameType
	Payload []byte
	Offset  int64 // file offset of the frame's first byte; the first frame is at HeaderSize
}

// AppendFrame appends the encoding of a frame of type t holding payload to
// b, for a log or a file built in memory (a snapshot is one). It refuses an
// invalid type with [ErrInvalidFrameType] and a frame over
// [DefaultMaxFrameLen] with [ErrFrameTooLarge], returning b unchanged. A
// program appending to a file uses a [Writer].
func AppendFrame(b []byte, t FrameType, payload []byte) ([]byte, error) {
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
	binary.LittleEndian.PutUint32(f[frameOffCRC:], frameCRC(f))
	return b
}

// frameHeader returns the header of a frame of type t holding payload,
// whose arguments have been checked, for a payload written apart from it.
func frameHeader(t FrameType, payload []byte) [frameHeaderLen]byte {
	var h [frameHeaderLen]byte
	binary.LittleEndian.PutUint32(h[:], uint32(frameHeaderLen+len(payload)))
	binary.LittleEndian.PutUint32(h[frameOffType:], uint32(t)) // type, then reserved = 0
	binary.LittleEndian.PutUint32(h[frameOffCRC:], crc32.Update(frameCRC(h[:]), crc32.IEEETable, payload))
	return h
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

// The validity rule of SPEC 5: a valid frame starts at an offset when
// frameHead accepts the 12 bytes there (length bounds, type, reserved: the
// cheap fields), its frame_len bytes are all in the input, and
// frameCRCValid accepts them. The cheap fields come first, as SPEC 5 asks
// of the scan for a later frame, so that garbage costs a few instructions.
// Every check of a frame goes through these two: both readers' Next,
// frameProblem, which explains a bad frame, RecoverFrom's walks over a
// block read or a mapped file (recoverBytes), which check the CRCs of a
// block's frames together, and both
// readers' scans for a later frame, which check the candidates' CRCs with a
// crcTrail (crcrange.go) in time that does not grow with frame_len. Whether
// the frame's bytes are in the input is each caller's to say. Open's
// check of an overlong tail asks about the CRC alone, with frameCRCValidAt.

// frameHead reads the frame header at the start of h, which holds 12 bytes
// at least, and applies the rule's cheap part to it: frame_len n in [12,
// maxLen], a valid frame_type t and a zero reserved field.
func frameHead(h []byte, maxLen uint32) (n uint32, t FrameType, ok bool) {
	n = binary.LittleEndian.Uint32(h)
	tr := binary.LittleEndian.Uint32(h[frameOffType:]) // frame_type, then reserved
	return n, FrameType(tr), n >= frameHeaderLen && n <= maxLen && tr>>16 == 0 && validFrameType(uint16(tr))
}

// frameCRCValid reports whether f, the whole of a frame (frame_len bytes),
// carries a frame_crc32 that holds: the rule's full check.
func frameCRCValid(f []byte) bool {
	return frameCRC(f) == binary.LittleEndian.Uint32(f[frameOffCRC:])
}

// frameCRCValidAt is frameCRCValid for the frame at offset off of r whose
// header h (12 bytes) has been read: it reads the payload in pieces rather
// than whole, for a frame too long to hold (frame_len runs to 4 GiB). The
// frame's frame_len must be 12 at least, and its bytes within r.
func frameCRCValidAt(r io.ReaderAt, off int64, h []byte) (bool, error) {
	n := int64(binary.LittleEndian.Uint32(h))
	crc := crc32.NewIEEE()
	crc.Write(h[frameOffType:frameHeaderLen])
	if _, err := io.Copy(crc, io.NewSectionReader(r, off+frameHeaderLen, n-frameHeaderLen)); err != nil {
		return false, err
	}
	return crc.Sum32() == binary.LittleEndian.Uint32(h[frameOffCRC:]), nil
}

// frameCRC returns the CRC-32/IEEE of the bytes frame_crc32 covers in the
// frame f: frame_type, reserved and payload, as encoded. The writers set
// frame_crc32 with it too. Given a frame header alone, it covers the
// header's two fields, for crc32.Update to continue over the payload.
func frameCRC(f []byte) uint32 { return crc32.ChecksumIEEE(f[frameOffType:]) }

// frameProblem explains why the frame at the start of b is bad; b holds the
// frame's bytes up to its frame_len or up to the end of the input,
// whichever comes first. crcHeld reports a bad type or reserved field under
// a CRC that holds, which is always corruption. It returns "" for a valid
// frame: one the validity rule accepts.
func frameProblem(b []byte, maxLen uint32) (reason string, crcHeld bool) {
	if len(b) < frameHeaderLen {
		return fmt.Sprintf("frame header cut short: %d of 12 bytes", len(b)), false
	}
	n, t, ok := frameHead(b, maxLen)
	switch {
	case n < frameHeaderLen:
		return fmt.Sprintf("frame_len %d below 12", n), false
	case n > maxLen:
		return fmt.Sprintf("frame_len %d over the maximum %d", n, maxLen), false
	case uint64(n) > uint64(len(b)):
		return fmt.Sprintf("frame_len %d runs past the end of the input, %d bytes left", n, len(b)), false
	}
	// A CRC that fails explains the frame before its type or reserved field
	// does: it decides between corruption and a torn tail.
	f := b[:n]
	if !frameCRCValid(f) {
		return fmt.Sprintf("frame_crc32 %08x, computed %08x", binary.LittleEndian.Uint32(f[frameOffCRC:]), frameCRC(f)), false
	}
	if ok {
		return "", false
	}
	// frame_len is in bounds, so frameHead refused the type or the
	// reserved field.
	if !t.Valid() {
		return fmt.Sprintf("invalid frame type 0x%04x under a valid crc", uint16(t)), true
	}
	return fmt.Sprintf("reserved field 0x%04x under a valid crc", binary.LittleEndian.Uint16(f[frameOffType+2:])), true
}
