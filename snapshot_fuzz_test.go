package omega

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
)

// FuzzDecodeSnapshot checks that decoding never panics, that every refusal
// is a *SnapshotError wrapping ErrMalformedSnapshot, and that an accepted
// file is the only encoding of its snapshot: re-encoding gives the input
// back.
//
// Random changes rarely survive the frame CRCs and the state digest, so
// each input is also tried repaired: every frame's CRC recomputed and, when
// the first frame is a 232-byte manifest, its state_digest and
// stream_heads_digest recomputed from the frames that follow. The repaired
// file reaches the structural and consistency rules behind the checksums.
//
// The seed corpus in testdata/fuzz/FuzzDecodeSnapshot is written by
//
//	go test -run TestSnapshotFuzzSeeds -update-snapshot .
func FuzzDecodeSnapshot(f *testing.F) {
	vs := loadSpecVectors(f)
	for _, name := range snapVectorNames {
		f.Add(snapVectorFile(f, vs, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		snapFuzzCheck(t, b)
		if r := snapRepair(b); r != nil {
			snapFuzzCheck(t, r)
		}
	})
}

func snapFuzzCheck(t *testing.T, b []byte) {
	s, err := DecodeSnapshot(b)
	if err != nil {
		var se *SnapshotError
		if s != nil || !errors.Is(err, ErrMalformedSnapshot) || !errors.As(err, &se) {
			t.Fatalf("DecodeSnapshot() = %v, %v (%T), want nil and a *SnapshotError", s, err, err)
		}
		if !strings.HasPrefix(err.Error(), "omega: malformed snapshot") {
			t.Fatalf("error %q does not start with omega: malformed snapshot", err)
		}
		return
	}
	enc, err := s.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary(decoded) error %v", err)
	}
	if !bytes.Equal(enc, b) {
		t.Fatalf("re-encoding differs from the input\n got %x\nwant %x", enc, b)
	}
	m := b[framelog.HeaderSize+framelog.FrameHeaderLen:]
	if got := s.StateDigest(); got != Hash(m[manOffStateDigest:]) {
		t.Fatalf("StateDigest() = %v, manifest holds %x", got, m[manOffStateDigest:manifestLen])
	}
	if got := s.State.HeadsDigest(); got != Hash(m[manOffHeadsDigest:]) {
		t.Fatalf("HeadsDigest() = %v, manifest holds %x", got, m[manOffHeadsDigest:manOffHeadsDigest+32])
	}
}

// snapRepair returns b with every frame's CRC recomputed and, when the
// first frame is a manifest of the right length, its digests recomputed
// from the STATE frames after it; nil when b has no whole frame.
func snapRepair(b []byte) []byte {
	if len(b) < framelog.HeaderSize+framelog.FrameHeaderLen {
		return nil
	}
	r := slices.Clone(b)
	var frames [][]byte // whole frames, aliasing r
	for off := framelog.HeaderSize; off+framelog.FrameHeaderLen <= len(r); {
		n := int(binary.LittleEndian.Uint32(r[off:]))
		if n < framelog.FrameHeaderLen || n > len(r)-off {
			break
		}
		frames = append(frames, r[off:off+n])
		off += n
	}
	if len(frames) == 0 {
		return nil
	}
	if m := frames[0][framelog.FrameHeaderLen:]; len(m) == manifestLen {
		sd, hd := digest.New(digest.SnapshotState), digest.New(digest.Heads)
		hd.Reset()
		for _, f := range frames[1:] {
			if binary.LittleEndian.Uint16(f[frameOffType:]) != uint16(framelog.FrameState) {
				continue
			}
			p := f[framelog.FrameHeaderLen:]
			sd.Write(p)
			if len(p) >= stateHeaderLen && p[0] == sectionHeads {
				hd.Write(p[stateHeaderLen:])
			}
		}
		s, h := sd.Sum(), hd.Sum()
		copy(m[manOffStateDigest:], s[:])
		copy(m[manOffHeadsDigest:], h[:])
	}
	for _, f := range frames {
		binary.LittleEndian.PutUint32(f[frameOffCRC:], crc32IEEE(f[frameOffType:]))
	}
	return r
}

// snapFuzzSeeds are the seed corpus: valid files of every shape and one
// file per kind of refusal, small enough to mutate quickly.
func snapFuzzSeeds(t testing.TB) map[string][]byte {
	vs := loadSpecVectors(t)
	e1, e2 := snapEvent(4, 1, 0, 40, "x"), snapEvent(5, 2, 0, 41, "y", 4)
	known := snapKnown(1, 2, 3)
	heads := snapHeads(StreamHead{1, 0, 20, ID64(2)}, StreamHead{1, 1, 30, ID64(3)})
	valid := snapMake(nil, known, heads, snapPending(t, e1), snapPending(t, e2))
	genesis, err := (&Snapshot{BaseOffset: framelog.HeaderSize, Binding: DefaultBinding()}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"vector_after_merge_second_batch": snapVectorFile(t, vs, "snapshot_after_merge_second_batch"),
		"vector_with_pending_event":       snapVectorFile(t, vs, "snapshot_with_pending_event"),
		"valid_all_sections":              valid,
		"valid_genesis":                   genesis,
		"valid_pending_only":              snapMake(nil, snapPending(t, e2)),
		"torn_tail":                       valid[:len(valid)-3],
		"trailing_bytes":                  append(slices.Clone(valid), 0, 0, 0, 0),
		"zero_header":                     append(make([]byte, framelog.HeaderSize), valid[framelog.HeaderSize:]...),
		"sections_out_of_order":           snapMake(nil, heads, known),
		"short_frame_then_another":        snapMake(nil, snapKnown(1), snapKnown(2)),
		"ids_not_ascending":               snapMake(nil, snapKnown(2, 1)),
		"pending_out_of_order":            snapMake(nil, snapPending(t, e2), snapPending(t, e1)),
		"state_digest_mismatch":           snapMake(func(m []byte) { m[manOffStateDigest] ^= 1 }, known),
		"head_not_known":                  snapMake(nil, known, snapHeads(StreamHead{1, 0, 90, ID64(9)})),
		"event_frame_after":               snapMake(nil, known, snapFrame{framelog.FrameEvent, mustMarshal(t, &e1)}),
	}
}

// TestSnapshotFuzzSeeds checks the seed corpus on disk against the seeds
// these tests build, and rewrites it under -update-snapshot.
func TestSnapshotFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeSnapshot")
	for name, b := range snapFuzzSeeds(t) {
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n[]byte(\"")
		for _, c := range b {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
		sb.WriteString("\")\n")
		path := filepath.Join(dir, name)
		if *updateSnapshot {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != sb.String() {
			t.Errorf("%s differs from the seed the tests build; regenerate it with -update-snapshot", path)
		}
		_, err = DecodeSnapshot(b)
		if valid := strings.HasPrefix(name, "valid_") || strings.HasPrefix(name, "vector_"); valid != (err == nil) {
			t.Errorf("seed %s: DecodeSnapshot() error %v, want valid: %v", name, err, valid)
		}
	}
}
