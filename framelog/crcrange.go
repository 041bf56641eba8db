package framelog

import (
	"hash/crc32"
	"sync"
)

// The scan for a later valid frame (SPEC 5) checks the CRC of every
// plausible frame header after a bad frame. Checked one by one, frames that
// all claim to run to the end of a crafted file cost time quadratic in its
// length. A crcTrail checks each in time independent of its length instead:
// CRC-32 is linear, so the CRC of a range follows from the CRCs of two
// prefixes of the stream,
//
//	crc(b[s:e]) = P(e) ^ P(s)·x^(8(e-s)) mod the CRC polynomial
//
// where P(x) = crc(b[origin:x]), and P at any offset follows from the
// nearest of the prefixes the trail keeps every crcTrailStep bytes.

// crcPoly is the CRC-32/IEEE polynomial, bit-reversed: bit 31 holds the
// coefficient of x^0, as in the CRC values themselves.
const crcPoly = 0xedb88320

// gfMul returns a·b modulo the CRC polynomial, both bit-reversed.
func gfMul(a, b uint32) uint32 {
	var p uint32
	for a != 0 {
		if a&(1<<31) != 0 {
			p ^= b
		}
		a <<= 1
		// b·x: the reversed shift, reduced when x^31's coefficient
		// overflows.
		b = b>>1 ^ crcPoly&-(b&1)
	}
	return p
}

// xPowTables holds x^(8·d·256^i) mod the polynomial at [i][d]: the
// operator that appends d·256^i zero bytes.
var xPowTables = sync.OnceValue(func() *[4][256]uint32 {
	var t [4][256]uint32
	step := uint32(1 << 30) // x^1
	for range 3 {
		step = gfMul(step, step) // x^2, x^4, x^8
	}
	for i := range t {
		t[i][0] = 1 << 31 // x^0
		for d := 1; d < 256; d++ {
			t[i][d] = gfMul(t[i][d-1], step)
		}
		step = gfMul(t[i][255], step) // x^(8·256^(i+1))
	}
	return &t
})

// crcShift returns the CRC of b followed by n zero bytes, less the CRC of
// the n zero bytes: crc·x^(8n) mod the polynomial. It is what crc
// contributes to the CRC of b followed by any n bytes.
func crcShift(crc uint32, n uint32) uint32 {
	t := xPowTables()
	for i := 0; n != 0; i, n = i+1, n>>8 {
		if d := n & 0xff; d != 0 {
			crc = gfMul(t[i][d], crc)
		}
	}
	return crc
}

// crcTrailStep is the distance between the prefix CRCs a crcTrail keeps:
// the most bytes one prefix query hashes.
const crcTrailStep = 512

// crcTrail answers CRC queries over a stream from offset origin on. Queries
// come at or after at, which only moves forward; the stream's bytes from at
// on must be in buf, which holds the stream from offset base, so a reader
// that drops bytes advances the trail past them first.
type crcTrail struct {
	origin int64
	at     int64  // queries are at or after at
	crc    uint32 // P(at)
	k0     int64  // cps[i] is P(origin + (k0+i)·crcTrailStep), all after at
	cps    []uint32
	buf    []byte // the stream from base on, as far as it is at hand
	base   int64
}

func newCRCTrail(origin int64, buf []byte, base int64) *crcTrail {
	return &crcTrail{origin: origin, at: origin, k0: 1, buf: buf, base: base}
}

// data returns the stream's bytes [lo, hi).
func (t *crcTrail) data(lo, hi int64) []byte { return t.buf[lo-t.base : hi-t.base] }

// prefix returns P(x), for x at or after t.at.
func (t *crcTrail) prefix(x int64) uint32 {
	k := (x - t.origin) / crcTrailStep
	a := t.origin + k*crcTrailStep
	if a <= t.at {
		return crc32.Update(t.crc, crc32.IEEETable, t.data(t.at, x))
	}
	for t.k0+int64(len(t.cps)) <= k {
		// The next checkpoint, from the last one or from at.
		j := t.k0 + int64(len(t.cps))
		from, crc := t.at, t.crc
		if len(t.cps) > 0 {
			from, crc = t.origin+(j-1)*crcTrailStep, t.cps[len(t.cps)-1]
		}
		t.cps = append(t.cps, crc32.Update(crc, crc32.IEEETable, t.data(from, t.origin+j*crcTrailStep)))
	}
	return crc32.Update(t.cps[k-t.k0], crc32.IEEETable, t.data(a, x))
}

// advance moves at to x, when x is after it, and drops the checkpoints
// that are no longer after it.
func (t *crcTrail) advance(x int64) {
	if x <= t.at {
		return
	}
	t.crc, t.at = t.prefix(x), x
	drop := int(min(int64(len(t.cps)), (x-t.origin)/crcTrailStep-t.k0+1))
	if drop <= 0 {
		return
	}
	t.k0 += int64(drop)
	t.cps = t.cps[drop:]
	if len(t.cps) == 0 {
		t.k0 = (x-t.origin)/crcTrailStep + 1
	}
	// Reuse the dropped front once it is most of the array: each copy is
	// paid for by the drops before it.
	if len(t.cps) < cap(t.cps)/4 {
		t.cps = append(make([]uint32, 0, 2*len(t.cps)+16), t.cps...)
	}
}

// frameCRCHolds reports whether the frame of n bytes at offset p, whose
// bytes from t.at on are at hand, carries a CRC that holds; stored is its
// frame_crc32. p+frameOffType must be at or after t.at. It then advances
// the trail to there: the candidates of a scan come in increasing order.
func (t *crcTrail) frameCRCHolds(p int64, n uint32, stored uint32) bool {
	s := p + frameOffType
	ps, pe := t.prefix(s), t.prefix(p+int64(n))
	t.advance(s)
	return pe^crcShift(ps, n-frameOffType) == stored
}
