package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

// result is one run of the command: its exit code, its output decoded, and
// the raw line.
type result struct {
	code int
	obj  map[string]any
	raw  []byte
}

// omegaCmd runs the command in-process and checks what every output must be:
// one JSON object and a newline; on success "status":"ok" and "command"
// first, on failure the four fields of SPEC section 9, in order, and for
// exit code 20 (and only then) the check that failed, with its position in
// a chain or its offset in cert.log when known.
func omegaCmd(t *testing.T, args ...string) result {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out)
	raw := out.Bytes()
	if len(raw) == 0 || raw[len(raw)-1] != '\n' || bytes.Count(raw, []byte("\n")) != 1 {
		t.Fatalf("omega %q wrote %q, want one line ending in a newline", args, raw)
	}
	keys, obj := decodeObject(t, raw)
	command := ""
	if len(args) > 0 {
		command = args[0]
	}
	if code == 0 {
		if len(keys) < 2 || keys[0] != "status" || keys[1] != "command" || obj["status"] != "ok" {
			t.Fatalf("omega %q: exit 0 with %s, want status ok and command first", args, raw)
		}
		return result{code, obj, raw}
	}
	want := []string{"status", "exit_code", "command", "error"}
	if code == exitCert {
		want = append(want, "check")
		for _, k := range []string{"position", "offset"} {
			if _, ok := obj[k]; ok {
				want = append(want, k)
			}
		}
		if obj["check"] == "" {
			t.Fatalf("omega %q: exit 20 with an empty check: %s", args, raw)
		}
	}
	if code == exitReplay {
		want = append(want, "incident")
		if _, ok := obj["incident_file"]; ok {
			want = append(want, "incident_file")
		}
		for _, k := range []string{"incident_decimal", "expected_divergence"} {
			if _, ok := obj[k]; ok {
				want = append(want, k)
			}
		}
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("omega %q: error keys %q, want %q", args, keys, want)
	}
	if obj["status"] != "error" || obj["exit_code"] != json.Number(strconv.Itoa(code)) || obj["command"] != command || obj["error"] == "" {
		t.Fatalf("omega %q = exit %d, %s: want status error, exit_code %d, command %q and an error", args, code, raw, code, command)
	}
	return result{code, obj, raw}
}

// decodeObject decodes a JSON object, with numbers as json.Number, and lists
// its top-level keys in order.
func decodeObject(t *testing.T, raw []byte) ([]string, map[string]any) {
	t.Helper()
	var obj map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil {
		t.Fatalf("output %q is not a JSON object: %v", raw, err)
	}
	var keys []string
	d = json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if _, err := d.Token(); err != nil { // '{'
		t.Fatal(err)
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys, obj
}

// field returns obj's member at a dotted path.
func field(t *testing.T, obj map[string]any, path string) any {
	t.Helper()
	var v any = obj
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %v is not an object", path, v)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("no field %s in %v", path, obj)
		}
	}
	return v
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, err := v.(json.Number).Int64()
	if err != nil {
		t.Fatalf("%v is not an integer", v)
	}
	return n
}

// checkerOutput returns the raw checker_output of a reconcile output.
func checkerOutput(t *testing.T, raw []byte) string {
	t.Helper()
	var v struct {
		CheckerOutput json.RawMessage `json:"checker_output"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return string(v.CheckerOutput)
}

func generate(t *testing.T, path string, count int, extra ...string) {
	t.Helper()
	args := append([]string{"generate-events", "--output", path, "--count", strconv.Itoa(count)}, extra...)
	if r := omegaCmd(t, args...); r.code != 0 {
		t.Fatalf("generate-events: %s", r.raw)
	}
}

func TestGenerateEventsDeterministic(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".json", ".omega"} {
		t.Run(ext, func(t *testing.T) {
			read := func(name string, args ...string) []byte {
				p := filepath.Join(dir, name+ext)
				generate(t, p, 300, args...)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			a := read("a", "--seed", "7", "--nodes", "5", "--streams", "3")
			b := read("b", "--seed", "7", "--nodes", "5", "--streams", "3")
			c := read("c", "--seed", "8", "--nodes", "5", "--streams", "3")
			if !bytes.Equal(a, b) {
				t.Errorf("generate-events --seed 7 twice gave different files")
			}
			if bytes.Equal(a, c) {
				t.Errorf("generate-events --seed 7 and --seed 8 gave the same file")
			}
		})
	}
}

func TestGenerateEventsShape(t *testing.T) {
	p := filepath.Join(t.TempDir(), "e.json")
	generate(t, p, 50, "--nodes", "3", "--streams", "2", "--seed", "1")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 52 || lines[0] != "[" || lines[51] != "]" {
		t.Fatalf("JSON array of 50 events has %d lines, want [, one per event, ]", len(lines))
	}
	events, err := omega.DecodeEventsJSON(b, omega.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, deps := map[uint32]bool{}, 0
	for i, e := range events {
		if e.ID != omega.ID64(uint64(i)+1) || e.NodeID < 1 || e.NodeID > 3 || e.StreamID > 1 || !e.PayloadHashOK() {
			t.Fatalf("event %d = %+v: want id %d, node 1..3, stream 0..1, correct payload hash", i, e, i+1)
		}
		nodes[e.NodeID] = true
		deps += len(e.Deps)
	}
	if len(nodes) != 3 || deps == 0 {
		t.Errorf("50 events over %d nodes with %d dependencies, want 3 nodes and some dependencies", len(nodes), deps)
	}
}

// eventFields are the twelve fields of SPEC section 3, in the table's order.
var eventFields = []string{"event_id", "node_id", "stream_id", "lamport", "mono_ts_ns", "event_kind", "flags", "deps_count", "payload_len", "payload_hash", "deps", "payload"}

// The JSON that generate-events writes is in the original system's form and
// decodes to the same events as the .omega log made with the same flags.
func TestGenerateEventsOriginalForm(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	jsonPath, logPath := filepath.Join(dir, "e.json"), filepath.Join(dir, "e.omega")
	flags := []string{"--seed", "11", "--nodes", "5", "--streams", "3"}
	generate(t, jsonPath, n, flags...)
	generate(t, logPath, n, flags...)
	js, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := omega.DecodeEventsJSON(js, omega.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	fromLog := readLogEvents(t, logPath)
	if len(fromJSON) != n || len(fromLog) != n {
		t.Fatalf("%d events from JSON, %d from the log; want %d", len(fromJSON), len(fromLog), n)
	}
	for i := range fromJSON {
		a, _ := fromJSON[i].MarshalBinary()
		b, _ := fromLog[i].MarshalBinary()
		if !bytes.Equal(a, b) {
			t.Fatalf("event %d: JSON gives %+v, the log %+v", i, fromJSON[i], fromLog[i])
		}
	}

	// The form itself: every line one object, the twelve fields in order,
	// ids as decimal strings, hash and payload as arrays of 0..255.
	lines := strings.Split(strings.TrimSuffix(string(js), "\n"), "\n")
	if len(lines) != n+2 || lines[0] != "[" || lines[n+1] != "]" {
		t.Fatalf("JSON array of %d events has %d lines, want [, one per event, ]", n, len(lines))
	}
	deps := 0
	for i, line := range lines[1 : n+1] {
		line = strings.TrimSuffix(line, ",")
		keys, obj := decodeObject(t, []byte(line))
		if !reflect.DeepEqual(keys, eventFields) {
			t.Fatalf("event %d: keys %q, want %q", i, keys, eventFields)
		}
		e := fromLog[i]
		if obj["event_id"] != e.ID.String() {
			t.Fatalf("event %d: event_id %#v, want the string %q", i, obj["event_id"], e.ID.String())
		}
		ds, ok := obj["deps"].([]any)
		if !ok || len(ds) != len(e.Deps) {
			t.Fatalf("event %d: deps %#v", i, obj["deps"])
		}
		for j, d := range ds {
			if d != e.Deps[j].String() {
				t.Fatalf("event %d: dep %d is %#v, want the string %q", i, j, d, e.Deps[j].String())
			}
		}
		deps += len(ds)
		checkByteArray(t, obj["payload_hash"], e.PayloadHash[:])
		checkByteArray(t, obj["payload"], e.Payload)
		for k, want := range map[string]uint64{
			"node_id": uint64(e.NodeID), "stream_id": uint64(e.StreamID), "lamport": e.Lamport,
			"mono_ts_ns": e.MonoTSNs, "event_kind": uint64(e.Kind), "flags": uint64(e.Flags),
			"deps_count": uint64(len(e.Deps)), "payload_len": uint64(len(e.Payload)),
		} {
			if v, ok := obj[k].(json.Number); !ok || v.String() != strconv.FormatUint(want, 10) {
				t.Fatalf("event %d: %s = %#v, want the integer %d", i, k, obj[k], want)
			}
		}
	}
	if deps == 0 {
		t.Error("no event has dependencies: the deps form is untested")
	}
}

// checkByteArray checks that v is a JSON array of the integers of want.
func checkByteArray(t *testing.T, v any, want []byte) {
	t.Helper()
	a, ok := v.([]any)
	if !ok || len(a) != len(want) {
		t.Fatalf("%#v is not an array of %d integers", v, len(want))
	}
	for i, x := range a {
		if n, ok := x.(json.Number); !ok || n.String() != strconv.Itoa(int(want[i])) {
			t.Fatalf("element %d is %#v, want %d", i, x, want[i])
		}
	}
}

// readLogEvents reads the EVENT frames of a clean, bound frame log.
func readLogEvents(t *testing.T, path string) []omega.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := framelog.NewScanner(b, nil)
	if h, err := s.Header(); err != nil || h != boundHeader() || s.TornHeader() {
		t.Fatalf("header %+v, %v (torn %v); want the bound header", h, err, s.TornHeader())
	}
	var events []omega.Event
	for {
		f, err := s.Next()
		if err == io.EOF {
			return events
		}
		if err != nil || f.Type != framelog.FrameEvent {
			t.Fatalf("frame %d: %v, type %v", len(events), err, f.Type)
		}
		e, err := omega.DecodeEvent(f.Payload, omega.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
}

// generate-events replaces an existing output file, in both formats.
func TestGenerateEventsOverwrites(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".json", ".omega"} {
		t.Run(ext, func(t *testing.T) {
			fresh, reused := filepath.Join(dir, "fresh"+ext), filepath.Join(dir, "reused"+ext)
			generate(t, fresh, 10, "--seed", "3")
			generate(t, reused, 300, "--seed", "4")
			generate(t, reused, 10, "--seed", "3")
			a, err := os.ReadFile(fresh)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(reused)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("generate-events over an existing file gave %d bytes, want the %d of a fresh file", len(b), len(a))
			}
		})
	}
	// A log that is not this schema's, or not a log at all, is replaced too.
	p := filepath.Join(dir, "other.omega")
	if err := os.WriteFile(p, []byte("not a frame log"), 0o644); err != nil {
		t.Fatal(err)
	}
	generate(t, p, 5)
	if got := readLogEvents(t, p); len(got) != 5 {
		t.Errorf("%d events after replacing a non-log, want 5", len(got))
	}
	// A directory is not replaced.
	d := filepath.Join(dir, "dir.omega")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := omegaCmd(t, "generate-events", "--output", d, "--count", "5"); r.code != 50 {
		t.Errorf("generate-events onto a directory = exit %d, want 50: %s", r.code, r.raw)
	}
}

func TestReconcileGenerated(t *testing.T) {
	dir := t.TempDir()
	const n = 1000
	jsonPath, logPath := filepath.Join(dir, "e.json"), filepath.Join(dir, "e.omega")
	generate(t, jsonPath, n, "--seed", "42", "--nodes", "6")
	generate(t, logPath, n, "--seed", "42", "--nodes", "6")

	// The same events as JSON lines.
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var jl []byte
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, ",")
		if line != "[" && line != "]" && line != "" {
			jl = append(jl, line+"\n"...)
		}
	}
	linesPath := filepath.Join(dir, "e.jsonl")
	if err := os.WriteFile(linesPath, jl, 0o644); err != nil {
		t.Fatal(err)
	}

	var want string
	for _, in := range []string{jsonPath, logPath, linesPath} {
		r := omegaCmd(t, "reconcile", "--input", in, "--batch-id", "3", "--replay-seed", "99")
		if r.code != 0 {
			t.Fatalf("reconcile %s: %s", in, r.raw)
		}
		if k := field(t, r.obj, "checker_output.result.kind"); k != "merge" {
			t.Fatalf("reconcile %s: kind %v, want merge: %s", in, k, r.raw)
		}
		if c := num(t, field(t, r.obj, "checker_output.result.accepted_count")); c != n {
			t.Errorf("reconcile %s: accepted_count %d, want %d", in, c, n)
		}
		if num(t, r.obj["batch_id"]) != 3 || num(t, r.obj["replay_seed"]) != 99 {
			t.Errorf("reconcile %s: batch_id %v, replay_seed %v, want 3 and 99", in, r.obj["batch_id"], r.obj["replay_seed"])
		}
		if _, ok := r.obj["tail"]; ok {
			t.Errorf("reconcile %s: tail reported for a clean input", in)
		}
		got := checkerOutput(t, r.raw)
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("reconcile %s: checker_output differs from the JSON array's", in)
		}
	}
}

func TestReconcileOutputFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "e.json"), filepath.Join(dir, "result.json")
	generate(t, in, 20)
	r := omegaCmd(t, "reconcile", "--input", in, "--batch-id", "12", "--replay-seed", "5", "--output", out)
	if r.code != 0 {
		t.Fatal(string(r.raw))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte("\n")) != 1 || !bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("--output file is not one line")
	}
	keys, obj := decodeObject(t, b)
	if want := []string{"batch_id", "replay_seed", "created_at_ns", "result", "binding"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("--output file keys %q, want %q", keys, want)
	}
	if num(t, obj["batch_id"]) != 12 || num(t, obj["replay_seed"]) != 5 {
		t.Errorf("--output file: batch_id %v, replay_seed %v, want 12 and 5", obj["batch_id"], obj["replay_seed"])
	}
	co := field(t, r.obj, "checker_output").(map[string]any)
	if !reflect.DeepEqual(obj["result"], co["result"]) || !reflect.DeepEqual(obj["binding"], co["binding"]) {
		t.Errorf("--output file's result and binding differ from the printed checker_output")
	}
}

// specVector returns the named vector of testdata/spec_vectors.json.
func specVector(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../testdata/spec_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []map[string]any `json:"vectors"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&file); err != nil {
		t.Fatal(err)
	}
	for _, v := range file.Vectors {
		if v["name"] == name {
			return v
		}
	}
	t.Fatalf("no vector %s in spec_vectors.json", name)
	return nil
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileSpecVector(t *testing.T) {
	v := specVector(t, "merge_genesis_3_events")
	batch := field(t, v, "inputs.batch")
	want := field(t, v, "outputs.result")
	in := filepath.Join(t.TempDir(), "batch.json")
	writeJSON(t, in, batch)
	r := omegaCmd(t, "reconcile", "--input", in, "--batch-id", "1", "--replay-seed", "99")
	if r.code != 0 {
		t.Fatal(string(r.raw))
	}
	if got := field(t, r.obj, "checker_output.result"); !reflect.DeepEqual(got, want) {
		t.Errorf("reconcile merge_genesis_3_events: result\n%v\nwant\n%v", got, want)
	}
	wantBinding, err := json.Marshal(omega.DefaultBinding())
	if err != nil {
		t.Fatal(err)
	}
	_, wb := decodeObject(t, wantBinding)
	if got := field(t, r.obj, "checker_output.binding"); !reflect.DeepEqual(got, any(wb)) {
		t.Errorf("reconcile binding %v, want DefaultBinding %v", got, wb)
	}
}

// TestReconcileOriginalForms feeds the vector batch in the original system's
// JSON forms: hashes and payloads as byte arrays, ids as decimal strings.
func TestReconcileOriginalForms(t *testing.T) {
	v := specVector(t, "merge_genesis_3_events")
	dir := t.TempDir()
	canonical := filepath.Join(dir, "canonical.json")
	writeJSON(t, canonical, field(t, v, "inputs.batch"))
	events, err := os.ReadFile(canonical)
	if err != nil {
		t.Fatal(err)
	}
	var batch []map[string]any
	d := json.NewDecoder(bytes.NewReader(events))
	d.UseNumber()
	if err := d.Decode(&batch); err != nil {
		t.Fatal(err)
	}
	for _, e := range batch {
		h, err := omega.ParseHash(e["payload_hash"].(string))
		if err != nil {
			t.Fatal(err)
		}
		hashInts := make([]int, len(h))
		for i, c := range h {
			hashInts[i] = int(c)
		}
		e["payload_hash"] = hashInts
		var payload []byte
		if err := json.Unmarshal([]byte(strconv.Quote(e["payload"].(string))), &payload); err != nil {
			t.Fatal(err)
		}
		payloadInts := make([]int, len(payload))
		for i, c := range payload {
			payloadInts[i] = int(c)
		}
		e["payload"] = payloadInts
		e["event_id"] = e["event_id"].(json.Number).String()
		var deps []string
		for _, dep := range e["deps"].([]any) {
			deps = append(deps, dep.(json.Number).String())
		}
		e["deps"] = deps
		if deps == nil {
			e["deps"] = []string{}
		}
	}
	original := filepath.Join(dir, "original.json")
	writeJSON(t, original, batch)
	if b, _ := os.ReadFile(original); !bytes.Contains(b, []byte(`"event_id":"3"`)) || !bytes.Contains(b, []byte(`"payload":[99]`)) {
		t.Fatalf("test input not in the original forms: %s", b)
	}
	a := omegaCmd(t, "reconcile", "--input", canonical, "--batch-id", "1")
	b := omegaCmd(t, "reconcile", "--input", original, "--batch-id", "1")
	if a.code != 0 || b.code != 0 {
		t.Fatalf("reconcile: %s\n%s", a.raw, b.raw)
	}
	if checkerOutput(t, a.raw) != checkerOutput(t, b.raw) {
		t.Errorf("the original forms give another checker_output:\n%s\nwant\n%s", b.raw, a.raw)
	}
}

func TestReconcileObstruction(t *testing.T) {
	v := specVector(t, "merge_genesis_3_events")
	batch := field(t, v, "inputs.batch").([]any)
	batch[1].(map[string]any)["payload_hash"] = strings.Repeat("00", 32) // event 1
	in := filepath.Join(t.TempDir(), "bad.json")
	writeJSON(t, in, batch)
	r := omegaCmd(t, "reconcile", "--input", in, "--batch-id", "1")
	if r.code != 0 {
		t.Fatalf("an obstruction is a result, not an error: %s", r.raw)
	}
	if k, p := field(t, r.obj, "checker_output.result.kind"), field(t, r.obj, "checker_output.result.violated_predicate_id"); k != "obstruction" || p != json.Number("2001") {
		t.Errorf("reconcile with a wrong payload hash: %v %v, want an obstruction of 2001", k, p)
	}
}

func TestReconcileDecodeErrors(t *testing.T) {
	good := `{"event_id":%d,"node_id":1,"stream_id":0,"lamport":%d,"mono_ts_ns":0,"event_kind":0,"flags":0,"payload_hash":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","deps":[],"payload":""}`
	ev := func(i int) string { return fmt.Sprintf(good, i+1, i+1) }
	tests := []struct {
		name, input, field, pos string
	}{
		{"fraction", "[" + ev(0) + "," + ev(1) + "," + strings.Replace(ev(2), `"lamport":3`, `"lamport":3.5`, 1) + "]", "lamport", "event 2"},
		{"unknown field", ev(0) + "\n" + strings.Replace(ev(1), `"flags":0`, `"flags":0,"color":1`, 1) + "\n", "color", "event 1"},
		{"null", "[" + strings.Replace(ev(0), `"deps":[]`, `"deps":null`, 1) + "]", "deps", "event 0"},
		{"bad hash", "[" + ev(0) + "," + strings.Replace(ev(1), `"payload_hash":"af`, `"payload_hash":"zz`, 1) + "]", "payload_hash", "event 1"},
		{"repeated key", "[" + strings.Replace(ev(0), `"flags":0`, `"flags":0,"flags":0`, 1) + "]", "flags", "event 0"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, strconv.Itoa(i)+".json")
			if err := os.WriteFile(in, []byte(tc.input), 0o644); err != nil {
				t.Fatal(err)
			}
			r := omegaCmd(t, "reconcile", "--input", in, "--batch-id", "1")
			msg, _ := r.obj["error"].(string)
			if r.code != 10 || !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.pos+":") {
				t.Errorf("reconcile %s = exit %d, %q; want exit 10 naming %s and %s", tc.name, r.code, msg, tc.field, tc.pos)
			}
		})
	}
}

// logFile holds a frame log being built by a test.
type logFile struct {
	buf     bytes.Buffer
	w       *framelog.Writer
	offsets []int64
}

func newLog(t *testing.T, hdr framelog.Header) *logFile {
	t.Helper()
	l := &logFile{}
	w, err := framelog.NewWriter(&l.buf, hdr, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.w = w
	return l
}

func boundHeader() framelog.Header {
	return omega.DefaultBinding().Header()
}

func (l *logFile) add(t *testing.T, typ framelog.FrameType, payload []byte) {
	t.Helper()
	off, err := l.w.Append(typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	l.offsets = append(l.offsets, off)
}

// events appends n events of the bench workload as EVENT frames.
func (l *logFile) events(t *testing.T, n int) {
	t.Helper()
	for _, e := range benchEvents(n) {
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		l.add(t, framelog.FrameEvent, b)
	}
}

func (l *logFile) bytes(t *testing.T) []byte {
	t.Helper()
	if err := l.w.Sync(); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(l.buf.Bytes())
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log.omega")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIngest(t *testing.T) {
	l := newLog(t, boundHeader())
	l.events(t, 5)
	clean := l.bytes(t)
	end := int64(len(clean))

	torn := clean[:len(clean)-7]

	corrupt := bytes.Clone(clean)
	mid := l.offsets[2]
	corrupt[mid+12+3] ^= 0x40 // a payload byte of the middle frame: its CRC fails

	zero := newLog(t, framelog.Header{SchemaVersion: omega.SchemaVersion})
	zero.events(t, 2)

	tests := []struct {
		name   string
		log    []byte
		frames int64
		tail   string
		offset int64
		bound  bool
	}{
		{"clean", clean, 5, "clean", end, true},
		{"torn", torn, 4, "torn", l.offsets[4], true},
		{"corrupt", corrupt, 2, "corrupt", mid, true},
		{"zero schema hash", zero.bytes(t), 2, "clean", zero.w.Size(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.log)
			r := omegaCmd(t, "ingest", "--input", p)
			if r.code != 0 {
				t.Fatalf("ingest: %s", r.raw)
			}
			frames := num(t, r.obj["frames"])
			byType := num(t, field(t, r.obj, "frames_by_type.EVENT"))
			off := num(t, r.obj["tail_offset"])
			tailBytes := num(t, r.obj["malformed_tail_bytes"])
			valid := num(t, r.obj["valid_bytes_after_header"])
			if frames != tc.frames || byType != tc.frames || r.obj["tail"] != tc.tail || off != tc.offset {
				t.Errorf("ingest = %d frames (%d EVENT), tail %v at %d; want %d, %s at %d", frames, byType, r.obj["tail"], off, tc.frames, tc.tail, tc.offset)
			}
			if valid != off-framelog.HeaderSize || tailBytes != int64(len(tc.log))-off {
				t.Errorf("ingest: valid_bytes_after_header %d, malformed_tail_bytes %d; want %d, %d", valid, tailBytes, off-framelog.HeaderSize, int64(len(tc.log))-off)
			}
			if _, hasReason := r.obj["reason"]; hasReason != (tc.tail != "clean") {
				t.Errorf("ingest: reason present %v, want it exactly when the tail is not clean", hasReason)
			}
			if b := field(t, r.obj, "header.schema_bound"); b != tc.bound {
				t.Errorf("ingest: schema_bound %v, want %v", b, tc.bound)
			}
			if r.obj["torn_header"] != false {
				t.Errorf("ingest: torn_header %v, want false", r.obj["torn_header"])
			}
		})
	}

	t.Run("bad header", func(t *testing.T) {
		bad := bytes.Clone(clean)
		bad[4] = 'X'
		if r := omegaCmd(t, "ingest", "--input", writeFile(t, bad)); r.code != 10 {
			t.Errorf("ingest of a bad magic = exit %d, want 10: %s", r.code, r.raw)
		}
	})
	t.Run("other schema", func(t *testing.T) {
		other := newLog(t, framelog.Header{SchemaVersion: omega.SchemaVersion, SchemaHash: omega.Hash{1}})
		other.events(t, 1)
		r := omegaCmd(t, "ingest", "--input", writeFile(t, other.bytes(t)))
		if r.code != 10 || !strings.Contains(r.obj["error"].(string), "schema") {
			t.Errorf("ingest of another schema hash = exit %d, %s; want 10 and the schema mismatch", r.code, r.raw)
		}
	})
	t.Run("torn header", func(t *testing.T) {
		r := omegaCmd(t, "ingest", "--input", writeFile(t, clean[:20]))
		if r.code != 0 || r.obj["torn_header"] != true || r.obj["tail"] != "torn" || num(t, r.obj["frames"]) != 0 {
			t.Errorf("ingest of a header cut short = %s, want exit 0, torn_header, tail torn, no frames", r.raw)
		}
	})
	// A zeroed header followed by zeros alone is torn; followed by any
	// non-zero byte it is a damaged header (SPEC section 5): exit 10.
	t.Run("zeroed header before zeros", func(t *testing.T) {
		b := make([]byte, framelog.HeaderSize+300)
		r := omegaCmd(t, "ingest", "--input", writeFile(t, b))
		if r.code != 0 || r.obj["torn_header"] != true || r.obj["tail"] != "torn" || num(t, r.obj["frames"]) != 0 ||
			num(t, r.obj["tail_offset"]) != 0 || num(t, r.obj["malformed_tail_bytes"]) != int64(len(b)) ||
			num(t, r.obj["valid_bytes_after_header"]) != 0 {
			t.Errorf("ingest of a zeroed header before zeros = %s, want exit 0, torn_header, tail torn at 0, every byte malformed, no frames", r.raw)
		}
		if reason, _ := r.obj["reason"].(string); !strings.Contains(reason, "zero") {
			t.Errorf("ingest reason %q does not name the zeroed header", reason)
		}
	})
	t.Run("zeroed header before frames", func(t *testing.T) {
		b := append(make([]byte, framelog.HeaderSize), clean[framelog.HeaderSize:]...)
		r := omegaCmd(t, "ingest", "--input", writeFile(t, b))
		if r.code != 10 || !strings.Contains(r.obj["error"].(string), "zeroed") {
			t.Errorf("ingest of a zeroed header before frames = %s, want exit 10 and a damaged header", r.raw)
		}
	})
}

// TestIngestGolden runs ingest over the frame-log goldens and compares with
// what recovery.json records for each.
func TestIngestGolden(t *testing.T) {
	const dir = "../../framelog/testdata/logfmt"
	b, err := os.ReadFile(filepath.Join(dir, "recovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&golden); err != nil {
		t.Fatal(err)
	}
	for name, want := range golden {
		t.Run(name, func(t *testing.T) {
			r := omegaCmd(t, "ingest", "--input", filepath.Join(dir, name+".omega"))
			if _, isErr := want["error"]; isErr {
				if r.code != 10 {
					t.Errorf("ingest = exit %d, want 10: %s", r.code, r.raw)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("ingest: %s", r.raw)
			}
			got := map[string]any{
				"schema_version":           field(t, r.obj, "header.schema_version"),
				"schema_hash":              field(t, r.obj, "header.schema_hash"),
				"schema_bound":             field(t, r.obj, "header.schema_bound"),
				"torn_header":              r.obj["torn_header"],
				"frames_by_type":           r.obj["frames_by_type"],
				"valid_bytes_after_header": r.obj["valid_bytes_after_header"],
				"malformed_tail_bytes":     r.obj["malformed_tail_bytes"],
				"tail":                     r.obj["tail"],
				"tail_offset":              r.obj["tail_offset"],
			}
			if reason, ok := want["reason"]; ok {
				got["reason"] = r.obj["reason"]
				want["reason"] = reason
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ingest %s =\n%v\nwant\n%v", name, got, want)
			}
		})
	}
}

// A frame log of one distinct event more than a batch may hold is refused
// with exit 10 at that event: reconcile stops reading there, before the
// frame after it, which would be refused too, but for its type.
func TestReconcileFrameLogTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a million events; skipped in -short runs")
	}
	path := filepath.Join(t.TempDir(), "big.omega")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := framelog.NewWriter(f, boundHeader(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := range omega.MaxBatchContents + 1 {
		e := omega.Event{ID: omega.ID64(uint64(i) + 1), Deps: []omega.EventID{}, Payload: []byte{}}
		if b, err = e.AppendBinary(b[:0]); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(framelog.FrameEvent, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Append(framelog.FrameBatch, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := omegaCmd(t, "reconcile", "--input", path, "--batch-id", "1")
	if msg, _ := r.obj["error"].(string); r.code != exitFormat || !strings.Contains(msg, "batch too large") ||
		!strings.Contains(msg, fmt.Sprintf("frame %d ", omega.MaxBatchContents)) {
		t.Errorf("reconcile of %d distinct events = %s, want exit 10, a batch too large at frame %d", omega.MaxBatchContents+1, r.raw, omega.MaxBatchContents)
	}
}

func TestReconcileFrameLog(t *testing.T) {
	l := newLog(t, boundHeader())
	l.events(t, 6)
	clean := l.bytes(t)

	t.Run("torn", func(t *testing.T) {
		r := omegaCmd(t, "reconcile", "--input", writeFile(t, clean[:len(clean)-3]), "--batch-id", "1")
		if r.code != 0 || r.obj["tail"] != "torn" || num(t, r.obj["tail_offset"]) != l.offsets[5] {
			t.Fatalf("reconcile of a torn log = %s, want exit 0, tail torn at %d", r.raw, l.offsets[5])
		}
		if c := num(t, field(t, r.obj, "checker_output.result.accepted_count")); c != 5 {
			t.Errorf("reconcile of a torn log accepted %d, want the 5 complete frames", c)
		}
	})
	t.Run("torn header", func(t *testing.T) {
		r := omegaCmd(t, "reconcile", "--input", writeFile(t, make([]byte, framelog.HeaderSize)), "--batch-id", "1")
		if r.code != 0 || r.obj["tail"] != "torn" || num(t, field(t, r.obj, "checker_output.result.accepted_count")) != 0 {
			t.Errorf("reconcile of a zeroed header = %s, want exit 0, an empty merge and tail torn", r.raw)
		}
	})
	t.Run("zeroed header before frames", func(t *testing.T) {
		b := append(make([]byte, framelog.HeaderSize), clean[framelog.HeaderSize:]...)
		r := omegaCmd(t, "reconcile", "--input", writeFile(t, b), "--batch-id", "1")
		if r.code != 10 || !strings.Contains(r.obj["error"].(string), "zeroed") {
			t.Errorf("reconcile of a zeroed header before frames = %s, want exit 10 and a damaged header", r.raw)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		corrupt := bytes.Clone(clean)
		corrupt[l.offsets[3]+20] ^= 1
		if r := omegaCmd(t, "reconcile", "--input", writeFile(t, corrupt), "--batch-id", "1"); r.code != 10 {
			t.Errorf("reconcile of a corrupt log = exit %d, want 10: %s", r.code, r.raw)
		}
	})
	t.Run("other frame type", func(t *testing.T) {
		m := newLog(t, boundHeader())
		m.events(t, 2)
		m.add(t, framelog.FrameBatch, make([]byte, 40))
		r := omegaCmd(t, "reconcile", "--input", writeFile(t, m.bytes(t)), "--batch-id", "1")
		if r.code != 10 || !strings.Contains(r.obj["error"].(string), "BATCH") {
			t.Errorf("reconcile of a log with a BATCH frame = exit %d, %s; want 10 naming the frame", r.code, r.raw)
		}
	})
	t.Run("bad event", func(t *testing.T) {
		m := newLog(t, boundHeader())
		m.events(t, 1)
		m.add(t, framelog.FrameEvent, make([]byte, 50)) // shorter than the 80 fixed bytes
		r := omegaCmd(t, "reconcile", "--input", writeFile(t, m.bytes(t)), "--batch-id", "1")
		if msg, _ := r.obj["error"].(string); r.code != 10 || !strings.Contains(msg, "event 1") {
			t.Errorf("reconcile of a log with a short event = exit %d, %q; want 10 naming event 1", r.code, msg)
		}
	})
	t.Run("unbound", func(t *testing.T) {
		m := newLog(t, framelog.Header{SchemaVersion: omega.SchemaVersion})
		m.events(t, 1)
		if r := omegaCmd(t, "reconcile", "--input", writeFile(t, m.bytes(t)), "--batch-id", "1"); r.code != 10 {
			t.Errorf("reconcile of an unbound log = exit %d, want 10: %s", r.code, r.raw)
		}
	})
	t.Run("bad magic", func(t *testing.T) {
		bad := bytes.Clone(clean)
		bad[3] = 'X'
		r := omegaCmd(t, "reconcile", "--input", writeFile(t, bad), "--batch-id", "1")
		if msg, _ := r.obj["error"].(string); r.code != 10 || !strings.Contains(msg, "header") {
			t.Errorf("reconcile of a bad magic = exit %d, %q; want 10 and a header error", r.code, msg)
		}
	})
}

func TestBench(t *testing.T) {
	r := omegaCmd(t, "bench", "--events", "2000", "--runs", "2", "--workers", "1")
	if r.code != 0 {
		t.Fatal(string(r.raw))
	}
	keys, _ := decodeObject(t, r.raw)
	want := []string{"status", "command", "events", "runs", "workers", "events_per_sec", "ns_per_event", "best_ns_per_event", "allocs_per_event", "bytes_per_event", "kind"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("bench keys %q, want %q", keys, want)
	}
	if num(t, r.obj["events"]) != 2000 || num(t, r.obj["runs"]) != 2 || num(t, r.obj["workers"]) != 1 || r.obj["kind"] != "merge" {
		t.Errorf("bench = %s", r.raw)
	}
	for _, k := range []string{"events_per_sec", "ns_per_event", "best_ns_per_event", "bytes_per_event"} {
		if f, err := r.obj[k].(json.Number).Float64(); err != nil || f <= 0 {
			t.Errorf("bench %s = %v, want a positive number", k, r.obj[k])
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"reconcile", "--help"}, {"help", "replay"}} {
		if r := omegaCmd(t, args...); r.code != 0 || len(r.obj["commands"].([]any)) == 0 {
			t.Errorf("omega %q = %s, want exit 0 and the commands", args, r.raw)
		}
	}
	r := omegaCmd(t, "help", "generate-events")
	if cs := r.obj["commands"].([]any); len(cs) != 1 || field(t, cs[0].(map[string]any), "defaults.--nodes") != "4" {
		t.Errorf("help generate-events = %s, want its flags with --nodes defaulting to 4", r.raw)
	}
	// --text: for a person, with the defaults.
	var out bytes.Buffer
	if code := run([]string{"help", "generate-events", "--text"}, &out); code != 0 ||
		!strings.Contains(out.String(), "--nodes int\n") || !strings.Contains(out.String(), "(default 4)") || strings.HasPrefix(out.String(), "{") {
		t.Errorf("help generate-events --text = %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run([]string{"help", "--text"}, &out); code != 0 || !strings.Contains(out.String(), "  doctor ") || strings.Count(out.String(), "\n") < 10 {
		t.Errorf("help --text = %d:\n%s", code, out.String())
	}
	if r := omegaCmd(t, "help", "frobnicate"); r.code != exitOther {
		t.Errorf("help frobnicate = %s", r.raw)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "e.json")
	generate(t, events, 3)
	missing := filepath.Join(dir, "missing.json")
	empty := writeFile(t, nil)
	blank := writeFile(t, []byte(" \n\t\n"))
	tests := []struct {
		args []string
		code int
	}{
		{nil, 50},
		{[]string{"frobnicate"}, 50},
		{[]string{"certify", "--result", events}, 50},
		{[]string{"reconcile", "--bogus", "1"}, 50},
		{[]string{"reconcile", "--input", events}, 50},
		{[]string{"reconcile", "--input", events, "--batch-id", "x"}, 50},
		{[]string{"reconcile", "--input", events, "--batch-id", "1", "extra"}, 50},
		{[]string{"reconcile", "--input", missing, "--batch-id", "1"}, 50},
		{[]string{"reconcile", "--input", events, "--batch-id", "0"}, 10},
		{[]string{"reconcile", "--input", empty, "--batch-id", "1"}, 10},
		{[]string{"reconcile", "--input", blank, "--batch-id", "1"}, 10},
		{[]string{"reconcile", "--input", events, "--batch-id", "1", "--output", filepath.Join(dir, "no", "such", "dir")}, 50},
		{[]string{"ingest"}, 50},
		{[]string{"ingest", "--input", missing}, 50},
		{[]string{"generate-events", "--output", filepath.Join(dir, "g.json")}, 50},
		{[]string{"generate-events", "--output", filepath.Join(dir, "g.json"), "--count", "0"}, 50},
		{[]string{"generate-events", "--output", filepath.Join(dir, "g.json"), "--count", "16777217"}, 50},
		{[]string{"generate-events", "--output", filepath.Join(dir, "g.json"), "--count", "5", "--nodes", "0"}, 50},
		{[]string{"generate-events", "--output", filepath.Join(dir, "g.json"), "--count", "5", "--streams", "65537"}, 50},
		{[]string{"bench", "--events", "0"}, 50},
		{[]string{"bench", "--events", "1048577"}, 50},
		{[]string{"bench", "--runs", "0"}, 50},
		{[]string{"bench", "--workers", "-1"}, 50},
		{[]string{"bench", "--workers", "1025"}, 50},
	}
	for _, tc := range tests {
		if r := omegaCmd(t, tc.args...); r.code != tc.code {
			t.Errorf("omega %q = exit %d, want %d: %s", tc.args, r.code, tc.code, r.raw)
		}
	}
}

// --timeout stops a command that runs past it with exit 40, and leaves
// one that finishes in time alone.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := command{flags: func(*flag.FlagSet) {}, run: func(args []string) ([]byte, error) {
		<-release
		return []byte(`{"status":"ok","command":"slow"}`), nil
	}}
	_, err := runBounded(slow, "slow", []string{"--timeout", "20ms"})
	var te *timeoutError
	if !errors.As(err, &te) || exitCode(err) != exitTimeout || te.d != 20*time.Millisecond {
		t.Fatalf("runBounded(a command that outlives --timeout 20ms) = %v (exit %d), want a timeout, exit 40", err, exitCode(err))
	}
	if out := newErrorOutput(exitCode(err), "slow", err); out.ExitCode != 40 || !strings.Contains(out.Error, "--timeout 20ms ran out") {
		t.Errorf("error output %+v", out)
	}

	dir := t.TempDir()
	events := filepath.Join(dir, "e.json")
	if r := omegaCmd(t, "generate-events", "--output", events, "--count", "3", "--timeout", "1m"); r.code != 0 {
		t.Errorf("generate-events --timeout 1m = %s, want exit 0", r.raw)
	}
	for _, d := range []string{"-1s", "soon", ""} {
		if r := omegaCmd(t, "reconcile", "--input", events, "--batch-id", "1", "--timeout", d); r.code != exitOther {
			t.Errorf("reconcile --timeout %q = %s, want exit 50", d, r.raw)
		}
	}
	if r := omegaCmd(t, "replay", "--help"); r.code != 0 || field(t, r.obj, "commands") == nil ||
		r.obj["commands"].([]any)[0].(map[string]any)["flags"].(map[string]any)["--timeout"] == nil {
		t.Errorf("replay --help = %s, want --timeout among the flags", r.raw)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{&omega.EventError{Index: 1, Field: "lamport", Reason: "x"}, 10},
		{fmt.Errorf("wrapped: %w", framelog.ErrBadHeader), 10},
		{fmt.Errorf("wrapped: %w", omega.ErrSchemaMismatch), 10},
		{fmt.Errorf("wrapped: %w", omega.ErrBindingMismatch), 10},
		{&omega.BindingError{}, 10},
		{&framelog.FrameError{Err: framelog.ErrCorrupt}, 10},
		{omega.ErrBatchTooLarge, 10},
		{fmt.Errorf("wrapped: %w", omega.ErrMalformedResult), 10},
		{fmt.Errorf("wrapped: %w", omega.ErrBadKey), 10},
		{fmt.Errorf("wrapped: %w", omega.ErrCannotCertify), 10},
		{inputErrorf("x"), 10},
		{fmt.Errorf("wrapped: %w", omega.ErrMalformedCertificate), 20},
		{omega.ErrBodyHash, 20},
		{omega.ErrCertID, 20},
		{omega.ErrUnknownKey, 20},
		{omega.ErrBadSignature, 20},
		{omega.ErrDigestMismatch, 20},
		{fmt.Errorf("wrapped: %w", omega.ErrChainLink), 20},
		{omega.ErrBatchOrder, 20},
		{omega.ErrChainState, 20},
		{&omega.ChainError{Index: 3, Err: omega.ErrBadSignature}, 20},
		{&omega.CertLogError{Offset: 64, Err: omega.ErrMalformedCertificate}, 20},
		{fmt.Errorf("wrapped: %w", omega.ErrNotIncluded), 20},
		// A cert.log frame other than CERT is a format error (SPEC 9);
		// the commands that read a --cert-log report it as a failed
		// check, exit 20, below.
		{&omega.CertLogError{Offset: 64, Err: framelog.ErrCorrupt}, 10},
		{fmt.Errorf("wrapped: %w", omega.ErrMalformedBatch), 10},
		{&omega.SnapshotError{Offset: 64, Reason: "x"}, 10},
		{&incidentError{inc: &omega.Incident{Field: omega.FieldMember}}, 30},
		{fmt.Errorf("wrapped: %w", &omega.Incident{}), 30},
		{omega.ErrNotEd25519, 50},
		{framelog.ErrWriterClosed, 50},
		{&checkFailure{&omega.BindingError{}}, 20},
		{&checkFailure{&framelog.FrameError{Err: framelog.ErrCorrupt}}, 20},
		{&checkFailure{&omega.CertLogError{Offset: 64, Err: framelog.ErrCorrupt}}, 20},
		{&timeoutError{"replay", time.Second}, 40},
		{fmt.Errorf("wrapped: %w", &timeoutError{"replay", time.Second}), 40},
		{usageErrorf("x"), 50},
		{io.ErrUnexpectedEOF, 50},
		{os.ErrNotExist, 50},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestGenerateAfterSnapshot generates a second batch to follow a first one's
// snapshot: it merges from there, as one made with the default start id
// would not (its ids are the first batch's: 1002).
func TestGenerateAfterSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	generate(t, p("b1.json"), 50, "--seed", "1")
	if r := omegaCmd(t, "reconcile", "--input", p("b1.json"), "--batch-id", "1", "--snapshot-out", p("s1.omega")); r.code != 0 {
		t.Fatalf("reconcile batch 1: %s", r.raw)
	}
	r := omegaCmd(t, "generate-events", "--output", p("b2.json"), "--count", "40", "--seed", "2", "--snapshot", p("s1.omega"))
	if r.code != 0 || num(t, r.obj["start_id"]) != 51 || num(t, r.obj["lamport_base"]) == 0 {
		t.Fatalf("generate-events --snapshot = %s", r.raw)
	}
	r = omegaCmd(t, "reconcile", "--input", p("b2.json"), "--batch-id", "2", "--snapshot", p("s1.omega"))
	if r.code != 0 || field(t, r.obj, "checker_output.result.kind") != "merge" {
		t.Fatalf("the generated second batch does not merge after the snapshot: %s", r.raw)
	}
	// The default start id reuses batch 1's ids.
	generate(t, p("again.json"), 40, "--seed", "2")
	r = omegaCmd(t, "reconcile", "--input", p("again.json"), "--batch-id", "2", "--snapshot", p("s1.omega"))
	if r.code != 0 || field(t, r.obj, "checker_output.result.kind") != "obstruction" {
		t.Fatalf("a batch with batch 1's ids after its snapshot: %s", r.raw)
	}
	// --start-id within the snapshot's ids is refused.
	if r := omegaCmd(t, "generate-events", "--output", p("x.json"), "--count", "5", "--snapshot", p("s1.omega"), "--start-id", "10"); r.code != exitOther {
		t.Errorf("--start-id inside the snapshot's ids = %s", r.raw)
	}
	// --start-id alone.
	if r := omegaCmd(t, "generate-events", "--output", p("y.json"), "--count", "5", "--start-id", "1000"); r.code != 0 || num(t, r.obj["start_id"]) != 1000 {
		t.Errorf("--start-id 1000 = %s", r.raw)
	}
}

// TestDoctor checks the module's own checkout and kernel data directories:
// a sound one, one a kernel holds, and damaged ones, which doctor reports
// without changing them.
func TestDoctor(t *testing.T) {
	r := omegaCmd(t, "doctor", "--root", filepath.Join("..", ".."))
	if r.code != 0 || r.obj["healthy"] != true {
		t.Fatalf("doctor --root on the module = %s", r.raw)
	}
	if r := omegaCmd(t, "doctor", "--root", t.TempDir()); r.code != exitOther {
		t.Errorf("doctor --root on an empty directory = %s", r.raw)
	}
	if r := omegaCmd(t, "doctor"); r.code != exitOther {
		t.Errorf("doctor without --root or --dir = %s", r.raw)
	}

	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	k, err := omega.OpenKernel(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := omega.Event{ID: omega.ID64(uint64(i + 1)), NodeID: 1, Lamport: uint64(i + 1), Payload: []byte{byte(i)}, Deps: []omega.EventID{}}
		e.PayloadHash = omega.PayloadHash(e.Payload)
		if err := k.Submit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := k.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	checkOf := func(r result, name string) (status, detail string) {
		for _, c := range r.obj["checks"].([]any) {
			c := c.(map[string]any)
			if c["name"] == name {
				return c["status"].(string), c["detail"].(string)
			}
		}
		return "", ""
	}
	r = omegaCmd(t, "doctor", "--dir", dir)
	if st, d := checkOf(r, "lock"); st != "ok" || !strings.HasPrefix(d, "held") {
		t.Errorf("doctor on a running kernel's directory: lock %s %q", st, d)
	}
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = omegaCmd(t, "doctor", "--dir", dir)
	if r.code != 0 || r.obj["healthy"] != true {
		t.Fatalf("doctor --dir on a sound directory = %s", r.raw)
	}
	if st, d := checkOf(r, "certificates"); st != "ok" || !strings.Contains(d, "3 certificates verify") {
		t.Errorf("certificates: %s %q", st, d)
	}
	if st, d := checkOf(r, "lock"); st != "ok" || !strings.HasPrefix(d, "free") {
		t.Errorf("lock after Close: %s %q", st, d)
	}

	// A damaged certificate in the middle of cert.log.
	certLog := filepath.Join(dir, "certs", "cert.log")
	b, err := os.ReadFile(certLog)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(b)
	bad[framelog.HeaderSize+framelog.FrameHeaderLen+30] ^= 1
	if err := os.WriteFile(certLog, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	r = omegaCmd(t, "doctor", "--dir", dir)
	if st, _ := checkOf(r, "certificates"); r.obj["healthy"] != false || st != "fail" {
		t.Errorf("doctor on a damaged cert.log = %s", r.raw)
	}
	if after, _ := os.ReadFile(certLog); !bytes.Equal(after, bad) {
		t.Errorf("doctor changed cert.log")
	}
}

// TestExportMetrics joins a kernel's metrics file and lines in the other
// accepted shapes into one sequence, and refuses a line it cannot read.
func TestExportMetrics(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	var kernelLines bytes.Buffer
	sink := omega.NewJSONLSink(&kernelLines)
	sink.Record(omega.Metric{Name: "sequencer.accepted", Value: 4})
	sink.Record(omega.Metric{Name: "cert.persist", Value: 1, Metadata: map[string]string{"batch": "1"}})
	sink.Flush()
	os.WriteFile(p("a.jsonl"), kernelLines.Bytes(), 0o644)
	os.WriteFile(p("b.jsonl"), []byte(`{"name":"sequencer.drop","value":2,"labels":{"node":"3"}}`+"\n\n"+`{"metric":"cert.persist","value":null,"batch_id":7,"cert_id":"12345678901234567890123"}`+"\n"), 0o644)
	r := omegaCmd(t, "export-metrics", "--input", p("a.jsonl"), "--input", p("b.jsonl"), "--output", p("out.jsonl"))
	if r.code != 0 || num(t, r.obj["lines"]) != 4 || num(t, r.obj["renumbered"]) != 2 || num(t, r.obj["metrics"].(map[string]any)["cert.persist"]) != 2 {
		t.Fatalf("export-metrics = %s", r.raw)
	}
	b, err := os.ReadFile(p("out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq_id":1,"metric":"sequencer.accepted","value":4,"metadata":{}}
{"seq_id":2,"metric":"cert.persist","value":1,"metadata":{"batch":"1"}}
{"seq_id":3,"metric":"sequencer.drop","value":2,"metadata":{"node":"3"}}
{"seq_id":4,"metric":"cert.persist","value":null,"metadata":{"batch_id":"7","cert_id":"12345678901234567890123"}}
`
	if string(b) != want {
		t.Errorf("the exported lines:\n%s\nwant\n%s", b, want)
	}
	os.WriteFile(p("bad.jsonl"), []byte(`{"metric":"x","value":1}`+"\n"+`{"metric":"x","value":"high"}`+"\n"), 0o644)
	r = omegaCmd(t, "export-metrics", "--input", p("bad.jsonl"), "--output", p("out2.jsonl"))
	if r.code != exitFormat || !strings.Contains(r.obj["error"].(string), "line 2") {
		t.Errorf("export-metrics of a bad line = %s", r.raw)
	}
	if _, err := os.Stat(p("out2.jsonl")); err == nil {
		t.Errorf("a failed export left its output")
	}
}

func TestInitLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sample.omega")
	r := omegaCmd(t, "init-log", "--output", path)
	if r.code != 0 || num(t, r.obj["bytes"]) != framelog.HeaderSize {
		t.Fatalf("init-log = %s", r.raw)
	}
	r = omegaCmd(t, "ingest", "--input", path)
	if r.code != 0 || r.obj["tail"] != "clean" || num(t, r.obj["frames"]) != 0 {
		t.Errorf("ingest of the empty log = %s", r.raw)
	}
	if r := omegaCmd(t, "init-log", "--output", path); r.code != exitOther {
		t.Errorf("init-log over an existing file = %s", r.raw)
	}
}

// TestExplainSnapshotsAndIncidents: explain recognizes a snapshot, a replay
// incident's JSON and the original system's snapshot manifest, and says
// what omega reads instead of the original's opaque log suffix.
func TestExplainSnapshotsAndIncidents(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	generate(t, p("e.json"), 30, "--seed", "4")
	r := omegaCmd(t, "reconcile", "--input", p("e.json"), "--batch-id", "3", "--replay-seed", "5", "--log", p("ev.omega"), "--snapshot-out", p("s.omega"))
	if r.code != 0 {
		t.Fatal(r.raw)
	}
	final := field(t, r.obj, "checker_output.result.merged_state_hash").(string)
	r = omegaCmd(t, "explain", "--input", p("s.omega"))
	if r.code != 0 || r.obj["type"] != "snapshot" || num(t, field(t, r.obj, "snapshot.last_batch_id")) != 3 || num(t, field(t, r.obj, "snapshot.known_ids")) != 30 ||
		field(t, r.obj, "snapshot.merged_state_hash") != final {
		t.Errorf("explain of a snapshot = %s", r.raw)
	}

	// An incident: the log replayed with another seed.
	if r := omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "6", "--incident-dir", p("inc")); r.code != exitReplay {
		t.Fatalf("replay with another seed = %s", r.raw)
	}
	incs, _ := filepath.Glob(p("inc/*.json"))
	if len(incs) != 1 {
		t.Fatalf("incident files %v", incs)
	}
	r = omegaCmd(t, "explain", "--input", incs[0])
	if r.code != 0 || r.obj["type"] != "incident" || field(t, r.obj, "incident.field_name") != "replay_seed" ||
		field(t, r.obj, "incident.expected_decimal") != "5" || field(t, r.obj, "incident.observed_decimal") != "6" {
		t.Errorf("explain of an incident = %s", r.raw)
	}

	manifest := `{"snapshot_id":1,"created_at_ns":5,"base_checkpoint_offset":64,"frontier_digest":[0],"merged_state_hash":[0],"stream_heads_digest":[0],"schema_hash":[0]}`
	os.WriteFile(p("manifest.json"), []byte(manifest), 0o644)
	r = omegaCmd(t, "explain", "--input", p("manifest.json"))
	if r.code != 0 || r.obj["type"] != "original_snapshot_manifest" || !strings.Contains(r.obj["summary"].(string), "reconcile --snapshot-out") {
		t.Errorf("explain of the original's manifest = %s", r.raw)
	}
	os.WriteFile(p("suffix.bin"), []byte{0x9f, 0x01, 0x02}, 0o644)
	r = omegaCmd(t, "explain", "--input", p("suffix.bin"))
	if r.code != exitFormat || !strings.Contains(r.obj["error"].(string), "opaque log suffix") {
		t.Errorf("explain of opaque bytes = %s", r.raw)
	}
}
