package digest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

// impl8 is one implementation of hashChunks8 and hashPairs8.
type impl8 struct {
	name   string
	chunks func(key *[8]uint32, base uint32, msgs *[8][]byte, n int, out *[8][Size]byte)
	pairs  func(key *[8]uint32, base uint32, l, r *[8]*[Size]byte, n int, out *[8][Size]byte)
}

// impls8 are the ways hashChunks8 can run on this machine: the generic
// loop, the dispatching entry point, and each architecture path the CPU
// has, called directly.
func impls8(t testing.TB) []impl8 {
	impls := []impl8{{"generic", hashChunks8Generic, hashPairs8Generic}, {"dispatch", hashChunks8, hashPairs8}}
	return append(impls, archImpls8(t)...)
}

// modes8 are the two one-chunk uses: plain BLAKE3 and derive_key material.
var modes8 = []struct {
	name    string
	purpose string // "" for plain
}{{"plain", ""}, {"derive", Event}}

// ref8 returns BLAKE3 of p from github.com/zeebo/blake3, plain or under
// purpose.
func ref8(purpose string, p []byte) (out [Size]byte) {
	if purpose == "" {
		return blake3.Sum256(p)
	}
	h := blake3.NewDeriveKey(Context(purpose))
	h.Write(p)
	h.Sum(out[:0])
	return out
}

func keyBase(purpose string) (*[8]uint32, uint32) {
	if purpose == "" {
		return &iv, 0
	}
	k := keyOf(purpose)
	return &k, flagDeriveKeyMaterial
}

// lengthSets8 returns the length combinations the tests hash: every length
// 0..1024 in some lane, every block boundary in all lanes at once, and
// random mixes.
func lengthSets8() [][8]int {
	var sets [][8]int
	for l := 0; l <= chunkLen; l += 8 {
		var s [8]int
		for i := range s {
			s[i] = min(l+i, chunkLen)
		}
		sets = append(sets, s)
	}
	for _, l := range []int{0, 1, 63, 64, 65, 127, 128, 129, 1023, 1024} {
		sets = append(sets, [8]int{l, l, l, l, l, l, l, l})
	}
	sets = append(sets, [8]int{0, 1024, 63, 65, 64, 1, 129, 1023}, [8]int{1024, 0, 0, 0, 0, 0, 0, 0})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var s [8]int
		for i := range s {
			switch rng.IntN(3) {
			case 0:
				s[i] = rng.IntN(chunkLen + 1)
			case 1:
				s[i] = 12 + rng.IntN(89)
			default:
				s[i] = 92 + rng.IntN(109)
			}
		}
		sets = append(sets, s)
	}
	return sets
}

func msgs8(lens [8]int, seed int) (msgs [8][]byte) {
	for i, l := range lens {
		p := make([]byte, l)
		for j := range p {
			p[j] = byte(j*13 + i*101 + seed)
		}
		msgs[i] = p
	}
	return msgs
}

// Every implementation of hashChunks8, for every lane count, gives each
// lane BLAKE3's bytes and hashChunk's.
func TestHashChunks8(t *testing.T) {
	for _, impl := range impls8(t) {
		for _, mode := range modes8 {
			t.Run(impl.name+"/"+mode.name, func(t *testing.T) {
				key, base := keyBase(mode.purpose)
				for si, lens := range lengthSets8() {
					msgs := msgs8(lens, si)
					var want [8][Size]byte
					for i := range msgs {
						want[i] = ref8(mode.purpose, msgs[i])
						if got := hashChunk(key, base, msgs[i]); got != want[i] {
							t.Fatalf("hashChunk(%d bytes) = %x, want %x", lens[i], got, want[i])
						}
					}
					for n := 0; n <= 8; n++ {
						var sentinel [Size]byte
						sentinel[0] = 0xa5
						var out [8][Size]byte
						for i := range out {
							out[i] = sentinel
						}
						impl.chunks(key, base, &msgs, n, &out)
						for i := range 8 {
							w := want[i]
							if i >= n {
								w = sentinel
							}
							if out[i] != w {
								t.Fatalf("lengths %v, n=%d: lane %d = %x, want %x", lens, n, i, out[i], w)
							}
						}
					}
				}
			})
		}
	}
}

// Every checked implementation rejects an input over one chunk rather
// than hash it as if it were one.
func TestHashChunks8TooLong(t *testing.T) {
	impls := append(impls8(t), impl8{name: "fallback check", chunks: func(key *[8]uint32, base uint32, msgs *[8][]byte, n int, out *[8][Size]byte) {
		checkChunks8(msgs, n)
		hashChunks8Generic(key, base, msgs, n, out)
	}})
	for _, impl := range impls {
		if impl.name == "generic" {
			continue // the generic loop trusts its caller: the checks are the others'
		}
		t.Run(impl.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("hashChunks8 with a %d-byte lane did not panic", chunkLen+1)
				}
			}()
			msgs := msgs8([8]int{1, chunkLen + 1}, 0)
			var out [8][Size]byte
			impl.chunks(&iv, 0, &msgs, 2, &out)
		})
	}
}

// The exported wrappers give what their one-input forms give, whatever the
// lengths, including lanes over one chunk.
func TestManyWrappers(t *testing.T) {
	h := New(Event)
	sets := lengthSets8()
	sets = append(sets, [8]int{1025, 0, 2048, 64, 5000, 1024, 1, 3000}, [8]int{4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096})
	for si, lens := range sets {
		msgs := msgs8(lens, si)
		for n := 0; n <= 8; n++ {
			var plain, sum [8][Size]byte
			PlainMany(&msgs, n, &plain)
			h.Write([]byte("left over")) // SumMany starts from a reset Hasher
			h.SumMany(&msgs, n, &sum)
			for i := range n {
				if want := ref8("", msgs[i]); plain[i] != want {
					t.Fatalf("PlainMany(lengths %v, n=%d) lane %d = %x, want %x", lens, n, i, plain[i], want)
				}
				if want := ref8(Event, msgs[i]); sum[i] != want {
					t.Fatalf("SumMany(lengths %v, n=%d) lane %d = %x, want %x", lens, n, i, sum[i], want)
				}
			}
			for i := n; i < 8; i++ {
				if plain[i] != ([Size]byte{}) || sum[i] != ([Size]byte{}) {
					t.Fatalf("lengths %v, n=%d: lane %d beyond n was written", lens, n, i)
				}
			}
			if got, want := h.Sum(), ref8(Event, nil); got != want {
				t.Fatalf("Sum after SumMany = %x, want the empty input's %x", got, want)
			}
		}
	}
}

// SumPairs gives SumPair's and BLAKE3's bytes, also when out is the array
// its inputs point into.
func TestSumPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, impl := range impls8(t) {
		t.Run(impl.name, func(t *testing.T) {
			h := New(TraceNode)
			for range 50 {
				var nodes [16][Size]byte
				for i := range nodes {
					for j := range nodes[i] {
						nodes[i][j] = byte(rng.Uint32())
					}
				}
				var l, r [8]*[Size]byte
				for i := range 8 {
					l[i], r[i] = &nodes[2*i], &nodes[2*i+1]
				}
				for n := 0; n <= 8; n++ {
					var want [8][Size]byte
					for i := range n {
						want[i] = h.SumPair(l[i], r[i])
						if ref := ref8(TraceNode, append(nodes[2*i][:], nodes[2*i+1][:]...)); want[i] != ref {
							t.Fatalf("SumPair = %x, want %x", want[i], ref)
						}
					}
					var out [8][Size]byte
					impl.pairs(&h.key, flagDeriveKeyMaterial, &l, &r, n, &out)
					if out != want {
						t.Fatalf("n=%d: pairs = %x, want %x", n, out, want)
					}
					out = [8][Size]byte{}
					h.SumPairs(&l, &r, n, &out)
					if out != want {
						t.Fatalf("n=%d: SumPairs = %x, want %x", n, out, want)
					}
					// In place: out is the first half of nodes.
					saved := nodes
					h.SumPairs(&l, &r, n, (*[8][Size]byte)(nodes[:8]))
					if [8][Size]byte(nodes[:8]) != func() (w [8][Size]byte) {
						w = [8][Size]byte(saved[:8])
						copy(w[:n], want[:n])
						return w
					}() {
						t.Fatalf("n=%d: SumPairs in place = %x, want %x", n, nodes[:8], want)
					}
					nodes = saved
				}
			}
		})
	}
}

func TestManyAllocs(t *testing.T) {
	h := New(Event)
	msgs := msgs8([8]int{12, 100, 92, 200, 64, 0, 1024, 33}, 0)
	var l, r [8]*[Size]byte
	var nodes [16][Size]byte
	for i := range 8 {
		l[i], r[i] = &nodes[2*i], &nodes[2*i+1]
	}
	var out [8][Size]byte
	for name, f := range map[string]func(){
		"PlainMany": func() { PlainMany(&msgs, 8, &out) },
		"SumMany":   func() { h.SumMany(&msgs, 8, &out) },
		"SumPairs":  func() { h.SumPairs(&l, &r, 8, &out) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// FuzzHashChunks8 splits its input into up to eight messages, lane i taking
// about 4 times byte i of cuts and the last lane the rest, and checks every
// implementation against hashChunk.
func FuzzHashChunks8(f *testing.F) {
	f.Add([]byte("abc"), uint8(1), uint64(0), false)
	f.Add(make([]byte, 2048), uint8(8), uint64(0x0102030405060708), true)
	f.Fuzz(func(t *testing.T, data []byte, n uint8, cuts uint64, derive bool) {
		key, base := keyBase("")
		if derive {
			key, base = keyBase(Event)
		}
		k := int(n % 9)
		var msgs [8][]byte
		for i := range k {
			l := min(int(cuts>>(8*i)&0xff)*4+i%4, chunkLen, len(data))
			if i == k-1 {
				l = min(len(data), chunkLen)
			}
			msgs[i], data = data[:l], data[l:]
		}
		for _, impl := range impls8(t) {
			var out [8][Size]byte
			impl.chunks(key, base, &msgs, k, &out)
			for i := range k {
				if want := hashChunk(key, base, msgs[i]); out[i] != want {
					t.Fatalf("%s: lane %d of %d (%d bytes) = %x, want %x", impl.name, i, k, len(msgs[i]), out[i], want)
				}
			}
		}
	})
}

// benchMany runs one sub-benchmark per message size for eight messages
// hashed by eight (the eight-lane call) and by one (eight single calls).
// ns/msg is the time per message, comparable between the two.
func benchMany(b *testing.B, eight func(msgs *[8][]byte, out *[8][Size]byte), one func(p []byte) [Size]byte) {
	for _, size := range []int{64, 96, 128, 1024} {
		msgs := msgs8([8]int{size, size, size, size, size, size, size, size}, 0)
		var out [8][Size]byte
		run := func(b *testing.B, f func()) {
			b.SetBytes(8 * int64(size))
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(8*b.N), "ns/msg")
		}
		b.Run(fmt.Sprint(size, "/lanes8"), func(b *testing.B) { run(b, func() { eight(&msgs, &out) }) })
		b.Run(fmt.Sprint(size, "/single"), func(b *testing.B) {
			run(b, func() {
				for i := range msgs {
					out[i] = one(msgs[i])
				}
			})
		})
	}
}

// BenchmarkSumMany prices event digests: SumMany against Sum1.
func BenchmarkSumMany(b *testing.B) {
	h := New(Event)
	benchMany(b, func(msgs *[8][]byte, out *[8][Size]byte) { h.SumMany(msgs, 8, out) }, h.Sum1)
}

// BenchmarkPlainMany prices payload hashes: PlainMany against Plain.
func BenchmarkPlainMany(b *testing.B) {
	benchMany(b, func(msgs *[8][]byte, out *[8][Size]byte) { PlainMany(msgs, 8, out) }, Plain)
}

// BenchmarkSumPairsMany prices Merkle nodes: SumPairs against SumPair.
func BenchmarkSumPairsMany(b *testing.B) {
	h := New(TraceNode)
	var nodes [16][Size]byte
	var l, r [8]*[Size]byte
	for i := range 8 {
		l[i], r[i] = &nodes[2*i], &nodes[2*i+1]
	}
	var out [8][Size]byte
	run := func(b *testing.B, f func()) {
		b.SetBytes(8 * 2 * Size)
		b.ReportAllocs()
		for b.Loop() {
			f()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(8*b.N), "ns/msg")
	}
	b.Run("lanes8", func(b *testing.B) { run(b, func() { h.SumPairs(&l, &r, 8, &out) }) })
	b.Run("single", func(b *testing.B) {
		run(b, func() {
			for i := range l {
				out[i] = h.SumPair(l[i], r[i])
			}
		})
	})
}
