package framelog

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzFrameReader checks, on any input, that the readers never panic and
// agree with each other and with the reference reading of SPEC 5, and that
// the valid prefix re-encodes to exactly the same bytes.
func FuzzFrameReader(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzFrameReader.
	f.Add(append(lfHex(f, lfHeaderHex), lfHex(f, lfFrameHex)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, maxLen := range []int{0, 40} {
			opts := &ReadOptions{MaxFrameLen: maxLen}
			out := lfScanAll(b, opts)
			if want := lfRefTornHeader(b); out.Torn != want {
				t.Fatalf("torn header %v, want %v (SPEC 5): %+v", out.Torn, want, out)
			}
			if len(b) >= HeaderSize && !out.Torn && len(bytes.Trim(b[:HeaderSize], "\x00")) == 0 && out.Kind != "header" {
				t.Fatalf("a zeroed header before a non-zero byte read as %+v, want a bad header (SPEC 5)", out)
			}
			for _, sizes := range [][]int{{1}, {5, 64, 3}, {1 << 20}} {
				if diff := cmp.Diff(out, lfReadAll(&lfChunkReader{b: b, sizes: sizes}, opts)); diff != "" {
					t.Fatalf("Reader disagrees with Scanner (-scanner +reader):\n%s", diff)
				}
			}
			rec, err := Recover(b, opts)
			for _, sizes := range [][]int{{1}, {1 << 20}} {
				srec, serr := RecoverFrom(&lfChunkReader{b: b, sizes: sizes}, opts)
				if (err == nil) != (serr == nil) || (err == nil && !cmp.Equal(rec, srec, lfSameFrameError)) {
					t.Fatalf("RecoverFrom = %+v, %v; Recover = %+v, %v", srec, serr, rec, err)
				}
			}
			// The walk-and-check of mapped files, in small blocks.
			if mrec, merr := recoverBytes(b, opts, 100, nil); (err == nil) != (merr == nil) || (err == nil && !cmp.Equal(rec, mrec, lfSameFrameError)) {
				t.Fatalf("recoverBytes = %+v, %v; Recover = %+v, %v", mrec, merr, rec, err)
			}
			if out.Kind == "header" {
				if !errors.Is(err, ErrBadHeader) {
					t.Fatalf("Recover error = %v, readers: %s", err, out.Err)
				}
				continue
			}
			if err != nil || rec.Frames != len(out.Frames) || rec.TailOffset+rec.TailBytes != int64(len(b)) {
				t.Fatalf("Recover = %+v, %v; readers: %+v", rec, err, out)
			}
			lfCheckReencode(t, b, out)
			if !out.Torn {
				lfCheckReference(t, b, maxLen, out)
			}
		}
	})
}

// FuzzDecodeHeader checks that DecodeHeader never panics, refuses with a
// *HeaderError wrapping ErrBadHeader, and accepts only canonical headers.
func FuzzDecodeHeader(f *testing.F) {
	good := lfHeader(f).lfMust(f)
	// More seeds are in testdata/fuzz/FuzzDecodeHeader.
	f.Add(good[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			var he *HeaderError
			if !errors.As(err, &he) || !errors.Is(err, ErrBadHeader) || he.Offset < 0 || he.Offset > HeaderSize {
				t.Fatalf("DecodeHeader error %v is not a *HeaderError within the header", err)
			}
			return
		}
		enc, _ := h.AppendBinary(nil)
		if !bytes.Equal(enc, b[:HeaderSize]) {
			t.Fatalf("DecodeHeader(%x) = %+v, which encodes to %x", b[:HeaderSize], h, enc)
		}
		if sh, err := NewScanner(b, nil).Header(); len(b) >= HeaderSize && (err != nil || sh != h) {
			t.Fatalf("Scanner header = %+v, %v; DecodeHeader gave %+v", sh, err, h)
		}
	})
}

// lfRefTornHeader is a plain reading of the torn-header rule of SPEC 5: a
// file of 64 or more bytes that is all zero, or a shorter file that is all
// zero or a prefix of some valid header.
func lfRefTornHeader(b []byte) bool {
	zero := func(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }
	if len(b) >= HeaderSize {
		return zero(b)
	}
	if zero(b) {
		return true
	}
	// A valid header: the magic, any schema_version, endian flag 1, hash
	// algorithm 1, zeros, any schema_hash, zeros.
	var want, mask [HeaderSize]byte
	copy(want[:], "OMEGA\x00\x01\x00")
	want[10], want[11] = 1, 1
	for i := range mask {
		mask[i] = 0xff
	}
	clear(mask[8:10])
	clear(mask[26:58])
	for i, c := range b {
		if c&mask[i] != want[i] {
			return false
		}
	}
	return true
}
