package engine

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/omega-sheaf/omega"
)

// FuzzEngine feeds the engine a stream of arbitrary messages: the input is
// a sequence of records, a byte of flags (bit 0: a flush marker), two
// bytes of length and as many of data, each a message one millisecond of
// stream time after the last (bit 1: a second after). The engine must
// neither panic nor fail, two engines must decide alike, and every event
// taken in must be accounted for: decided, held or waiting in the queue.
func FuzzEngine(f *testing.F) {
	rec := func(flags byte, data []byte) []byte {
		b := []byte{flags, 0, 0}
		binary.LittleEndian.PutUint16(b[1:], uint16(len(data)))
		return append(b, data...)
	}
	var seed []byte
	for i := range 5 {
		seed = append(seed, rec(0, enc(f, ev(1, i, "x")))...)
	}
	f.Add(seed)
	f.Add(append(rec(0, enc(f, ev(2, 3, "orphan"))), rec(2, nil)...))
	f.Add(append(append(rec(0, enc(f, ev(1, 0, "a"))), rec(0, enc(f, ev(1, 0, "b")))...), rec(1, nil)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		var msgs []Message
		var now int64
		for len(in) >= 3 {
			flags, n := in[0], int(binary.LittleEndian.Uint16(in[1:]))
			in = in[3:]
			n = min(n, len(in))
			now += int64(time.Millisecond)
			if flags&2 != 0 {
				now += int64(time.Second)
			}
			msgs = append(msgs, Message{Seq: uint64(len(msgs) + 1), TimeNs: now, Flush: flags&1 != 0, Data: in[:n]})
			in = in[n:]
		}
		a, b := testEngine(t, 3, 4, time.Second), testEngine(t, 3, 4, time.Second)
		da, db := feed(t, a, msgs...), feed(t, b, msgs...)
		if diff := cmp.Diff(summarize(da), summarize(db)); diff != "" {
			t.Fatalf("two engines differ:\n%s", diff)
		}
		settled := 0
		for _, d := range da {
			settled += d.Settled
		}
		undecided := 0
		for _, c := range a.inflight {
			undecided += c
		}
		if undecided != a.nheld+len(a.ready) || uint64(settled+undecided) != a.stats.Taken {
			t.Fatalf("%d events taken in: %d settled, %d in flight, %d held and %d in the queue",
				a.stats.Taken, settled, undecided, a.nheld, len(a.ready))
		}
		if a.stats.Messages != uint64(len(msgs)) || a.stats.Batches != uint64(len(da)) {
			t.Fatalf("stats %+v after %d messages and %d batches", a.stats, len(msgs), len(da))
		}
	})
}

// FuzzDecodeMessage: DecodeMessage never panics, and what it decodes
// encodes back to the message's bytes.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(enc(f, ev(1, 0, "a")))
	f.Add(append(enc(f, ev(1, 0, "a")), enc(f, ev(1, 1, "b"))...))
	f.Add(append(enc(f, ev(1, 0, "a")), 1, 2, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := DecodeMessage(data, omega.Limits{})
		var back []byte
		for i := range es {
			back, _ = es[i].AppendBinary(back)
		}
		if err == nil && !bytes.Equal(back, data) {
			t.Fatalf("decoded %d events that encode to other bytes", len(es))
		}
		if err != nil && !bytes.HasPrefix(data, back) {
			t.Fatalf("the %d events decoded before the error are not the message's start", len(es))
		}
	})
}
