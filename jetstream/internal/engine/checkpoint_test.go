package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/omega-sheaf/omega"
	"pgregory.net/rapid"
)

// TestCheckpointResumes: an engine restored from a checkpoint taken at any
// point of a stream decides the rest of it as the engine that took it
// does, counts alike, and checkpoints to the same bytes.
func TestCheckpointResumes(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		msgs := drawRun(rt)
		cut := rapid.IntRange(0, len(msgs)).Draw(rt, "cut")
		bs := rapid.IntRange(1, 5).Draw(rt, "batch size")
		maxPending := rapid.IntRange(1, 8).Draw(rt, "max pending")
		age := time.Duration(rapid.Int64Range(1, int64(2*time.Second)).Draw(rt, "max age"))
		a := testEngine(t, bs, maxPending, age)
		feed(t, a, msgs[:cut]...)
		prev := omega.Hash{1, 2, 3}
		b1, err := a.appendCheckpoint(nil, 77, prev)
		if err != nil {
			rt.Fatal(err)
		}
		c, err := DecodeCheckpoint(b1, a.c.Binding(), omega.Limits{})
		if err != nil {
			rt.Fatal(err)
		}
		if c.Prev != prev || c.Origin != 77 {
			rt.Fatalf("prev %x and origin %d, want %x and 77", c.Prev, c.Origin, prev)
		}
		b := testEngine(t, bs, maxPending, age)
		b.Restore(c)
		b2, err := b.appendCheckpoint(nil, 77, prev)
		if err != nil {
			rt.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			rt.Fatal("the restored engine checkpoints to other bytes")
		}
		da, db := feed(t, a, msgs[cut:]...), feed(t, b, msgs[cut:]...)
		if diff := cmp.Diff(summarize(da), summarize(db)); diff != "" {
			rt.Fatalf("after the cut (-original +restored):\n%s", diff)
		}
		if a.stats != b.stats {
			rt.Fatalf("stats %+v, restored %+v", a.stats, b.stats)
		}
	})
}

// TestCheckpointDamage: every truncation and every flipped byte of a
// checkpoint is refused.
func TestCheckpointDamage(t *testing.T) {
	e := testEngine(t, 2, 8, time.Second)
	feed(t, e,
		Message{Seq: 1, Data: enc(t, ev(1, 0, "a"))},
		Message{Seq: 2, Data: enc(t, ev(1, 1, "b"))},
		Message{Seq: 3, Data: enc(t, ev(2, 1, "held"))},
		Message{Seq: 4, Data: enc(t, ev(1, 2, "ready"))},
	)
	b, err := e.appendCheckpoint(nil, 77, omega.Hash{9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeCheckpoint(b, e.c.Binding(), omega.Limits{}); err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := DecodeCheckpoint(b[:n], e.c.Binding(), omega.Limits{}); err == nil {
			t.Fatalf("a checkpoint cut to %d of %d bytes decoded", n, len(b))
		}
	}
	for i := range b {
		x := bytes.Clone(b)
		x[i] ^= 0x40
		if _, err := DecodeCheckpoint(x, e.c.Binding(), omega.Limits{}); err == nil {
			t.Fatalf("a checkpoint with byte %d flipped decoded", i)
		}
	}
	other := omega.DefaultBinding()
	other.SchemaVersion++
	if _, err := DecodeCheckpoint(b, other, omega.Limits{}); err == nil {
		t.Fatal("a checkpoint decoded under another binding")
	}
}

// FuzzDecodeCheckpoint: decodeCheckpoint never panics, and what it decodes
// checkpoints back to the input's bytes.
func FuzzDecodeCheckpoint(f *testing.F) {
	e := testEngine(f, 2, 8, time.Second)
	feed(f, e,
		Message{Seq: 1, Data: enc(f, ev(1, 0, "a"))},
		Message{Seq: 2, Data: enc(f, ev(2, 1, "held"))},
		Message{Seq: 3, Data: enc(f, ev(1, 1, "ready"))},
		Message{Seq: 4, Data: enc(f, ev(1, 2, "ready"))},
	)
	b, err := e.appendCheckpoint(nil, 77, omega.Hash{9})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCheckpoint(data, e.c.Binding(), omega.Limits{})
		if err != nil {
			return
		}
		x := testEngine(t, 2, 8, time.Second)
		x.Restore(c)
		back, err := x.appendCheckpoint(nil, c.Origin, c.Prev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, data) {
			t.Fatal("a decoded checkpoint encodes to other bytes")
		}
	})
}

// appendCheckpoint encodes e's state, with the creation time of the
// stream e reads and prev the hash of the certificate of its last batch.
func (e *Engine) appendCheckpoint(b []byte, origin int64, prev omega.Hash) ([]byte, error) {
	c, err := e.Capture(origin, prev)
	if err != nil {
		return nil, err
	}
	return c.AppendTo(b)
}
