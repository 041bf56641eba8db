package framelog

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// crcShift combines the CRCs of two pieces into the CRC of their
// concatenation, for lengths across every byte of the shift.
func TestCRCShiftCombines(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 255, 256, 257, 65535, 65536, 65537 + 300, 1<<24 + 5} {
		a, b := make([]byte, r.IntN(100)), make([]byte, n)
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := crc32.ChecksumIEEE(append(a[:len(a):len(a)], b...))
		if got := crcShift(crc32.ChecksumIEEE(a), uint32(n)) ^ crc32.ChecksumIEEE(b); got != want {
			t.Errorf("crc of %d+%d bytes from its pieces = %08x, want %08x", len(a), n, got, want)
		}
	}
}

// A crcTrail's frame checks agree with checking each frame directly, for
// increasing candidates of any length, and it reads no byte before its
// at: what a streaming reader may have dropped.
func TestCRCTrailMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 300_000)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	const origin = 100
	// The trail sees the stream from its at on only, as a streaming
	// reader that drops bytes would hold it.
	tr := newCRCTrail(origin, b[origin:], origin)
	hold := func() { tr.buf, tr.base = b[tr.at:], tr.at }
	held := 0
	for p := int64(origin); p+frameHeaderLen <= int64(len(b)); p += 1 + int64(r.IntN(700)) {
		n := uint32(frameHeaderLen + r.IntN(len(b)-int(p)-frameHeaderLen+1))
		if r.IntN(4) == 0 {
			n = uint32(frameHeaderLen + r.IntN(2000)) // short ones too
			n = min(n, uint32(len(b)-int(p)))
		}
		if r.IntN(5) == 0 {
			tr.advance(p) // a reader dropping the bytes before a candidate
			hold()
		}
		f := b[p : p+int64(n)]
		stored := binary.LittleEndian.Uint32(f[frameOffCRC:])
		if r.IntN(3) == 0 { // a frame whose CRC holds
			stored = crc32.ChecksumIEEE(f[frameOffType:])
			held++
		}
		want := crc32.ChecksumIEEE(f[frameOffType:]) == stored
		if got := tr.frameCRCHolds(p, n, stored); got != want {
			t.Fatalf("frame of %d bytes at %d: trail says %v, want %v", n, p, got, want)
		}
		hold()
	}
	if held == 0 {
		t.Fatal("no frame with a CRC that holds was checked")
	}
}
