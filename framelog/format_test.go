package framelog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"testing/synctest"

	"github.com/omega-sheaf/omega/internal/errcat"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

var lfUpdate = flag.Bool("update-logfmt", false, "rewrite testdata/logfmt and the FuzzFrameReader and FuzzDecodeHeader seed corpora")

// The SPEC 5 vectors, copied literally; testdata/logfmt/vectors.json holds
// them too, with the BATCH frame and snapshot files.
const (
	lfSchemaHashHex = "8286e473832e02f763eea8052e57cef90bb33a65be430e47c187e8afeb6faadb"
	lfHeaderHex     = "4f4d4547410001000100010100000000000000000000000000008286e473832e02f763eea8052e57cef90bb33a65be430e47c187e8afeb6faadb000000000000"
	lfFrameHex      = "11000000ca6a497d010000006f6d656761"
	lfFrameCRC      = 0x7d496aca
)

func lfHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lfHeader(t testing.TB) Header {
	t.Helper()
	var h Header
	h.SchemaVersion = 1
	copy(h.SchemaHash[:], lfHex(t, lfSchemaHashHex))
	return h
}

// lfFrame is a frame with its payload copied, comparable with cmp.
type lfFrame struct {
	Type    FrameType
	Payload string
	Offset  int64
}

// lfOutcome is everything a reader reports about one input.
type lfOutcome struct {
	Header Header
	Torn   bool
	Frames []lfFrame
	Kind   string // "clean", "torn", "corrupt", "header" or "other"
	Offset int64  // the FrameError's offset, or -1
	Err    string // the final error's message, "" at a clean end
}

func lfFinish(o *lfOutcome, err error) {
	o.Offset = -1
	var fe *FrameError
	var he *HeaderError
	switch {
	case err == io.EOF:
		o.Kind = "clean"
		return
	case errors.As(err, &fe):
		o.Kind, o.Offset = "corrupt", fe.Offset
		if errors.Is(err, ErrTornTail) {
			o.Kind = "torn"
		}
	case errors.As(err, &he):
		o.Kind = "header"
	default:
		o.Kind = "other"
	}
	o.Err = err.Error()
}

func lfScanAll(b []byte, opts *ReadOptions) lfOutcome {
	var o lfOutcome
	s := NewScanner(b, opts)
	if _, err := s.Header(); err != nil {
		lfFinish(&o, err)
		if _, err2 := s.Next(); err2 != err {
			o.Err += " (Next disagrees: " + fmt.Sprint(err2) + ")"
		}
		return o
	}
	o.Header, _ = s.Header()
	o.Torn = s.TornHeader()
	for {
		f, err := s.Next()
		if err != nil {
			lfFinish(&o, err)
			if _, err2 := s.Next(); err2 != err {
				o.Err += " (not sticky)"
			}
			return o
		}
		o.Frames = append(o.Frames, lfFrame{f.Type, string(f.Payload), f.Offset})
	}
}

func lfReadAll(r io.Reader, opts *ReadOptions) lfOutcome {
	var o lfOutcome
	fr := NewReader(r, opts)
	if _, err := fr.Header(); err != nil {
		lfFinish(&o, err)
		if _, err2 := fr.Next(); err2 != err {
			o.Err += " (Next disagrees: " + fmt.Sprint(err2) + ")"
		}
		return o
	}
	o.Header, _ = fr.Header()
	o.Torn = fr.TornHeader()
	for {
		f, err := fr.Next()
		if err != nil {
			lfFinish(&o, err)
			if _, err2 := fr.Next(); err2 != err {
				o.Err += " (not sticky)"
			}
			return o
		}
		o.Frames = append(o.Frames, lfFrame{f.Type, string(f.Payload), f.Offset})
	}
}

// lfChunkReader returns its bytes in reads of the given sizes, in turn.
type lfChunkReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *lfChunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(r.sizes[r.i%len(r.sizes)], len(p), len(r.b))
	r.i++
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// lfTB is what the checks need of a *testing.T or a *rapid.T.
type lfTB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// lfAllReaders runs every reader over b and checks that they agree,
// returning the outcome.
func lfAllReaders(t lfTB, b []byte, opts *ReadOptions) lfOutcome {
	t.Helper()
	want := lfScanAll(b, opts)
	readers := map[string]io.Reader{
		"bytes.Reader":   bytes.NewReader(b),
		"OneByteReader":  iotest.OneByteReader(bytes.NewReader(b)),
		"DataErrReader":  iotest.DataErrReader(bytes.NewReader(b)),
		"lfChunkReader":  &lfChunkReader{b: b, sizes: []int{3, 17, 1, 64, 12}},
		"HalfReader":     iotest.HalfReader(bytes.NewReader(b)),
		"lfChunkReader2": &lfChunkReader{b: b, sizes: []int{70000}},
	}
	for name, r := range readers {
		if diff := cmp.Diff(want, lfReadAll(r, opts)); diff != "" {
			t.Fatalf("Reader(%s) disagrees with Scanner (-scanner +reader):\n%s", name, diff)
		}
	}
	rec, err := Recover(b, opts)
	switch {
	case want.Kind == "header":
		if err == nil || err.Error() != want.Err {
			t.Fatalf("Recover: err = %v, want %s", err, want.Err)
		}
	case err != nil:
		t.Fatalf("Recover: %v", err)
	default:
		wantTail := map[string]TailKind{"clean": TailClean, "torn": TailTorn, "corrupt": TailCorrupt}[want.Kind]
		if want.Torn {
			wantTail = TailTorn // a torn header: everything is the torn part
		}
		if rec.Frames != len(want.Frames) || rec.Tail != wantTail || rec.TornHeader != want.Torn {
			t.Fatalf("Recover = %d frames, tail %v, torn header %v; want %d, %v, %v", rec.Frames, rec.Tail, rec.TornHeader, len(want.Frames), wantTail, want.Torn)
		}
		if want.Offset >= 0 && (rec.Err == nil || rec.Err.Offset != want.Offset || rec.TailOffset != want.Offset) {
			t.Fatalf("Recover: tail at %d (err %v), want %d", rec.TailOffset, rec.Err, want.Offset)
		}
		if rec.TailOffset+rec.TailBytes != int64(len(b)) {
			t.Fatalf("Recover: tail offset %d + tail bytes %d != %d", rec.TailOffset, rec.TailBytes, len(b))
		}
	}
	return want
}

// lfRawFrame encodes a frame with any type and reserved value, with a CRC
// that holds.
func lfRawFrame(typ, reserved uint16, payload []byte) []byte {
	f := make([]byte, frameHeaderLen+len(payload))
	binary.LittleEndian.PutUint32(f, uint32(len(f)))
	binary.LittleEndian.PutUint16(f[8:], typ)
	binary.LittleEndian.PutUint16(f[10:], reserved)
	copy(f[12:], payload)
	binary.LittleEndian.PutUint32(f[4:], crc32.ChecksumIEEE(f[8:]))
	return f
}

// lfLog is a log with its frames' offsets and ends.
type lfLog struct {
	b      []byte
	frames []lfFrame
	ends   []int64
}

func (l *lfLog) add(t testing.TB, typ FrameType, payload []byte) {
	t.Helper()
	off := int64(len(l.b))
	var err error
	if l.b, err = AppendFrame(l.b, typ, payload); err != nil {
		t.Fatal(err)
	}
	l.frames = append(l.frames, lfFrame{typ, string(payload), off})
	l.ends = append(l.ends, int64(len(l.b)))
}

func lfNewLog(t testing.TB, hdr Header) *lfLog {
	b, _ := hdr.AppendBinary(nil)
	return &lfLog{b: b}
}

// lfPayload returns n deterministic pseudo-random bytes.
func lfPayload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x6f6d656761))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// lfStdLog has frames of every valid kind of type and of sizes around the
// frame header's.
func lfStdLog(t testing.TB) *lfLog {
	l := lfNewLog(t, lfHeader(t))
	types := []FrameType{FrameEvent, FrameBatch, FrameCert, FrameSnapshot, FrameState, FrameIncident, 0x8000, 0xffff, FrameEvent}
	sizes := []int{0, 1, 5, 11, 12, 13, 40, 100, 3}
	for i, typ := range types {
		l.add(t, typ, lfPayload(uint64(i), sizes[i]))
	}
	return l
}

type lfVectorFile struct {
	Vectors []struct {
		Name    string            `json:"name"`
		Inputs  json.RawMessage   `json:"inputs"`
		Outputs map[string]string `json:"outputs"`
	} `json:"vectors"`
}

func lfVectors(t testing.TB) map[string]map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "logfmt", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf lfVectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, v := range vf.Vectors {
		out[v.Name] = v.Outputs
	}
	return out
}

func TestHeaderVector(t *testing.T) {
	h := lfHeader(t)
	want := lfHex(t, lfHeaderHex)
	if v := lfVectors(t)["header"]["header_hex"]; v != lfHeaderHex {
		t.Fatalf("testdata header_hex = %s, want %s", v, lfHeaderHex)
	}
	got, err := h.MarshalBinary()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("MarshalBinary() = %x, %v; want %x", got, err, want)
	}
	got, _ = h.AppendBinary([]byte("x"))
	if !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("AppendBinary(x) = %x", got)
	}
	dec, err := DecodeHeader(want)
	if err != nil || dec != h {
		t.Fatalf("DecodeHeader(vector) = %+v, %v; want %+v", dec, err, h)
	}
	if len(want) != HeaderSize {
		t.Fatalf("vector is %d bytes, HeaderSize = %d", len(want), HeaderSize)
	}
}

func TestFrameVectors(t *testing.T) {
	vs := lfVectors(t)
	v := vs["frame_type1_omega"]
	if v["frame_hex"] != lfFrameHex || v["frame_crc32"] != fmt.Sprintf("%08x", lfFrameCRC) {
		t.Fatalf("testdata frame vector = %v", v)
	}
	got, err := AppendFrame(nil, FrameEvent, []byte("omega"))
	if err != nil || hex.EncodeToString(got) != lfFrameHex {
		t.Fatalf("AppendFrame(EVENT, omega) = %x, %v; want %s", got, err, lfFrameHex)
	}
	if crc := binary.LittleEndian.Uint32(got[4:]); crc != lfFrameCRC {
		t.Fatalf("frame_crc32 = %08x, want %08x", crc, lfFrameCRC)
	}

	// The BATCH frame vector reads back and re-encodes to the same bytes.
	bv := vs["batch_payload_merge_genesis_3_events"]
	frame := lfHex(t, bv["frame_hex"])
	log := append(lfHex(t, lfHeaderHex), frame...)
	out := lfAllReaders(t, log, nil)
	if out.Kind != "clean" || len(out.Frames) != 1 || out.Frames[0].Type != FrameBatch {
		t.Fatalf("BATCH vector reads as %+v", out)
	}
	if crc := fmt.Sprintf("%08x", binary.LittleEndian.Uint32(frame[4:])); crc != bv["frame_crc32"] {
		t.Fatalf("BATCH frame_crc32 = %s, want %s", crc, bv["frame_crc32"])
	}
	re, err := AppendFrame(nil, FrameBatch, []byte(out.Frames[0].Payload))
	if err != nil || !bytes.Equal(re, frame) {
		t.Fatalf("re-encoded BATCH frame = %x, %v; want %x", re, err, frame)
	}

	// The snapshot files are whole logs: one SNAPSHOT frame, then STATE frames.
	for _, name := range []string{"snapshot_after_merge_second_batch", "snapshot_with_pending_event"} {
		file := lfHex(t, vs[name]["file_hex"])
		rec, err := Recover(file, nil)
		if err != nil || rec.Tail != TailClean || rec.TailBytes != 0 || rec.FramesByType[FrameSnapshot] != 1 ||
			rec.FramesByType[FrameState] != rec.Frames-1 || rec.Frames < 3 || rec.Header.SchemaHash != lfHeader(t).SchemaHash {
			t.Fatalf("Recover(%s) = %+v, %v", name, rec, err)
		}
		out := lfAllReaders(t, file, nil)
		re, _ := out.Header.AppendBinary(nil)
		for _, f := range out.Frames {
			re, _ = AppendFrame(re, f.Type, []byte(f.Payload))
		}
		if !bytes.Equal(re, file) {
			t.Fatalf("%s does not re-encode to itself", name)
		}
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	good := lfHex(t, lfHeaderHex)
	tests := []struct {
		name   string
		edit   func(b []byte) []byte
		field  string
		offset int
	}{
		{"magic first byte", func(b []byte) []byte { b[0] = 'o'; return b }, "magic", 0},
		{"magic version", func(b []byte) []byte { b[6] = 2; return b }, "magic", 6},
		{"magic last byte", func(b []byte) []byte { b[7] = 1; return b }, "magic", 7},
		{"endian flag 0", func(b []byte) []byte { b[10] = 0; return b }, "endian_flag", 10},
		{"endian flag 2", func(b []byte) []byte { b[10] = 2; return b }, "endian_flag", 10},
		{"hash alg 2", func(b []byte) []byte { b[11] = 2; return b }, "hash_alg_id", 11},
		{"reserved 12", func(b []byte) []byte { b[12] = 1; return b }, "reserved", 12},
		{"reserved 25", func(b []byte) []byte { b[25] = 0x80; return b }, "reserved", 25},
		{"reserved 58", func(b []byte) []byte { b[58] = 1; return b }, "reserved", 58},
		{"reserved 63", func(b []byte) []byte { b[63] = 0xff; return b }, "reserved", 63},
		{"short", func(b []byte) []byte { return b[:63] }, "length", 63},
		{"empty", func(b []byte) []byte { return b[:0] }, "length", 0},
		{"short bad magic", func(b []byte) []byte { b[2] = 0; return b[:5] }, "magic", 2},
		{"all zero", func(b []byte) []byte { return make([]byte, 64) }, "magic", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			h, err := DecodeHeader(b)
			var he *HeaderError
			if !errors.As(err, &he) || !errors.Is(err, ErrBadHeader) {
				t.Fatalf("DecodeHeader = %+v, %v; want a *HeaderError", h, err)
			}
			if he.Field != tt.field || he.Offset != tt.offset {
				t.Fatalf("DecodeHeader error = field %q offset %d, want %q at %d (%v)", he.Field, he.Offset, tt.field, tt.offset, err)
			}
			if !strings.HasPrefix(err.Error(), "omega: ") {
				t.Fatalf("error %q does not start with omega:", err)
			}
		})
	}
	// Trailing bytes are ignored.
	if h, err := DecodeHeader(append(bytes.Clone(good), 1, 2, 3)); err != nil || h != lfHeader(t) {
		t.Fatalf("DecodeHeader(header + 3 bytes) = %+v, %v", h, err)
	}
}

func TestTornHeader(t *testing.T) {
	good := lfHex(t, lfHeaderHex)
	frame := lfHex(t, lfFrameHex)
	torn := func(t *testing.T, b []byte) {
		t.Helper()
		out := lfAllReaders(t, b, nil)
		if !out.Torn || out.Kind != "clean" || len(out.Frames) != 0 || out.Header != (Header{}) {
			t.Fatalf("reading %x = %+v, want an empty log with a torn header", b, out)
		}
		rec, err := Recover(b, nil)
		if err != nil || !rec.TornHeader || rec.Tail != TailTorn || rec.TailOffset != 0 || rec.TailBytes != int64(len(b)) || rec.Err != nil {
			t.Fatalf("Recover(%x) = %+v, %v", b, rec, err)
		}
	}
	bad := func(t *testing.T, b []byte, field string) {
		t.Helper()
		out := lfAllReaders(t, b, nil)
		if out.Kind != "header" || !strings.Contains(out.Err, field) {
			t.Fatalf("reading %x = %+v, want a bad header (%s)", b, out, field)
		}
	}
	for n := range HeaderSize {
		torn(t, good[:n])
		torn(t, make([]byte, n))
	}
	torn(t, make([]byte, 64))
	torn(t, make([]byte, 64+1000))
	torn(t, make([]byte, 200000)) // zeros over several of the reader's chunks
	// A zeroed header followed by any non-zero byte is damage, not a
	// crash (no frame is written before the header is durable): refused,
	// valid frames or a valid header after it included, however far the
	// non-zero byte is.
	bad(t, append(make([]byte, 64), frame...), "zeroed")
	bad(t, append(make([]byte, 100000), 1), "zeroed")
	bad(t, append(make([]byte, 64), append(bytes.Clone(good), frame...)...), "zeroed")
	bad(t, append(make([]byte, 64), lfPayload(9, 5000)...), "zeroed")
	bad(t, append(make([]byte, 64), 0xff), "zeroed")
	bad(t, append(make([]byte, 65), 0xff, 0), "byte at offset 65")
	bad(t, []byte("OMEGB"), "magic")
	bad(t, append(bytes.Clone(good[:11]), 2), "hash_alg_id")
	bad(t, append(bytes.Clone(good[:60]), 0, 0, 1), "reserved")
	bad(t, append([]byte{0, 0, 0}, good[3:30]...), "magic")
	// A whole header is never torn, even with nothing after it.
	if out := lfAllReaders(t, good, nil); out.Torn || out.Kind != "clean" || out.Header != lfHeader(t) {
		t.Fatalf("reading a bare header = %+v", out)
	}
}

func TestFrameTypes(t *testing.T) {
	tests := []struct {
		t     FrameType
		valid bool
		s     string
	}{
		{0, false, "INVALID(0x0000)"},
		{FrameEvent, true, "EVENT"},
		{FrameBatch, true, "BATCH"},
		{FrameCert, true, "CERT"},
		{FrameSnapshot, true, "SNAPSHOT"},
		{FrameState, true, "STATE"},
		{FrameIncident, true, "INCIDENT"},
		{7, false, "INVALID(0x0007)"},
		{0x7fff, false, "INVALID(0x7fff)"},
		{0x8000, true, "APP(0x8000)"},
		{0xffff, true, "APP(0xffff)"},
	}
	for _, tt := range tests {
		if tt.t.Valid() != tt.valid || tt.t.String() != tt.s {
			t.Errorf("FrameType(%d): Valid() = %v, String() = %q; want %v, %q", uint16(tt.t), tt.t.Valid(), tt.t.String(), tt.valid, tt.s)
		}
	}
	for v := range 1 << 16 {
		want := v >= 1 && v <= 6 || v >= 0x8000
		if FrameType(v).Valid() != want {
			t.Fatalf("FrameType(%#x).Valid() = %v", v, !want)
		}
	}
	for _, k := range []struct {
		k TailKind
		s string
	}{{TailClean, "clean"}, {TailTorn, "torn"}, {TailCorrupt, "corrupt"}, {9, "TailKind(9)"}} {
		if k.k.String() != k.s {
			t.Errorf("TailKind.String() = %q, want %q", k.k.String(), k.s)
		}
	}
}

func TestAppendCheckedFrameErrors(t *testing.T) {
	for _, typ := range []FrameType{0, 7, 0x7fff} {
		b, err := AppendFrame([]byte("keep"), typ, []byte("x"))
		if !errors.Is(err, ErrInvalidFrameType) || string(b) != "keep" {
			t.Errorf("AppendFrame(type %#x) = %q, %v; want ErrInvalidFrameType and b unchanged", uint16(typ), b, err)
		}
	}
	// Pages of a large allocation are not touched until written.
	big := make([]byte, DefaultMaxFrameLen-frameHeaderLen+1)
	if b, err := AppendFrame(nil, FrameEvent, big); !errors.Is(err, ErrFrameTooLarge) || b != nil {
		t.Errorf("AppendFrame(64 MiB - 11) = %d bytes, %v; want ErrFrameTooLarge", len(b), err)
	}
}

// A log cut at every byte offset keeps exactly its complete frames, and the
// rest is a torn tail, never corruption.
func TestFrameLogTruncations(t *testing.T) {
	l := lfStdLog(t)
	for cut := 0; cut <= len(l.b); cut++ {
		out := lfAllReaders(t, l.b[:cut], nil)
		if cut < HeaderSize {
			if !out.Torn || len(out.Frames) != 0 {
				t.Fatalf("cut at %d: %+v, want a torn header", cut, out)
			}
			continue
		}
		k := 0
		for k < len(l.ends) && l.ends[k] <= int64(cut) {
			k++
		}
		if diff := cmp.Diff(l.frames[:k], out.Frames, cmp.Comparer(func(a, b []lfFrame) bool {
			return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b))
		})); diff != "" {
			t.Fatalf("cut at %d: frames (-want +got):\n%s", cut, diff)
		}
		start := int64(HeaderSize)
		if k > 0 {
			start = l.ends[k-1]
		}
		if start == int64(cut) {
			if out.Kind != "clean" {
				t.Fatalf("cut at frame boundary %d: %s, want clean", cut, out.Err)
			}
		} else if out.Kind != "torn" || out.Offset != start {
			t.Fatalf("cut at %d: %s %s, want a torn tail at %d", cut, out.Kind, out.Err, start)
		}
	}
}

// Every single-bit flip is caught. In a frame before the last, it is
// corruption at that frame; in the last frame, it is a torn tail at that
// frame (the documented limit: frame_len and everything else in the last
// frame are indistinguishable from a torn write). In the header's fixed
// fields it is a bad header; in schema_version or schema_hash it gives a
// different header (the header has no checksum; binding checks refuse it).
func TestFrameLogBitFlips(t *testing.T) {
	skipExhaustiveUnderRace(t)
	l := lfStdLog(t)
	last := len(l.frames) - 1
	for i := range len(l.b) {
		for bit := range 8 {
			b := bytes.Clone(l.b)
			b[i] ^= 1 << bit
			out := lfAllReaders(t, b, nil)
			if i < HeaderSize {
				fixed := i < logOffSchemaVer || i == logOffEndian || i == logOffHashAlg ||
					(i >= logOffReserved1 && i < logOffSchemaHash) || i >= logOffReserved2
				if fixed {
					if out.Kind != "header" {
						t.Fatalf("flip byte %d bit %d: %+v, want a bad header", i, bit, out)
					}
				} else if out.Header == lfHeader(t) || out.Kind != "clean" || len(out.Frames) != len(l.frames) {
					t.Fatalf("flip byte %d bit %d: %+v, want another header and all frames", i, bit, out)
				}
				continue
			}
			j := 0
			for l.ends[j] <= int64(i) {
				j++
			}
			wantKind := "corrupt"
			if j == last {
				wantKind = "torn"
			}
			if out.Kind != wantKind || out.Offset != l.frames[j].Offset || len(out.Frames) != j {
				t.Fatalf("flip byte %d bit %d (frame %d at %d): %s at %d after %d frames (%s); want %s at %d after %d",
					i, bit, j, l.frames[j].Offset, out.Kind, out.Offset, len(out.Frames), out.Err, wantKind, l.frames[j].Offset, j)
			}
		}
	}
}

// lfLongLog is a log of 60 frames of about 100 bytes, written as 6 group
// commits of 10 frames; writes[k] is the offset where write k starts.
func lfLongLog(t testing.TB) (*lfLog, []int64) {
	l := lfNewLog(t, lfHeader(t))
	var writes []int64
	for i := range 60 {
		if i%10 == 0 {
			writes = append(writes, int64(len(l.b)))
		}
		l.add(t, FrameEvent, lfPayload(uint64(100+i), 80+i%40))
	}
	return l, writes
}

// frameAt returns the index of the frame holding byte off.
func (l *lfLog) frameAt(off int64) int {
	j := 0
	for l.ends[j] <= off {
		j++
	}
	return j
}

func TestFrameLogTornSectors(t *testing.T) {
	l, writes := lfLongLog(t)
	lastWrite := writes[len(writes)-1]
	garbage := lfPayload(7, len(l.b))
	for _, from := range []int64{lastWrite, lastWrite + 1, lastWrite + 11, lastWrite + 12, lastWrite + 300, lastWrite + 512, int64(len(l.b)) - 1} {
		j := l.frameAt(from)
		cases := map[string][]byte{}
		b := bytes.Clone(l.b)
		clear(b[from:])
		cases["zeroed"] = b
		// Sector-rounded: the file's length ran on to a 4 KiB boundary
		// but the data never arrived.
		cases["zeroed to 4 KiB"] = append(bytes.Clone(b), make([]byte, 4096-len(b)%4096)...)
		b = bytes.Clone(l.b)
		copy(b[from:], garbage)
		cases["garbage"] = b
		cases["garbage and more"] = append(bytes.Clone(b), garbage[:777]...)
		cases["cut then zeros"] = append(bytes.Clone(l.b[:from]), make([]byte, 5000)...)
		for name, b := range cases {
			out := lfAllReaders(t, b, nil)
			if out.Kind != "torn" || out.Offset != l.frames[j].Offset || len(out.Frames) != j {
				t.Errorf("%s from %d: %s at %d after %d frames (%s); want torn at %d after %d",
					name, from, out.Kind, out.Offset, len(out.Frames), out.Err, l.frames[j].Offset, j)
			}
		}
	}

	// A damaged sector before the last write, with intact frames after it, is
	// corruption at the first frame it touches.
	for _, sector := range []int64{512, 1024, 2048, 3584} {
		j := l.frameAt(sector)
		for name, fill := range map[string][]byte{"zeroed": make([]byte, 512), "garbage": garbage[:512]} {
			b := bytes.Clone(l.b)
			copy(b[sector:sector+512], fill)
			out := lfAllReaders(t, b, nil)
			if out.Kind != "corrupt" || out.Offset != l.frames[j].Offset || len(out.Frames) != j {
				t.Errorf("%s sector at %d: %s at %d after %d frames (%s); want corrupt at %d after %d",
					name, sector, out.Kind, out.Offset, len(out.Frames), out.Err, l.frames[j].Offset, j)
			}
			var fe *FrameError
			if _, err := NewScanner(b, nil).lfDrain(); !errors.As(err, &fe) || !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTornTail) {
				t.Errorf("error %v is not a *FrameError wrapping only ErrCorrupt", err)
			}
		}
	}
}

// lfDrain reads s to its end.
func (s *Scanner) lfDrain() (int, error) {
	n := 0
	for {
		if _, err := s.Next(); err != nil {
			return n, err
		}
		n++
	}
}

// A bad frame whose CRC holds is corruption even at the very end, and the
// error names the bad field.
func TestFrameCRCHeldIsCorrupt(t *testing.T) {
	tests := []struct {
		typ, reserved uint16
		reason        string
	}{
		{0, 0, "invalid frame type 0x0000"},
		{7, 0, "invalid frame type 0x0007"},
		{0x7fff, 0, "invalid frame type 0x7fff"},
		{1, 1, "reserved field 0x0001"},
		{0x8000, 0x8000, "reserved field 0x8000"},
	}
	for _, tt := range tests {
		l := lfStdLog(t)
		off := int64(len(l.b))
		b := append(l.b, lfRawFrame(tt.typ, tt.reserved, []byte("payload"))...)
		for name, b := range map[string][]byte{"last": b, "followed by zeros": append(bytes.Clone(b), make([]byte, 100)...)} {
			out := lfAllReaders(t, b, nil)
			if out.Kind != "corrupt" || out.Offset != off || !strings.Contains(out.Err, tt.reason) || len(out.Frames) != len(l.frames) {
				t.Errorf("type %#x reserved %#x %s: %+v; want corrupt at %d naming %q", tt.typ, tt.reserved, name, out, off, tt.reason)
			}
		}
	}
	// The same frames are refused by the writer side.
	if _, err := AppendFrame(nil, 7, nil); !errors.Is(err, ErrInvalidFrameType) {
		t.Errorf("AppendFrame(7) error = %v", err)
	}
}

func TestFrameLenBounds(t *testing.T) {
	// Frames of 12 bytes fit every maximum.
	base := lfNewLog(t, lfHeader(t))
	for _, typ := range []FrameType{FrameEvent, FrameBatch, 0x8000} {
		base.add(t, typ, nil)
	}
	valid := lfHex(t, lfFrameHex)
	short := []byte{11, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0}
	tests := []struct {
		name   string
		tail   []byte
		opts   *ReadOptions
		kind   string
		reason string
		frames int
	}{
		{"len 11 at end", short, nil, "torn", "frame_len 11 below 12", 0},
		{"len 11 then a frame", append(bytes.Clone(short), valid...), nil, "corrupt", "frame_len 11 below 12", 0},
		{"len 0 then a frame", append(make([]byte, 12), valid...), nil, "corrupt", "frame_len 0 below 12", 0},
		{"header cut short", []byte{17, 0, 0}, nil, "torn", "frame header cut short: 3 of 12 bytes", 0},
		{"over max at end", lfRawFrame(1, 0, make([]byte, 89)), &ReadOptions{MaxFrameLen: 100}, "torn", "frame_len 101 over the maximum 100", 0},
		{"over max then a frame", append(lfRawFrame(1, 0, make([]byte, 89)), valid...), &ReadOptions{MaxFrameLen: 100}, "corrupt", "over the maximum 100", 0},
		{"at max", lfRawFrame(1, 0, make([]byte, 88)), &ReadOptions{MaxFrameLen: 100}, "clean", "", 1},
		{"max clamped to 12", lfRawFrame(1, 0, nil), &ReadOptions{MaxFrameLen: 5}, "clean", "", 1},
		{"max clamped to 12, 13 bytes", lfRawFrame(1, 0, []byte{1}), &ReadOptions{MaxFrameLen: 5}, "torn", "frame_len 13 over the maximum 12", 0},
		{"runs past end", []byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 9}, nil, "torn", "frame_len 200 runs past the end of the input, 13 bytes left", 0},
		{"huge len, tiny input", []byte{0xff, 0xff, 0xff, 0x03, 1, 2, 3, 4, 1, 0, 0, 0}, nil, "torn", "frame_len 67108863 runs past", 0},
		{"crc mismatch", append(bytes.Clone(valid[:4]), 0, 0, 0, 0, 1, 0, 0, 0, 'o', 'm', 'e', 'g', 'a'), nil, "torn", "frame_crc32 00000000, computed 7d496aca", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append(bytes.Clone(base.b), tt.tail...)
			out := lfAllReaders(t, b, tt.opts)
			n := len(base.frames)
			if out.Kind != tt.kind || !strings.Contains(out.Err, tt.reason) || len(out.Frames) != n+tt.frames {
				t.Fatalf("%+v; want %s naming %q after %d frames", out, tt.kind, tt.reason, n+tt.frames)
			}
			if tt.kind != "clean" && out.Offset != int64(len(base.b)) {
				t.Fatalf("bad frame at %d, want %d", out.Offset, len(base.b))
			}
		})
	}
}

// A valid frame inside a bad frame's bytes counts as a later frame: the bad
// frame is corruption.
func TestFrameLaterFrameInsidePayload(t *testing.T) {
	inner := lfHex(t, lfFrameHex)
	l := lfNewLog(t, lfHeader(t))
	l.add(t, FrameEvent, []byte("first"))
	l.add(t, 0x8001, append([]byte("nested:"), inner...))
	b := bytes.Clone(l.b)
	b[l.frames[1].Offset+12] ^= 1 // damage "nested:", not the inner frame
	out := lfAllReaders(t, b, nil)
	if out.Kind != "corrupt" || out.Offset != l.frames[1].Offset || len(out.Frames) != 1 {
		t.Fatalf("%+v; want corrupt at %d", out, l.frames[1].Offset)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	l := lfStdLog(t)
	boom := errors.New("boom")

	// A read error is returned as is, and sticks.
	r := NewReader(io.MultiReader(bytes.NewReader(l.b[:200]), iotest.ErrReader(boom)), nil)
	n := 0
	var err error
	for {
		if _, err = r.Next(); err != nil {
			break
		}
		n++
	}
	if err != boom || n != len(lfScanAll(l.b[:200], nil).Frames) {
		t.Fatalf("after %d frames: %v, want boom", n, err)
	}
	if _, err2 := r.Next(); err2 != boom {
		t.Fatalf("second Next = %v, want boom again", err2)
	}
	if h, err := r.Header(); err != nil || h != lfHeader(t) {
		t.Fatalf("Header() = %+v, %v after a read error in the body", h, err)
	}

	// A read error while looking past a bad frame is returned, not a verdict.
	b := bytes.Clone(l.b)
	b[l.frames[2].Offset+5] ^= 0x10
	r = NewReader(io.MultiReader(bytes.NewReader(b[:l.frames[3].Offset+5]), iotest.ErrReader(boom)), nil)
	for err = nil; err == nil; _, err = r.Next() {
	}
	if err != boom {
		t.Fatalf("read error during the look-ahead: %v, want boom", err)
	}

	// A read error in the header.
	r = NewReader(io.MultiReader(bytes.NewReader(l.b[:10]), iotest.ErrReader(boom)), nil)
	if _, err := r.Header(); err != boom {
		t.Fatalf("Header() = %v, want boom", err)
	}
	if _, err := r.Next(); err != boom {
		t.Fatalf("Next() = %v, want boom", err)
	}

	// A reader that never makes progress.
	r = NewReader(lfStuckReader{}, nil)
	if _, err := r.Next(); err != io.ErrNoProgress {
		t.Fatalf("Next() over a stuck reader = %v, want io.ErrNoProgress", err)
	}

	// io.EOF again after the end.
	s := NewScanner(l.b, nil)
	if n, err := s.lfDrain(); err != io.EOF || n != len(l.frames) {
		t.Fatalf("drain = %d, %v", n, err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("Next after EOF = %v", err)
	}
	if s.Offset() != int64(len(l.b)) {
		t.Fatalf("Offset() = %d, want %d", s.Offset(), len(l.b))
	}
}

type lfStuckReader struct{}

func (lfStuckReader) Read([]byte) (int, error) { return 0, nil }

// Looking past a bad frame keeps about one maximal frame in memory, however
// long the rest of the input.
func TestFrameReaderLookAheadMemory(t *testing.T) {
	l := lfStdLog(t)
	b := append(bytes.Clone(l.b), 40, 0, 0, 0) // a torn frame
	b = append(b, make([]byte, 8<<20)...)
	r := NewReader(bytes.NewReader(b), &ReadOptions{MaxFrameLen: 1000})
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, ErrTornTail) {
		t.Fatalf("err = %v, want a torn tail", err)
	}
	if len(r.buf) > 2*frameReadChunk {
		t.Fatalf("reader buffer grew to %d bytes", len(r.buf))
	}
}

func TestRecoverReport(t *testing.T) {
	l := lfStdLog(t)
	rec, err := Recover(l.b, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Recovery{
		Header: lfHeader(t),
		Frames: len(l.frames),
		FramesByType: map[FrameType]int{
			FrameEvent: 2, FrameBatch: 1, FrameCert: 1, FrameSnapshot: 1, FrameState: 1, FrameIncident: 1, 0x8000: 1, 0xffff: 1,
		},
		ValidBytes: int64(len(l.b) - HeaderSize),
		Tail:       TailClean,
		TailOffset: int64(len(l.b)),
	}
	if diff := cmp.Diff(want, rec); diff != "" {
		t.Fatalf("Recover (-want +got):\n%s", diff)
	}
	b := append(bytes.Clone(l.b), 1, 2, 3)
	rec, _ = Recover(b, nil)
	if rec.Tail != TailTorn || rec.TailBytes != 3 || rec.ValidBytes != want.ValidBytes || rec.Err == nil || rec.Err.Offset != int64(len(l.b)) {
		t.Fatalf("Recover(log + 3 bytes) = %+v", rec)
	}
	if _, err := Recover([]byte("not a log at all, clearly"), nil); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("Recover(text) error = %v", err)
	}
}

// lfRefRecover is a deliberately plain reading of SPEC 5 recovery, to check
// the readers against: it returns the valid frames, how the prefix ends and
// where.
func lfRefRecover(b []byte, maxLen int) ([]lfFrame, string, int64) {
	if maxLen <= 0 {
		maxLen = DefaultMaxFrameLen
	}
	maxLen = max(maxLen, 12)
	check := func(p int) (n int, ok, crcHeld bool) {
		if len(b)-p < 12 {
			return 0, false, false
		}
		n = int(binary.LittleEndian.Uint32(b[p:]))
		if n < 12 || n > maxLen || n > len(b)-p {
			return n, false, false
		}
		crcHeld = crc32.ChecksumIEEE(b[p+8:p+n]) == binary.LittleEndian.Uint32(b[p+4:])
		typ := binary.LittleEndian.Uint16(b[p+8:])
		reserved := binary.LittleEndian.Uint16(b[p+10:])
		typeOK := (typ >= 1 && typ <= 6) || typ >= 0x8000
		return n, crcHeld && typeOK && reserved == 0, crcHeld
	}
	var frames []lfFrame
	p := HeaderSize
	for p < len(b) {
		n, ok, crcHeld := check(p)
		if ok {
			frames = append(frames, lfFrame{FrameType(binary.LittleEndian.Uint16(b[p+8:])), string(b[p+12 : p+n]), int64(p)})
			p += n
			continue
		}
		if crcHeld {
			return frames, "corrupt", int64(p)
		}
		for q := p + 1; q < len(b); q++ {
			if _, ok, _ := check(q); ok {
				return frames, "corrupt", int64(p)
			}
		}
		return frames, "torn", int64(p)
	}
	return frames, "clean", -1
}

// lfCheckReference compares an outcome with lfRefRecover's reading of b,
// whose header must be whole and valid.
func lfCheckReference(t lfTB, b []byte, maxLen int, out lfOutcome) {
	t.Helper()
	frames, kind, off := lfRefRecover(b, maxLen)
	if out.Kind != kind || out.Offset != off || len(out.Frames) != len(frames) || (len(frames) > 0 && !cmp.Equal(frames, out.Frames)) {
		t.Fatalf("readers: %s at %d after %d frames (%s); reference: %s at %d after %d", out.Kind, out.Offset, len(out.Frames), out.Err, kind, off, len(frames))
	}
}

// lfCheckReencode checks that the valid prefix of b re-encodes to the same
// bytes.
func lfCheckReencode(t lfTB, b []byte, out lfOutcome) {
	t.Helper()
	if out.Kind == "header" || out.Kind == "other" {
		return
	}
	var re []byte
	if !out.Torn {
		re, _ = out.Header.AppendBinary(nil)
	}
	for _, f := range out.Frames {
		var err error
		if re, err = AppendFrame(re, f.Type, []byte(f.Payload)); err != nil {
			t.Fatal(err)
		}
	}
	end := int64(len(b))
	if out.Offset >= 0 {
		end = out.Offset
	}
	if out.Torn {
		end = 0
	}
	if !bytes.Equal(re, b[:end]) {
		t.Fatalf("valid prefix of %d bytes re-encodes to %d different bytes", end, len(re))
	}
}

func lfGenLog(t *rapid.T) []byte {
	b, _ := Header{SchemaVersion: rapid.Uint16().Draw(t, "schema_version")}.AppendBinary(nil)
	types := rapid.SampledFrom([]FrameType{1, 2, 3, 4, 5, 6, 0x8000, 0xabcd, 0xffff})
	for range rapid.IntRange(0, 8).Draw(t, "frames") {
		payload := rapid.SliceOfN(rapid.Byte(), 0, 150).Draw(t, "payload")
		b, _ = AppendFrame(b, types.Draw(t, "type"), payload)
	}
	return b
}

// lfDamage applies a few random damages to the body of a log.
func lfDamage(t *rapid.T, b []byte) []byte {
	for range rapid.IntRange(0, 3).Draw(t, "damages") {
		if len(b) <= HeaderSize {
			break
		}
		at := rapid.IntRange(HeaderSize, len(b)-1).Draw(t, "at")
		switch rapid.IntRange(0, 6).Draw(t, "damage") {
		case 0:
			b = b[:at]
		case 1:
			b[at] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		case 2:
			clear(b[at:min(len(b), at+rapid.IntRange(1, 100).Draw(t, "zeros"))])
		case 3:
			copy(b[at:], rapid.SliceOfN(rapid.Byte(), 1, 64).Draw(t, "garbage"))
		case 4:
			b = append(b, rapid.SliceOfN(rapid.Byte(), 1, 64).Draw(t, "tail")...)
		case 5:
			f := lfRawFrame(rapid.Uint16().Draw(t, "raw type"), rapid.SampledFrom([]uint16{0, 0, 1}).Draw(t, "raw reserved"), rapid.SliceOfN(rapid.Byte(), 0, 20).Draw(t, "raw payload"))
			b = append(b[:at:at], append(f, b[at:]...)...)
		case 6:
			b = append(b, make([]byte, rapid.IntRange(1, 600).Draw(t, "zero tail"))...)
		}
	}
	return b
}

// The streaming reader, the scanner, Recover and the reference agree on
// random damaged logs.
func TestFrameReadersAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := lfDamage(t, lfGenLog(t))
		maxLen := rapid.SampledFrom([]int{0, 12, 60, 120}).Draw(t, "max_frame_len")
		opts := &ReadOptions{MaxFrameLen: maxLen}
		out := lfScanAll(b, opts)
		sizes := rapid.SliceOfN(rapid.IntRange(1, 200), 1, 8).Draw(t, "read sizes")
		if diff := cmp.Diff(out, lfReadAll(&lfChunkReader{b: b, sizes: sizes}, opts)); diff != "" {
			t.Fatalf("Reader disagrees with Scanner (-scanner +reader):\n%s", diff)
		}
		lfAllReaders(t, b, opts)
		lfCheckReference(t, b, maxLen, out)
		lfCheckReencode(t, b, out)
	})
}

// lfFakeFile is an io.Writer with a Sync method whose calls can fail.
type lfFakeFile struct {
	data       bytes.Buffer
	writes     int
	syncs      int
	synced     int   // len(data) at the last successful Sync
	failWrite  int   // fail the failWrite-th Write (1-based); 0 never
	shortWrite bool  // the failing Write writes half and reports no error
	failSync   int   // fail the failSync-th Sync (1-based); 0 never
	err        error // what failures return
}

func (f *lfFakeFile) Write(p []byte) (int, error) {
	f.writes++
	if f.writes == f.failWrite {
		if f.shortWrite {
			return f.data.Write(p[:len(p)/2])
		}
		n, _ := f.data.Write(p[:len(p)/3])
		return n, f.err
	}
	return f.data.Write(p)
}

func (f *lfFakeFile) Sync() error {
	f.syncs++
	if f.syncs == f.failSync {
		return f.err
	}
	f.synced = f.data.Len()
	return nil
}

func TestFrameWriter(t *testing.T) {
	l := lfStdLog(t)
	for _, bufSize := range []int{0, 1, 30, 100, 1000} {
		var f lfFakeFile
		w, err := NewWriter(&f, lfHeader(t), &WriterOptions{BufferSize: bufSize})
		if err != nil {
			t.Fatal(err)
		}
		for i, fr := range l.frames {
			off, err := w.Append(fr.Type, []byte(fr.Payload))
			if err != nil || off != fr.Offset {
				t.Fatalf("buffer %d: Append(frame %d) = %d, %v; want %d", bufSize, i, off, err, fr.Offset)
			}
			if w.Size() != l.ends[i] {
				t.Fatalf("Size() = %d, want %d", w.Size(), l.ends[i])
			}
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if f.synced != len(l.b) || !bytes.Equal(f.data.Bytes(), l.b) {
			t.Fatalf("buffer %d: wrote %x (synced %d), want %x", bufSize, f.data.Bytes(), f.synced, l.b)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(FrameEvent, nil); err != ErrWriterClosed {
			t.Fatalf("Append after Close = %v", err)
		}
		if err := w.Sync(); err != ErrWriterClosed {
			t.Fatalf("Sync after Close = %v", err)
		}
		if err := w.Close(); err != ErrWriterClosed {
			t.Fatalf("second Close = %v", err)
		}
	}
}

func TestFrameWriterPolicies(t *testing.T) {
	tests := []struct {
		policy              SyncPolicy
		afterAppends, total int // syncs after 3 appends, after Sync and Close
	}{
		{SyncBatch, 0, 2},
		{SyncAlways, 3, 5},
		{SyncNever, 0, 0},
	}
	for _, tt := range tests {
		var f lfFakeFile
		w, err := NewWriter(&f, Header{}, &WriterOptions{Sync: tt.policy})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := w.Append(FrameEvent, []byte("e")); err != nil {
				t.Fatal(err)
			}
		}
		if f.syncs != tt.afterAppends {
			t.Errorf("policy %d: %d syncs after 3 appends, want %d", tt.policy, f.syncs, tt.afterAppends)
		}
		if tt.policy == SyncAlways && f.data.Len() != HeaderSize+3*13 {
			t.Errorf("SyncAlways left %d bytes unwritten", HeaderSize+3*13-f.data.Len())
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if f.data.Len() != HeaderSize+3*13 {
			t.Errorf("policy %d: Sync wrote %d bytes", tt.policy, f.data.Len())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if f.syncs != tt.total {
			t.Errorf("policy %d: %d syncs in all, want %d", tt.policy, f.syncs, tt.total)
		}
	}
	if _, err := NewWriter(io.Discard, Header{}, &WriterOptions{Sync: 3}); err == nil {
		t.Error("NewWriter accepted sync policy 3")
	}
}

func TestFrameWriterArgs(t *testing.T) {
	// An absurd buffer size is capped, not allocated.
	for _, size := range []int{math.MaxInt, maxWriteBuffer + 1} {
		w, err := NewWriter(io.Discard, Header{}, &WriterOptions{BufferSize: size})
		if err != nil || cap(w.buf) != maxWriteBuffer {
			t.Fatalf("NewWriter(BufferSize %d) = buffer of %d, %v; want %d", size, cap(w.buf), err, maxWriteBuffer)
		}
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{}, &WriterOptions{MaxFrameLen: 100, BufferSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(7, nil); !errors.Is(err, ErrInvalidFrameType) {
		t.Fatalf("Append(type 7) = %v", err)
	}
	if _, err := w.Append(FrameEvent, make([]byte, 89)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Append(89 bytes) with a 100-byte maximum = %v", err)
	}
	// Refused arguments do not fail the writer; a frame larger than the
	// buffer goes straight through.
	p := lfPayload(3, 88)
	if off, err := w.Append(FrameEvent, p); err != nil || off != HeaderSize {
		t.Fatalf("Append(88 bytes) = %d, %v", off, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want, _ := Header{}.AppendBinary(nil)
	want, _ = AppendFrame(want, FrameEvent, p)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("wrote %x, want %x", buf.Bytes(), want)
	}
	if out := lfAllReaders(t, buf.Bytes(), &ReadOptions{MaxFrameLen: 100}); out.Kind != "clean" || len(out.Frames) != 1 {
		t.Fatalf("reading back: %+v", out)
	}
}

// A failed write or fsync fails the writer for good: every later call
// returns the same error, and a failed fsync is never retried into a false
// success.
func TestFrameWriterFailure(t *testing.T) {
	eio := errors.New("input/output error")
	tests := []struct {
		name string
		f    lfFakeFile
	}{
		{"write fails", lfFakeFile{failWrite: 1, err: eio}},
		{"short write", lfFakeFile{failWrite: 1, shortWrite: true}},
		{"fsync fails", lfFakeFile{failSync: 1, err: eio}},
		{"second fsync fails", lfFakeFile{failSync: 2, err: eio}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			w, err := NewWriter(&f, Header{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var first error
			for i := 0; first == nil && i < 5; i++ {
				if _, err := w.Append(FrameEvent, []byte("event")); err != nil {
					t.Fatalf("Append failed before any I/O: %v", err)
				}
				first = w.Sync()
			}
			if !errors.Is(first, ErrWriterFailed) {
				t.Fatalf("Sync error = %v, want ErrWriterFailed", first)
			}
			if tt.f.err != nil && !errors.Is(first, eio) {
				t.Fatalf("Sync error = %v, does not wrap the cause", first)
			}
			if tt.f.shortWrite && !errors.Is(first, io.ErrShortWrite) {
				t.Fatalf("Sync error = %v, want io.ErrShortWrite", first)
			}
			syncs, writes := f.syncs, f.writes
			if _, err := w.Append(FrameEvent, nil); err != first {
				t.Fatalf("Append after failure = %v, want %v", err, first)
			}
			if err := w.Sync(); err != first {
				t.Fatalf("Sync after failure = %v, want %v", err, first)
			}
			if err := w.Close(); err != first {
				t.Fatalf("Close after failure = %v, want %v", err, first)
			}
			if err := w.Close(); err != first {
				t.Fatalf("second Close after failure = %v, want %v", err, first)
			}
			if f.syncs != syncs || f.writes != writes {
				t.Fatalf("failed writer kept writing or syncing: %d writes, %d syncs, then %d, %d", writes, syncs, f.writes, f.syncs)
			}
		})
	}
	// Under SyncAlways the failure surfaces from Append.
	f := lfFakeFile{failSync: 1, err: eio}
	w, _ := NewWriter(&f, Header{}, &WriterOptions{Sync: SyncAlways})
	if _, err := w.Append(FrameEvent, nil); !errors.Is(err, eio) {
		t.Fatalf("SyncAlways Append = %v, want the fsync error", err)
	}
}

func lfReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenFrameLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.omega")
	hdr := lfHeader(t)

	w, err := Open(path, hdr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := lfReadFile(t, path); !bytes.Equal(got, lfHex(t, lfHeaderHex)) {
		t.Fatalf("new log holds %x, want the header", got)
	}
	if off, err := w.Append(FrameEvent, []byte("one")); err != nil || off != HeaderSize {
		t.Fatalf("Append = %d, %v", off, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening continues after the last frame.
	w, err = Open(path, hdr, &WriterOptions{Sync: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	if off, err := w.Append(FrameEvent, []byte("two")); err != nil || off != HeaderSize+15 {
		t.Fatalf("Append after reopen = %d, %v", off, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := lfNewLog(t, hdr)
	want.add(t, FrameEvent, []byte("one"))
	want.add(t, FrameEvent, []byte("two"))
	if got := lfReadFile(t, path); !bytes.Equal(got, want.b) {
		t.Fatalf("log holds %x, want %x", got, want.b)
	}

	// A torn tail is truncated, and appending continues.
	if err := os.WriteFile(path, append(bytes.Clone(want.b), 40, 0, 0, 0, 9, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err = Open(path, hdr, nil)
	if err != nil {
		t.Fatalf("Open after a torn tail: %v", err)
	}
	if got := lfReadFile(t, path); !bytes.Equal(got, want.b) {
		t.Fatalf("after recovery the log holds %x, want %x", got, want.b)
	}
	if off, err := w.Append(FrameCert, []byte("three")); err != nil || off != int64(len(want.b)) {
		t.Fatalf("Append after a torn tail = %d, %v", off, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want.add(t, FrameCert, []byte("three"))
	if got := lfReadFile(t, path); !bytes.Equal(got, want.b) {
		t.Fatalf("log holds %x, want %x", got, want.b)
	}
}

func TestOpenFrameLogRefuses(t *testing.T) {
	hdr := lfHeader(t)
	l := lfStdLog(t)
	corrupt := bytes.Clone(l.b)
	corrupt[l.frames[3].Offset+13] ^= 4
	other := hdr
	other.SchemaHash[0] ^= 1
	otherLog, _ := other.AppendBinary(nil)
	zeroSchema, _ := Header{SchemaVersion: 1}.AppendBinary(nil)
	badHeader := bytes.Clone(l.b)
	badHeader[logOffHashAlg] = 2
	crcHeld := append(bytes.Clone(l.b), lfRawFrame(9, 0, []byte("x"))...)
	tests := []struct {
		name     string
		content  []byte
		sentinel error
	}{
		{"corruption followed by data", corrupt, ErrCorrupt},
		{"invalid type under a valid crc at the end", crcHeld, ErrCorrupt},
		{"other schema hash", append(otherLog, lfHex(t, lfFrameHex)...), ErrSchemaMismatch},
		{"zero schema hash", zeroSchema, ErrSchemaMismatch},
		{"other schema version", func() []byte { h := hdr; h.SchemaVersion = 2; b, _ := h.AppendBinary(nil); return b }(), ErrSchemaMismatch},
		{"bad header", badHeader, ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.omega")
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Open(path, hdr, nil)
			if !errors.Is(err, tt.sentinel) || w != nil {
				t.Fatalf("Open = %v, %v; want %v", w, err, tt.sentinel)
			}
			if !strings.HasPrefix(err.Error(), "omega: ") {
				t.Fatalf("error %q does not start with omega:", err)
			}
			if got := lfReadFile(t, path); !bytes.Equal(got, tt.content) {
				t.Fatalf("refused file was modified")
			}
		})
	}
	var fe *FrameError
	path := filepath.Join(t.TempDir(), "c.omega")
	os.WriteFile(path, corrupt, 0o644)
	if _, err := Open(path, hdr, nil); !errors.As(err, &fe) || fe.Offset != l.frames[3].Offset {
		t.Fatalf("corruption error = %v, want a *FrameError at %d", err, l.frames[3].Offset)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "x.omega"), hdr, nil); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "y.omega"), hdr, &WriterOptions{Sync: 9}); !errors.Is(err, ErrUnknownSyncPolicy) {
		t.Fatalf("Open with sync policy 9 = %v, want ErrUnknownSyncPolicy", err)
	}
}

// A last frame over the MaxFrameLen a log is opened with is a torn tail to
// the readers, but when it is whole under a CRC that holds, Open
// refuses the file rather than cut a durable frame off. Cut short or
// damaged, it is truncated as any torn tail.
func TestOpenFrameLogOverlongLastFrame(t *testing.T) {
	hdr := lfHeader(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "big.omega")
	w, err := Open(path, hdr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(FrameEvent, []byte("small")); err != nil {
		t.Fatal(err)
	}
	big, err := w.Append(FrameEvent, lfPayload(5, 100<<10))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	whole := lfReadFile(t, path)
	narrow := &WriterOptions{MaxFrameLen: 64 << 10}
	if w, err := Open(path, hdr, narrow); !errors.Is(err, ErrFrameTooLarge) || w != nil {
		t.Fatalf("Open(MaxFrameLen 64 KiB) of a log ending in a 100 KiB frame = %v, %v; want ErrFrameTooLarge", w, err)
	}
	if !bytes.Equal(lfReadFile(t, path), whole) {
		t.Fatal("refused log was modified")
	}
	if w, err := Open(path, hdr, nil); err != nil || w.Size() != int64(len(whole)) {
		t.Fatalf("Open with the default maximum = %v; want the whole log", err)
	} else {
		w.Close()
	}
	for name, damaged := range map[string][]byte{
		"cut short": whole[:len(whole)-1],
		"bit flip":  func() []byte { b := bytes.Clone(whole); b[big+5000] ^= 1; return b }(),
	} {
		p := filepath.Join(dir, name+".omega")
		if err := os.WriteFile(p, damaged, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(p, hdr, narrow)
		if err != nil || w.Size() != big {
			t.Fatalf("%s: Open = %v; want the torn tail cut at %d", name, err, big)
		}
		w.Close()
	}
}

// A torn header (a creation cut short) is written anew.
func TestOpenFrameLogTornHeader(t *testing.T) {
	hdr := lfHeader(t)
	good := lfHex(t, lfHeaderHex)
	for name, content := range map[string][]byte{
		"empty":          nil,
		"prefix":         good[:30],
		"63 bytes":       good[:63],
		"zeros":          make([]byte, 20),
		"64 zeros":       make([]byte, 64),
		"64 zeros, more": make([]byte, 4096),
		"zeros, long":    make([]byte, 300000),
	} {
		path := filepath.Join(t.TempDir(), "t.omega")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(path, hdr, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if off, err := w.Append(FrameEvent, []byte("omega")); err != nil || off != HeaderSize {
			t.Fatalf("%s: Append = %d, %v", name, off, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := lfReadFile(t, path); hex.EncodeToString(got) != lfHeaderHex+lfFrameHex {
			t.Fatalf("%s: log holds %x", name, got)
		}
	}
}

// A zeroed header followed by a non-zero byte is a damaged header, not a
// creation cut short: Open refuses it and never rewrites the file,
// so the frames after it are not lost (SPEC 5). Zeros alone after it are a
// torn header: the file is truncated and gets the header.
func TestOpenFrameLogZeroHeader(t *testing.T) {
	hdr := lfHeader(t)
	std := lfStdLog(t).b
	for name, content := range map[string][]byte{
		"frames":          append(make([]byte, 64), std[HeaderSize:]...),
		"a log":           append(make([]byte, 64), std...),
		"data":            append(make([]byte, 64), lfPayload(5, 10000)...),
		"one byte":        append(make([]byte, 64), 1),
		"one byte, later": append(make([]byte, 70000), 0x80),
	} {
		path := filepath.Join(t.TempDir(), "z.omega")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Recover(content, nil); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: Recover = %v, want ErrBadHeader", name, err)
		}
		w, err := Open(path, hdr, nil)
		var he *HeaderError
		if w != nil || !errors.Is(err, ErrBadHeader) || !errors.As(err, &he) || he.Field != "zeroed" {
			t.Fatalf("%s: Open = %v, %v; want a zeroed *HeaderError", name, w, err)
		}
		if got := lfReadFile(t, path); !bytes.Equal(got, content) {
			t.Fatalf("%s: a refused Open changed the file", name)
		}
	}

	path := filepath.Join(t.TempDir(), "z.omega")
	content := make([]byte, 5000)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := Recover(content, nil)
	if err != nil || !rec.TornHeader || rec.Frames != 0 || rec.Tail != TailTorn || rec.TailOffset != 0 || rec.TailBytes != int64(len(content)) {
		t.Fatalf("Recover = %+v, %v; want a torn header, the whole file as the tail", rec, err)
	}
	w, err := Open(path, hdr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != HeaderSize {
		t.Fatalf("Size() = %d after opening, want %d", w.Size(), HeaderSize)
	}
	if got := lfReadFile(t, path); hex.EncodeToString(got) != lfHeaderHex {
		t.Fatalf("after Open the file holds %d bytes, want the header alone", len(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out := lfAllReaders(t, lfReadFile(t, path), nil); out.Torn || out.Kind != "clean" || len(out.Frames) != 0 || out.Header != hdr {
		t.Fatalf("reading the reopened log = %+v", out)
	}
}

// Every schema mismatch is a binding error, and the other sentinels of the
// frame log are reachable with errors.Is.
func TestFrameLogErrorSentinels(t *testing.T) {
	if !errors.Is(ErrSchemaMismatch, errcat.ErrBindingMismatch) || !errors.Is(ErrSchemaMismatch, ErrSchemaMismatch) {
		t.Fatal("ErrSchemaMismatch does not wrap errcat.ErrBindingMismatch")
	}
	hdr := lfHeader(t)
	other := hdr
	other.SchemaHash[31] ^= 0x80
	path := filepath.Join(t.TempDir(), "o.omega")
	if err := os.WriteFile(path, other.lfMust(t), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, hdr, nil)
	if !errors.Is(err, ErrSchemaMismatch) || !errors.Is(err, errcat.ErrBindingMismatch) {
		t.Fatalf("Open of another schema = %v, want ErrSchemaMismatch and errcat.ErrBindingMismatch", err)
	}
	if !strings.HasPrefix(err.Error(), "omega: binding mismatch") {
		t.Fatalf("error %q does not start with the binding error's text", err)
	}
	for _, p := range []SyncPolicy{SyncNever + 1, 255} {
		_, err := NewWriter(io.Discard, hdr, &WriterOptions{Sync: p})
		if !errors.Is(err, ErrUnknownSyncPolicy) || !strings.HasPrefix(err.Error(), "omega: ") {
			t.Fatalf("NewWriter with sync policy %d = %v, want ErrUnknownSyncPolicy", p, err)
		}
	}
	for _, n := range []int{-1, 1 << 30} {
		r := NewReader(lfBadCountReader{n}, nil)
		if _, err := r.Next(); !errors.Is(err, errInvalidReadCount) {
			t.Fatalf("Next over a reader returning %d = %v, want errInvalidReadCount", n, err)
		}
	}
	for _, e := range []error{ErrBadHeader, ErrTornTail, ErrCorrupt, ErrSchemaMismatch, ErrInvalidFrameType, ErrFrameTooLarge, ErrWriterClosed, ErrWriterFailed, ErrUnknownSyncPolicy, errInvalidReadCount} {
		if !strings.HasPrefix(e.Error(), "omega: ") {
			t.Errorf("sentinel %q does not start with omega:", e)
		}
	}
}

// lfBadCountReader returns an impossible count.
type lfBadCountReader struct{ n int }

func (r lfBadCountReader) Read([]byte) (int, error) { return r.n, nil }

type lfFailSyncer struct{ err error }

func (s lfFailSyncer) Sync() error { return s.err }

// A failed fsync on a real file fails the writer; Close still closes it.
func TestOpenFrameLogFailedSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.omega")
	w, err := Open(path, lfHeader(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	eio := errors.New("input/output error")
	w.syncer = lfFailSyncer{eio}
	if _, err := w.Append(FrameEvent, []byte("lost?")); err != nil {
		t.Fatal(err)
	}
	err = w.Sync()
	if !errors.Is(err, eio) || !errors.Is(err, ErrWriterFailed) {
		t.Fatalf("Sync = %v", err)
	}
	w.syncer = lfFailSyncer{} // the device recovers: still failed
	if err2 := w.Sync(); err2 != err {
		t.Fatalf("Sync after a failed fsync = %v, want %v", err2, err)
	}
	f := w.closer.(*os.File)
	if err2 := w.Close(); err2 != err {
		t.Fatalf("Close = %v, want %v", err2, err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file still open after Close: %v", err)
	}
}

// lfGolden is one sample log under testdata/logfmt.
type lfGolden struct {
	name string
	b    []byte
}

func lfGoldenLogs(t testing.TB) []lfGolden {
	hdr := lfHeader(t)
	l := lfNewLog(t, hdr)
	l.add(t, FrameEvent, []byte("first event"))
	l.add(t, FrameEvent, lfPayload(1, 40))
	l.add(t, FrameBatch, lfPayload(2, 70))
	l.add(t, FrameCert, lfPayload(3, 30))
	clean := l.b
	zeroed := bytes.Clone(clean)
	clear(zeroed[l.frames[2].Offset+20:])
	zeroed = append(zeroed, make([]byte, 512-len(zeroed)%512)...)
	corrupt := bytes.Clone(clean)
	corrupt[l.frames[1].Offset+30] ^= 0x20
	unbound := lfNewLog(t, Header{SchemaVersion: 1})
	unbound.add(t, FrameEvent, []byte("from the original tools"))
	return []lfGolden{
		{"clean", clean},
		{"torn_tail_cut", clean[:len(clean)-7]},
		{"torn_tail_zeroed", zeroed},
		{"torn_tail_garbage", append(bytes.Clone(clean), lfPayload(4, 33)...)},
		{"corrupt_bit_flip", corrupt},
		{"corrupt_invalid_type", append(bytes.Clone(clean), lfRawFrame(7, 0, []byte("type 7"))...)},
		{"corrupt_reserved", append(bytes.Clone(clean), lfRawFrame(1, 2, []byte("reserved 2"))...)},
		{"torn_header_prefix", hdr.lfMust(t)[:20]},
		{"torn_header_zero", make([]byte, 64)},
		{"torn_header_zero_tail", make([]byte, 64+512)},
		{"bad_header_zeroed", append(make([]byte, 64), clean[HeaderSize:]...)},
		{"unbound_zero_schema", unbound.b},
		{"bad_header_magic", append([]byte("OMEGX"), clean[5:]...)},
	}
}

func (h Header) lfMust(t testing.TB) []byte {
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lfReport is the ingest view of a Recovery (SPEC 9).
type lfReport struct {
	SchemaVersion         uint16         `json:"schema_version"`
	SchemaHash            string         `json:"schema_hash"`
	SchemaBound           bool           `json:"schema_bound"`
	TornHeader            bool           `json:"torn_header"`
	FramesByType          map[string]int `json:"frames_by_type"`
	ValidBytesAfterHeader int64          `json:"valid_bytes_after_header"`
	MalformedTailBytes    int64          `json:"malformed_tail_bytes"`
	Tail                  string         `json:"tail"`
	TailOffset            int64          `json:"tail_offset"`
	Reason                string         `json:"reason,omitempty"`
	Error                 string         `json:"error,omitempty"`
}

func lfReportOf(b []byte) lfReport {
	rec, err := Recover(b, nil)
	if err != nil {
		return lfReport{Error: err.Error()}
	}
	r := lfReport{
		SchemaVersion:         rec.Header.SchemaVersion,
		SchemaHash:            hex.EncodeToString(rec.Header.SchemaHash[:]),
		SchemaBound:           rec.Header.Bound(),
		TornHeader:            rec.TornHeader,
		FramesByType:          map[string]int{},
		ValidBytesAfterHeader: rec.ValidBytes,
		MalformedTailBytes:    rec.TailBytes,
		Tail:                  rec.Tail.String(),
		TailOffset:            rec.TailOffset,
	}
	for t, n := range rec.FramesByType {
		r.FramesByType[t.String()] = n
	}
	if rec.Err != nil {
		r.Reason = rec.Err.Reason
	}
	return r
}

// The sample logs under testdata/logfmt and what recovery reports about
// them. Regenerate with go test -run TestFrameLogGolden -update-logfmt,
// which also rewrites the fuzz seed corpora.
func TestFrameLogGolden(t *testing.T) {
	dir := filepath.Join("testdata", "logfmt")
	logs := lfGoldenLogs(t)
	reports := map[string]lfReport{}
	for _, g := range logs {
		reports[g.name] = lfReportOf(g.b)
	}
	if *lfUpdate {
		for _, g := range logs {
			if err := os.WriteFile(filepath.Join(dir, g.name+".omega"), g.b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		js, err := json.MarshalIndent(reports, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "recovery.json"), append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		lfWriteSeeds(t, logs)
	}
	var want map[string]lfReport
	if err := json.Unmarshal(lfReadFile(t, filepath.Join(dir, "recovery.json")), &want); err != nil {
		t.Fatal(err)
	}
	for _, g := range logs {
		if got := lfReadFile(t, filepath.Join(dir, g.name+".omega")); !bytes.Equal(got, g.b) {
			t.Errorf("%s.omega differs from the bytes the test builds", g.name)
		}
		if diff := cmp.Diff(want[g.name], reports[g.name]); diff != "" {
			t.Errorf("%s: recovery (-golden +got):\n%s", g.name, diff)
		}
		lfAllReaders(t, g.b, nil)
	}
}

func lfWriteSeeds(t testing.TB, logs []lfGolden) {
	write := func(target, name string, b []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range logs {
		write("FuzzFrameReader", g.name, g.b)
	}
	good := lfHeader(t).lfMust(t)
	write("FuzzDecodeHeader", "valid", good)
	write("FuzzDecodeHeader", "zero", make([]byte, 64))
	write("FuzzDecodeHeader", "short", good[:40])
	bad := bytes.Clone(good)
	bad[60] = 1
	write("FuzzDecodeHeader", "reserved", bad)
}

// The hot paths allocate nothing per frame.
func TestFrameAllocs(t *testing.T) {
	l, _ := lfLongLog(t)
	s := NewScanner(l.b, nil)
	if a := testing.AllocsPerRun(50, func() {
		if _, err := s.Next(); err == io.EOF {
			s = &Scanner{b: l.b, off: HeaderSize, maxLen: DefaultMaxFrameLen}
		}
	}); a != 0 {
		t.Errorf("Scanner.Next: %v allocations per frame", a)
	}
	rd := bytes.NewReader(l.b)
	r := NewReader(rd, nil)
	r.Next() // the first call allocates the buffer
	if a := testing.AllocsPerRun(50, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Reader.Next: %v allocations per frame", a)
	}
	w, _ := NewWriter(io.Discard, Header{}, &WriterOptions{Sync: SyncNever})
	p := make([]byte, 100)
	if a := testing.AllocsPerRun(1000, func() {
		if _, err := w.Append(FrameEvent, p); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Writer.Append: %v allocations per frame", a)
	}
}

// After a refused header there is no valid prefix: Offset is 0.
func TestFrameScannerOffsetAfterBadHeader(t *testing.T) {
	b := lfHeader(t).lfMust(t)
	b[0] = 'X'
	s := NewScanner(append(b, 1, 2, 3), nil)
	if _, err := s.Next(); !errors.Is(err, ErrBadHeader) || s.Offset() != 0 {
		t.Fatalf("Next() = %v, Offset() = %d; want ErrBadHeader at 0", err, s.Offset())
	}
}

// The scan for a later frame agrees with the reference on logs with frames
// long enough to cross the crcTrail's checkpoints, damaged, read whole and
// in small chunks, and on a crafted tail of frame headers that all claim to
// run to its end, which the scan once checked in quadratic time.
func TestLaterFrameScanLongFrames(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	check := func(name string, b []byte) {
		t.Helper()
		want := lfScanAll(b, nil)
		lfCheckReference(t, b, 0, want)
		for _, sizes := range [][]int{{1}, {7, 300, 4096}, {1 << 20}} {
			if diff := cmp.Diff(want, lfReadAll(&lfChunkReader{b: b, sizes: sizes}, nil)); diff != "" {
				t.Fatalf("%s: Reader disagrees with Scanner (-scanner +reader):\n%s", name, diff)
			}
		}
	}
	for i := range 40 {
		b := lfHeader(t).lfMust(t)
		for range 1 + r.IntN(12) {
			b, _ = AppendFrame(b, FrameEvent, lfPayload(uint64(i), r.IntN(6000)))
		}
		at := HeaderSize + r.IntN(len(b)-HeaderSize)
		switch i % 4 {
		case 0:
			b[at] ^= 1 << r.IntN(8)
		case 1:
			b = b[:at]
		case 2:
			clear(b[at:min(len(b), at+r.IntN(3000))])
		case 3:
			b[at] ^= 1
			b = b[:len(b)-r.IntN(100)]
		}
		check(fmt.Sprintf("log %d", i), b)
	}

	// The crafted tail: a frame cut short, then a 12-byte frame header
	// every 12 bytes, each claiming to end exactly at the end of the file,
	// with a CRC that fails.
	const size = 64 << 10
	b := lfHeader(t).lfMust(t)
	b = binary.LittleEndian.AppendUint32(b, 5)
	for len(b)+frameHeaderLen <= size {
		b = binary.LittleEndian.AppendUint32(b, uint32(size-len(b)))
		b = binary.LittleEndian.AppendUint32(b, 0xdeadbeef)
		b = binary.LittleEndian.AppendUint32(b, uint32(FrameEvent))
	}
	b = append(b, make([]byte, size-len(b))...)
	check("crafted", b)
}

// TestRecoverFromAgrees checks the streaming recovery against Recover on
// the standard log cut at every length and with every byte flipped.
func TestRecoverFromAgrees(t *testing.T) {
	skipExhaustiveUnderRace(t)
	l := lfStdLog(t)
	check := func(b []byte) {
		t.Helper()
		want, werr := Recover(b, nil)
		for _, block := range []int{recoverBlock, 64, 100, 1000} {
			got, gerr := recoverFrom(bytes.NewReader(b), nil, block)
			if (werr == nil) != (gerr == nil) || !cmp.Equal(want, got, lfSameFrameError) {
				t.Fatalf("RecoverFrom (blocks of %d) = %+v, %v; Recover = %+v, %v", block, got, gerr, want, werr)
			}
			got, gerr = recoverBytes(b, nil, block, nil)
			if (werr == nil) != (gerr == nil) || !cmp.Equal(want, got, lfSameFrameError) {
				t.Fatalf("recoverBytes (blocks of %d) = %+v, %v; Recover = %+v, %v", block, got, gerr, want, werr)
			}
		}
	}
	for n := range len(l.b) + 1 {
		check(l.b[:n])
	}
	for i := range l.b {
		b := bytes.Clone(l.b)
		b[i] ^= 0x41
		check(b)
	}
	// A log of many frames, whose CRCs are checked on two goroutines,
	// damaged early, late, and at its very end.
	big := bytes.Clone(l.b)
	for i := range 2000 {
		big = appendFrame(big, FrameEvent, lfPayload(uint64(i), i%97))
	}
	check(big)
	for _, at := range []int{len(l.b) + 5, len(big) / 2, len(big) - 40, len(big) - 1} {
		b := bytes.Clone(big)
		b[at] ^= 0x10
		check(b)
		check(b[:at])
	}
}

// RecoverFrom's pipeline (a goroutine checks one block's CRCs while the
// next is read) agrees with Recover through short reads, returns an error
// of the reader met at any block, and leaves no goroutine behind either
// way.
func TestRecoverFromPipeline(t *testing.T) {
	big := lfStdLog(t).b
	for i := 0; len(big) < 64<<10; i++ {
		big = appendFrame(big, FrameEvent, lfPayload(uint64(i), i%300))
	}
	boom := errors.New("boom")
	for _, block := range []int{100, 4096, 20000} {
		want, werr := Recover(big, nil)
		synctest.Test(t, func(t *testing.T) {
			got, gerr := recoverFrom(iotest.HalfReader(bytes.NewReader(big)), nil, block)
			if (werr == nil) != (gerr == nil) || !cmp.Equal(want, got, lfSameFrameError) {
				t.Errorf("RecoverFrom (blocks of %d, short reads) = %+v, %v; Recover = %+v, %v", block, got, gerr, want, werr)
			}
		})
		for _, at := range []int{0, HeaderSize + 1, block - 1, block, 3*block + 7, len(big) - 1} {
			synctest.Test(t, func(t *testing.T) {
				r := io.MultiReader(bytes.NewReader(big[:at]), iotest.ErrReader(boom))
				if _, err := recoverFrom(r, nil, block); !errors.Is(err, boom) {
					t.Errorf("RecoverFrom (blocks of %d) of a reader failing at %d: error %v, want %v", block, at, err, boom)
				}
			})
		}
	}
}

// A frame header claiming a long frame that the log does not hold costs
// RecoverFrom memory for the bytes that are there, not for the claim, and
// a long frame that is there is read whole through growing blocks.
func TestRecoverFromLongFrameClaim(t *testing.T) {
	// The claim within RecoverFrom's first read (64 KiB), more after it.
	log := lfStdLog(t).b
	for i := 0; len(log) < 60<<10; i++ {
		log = appendFrame(log, FrameEvent, lfPayload(uint64(i), i%300))
	}
	claim := binary.LittleEndian.AppendUint32(bytes.Clone(log), 64<<20)
	claim = binary.LittleEndian.AppendUint32(claim, 0)
	claim = binary.LittleEndian.AppendUint32(claim, uint32(FrameEvent))
	claim = append(claim, make([]byte, 10<<10)...)
	opts := &ReadOptions{MaxFrameLen: 128 << 20}
	want, werr := Recover(claim, opts)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, gerr := RecoverFrom(bytes.NewReader(claim), opts)
	runtime.ReadMemStats(&after)
	if (werr == nil) != (gerr == nil) || !cmp.Equal(want, got, lfSameFrameError) {
		t.Fatalf("RecoverFrom = %+v, %v; Recover = %+v, %v", got, gerr, want, werr)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("RecoverFrom of %d bytes claiming a 64 MiB frame allocated %d bytes", len(claim), alloc)
	}
	// A frame of 9 MiB, read through blocks of 1 MiB.
	long := appendFrame(bytes.Clone(log), FrameEvent, bytes.Repeat([]byte{7}, 9<<20))
	long = appendFrame(long, FrameBatch, []byte("after"))
	want, werr = Recover(long, opts)
	got, gerr = recoverFrom(iotest.HalfReader(bytes.NewReader(long)), opts, 1<<20)
	if werr != nil || gerr != nil || !cmp.Equal(want, got, lfSameFrameError) || got.Tail != TailClean {
		t.Fatalf("RecoverFrom (a 9 MiB frame) = %+v, %v; Recover = %+v, %v", got, gerr, want, werr)
	}
}

// A reader that returns nothing forever, or an impossible count, is an
// error of RecoverFrom's, at the first read and at a later one, not a hang
// or a panic.
func TestRecoverFromBadReaders(t *testing.T) {
	log := lfStdLog(t).b
	for i := 0; len(log) < 70<<10; i++ {
		log = appendFrame(log, FrameEvent, lfPayload(uint64(i), i%300))
	}
	for _, at := range []int{0, 100, 66 << 10} {
		r := io.MultiReader(bytes.NewReader(log[:at]), lfReaderFunc(func([]byte) (int, error) { return 0, nil }))
		if _, err := RecoverFrom(r, nil); !errors.Is(err, io.ErrNoProgress) {
			t.Errorf("RecoverFrom(no progress after %d bytes) error = %v, want io.ErrNoProgress", at, err)
		}
		r = io.MultiReader(bytes.NewReader(log[:at]), lfReaderFunc(func(p []byte) (int, error) { return len(p) + 1, nil }))
		if _, err := RecoverFrom(r, nil); !errors.Is(err, errInvalidReadCount) {
			t.Errorf("RecoverFrom(invalid count after %d bytes) error = %v, want errInvalidReadCount", at, err)
		}
	}
}

// lfReaderFunc is an io.Reader made of a function.
type lfReaderFunc func([]byte) (int, error)

func (f lfReaderFunc) Read(p []byte) (int, error) { return f(p) }

// lfSameFrameError compares frame errors by value.
var lfSameFrameError = cmp.Comparer(func(a, b *FrameError) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
})

// skipExhaustiveUnderRace skips, in -short runs under the race detector,
// a test that tries every case of something on one goroutine: it finds no
// race, takes many times longer under the detector's instrumentation, and
// runs in full in every run without it.
func skipExhaustiveUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled && testing.Short() {
		t.Skip("exhaustive on one goroutine: run in full without the race detector")
	}
}
