package omega

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"runtime"
	"testing"
)

// FuzzDecodeEvent: the binary decoder never panics, refuses with an
// *EventError, and whatever it accepts re-encodes to exactly its input.
func FuzzDecodeEvent(f *testing.F) {
	basic := Event{ID: ID64(1), NodeID: 7, StreamID: 2, Lamport: 10, MonoTSNs: 1000, Kind: 1, Deps: []EventID{{Hi: 2, Lo: 1}}, Payload: []byte("hello")}
	enc, _ := basic.MarshalBinary()
	f.Add(enc)
	f.Add(enc[:79])
	f.Add(append(enc[:len(enc):len(enc)], 0))
	f.Add(make([]byte, 80))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := Limits{MaxDeps: 1000, MaxPayload: 1 << 16}
		e, err := DecodeEvent(b, lim)
		if err != nil {
			var fe *EventError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformedEvent) {
				t.Fatalf("DecodeEvent error %v is not an *EventError", err)
			}
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary after decode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decode then encode changed the bytes:\n in %x\nout %x", b, again)
		}
		if err := e.Validate(lim); err != nil {
			t.Fatalf("decoded event fails Validate: %v", err)
		}
	})
}

// Every truncated prefix of an encoding is refused, naming a field.
func TestDecodeEventTruncated(t *testing.T) {
	e := Event{ID: ID64(9), Deps: []EventID{ID64(1), ID64(2)}, Payload: []byte("payload")}
	enc, _ := e.MarshalBinary()
	for n := range len(enc) {
		_, err := DecodeEvent(enc[:n], Limits{})
		var fe *EventError
		if !errors.As(err, &fe) {
			t.Fatalf("DecodeEvent(%d of %d bytes) = %v, want an *EventError", n, len(enc), err)
		}
		if fe.Field == "" {
			t.Errorf("DecodeEvent(%d of %d bytes) = %v, want a named field", n, len(enc), err)
		}
	}
	if _, err := DecodeEvent(append(enc, 0), Limits{}); !errors.Is(err, ErrMalformedEvent) {
		t.Errorf("DecodeEvent(trailing byte) = %v, want ErrMalformedEvent", err)
	}
}

func TestDecodeEventLimits(t *testing.T) {
	e := Event{ID: ID64(9), Deps: make([]EventID, 3), Payload: make([]byte, 10)}
	enc, _ := e.MarshalBinary()
	for _, tc := range []struct {
		lim   Limits
		field string
	}{
		{Limits{MaxDeps: 2}, "deps_count"},
		{Limits{MaxPayload: 9}, "payload_len"},
	} {
		_, err := DecodeEvent(enc, tc.lim)
		var fe *EventError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("DecodeEvent with %+v = %v, want a %s error", tc.lim, err, tc.field)
		}
	}
	// A huge declared payload with no bytes behind it is refused without
	// allocating it.
	big := append([]byte(nil), enc[:80]...)
	big[44], big[45], big[46], big[47] = 0xff, 0xff, 0xff, 0x00
	big[42], big[43] = 0, 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeEvent(big, Limits{})
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; !errors.Is(err, ErrMalformedEvent) || allocated > 4096 {
		t.Errorf("DecodeEvent(16 MiB declared, 0 present) = %v after allocating %d bytes, want an error and no big allocation", err, allocated)
	}
}

func TestEventIDDecimal(t *testing.T) {
	for _, s := range []string{"0", "1", "18446744073709551615", "18446744073709551616", "36893488147419103233", "340282366920938463463374607431768211455"} {
		id, err := ParseEventID(s)
		if err != nil {
			t.Fatalf("ParseEventID(%q) = %v", s, err)
		}
		if got := id.String(); got != s {
			t.Errorf("ParseEventID(%q).String() = %q", s, got)
		}
	}
	for _, s := range []string{"", "-1", "+1", "01", " 1", "1.0", "1e3", "340282366920938463463374607431768211456", "x"} {
		if _, err := ParseEventID(s); err == nil {
			t.Errorf("ParseEventID(%q) = nil error, want one", s)
		}
	}
}

func TestEventIDJSON(t *testing.T) {
	v := struct {
		ID  EventID
		IDs []EventID
	}{EventID{Hi: 1, Lo: 2}, []EventID{ID64(7)}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ID":18446744073709551618,"IDs":[7]}`; string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var back struct {
		ID  EventID
		IDs []EventID
	}
	if err := json.Unmarshal([]byte(`{"ID":"18446744073709551618","IDs":[7]}`), &back); err != nil || back.ID != v.ID || back.IDs[0] != ID64(7) {
		t.Errorf("json.Unmarshal = %+v, %v; want %+v", back, err, v)
	}
	for _, bad := range []string{`-1`, `1.0`, `1e2`, `"01"`, `null`, `340282366920938463463374607431768211456`} {
		var id EventID
		if err := json.Unmarshal([]byte(bad), &id); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("json.Unmarshal(%s) = %v, want ErrMalformedEvent", bad, err)
		}
	}
}

// FuzzParseEventID: ParseEventID accepts exactly the canonical decimal
// numbers below 2^128 that math/big reads, with their value, and refuses
// everything else with an *EventError naming event_id.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"0", "7", "18446744073709551615", "18446744073709551616",
		"340282366920938463463374607431768211455", "340282366920938463463374607431768211456",
		"00", "01", "-1", "+1", "1e3", "1.0", " 1", "1_000", "", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseEventID(s)
		want, ok := refParseEventID(s)
		if ok != (err == nil) {
			t.Fatalf("ParseEventID(%q) = %v, %v; want ok %v", s, id, err, ok)
		}
		if !ok {
			var fe *EventError
			if !errors.As(err, &fe) || fe.Field != "event_id" {
				t.Fatalf("ParseEventID(%q) error %v is not an *EventError on event_id", s, err)
			}
			return
		}
		if id != want || id.String() != s {
			t.Fatalf("ParseEventID(%q) = %v (%s), want %v", s, id, id.String(), want)
		}
	})
}

// refParseEventID reads s as math/big does, allowing only what SPEC 3's
// decimal form allows: digits, no leading zero, below 2^128.
func refParseEventID(s string) (EventID, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return EventID{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return EventID{}, false
		}
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.BitLen() > 128 {
		return EventID{}, false
	}
	lo := new(big.Int).And(n, new(big.Int).SetUint64(math.MaxUint64))
	return EventID{Hi: new(big.Int).Rsh(n, 64).Uint64(), Lo: lo.Uint64()}, true
}
