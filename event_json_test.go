package omega_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
)

// Vectors event_basic and event_u128 of vectors.json (SPEC 3), copied
// literally so that the tests do not depend on files outside the module.
const (
	jsonBasicCompact = "{\"event_id\":1,\"node_id\":7,\"stream_id\":2,\"lamport\":10,\"mono_ts_ns\":1000,\"event_kind\":1,\"flags\":0,\"deps_count\":1,\"payload_len\":5,\"payload_hash\":\"ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f\",\"deps\":[5],\"payload\":\"aGVsbG8=\"}"
	jsonBasicPretty  = `{"event_id": 1, "node_id": 7, "stream_id": 2, "lamport": 10, "mono_ts_ns": 1000, "event_kind": 1, "flags": 0, "deps_count": 1, "payload_len": 5, "payload_hash": "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f", "deps": [5], "payload": "aGVsbG8="}`
	jsonBasicBinary  = "010000000000000000000000000000000700000002000a00000000000000e80300000000000001000000010005000000ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f0500000000000000000000000000000068656c6c6f"

	jsonU128Pretty = `{
          "event_id": 36893488147419103233,
          "node_id": 16909060,
          "stream_id": 1286,
          "lamport": 1800,
          "mono_ts_ns": 2314,
          "event_kind": 2828,
          "flags": 3342,
          "deps_count": 2,
          "payload_len": 2,
          "payload_hash": "85052e9aab1b67b6622d94a08441b09fd5b7aca61ee360416d70de5da67d86ca",
          "deps": [4, 340282366920938463463374607431768211455],
          "payload": "aGk="
        }`
	jsonU128Binary = "0100000000000000020000000000000004030201060508070000000000000a090000000000000c0b0e0d02000200000085052e9aab1b67b6622d94a08441b09fd5b7aca61ee360416d70de5da67d86ca04000000000000000000000000000000ffffffffffffffffffffffffffffffff6869"
)

func jsonMustHash(t testing.TB, s string) omega.Hash {
	t.Helper()
	h, err := omega.ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func jsonMustID(t testing.TB, s string) omega.EventID {
	t.Helper()
	id, err := omega.ParseEventID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func jsonCompact(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type jsonVector struct {
	name    string
	event   omega.Event
	json    string // the vector's json, as written
	compact string // its compact form
	binary  string // canonical_encoding_hex
}

func jsonVectors(t testing.TB) []jsonVector {
	return []jsonVector{{
		name: "event_basic",
		event: omega.Event{
			ID: omega.ID64(1), NodeID: 7, StreamID: 2, Lamport: 10, MonoTSNs: 1000, Kind: 1, Flags: 0,
			PayloadHash: jsonMustHash(t, "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"),
			Deps:        []omega.EventID{omega.ID64(5)},
			Payload:     []byte("hello"),
		},
		json:    jsonBasicPretty,
		compact: jsonBasicCompact,
		binary:  jsonBasicBinary,
	}, {
		name: "event_u128",
		event: omega.Event{
			ID:     jsonMustID(t, "36893488147419103233"),
			NodeID: 0x01020304, StreamID: 0x0506, Lamport: 0x0708, MonoTSNs: 0x090a, Kind: 0x0b0c, Flags: 0x0d0e,
			PayloadHash: jsonMustHash(t, "85052e9aab1b67b6622d94a08441b09fd5b7aca61ee360416d70de5da67d86ca"),
			Deps:        []omega.EventID{omega.ID64(4), {Hi: math.MaxUint64, Lo: math.MaxUint64}},
			Payload:     []byte("hi"),
		},
		json:    jsonU128Pretty,
		compact: jsonCompact(t, jsonU128Pretty),
		binary:  jsonU128Binary,
	}}
}

func TestEventJSONVectors(t *testing.T) {
	for _, v := range jsonVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			if v.name == "event_u128" && v.event.ID != (omega.EventID{Hi: 2, Lo: 1}) {
				t.Fatalf("ParseEventID(36893488147419103233) = %+v, want {Hi:2 Lo:1}", v.event.ID)
			}
			got, err := v.event.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != v.compact {
				t.Errorf("MarshalJSON() =\n%s\nwant\n%s", got, v.compact)
			}
			if got := v.event.AppendJSON([]byte("x")); string(got) != "x"+v.compact {
				t.Errorf("AppendJSON(x) = %s, want x%s", got, v.compact)
			}
			for _, in := range []string{v.json, v.compact} {
				var e omega.Event
				if err := e.UnmarshalJSON([]byte(in)); err != nil {
					t.Fatalf("UnmarshalJSON(%s): %v", in, err)
				}
				if diff := cmp.Diff(v.event, e); diff != "" {
					t.Errorf("UnmarshalJSON(%s) (-want +got):\n%s", in, diff)
				}
				bin, err := e.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if hex.EncodeToString(bin) != v.binary {
					t.Errorf("canonical encoding = %x, want %s", bin, v.binary)
				}
				if !e.PayloadHashOK() {
					t.Errorf("PayloadHashOK() = false, want true")
				}
				docs := []string{"[" + in + "]", "[\n" + in + ",\n" + in + "\n]\n"}
				if !strings.Contains(in, "\n") {
					docs = append(docs, in, in+"\n", "\n\n"+in+"\r\n\n  "+in+"\n\n")
				}
				for _, doc := range docs {
					evs, err := omega.DecodeEventsJSON([]byte(doc), omega.Limits{})
					if err != nil {
						t.Fatalf("DecodeEventsJSON(%q): %v", doc, err)
					}
					if diff := cmp.Diff(v.event, evs[len(evs)-1]); len(evs) == 0 || diff != "" {
						t.Errorf("DecodeEventsJSON(%q) (-want +got):\n%s", doc, diff)
					}
				}
			}
		})
	}
}

// jsonOriginalForm writes e the way the original system did: ids as decimal
// strings, hash and payload as arrays of integers, without the derived
// counts.
func jsonOriginalForm(e *omega.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"event_id":"%s","node_id":%d,"stream_id":%d,"lamport":%d,"mono_ts_ns":%d,"event_kind":%d,"flags":%d,"payload_hash":`,
		e.ID, e.NodeID, e.StreamID, e.Lamport, e.MonoTSNs, e.Kind, e.Flags)
	b.WriteString(jsonIntArray(e.PayloadHash[:]))
	b.WriteString(`,"deps":[`)
	for i, d := range e.Deps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", d.String())
	}
	b.WriteString(`],"payload":`)
	b.WriteString(jsonIntArray(e.Payload))
	b.WriteString("}")
	return b.String()
}

func jsonIntArray(p []byte) string {
	s := make([]string, len(p))
	for i, c := range p {
		s[i] = strconv.Itoa(int(c))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func TestEventJSONOriginalForms(t *testing.T) {
	vs := jsonVectors(t)
	up := strings.ToUpper(hex.EncodeToString(vs[0].event.PayloadHash[:]))
	inputs := []struct {
		name string
		in   string
		want omega.Event
	}{
		{"basic", jsonOriginalForm(&vs[0].event), vs[0].event},
		{"u128", jsonOriginalForm(&vs[1].event), vs[1].event},
		{"uppercase hex", strings.Replace(vs[0].compact, strings.ToLower(up), up, 1), vs[0].event},
		{"no derived counts", strings.Replace(vs[1].compact, `"deps_count":2,"payload_len":2,`, "", 1), vs[1].event},
		{"fields in another order", `{"payload":"aGVsbG8=","deps":[5],"payload_hash":"ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f","flags":0,"event_kind":1,"mono_ts_ns":1000,"lamport":10,"stream_id":2,"node_id":7,"event_id":1}`, vs[0].event},
		{"mixed dep forms", strings.Replace(vs[1].compact, `"deps":[4,`, `"deps":["4",`, 1), vs[1].event},
		{"escaped names and values", strings.Replace(strings.Replace(vs[0].compact, `"lamport"`, `"\u006camport"`, 1), `"aGVsbG8="`, `"aGVsbG8\u003d"`, 1), vs[0].event},
		{"white space", strings.NewReplacer(",", " ,\r\n\t", ":", " : ", "[", "[ ", "]", " ]").Replace(vs[1].compact), vs[1].event},
	}
	for _, tc := range inputs {
		t.Run(tc.name, func(t *testing.T) {
			var e omega.Event
			if err := e.UnmarshalJSON([]byte(tc.in)); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, e); diff != "" {
				t.Errorf("UnmarshalJSON(%s) (-want +got):\n%s", tc.in, diff)
			}
			evs, err := omega.DecodeEventsJSON([]byte("["+tc.in+","+tc.in+"]"), omega.Limits{})
			if err != nil {
				t.Fatalf("DecodeEventsJSON: %v", err)
			}
			if diff := cmp.Diff([]omega.Event{tc.want, tc.want}, evs); diff != "" {
				t.Errorf("DecodeEventsJSON (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventJSONEncodingJSONPackage(t *testing.T) {
	vs := jsonVectors(t)
	events := []omega.Event{vs[0].event, vs[1].event}
	want := "[" + vs[0].compact + "," + vs[1].compact + "]"
	for name, v := range map[string]any{"[]Event": events, "*[]Event": &events, "[]*Event": []*omega.Event{&events[0], &events[1]}} {
		got, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("json.Marshal(%s) = %s, want %s", name, got, want)
		}
	}
	if got, err := json.Marshal(events[0]); err != nil || string(got) != vs[0].compact {
		t.Errorf("json.Marshal(Event) = %s, %v, want %s", got, err, vs[0].compact)
	}
	var back []omega.Event
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(events, back); diff != "" {
		t.Errorf("json.Unmarshal (-want +got):\n%s", diff)
	}
	var e omega.Event
	if err := json.Unmarshal([]byte(strings.Replace(vs[0].compact, `"flags":0`, `"flags":0,"flags":0`, 1)), &e); !errors.Is(err, omega.ErrMalformedEvent) {
		t.Errorf("json.Unmarshal(repeated key) = %v, want ErrMalformedEvent", err)
	}
}

func TestDecodeEventsJSONEmpty(t *testing.T) {
	for _, in := range []string{"", " \n\t\r\n", "[]", " [ \n ] \n"} {
		evs, err := omega.DecodeEventsJSON([]byte(in), omega.Limits{})
		if err != nil || evs == nil || len(evs) != 0 {
			t.Errorf("DecodeEventsJSON(%q) = %v, %v, want [], nil", in, evs, err)
		}
	}
	evs, err := omega.DecodeEventsJSON([]byte(`{"event_id":0,"node_id":0,"stream_id":0,"lamport":0,"mono_ts_ns":0,"event_kind":0,"flags":0,"payload_hash":"`+strings.Repeat("0", 64)+`","deps":[],"payload":""}`), omega.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Deps == nil || evs[0].Payload == nil {
		t.Errorf("decoded empty lists are nil: %#v", evs[0])
	}
}

func TestDecodeEventsJSONRejects(t *testing.T) {
	basic := jsonBasicCompact
	u128 := jsonCompact(t, jsonU128Pretty)
	// r replaces old by new in the event_basic vector, which must contain old.
	r := func(old, new string) string {
		if !strings.Contains(basic, old) {
			t.Fatalf("vector has no %q", old)
		}
		return strings.Replace(basic, old, new, 1)
	}
	drop := func(s, field string) string {
		i := strings.Index(s, `"`+field+`":`)
		j := strings.IndexAny(s[i:], ",}")
		if strings.HasPrefix(s[i:], `"deps":`) {
			j = strings.Index(s[i:], "]") + 1
		}
		out := s[:i] + s[i+j:]
		out = strings.Replace(out, ",,", ",", 1)
		out = strings.Replace(out, ",}", "}", 1)
		return strings.Replace(out, "{,", "{", 1)
	}
	noLen := r(`"payload_len":5,`, "")
	hash := `"ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"`
	arr := func(n int, last string) string {
		s := strings.Repeat("1,", n-1) + last
		return "[" + s + "]"
	}
	tests := []struct {
		name  string
		in    string
		lim   omega.Limits
		index int
		field string
	}{
		{"unknown field", r(`"flags":0`, `"flags":0,"extra":1`), omega.Limits{}, 0, ""},
		{"unknown field differing in case", r(`"flags"`, `"Flags"`), omega.Limits{}, 0, ""},
		{"repeated key", r(`"lamport":10`, `"lamport":10,"lamport":10`), omega.Limits{}, 0, "lamport"},
		{"repeated key escaped", r(`"lamport":10`, `"lamport":10,"lamp\u006frt":10`), omega.Limits{}, 0, "lamport"},
		{"repeated optional key", r(`"deps_count":1`, `"deps_count":1,"deps_count":1`), omega.Limits{}, 0, "deps_count"},
		{"null value", r(`"flags":0`, `"flags":null`), omega.Limits{}, 0, "flags"},
		{"null id", r(`"event_id":1`, `"event_id":null`), omega.Limits{}, 0, "event_id"},
		{"null dep", r(`"deps":[5]`, `"deps":[null]`), omega.Limits{}, 0, "deps"},
		{"null payload byte", r(`"payload":"aGVsbG8="`, `"payload":[1,null,3,4,5]`), omega.Limits{}, 0, "payload"},
		{"null event", "[" + basic + ",null]", omega.Limits{}, 1, ""},
		{"fraction", r(`"lamport":10`, `"lamport":10.0`), omega.Limits{}, 0, "lamport"},
		{"fraction in id", r(`"event_id":1`, `"event_id":1.5`), omega.Limits{}, 0, "event_id"},
		{"exponent", r(`"lamport":10`, `"lamport":1e1`), omega.Limits{}, 0, "lamport"},
		{"exponent in dep", r(`"deps":[5]`, `"deps":[5E0]`), omega.Limits{}, 0, "deps"},
		{"negative", r(`"node_id":7`, `"node_id":-7`), omega.Limits{}, 0, "node_id"},
		{"negative zero", r(`"flags":0`, `"flags":-0`), omega.Limits{}, 0, "flags"},
		{"plus sign", r(`"node_id":7`, `"node_id":+7`), omega.Limits{}, 0, "node_id"},
		{"leading zero", r(`"node_id":7`, `"node_id":07`), omega.Limits{}, 0, "node_id"},
		{"leading zero in id", r(`"event_id":1`, `"event_id":01`), omega.Limits{}, 0, "event_id"},
		{"integer as string", r(`"lamport":10`, `"lamport":"10"`), omega.Limits{}, 0, "lamport"},
		{"boolean", r(`"flags":0`, `"flags":false`), omega.Limits{}, 0, "flags"},
		{"u16 overflow", r(`"stream_id":2`, `"stream_id":65536`), omega.Limits{}, 0, "stream_id"},
		{"u16 overflow of flags", r(`"flags":0`, `"flags":70000`), omega.Limits{}, 0, "flags"},
		{"u32 overflow", r(`"node_id":7`, `"node_id":4294967296`), omega.Limits{}, 0, "node_id"},
		{"u64 overflow", r(`"lamport":10`, `"lamport":18446744073709551616`), omega.Limits{}, 0, "lamport"},
		{"u64 overflow, long", r(`"mono_ts_ns":1000`, `"mono_ts_ns":99999999999999999999999999`), omega.Limits{}, 0, "mono_ts_ns"},
		{"id overflow", r(`"event_id":1`, `"event_id":340282366920938463463374607431768211456`), omega.Limits{}, 0, "event_id"},
		{"id overflow as string", r(`"event_id":1`, `"event_id":"340282366920938463463374607431768211456"`), omega.Limits{}, 0, "event_id"},
		{"dep overflow", r(`"deps":[5]`, `"deps":[3402823669209384634633746074317682114550]`), omega.Limits{}, 0, "deps"},
		{"id string with sign", r(`"event_id":1`, `"event_id":"+1"`), omega.Limits{}, 0, "event_id"},
		{"id string with space", r(`"event_id":1`, `"event_id":" 1"`), omega.Limits{}, 0, "event_id"},
		{"id string with leading zero", r(`"event_id":1`, `"event_id":"01"`), omega.Limits{}, 0, "event_id"},
		{"id string empty", r(`"event_id":1`, `"event_id":""`), omega.Limits{}, 0, "event_id"},
		{"id string hex", r(`"event_id":1`, `"event_id":"0x1"`), omega.Limits{}, 0, "event_id"},
		{"deps_count mismatch", r(`"deps_count":1`, `"deps_count":2`), omega.Limits{}, 0, "deps_count"},
		{"deps_count mismatch after deps", strings.Replace(r(`"deps_count":1,`, ""), `"deps":[5]`, `"deps":[5],"deps_count":0`, 1), omega.Limits{}, 0, "deps_count"},
		{"payload_len mismatch", r(`"payload_len":5`, `"payload_len":4`), omega.Limits{}, 0, "payload_len"},
		{"payload_len overflow", r(`"payload_len":5`, `"payload_len":4294967296`), omega.Limits{}, 0, "payload_len"},
		{"bad hex", r(hash, `"ga8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"`), omega.Limits{}, 0, "payload_hash"},
		{"short hex", r(hash, `"a8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"`), omega.Limits{}, 0, "payload_hash"},
		{"long hex", r(hash, `"ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f00"`), omega.Limits{}, 0, "payload_hash"},
		{"hash array of 31", r(hash, arr(31, "1")), omega.Limits{}, 0, "payload_hash"},
		{"hash array of 33", r(hash, arr(33, "1")), omega.Limits{}, 0, "payload_hash"},
		{"hash item 256", r(hash, arr(32, "256")), omega.Limits{}, 0, "payload_hash"},
		{"hash item negative", r(hash, arr(32, "-1")), omega.Limits{}, 0, "payload_hash"},
		{"hash item string", r(hash, arr(32, `"1"`)), omega.Limits{}, 0, "payload_hash"},
		{"hash as number", r(hash, `1`), omega.Limits{}, 0, "payload_hash"},
		{"base64 unpadded", r(`"aGVsbG8="`, `"aGVsbG8"`), omega.Limits{}, 0, "payload"},
		{"base64 URL alphabet", strings.Replace(noLen, `"aGVsbG8="`, `"-_8="`, 1), omega.Limits{}, 0, "payload"},
		{"base64 padding bits", r(`"aGVsbG8="`, `"aGVsbG9="`), omega.Limits{}, 0, "payload"},
		{"base64 escaped newline", strings.Replace(noLen, `"aGVsbG8="`, `"aGVs\nbG8="`, 1), omega.Limits{}, 0, "payload"},
		{"base64 misplaced padding", strings.Replace(noLen, `"aGVsbG8="`, `"aG=sbG8="`, 1), omega.Limits{}, 0, "payload"},
		{"payload item 256", r(`"aGVsbG8="`, `[104,101,108,108,256]`), omega.Limits{}, 0, "payload"},
		{"payload item fraction", r(`"aGVsbG8="`, `[104,101,108,108,1.0]`), omega.Limits{}, 0, "payload"},
		{"payload object", r(`"aGVsbG8="`, `{}`), omega.Limits{}, 0, "payload"},
		{"deps not an array", r(`"deps":[5]`, `"deps":5`), omega.Limits{}, 0, "deps"},
		{"raw control character", r(`"aGVsbG8="`, "\"aGVs\tbG8=\""), omega.Limits{}, 0, "payload"},
		{"bad escape", r(`"aGVsbG8="`, `"aGVs\xbG8="`), omega.Limits{}, 0, "payload"},
		{"bad unicode escape", r(`"lamport"`, `"l\u00zzmport"`), omega.Limits{}, 0, ""},
		{"missing colon", r(`"lamport":10`, `"lamport" 10`), omega.Limits{}, 0, "lamport"},
		{"missing comma", r(`"lamport":10,`, `"lamport":10 `), omega.Limits{}, 0, "lamport"},
		{"trailing comma in object", r(`"}`, `",}`), omega.Limits{}, 0, ""},
		{"trailing comma in deps", r(`"deps":[5]`, `"deps":[5,]`), omega.Limits{}, 0, "deps"},
		{"single quotes", r(`"lamport"`, `'lamport'`), omega.Limits{}, 0, ""},
		{"unterminated string", `{"event_id`, omega.Limits{}, 0, ""},
		{"truncated in value", `[{"event_id":1`, omega.Limits{}, 0, "event_id"},
		{"empty object", `[{}]`, omega.Limits{}, 0, "event_id"},
		{"not an object", `[1]`, omega.Limits{}, 0, ""},
		{"array of arrays", `[[]]`, omega.Limits{}, 0, ""},
		{"top-level string", `"x"`, omega.Limits{}, 0, ""},
		{"top-level null", `null`, omega.Limits{}, 0, ""},
		{"byte order mark", "\xef\xbb\xbf[]", omega.Limits{}, 0, ""},
		{"second event bad", "[" + basic + "," + strings.Replace(u128, `"flags":3342`, `"flags":3342.5`, 1) + "]", omega.Limits{}, 1, "flags"},
		{"trailing garbage after array", "[" + basic + "] x", omega.Limits{}, 1, ""},
		{"second array after array", "[" + basic + "][]", omega.Limits{}, 1, ""},
		{"unclosed array", "[" + basic, omega.Limits{}, 0, ""},
		{"unclosed array after comma", "[" + basic + ",", omega.Limits{}, 1, ""},
		{"trailing comma in array", "[" + basic + ",]", omega.Limits{}, 1, ""},
		{"missing comma in array", "[" + basic + " " + basic + "]", omega.Limits{}, 0, ""},
		{"json lines bad line", basic + "\n" + u128 + "\n\n" + r(`"lamport":10`, `"lamport":1e1`) + "\n" + basic + "\n", omega.Limits{}, 2, "lamport"},
		{"json lines non-object line", basic + "\n[]\n", omega.Limits{}, 1, ""},
		{"json lines two on one line", basic + " " + basic + "\n", omega.Limits{}, 0, ""},
		{"json lines event over two lines", basic + "\n" + strings.Replace(u128, `"flags":3342,`, "\"flags\":3342,\n", 1) + "\n", omega.Limits{}, 1, ""},
		{"json lines truncated last line", basic + "\n" + u128[:40], omega.Limits{}, 1, ""},
		{"deps over MaxDeps", strings.Replace(r(`"deps_count":1,`, ""), `"deps":[5]`, `"deps":[5,6]`, 1), omega.Limits{MaxDeps: 1}, 0, "deps"},
		{"deps_count over MaxDeps", r(`"deps_count":1`, `"deps_count":2`), omega.Limits{MaxDeps: 1}, 0, "deps_count"},
		{"payload over MaxPayload", noLen, omega.Limits{MaxPayload: 4}, 0, "payload"},
		{"payload array over MaxPayload", strings.Replace(noLen, `"aGVsbG8="`, `[1,2,3,4,5]`, 1), omega.Limits{MaxPayload: 4}, 0, "payload"},
		{"payload_len over MaxPayload", basic, omega.Limits{MaxPayload: 4}, 0, "payload_len"},
	}
	// Missing fields: every required one, in turn.
	for _, f := range []string{"event_id", "node_id", "stream_id", "lamport", "mono_ts_ns", "event_kind", "flags", "payload_hash", "deps", "payload"} {
		tests = append(tests, struct {
			name  string
			in    string
			lim   omega.Limits
			index int
			field string
		}{"missing " + f, "[" + u128 + "," + drop(basic, f) + "]", omega.Limits{}, 1, f})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := omega.DecodeEventsJSON([]byte(tc.in), tc.lim)
			var ee *omega.EventError
			if !errors.As(err, &ee) {
				t.Fatalf("DecodeEventsJSON(%s) = %d events, %v, want an *EventError", tc.in, len(evs), err)
			}
			if !errors.Is(err, omega.ErrMalformedEvent) {
				t.Errorf("error %v does not wrap ErrMalformedEvent", err)
			}
			if ee.Index != tc.index || ee.Field != tc.field {
				t.Errorf("DecodeEventsJSON(%s) = %v; Index, Field = %d, %q, want %d, %q", tc.in, err, ee.Index, ee.Field, tc.index, tc.field)
			}
			if !strings.HasPrefix(err.Error(), "omega: ") || ee.Reason == "" {
				t.Errorf("error %q lacks the omega: prefix or a reason", err)
			}
			if evs != nil {
				t.Errorf("DecodeEventsJSON returned %d events with an error", len(evs))
			}
			// The same object alone through UnmarshalJSON: same field, index -1.
			if tc.index == 0 && strings.HasPrefix(tc.in, "{") && !strings.Contains(tc.in, "\n") && tc.lim == (omega.Limits{}) {
				var e omega.Event
				err := e.UnmarshalJSON([]byte(tc.in))
				if !errors.As(err, &ee) || ee.Index != -1 || ee.Field != tc.field {
					t.Errorf("UnmarshalJSON(%s) = %v, want field %q at index -1", tc.in, err, tc.field)
				}
				if !cmp.Equal(e, omega.Event{}) {
					t.Errorf("UnmarshalJSON changed the event on failure: %+v", e)
				}
			}
		})
	}
}

func TestEventUnmarshalJSONRejects(t *testing.T) {
	for _, in := range []string{"", "null", "[]", jsonBasicCompact + " x", jsonBasicCompact + jsonBasicCompact, "[" + jsonBasicCompact + "]"} {
		var e omega.Event
		err := e.UnmarshalJSON([]byte(in))
		var ee *omega.EventError
		if !errors.As(err, &ee) || ee.Index != -1 || ee.Field != "" {
			t.Errorf("UnmarshalJSON(%q) = %v, want an event error at index -1 with no field", in, err)
		}
	}
}

// Every proper prefix of a valid array fails, with an error rather than a
// panic; only the empty prefix holds no events.
func TestDecodeEventsJSONTruncated(t *testing.T) {
	vs := jsonVectors(t)
	in := "[" + vs[0].compact + ",\n" + jsonOriginalForm(&vs[1].event) + "]"
	for n := 1; n < len(in); n++ {
		if _, err := omega.DecodeEventsJSON([]byte(in[:n]), omega.Limits{}); !errors.Is(err, omega.ErrMalformedEvent) {
			t.Fatalf("DecodeEventsJSON(%q) = %v, want ErrMalformedEvent", in[:n], err)
		}
	}
}

func TestEventJSONErrorMessage(t *testing.T) {
	in := "[" + jsonBasicCompact + "," + strings.Replace(jsonBasicCompact, `"lamport":10`, `"lamport":1.5`, 1) + "]"
	_, err := omega.DecodeEventsJSON([]byte(in), omega.Limits{})
	const want = "omega: event 1: field lamport: number with a fraction at byte offset 293; want an exact integer"
	if err == nil || err.Error() != want {
		t.Errorf("DecodeEventsJSON(...) = %v, want %s", err, want)
	}
}

func TestEventJSONAllocs(t *testing.T) {
	vs := jsonVectors(t)
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = vs[1].event.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON into a large enough buffer: %v allocs, want 0", n)
	}
	in := []byte("[" + vs[1].compact + "]")
	// The result slice, the deps and the payload.
	if n := testing.AllocsPerRun(100, func() { _, _ = omega.DecodeEventsJSON(in, omega.Limits{}) }); n > 3 {
		t.Errorf("DecodeEventsJSON(one event): %v allocs, want at most 3", n)
	}
}

// Generators for the JSON round trip.

func jsonGenID() *rapid.Generator[omega.EventID] {
	return rapid.Custom(func(t *rapid.T) omega.EventID {
		switch rapid.IntRange(0, 3).Draw(t, "shape") {
		case 0:
			return omega.ID64(rapid.Uint64().Draw(t, "lo"))
		case 1:
			return omega.EventID{Hi: rapid.Uint64().Draw(t, "hi"), Lo: rapid.Uint64().Draw(t, "lo")}
		case 2:
			return omega.EventID{Hi: rapid.Uint64Range(1, math.MaxUint64).Draw(t, "hi"), Lo: rapid.Uint64().Draw(t, "lo")}
		}
		return rapid.SampledFrom([]omega.EventID{
			{}, {Lo: math.MaxUint64}, {Hi: 1}, {Hi: 1, Lo: 1},
			{Hi: math.MaxUint64, Lo: math.MaxUint64}, {Hi: math.MaxUint64, Lo: math.MaxUint64 - 1},
			{Hi: 0x8000000000000000}, {Hi: 5421010862427522170, Lo: 687399551400673280}, // 10^38
		}).Draw(t, "edge")
	})
}

func jsonGenEvent() *rapid.Generator[omega.Event] {
	return rapid.Custom(func(t *rapid.T) omega.Event {
		var h omega.Hash
		copy(h[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash"))
		return omega.Event{
			ID:          jsonGenID().Draw(t, "id"),
			NodeID:      rapid.Uint32().Draw(t, "node"),
			StreamID:    rapid.Uint16().Draw(t, "stream"),
			Lamport:     rapid.Uint64().Draw(t, "lamport"),
			MonoTSNs:    rapid.Uint64().Draw(t, "mono"),
			Kind:        rapid.Uint16().Draw(t, "kind"),
			Flags:       rapid.Uint16().Draw(t, "flags"),
			PayloadHash: h,
			Deps:        rapid.SliceOfN(jsonGenID(), 0, 8).Draw(t, "deps"),
			Payload:     rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "payload"),
		}
	})
}

func jsonAppendArray(b []byte, events []omega.Event) []byte {
	b = append(b, '[')
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = events[i].AppendJSON(b)
	}
	return append(b, ']')
}

func jsonAppendLines(b []byte, events []omega.Event) []byte {
	for i := range events {
		b = events[i].AppendJSON(b)
		b = append(b, '\n')
	}
	return b
}

func TestEventJSONRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := rapid.SliceOfN(jsonGenEvent(), 1, 5).Draw(t, "events")
		for name, enc := range map[string][]byte{
			"array":    jsonAppendArray(nil, events),
			"lines":    jsonAppendLines(nil, events),
			"original": []byte(jsonOriginalLines(events)),
		} {
			got, err := omega.DecodeEventsJSON(enc, omega.Limits{})
			if err != nil {
				t.Fatalf("%s: DecodeEventsJSON(%s): %v", name, enc, err)
			}
			if diff := cmp.Diff(events, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("%s: round trip (-want +got):\n%s", name, diff)
			}
		}
		enc := jsonAppendArray(nil, events)
		if std, err := json.Marshal(events); err != nil || !bytes.Equal(std, enc) {
			t.Fatalf("json.Marshal = %s, %v, want %s", std, err, enc)
		}
		for i := range events {
			id := new(big.Int).Lsh(new(big.Int).SetUint64(events[i].ID.Hi), 64)
			id.Or(id, new(big.Int).SetUint64(events[i].ID.Lo))
			if want := `{"event_id":` + id.String() + `,`; !bytes.HasPrefix(events[i].AppendJSON(nil), []byte(want)) {
				t.Fatalf("AppendJSON(%+v) does not start %s", events[i].ID, want)
			}
		}
	})
}

func jsonOriginalLines(events []omega.Event) string {
	var b strings.Builder
	for i := range events {
		b.WriteString(jsonOriginalForm(&events[i]))
		b.WriteString("\n\n")
	}
	return b.String()
}

// The seed corpus names its inputs valid_* or invalid_*; check that each
// decodes or fails as named, so the seeds keep covering both paths.
func TestDecodeEventsJSONSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeEventsJSON")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		text, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(strings.TrimSpace(string(text)), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")")
		data, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a go test fuzz v1 []byte file", ent.Name())
		}
		_, err = omega.DecodeEventsJSON([]byte(data), omega.Limits{})
		if wantErr := strings.HasPrefix(ent.Name(), "invalid_"); (err != nil) != wantErr {
			t.Errorf("%s: DecodeEventsJSON = %v, want error %v", ent.Name(), err, wantErr)
		}
	}
}

func FuzzDecodeEventsJSON(f *testing.F) {
	vs := jsonVectors(f)
	f.Add([]byte(vs[0].compact))
	f.Add([]byte("[" + vs[0].compact + "," + vs[1].json + "]"))
	f.Add([]byte(jsonOriginalForm(&vs[1].event) + "\n" + vs[0].compact + "\n"))
	f.Add([]byte(`[{"event_id":"1","node_id":0,"stream_id":0,"lamport":0,"mono_ts_ns":0,"event_kind":0,"flags":0,"payload_hash":"` + strings.Repeat("Ab", 32) + `","deps":["0"],"payload":[]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := omega.Limits{MaxDeps: 100, MaxPayload: 1 << 10}
		events, err := omega.DecodeEventsJSON(data, lim)
		if err != nil {
			var ee *omega.EventError
			if !errors.As(err, &ee) || !errors.Is(err, omega.ErrMalformedEvent) || ee.Index < 0 {
				t.Fatalf("DecodeEventsJSON error %v (%T) is not an *EventError with an index", err, err)
			}
			if events != nil {
				t.Fatalf("DecodeEventsJSON returned events with an error")
			}
			return
		}
		// Accepted input is valid JSON: the whole array, or each line.
		if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '[' {
			if !json.Valid(data) {
				panic(fmt.Sprintf("accepted invalid JSON %q", data))
			}
		} else {
			for line := range bytes.SplitSeq(data, []byte("\n")) {
				if len(bytes.TrimSpace(line)) > 0 && !json.Valid(line) {
					panic(fmt.Sprintf("accepted invalid JSON line %q", line))
				}
			}
		}
		enc := jsonAppendArray(nil, events)
		again, err := omega.DecodeEventsJSON(enc, lim)
		if err != nil {
			t.Fatalf("DecodeEventsJSON(AppendJSON(...)) = %v\n%s", err, enc)
		}
		if diff := cmp.Diff(events, again); diff != "" {
			t.Fatalf("re-decoded events differ (-first +second):\n%s", diff)
		}
		if enc2 := jsonAppendArray(nil, again); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding differs:\n%s\n%s", enc, enc2)
		}
		lines, err := omega.DecodeEventsJSON(jsonAppendLines(nil, events), lim)
		if err != nil || !cmp.Equal(events, lines) {
			t.Fatalf("JSON lines round trip = %v", err)
		}
	})
}

// BenchmarkDecodeEventsJSON decodes arrays of n events with 2 deps and a
// 32-byte payload each.
func BenchmarkDecodeEventsJSON(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		events := make([]omega.Event, n)
		for i := range events {
			events[i] = omega.Event{
				ID:       omega.EventID{Hi: uint64(i) >> 3, Lo: uint64(i) * 0x9e3779b97f4a7c15},
				NodeID:   uint32(i % 7),
				StreamID: uint16(i % 3),
				Lamport:  uint64(i),
				MonoTSNs: 1700000000000000000 + uint64(i)*1000,
				Kind:     1,
				Deps:     []omega.EventID{omega.ID64(uint64(i)), omega.ID64(uint64(i) + 1)},
				Payload:  bytes.Repeat([]byte{byte(i)}, 32),
			}
			events[i].PayloadHash[0] = byte(i)
		}
		data := jsonAppendArray(nil, events)
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := omega.DecodeEventsJSON(data, omega.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
		b.Run(fmt.Sprintf("encode/events=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			buf := make([]byte, 0, len(data))
			for b.Loop() {
				buf = jsonAppendArray(buf[:0], events)
			}
		})
	}
}
