package schematest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/omega-sheaf/omega"
)

const schemaDir = "../testdata/schemas"

// compile loads every schema of testdata/schemas under its $id and
// compiles the one named file.
func compile(t *testing.T) func(file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	ids := map[string]string{}
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.schema.json"))
	if err != nil || len(files) < 8 {
		t.Fatalf("schemas: %v, %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ids[filepath.Base(f)] = id
	}
	return func(file string) *jsonschema.Schema {
		t.Helper()
		s, err := c.Compile(ids[file])
		if err != nil {
			t.Fatalf("compiling %s: %v", file, err)
		}
		return s
	}
}

// omegaCLI builds the omega command and returns a runner of it, in dir.
func omegaCLI(t *testing.T, dir string) func(args ...string) (map[string]any, []byte) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "omega")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/omega-sheaf/omega/examples/omega").CombinedOutput(); err != nil {
		t.Fatalf("building the omega command: %v\n%s", err, out)
	}
	return func(args ...string) (map[string]any, []byte) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, _ := cmd.Output()
		var obj map[string]any
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("omega %q: %v\n%s", args, err, out)
		}
		return obj, out
	}
}

// valid checks that the JSON v satisfies schema s.
func valid(t *testing.T, s *jsonschema.Schema, what string, v []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := s.Validate(doc); err != nil {
		t.Errorf("%s does not satisfy %s: %v\n%s", what, s.Location, err, v)
	}
}

func invalid(t *testing.T, s *jsonschema.Schema, what string, v []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := s.Validate(doc); err == nil {
		t.Errorf("%s satisfies %s, which should refuse it", what, s.Location)
	}
}

// raw returns member name of obj as JSON.
func raw(t *testing.T, out []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil || m[name] == nil {
		t.Fatalf("no %s in %s", name, out)
	}
	return m[name]
}

// TestCommandOutputSatisfiesSchemas runs the omega command's flows and
// validates what they write: events in both input forms, checker outputs
// and result files (a merge and an obstruction), certificates, a snapshot's
// JSON view, replay incidents and metric lines.
func TestCommandOutputSatisfiesSchemas(t *testing.T) {
	schema := compile(t)
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	run := omegaCLI(t, dir)
	read := func(n string) []byte {
		b, err := os.ReadFile(p(n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Events: the original's form, as generate-events writes it.
	run("generate-events", "--output", "e.json", "--count", "40", "--seed", "3")
	valid(t, schema("events.schema.json"), "generate-events' JSON array", read("e.json"))
	var events []map[string]any
	json.Unmarshal(read("e.json"), &events)
	events[5]["payload_hash"] = make([]int, 32) // a 2001 violation: an obstruction
	bad, _ := json.Marshal(events)
	os.WriteFile(p("bad.json"), bad, 0o644)

	// Checker outputs and result files, of both kinds.
	for _, tc := range []struct{ in, out, kind string }{{"e.json", "r1.json", "merge"}, {"bad.json", "r2.json", "obstruction"}} {
		obj, out := run("reconcile", "--input", tc.in, "--batch-id", "1", "--replay-seed", "5", "--output", tc.out, "--created-at-ns", "9")
		if obj["status"] != "ok" {
			t.Fatalf("reconcile: %s", out)
		}
		co := raw(t, out, "checker_output")
		valid(t, schema("checker-output.schema.json"), tc.kind+" checker output", co)
		valid(t, schema("result-file.schema.json"), tc.kind+" result file", read(tc.out))
		if tc.kind == "obstruction" {
			// omega's own event form, in the evidence.
			var x struct {
				Result struct {
					Evidence []json.RawMessage `json:"evidence"`
				} `json:"result"`
			}
			json.Unmarshal(co, &x)
			if len(x.Result.Evidence) == 0 {
				t.Fatalf("no evidence in %s", co)
			}
			valid(t, schema("event.schema.json"), "an evidence event (omega's form)", x.Result.Evidence[0])
		}
	}

	// Certificates: the JSON view certify writes for a .json output.
	run("keygen", "--out", "k.pem")
	for _, r := range []string{"r1.json", "r2.json"} {
		obj, out := run("certify", "--result", r, "--batch-id", "1", "--replay-seed", "5", "--schema-version", "1", "--key", "k.pem", "--output", r+".cert.json")
		if obj["status"] != "ok" {
			t.Fatalf("certify: %s", out)
		}
		valid(t, schema("certificate.schema.json"), "the certificate of "+r, read(r+".cert.json"))
		valid(t, schema("certificate.schema.json"), "certify's certificate field", raw(t, out, "certificate"))
	}

	// A snapshot's JSON view, and an incident.
	obj, out := run("reconcile", "--input", "e.json", "--batch-id", "1", "--replay-seed", "5", "--log", "ev.omega", "--snapshot-out", "s.omega")
	if obj["status"] != "ok" {
		t.Fatalf("reconcile --log: %s", out)
	}
	final := obj["checker_output"].(map[string]any)["result"].(map[string]any)["merged_state_hash"].(string)
	_, out = run("explain", "--input", "s.omega")
	valid(t, schema("snapshot.schema.json"), "explain's snapshot", raw(t, out, "snapshot"))
	obj, out = run("replay", "--log-suffix", "ev.omega", "--expected_hash_hex", final, "--replay-seed", "6", "--incident-dir", "inc")
	if obj["exit_code"] != json.Number("30") && obj["exit_code"] != float64(30) {
		t.Fatalf("replay with another seed: %s", out)
	}
	valid(t, schema("incident.schema.json"), "replay's incident", raw(t, out, "incident"))
	files, _ := filepath.Glob(p("inc/*.json"))
	if len(files) != 1 {
		t.Fatalf("incident files: %v", files)
	}
	b, _ := os.ReadFile(files[0])
	valid(t, schema("incident.schema.json"), "the incident file", b)

	// Metric lines: a kernel's metrics file, and export-metrics' output.
	metrics := p("metrics.jsonl")
	kernelMetrics(t, p("data"), metrics)
	lines := 0
	for _, f := range []string{metrics} {
		sc := bufio.NewScanner(bytes.NewReader(read(filepath.Base(f))))
		for sc.Scan() {
			lines++
			valid(t, schema("metric-line.schema.json"), "a kernel metric line", sc.Bytes())
		}
	}
	if lines < 5 {
		t.Fatalf("the kernel wrote %d metric lines", lines)
	}
	run("export-metrics", "--input", "metrics.jsonl", "--output", "exported.jsonl")
	sc := bufio.NewScanner(bytes.NewReader(read("exported.jsonl")))
	for sc.Scan() {
		valid(t, schema("metric-line.schema.json"), "an exported metric line", sc.Bytes())
	}
}

// kernelMetrics runs a kernel on dir writing its metrics to path.
func kernelMetrics(t *testing.T, dir, path string) {
	t.Helper()
	ctx := context.Background()
	k, err := omega.OpenKernel(ctx, dir, &omega.KernelConfig{Signer: ed25519.NewKeyFromSeed(make([]byte, 32)), MetricsFile: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		e := omega.Event{ID: omega.ID64(uint64(i + 1)), NodeID: 1, Lamport: uint64(i + 1), Payload: []byte{byte(i)}, Deps: []omega.EventID{}}
		e.PayloadHash = omega.PayloadHash(e.Payload)
		if i == 3 {
			e.PayloadHash[0] ^= 1
		}
		if err := k.Submit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSchemasRefuse shows the schemas have teeth: each refuses a broken
// copy of what it accepts.
func TestSchemasRefuse(t *testing.T) {
	schema := compile(t)
	event := `{"event_id":1,"node_id":1,"stream_id":0,"lamport":1,"mono_ts_ns":0,"event_kind":0,"flags":0,"deps_count":0,"payload_len":1,"payload_hash":"` + strings.Repeat("ab", 32) + `","deps":[],"payload":"YQ=="}`
	valid(t, schema("event.schema.json"), "an event", []byte(event))
	for what, v := range map[string]string{
		"an unknown field":        strings.Replace(event, `"flags":0`, `"flags":0,"color":1`, 1),
		"a short hash":            strings.Replace(event, strings.Repeat("ab", 32), "ab", 1),
		"a negative lamport":      strings.Replace(event, `"lamport":1`, `"lamport":-1`, 1),
		"a stream id over u16":    strings.Replace(event, `"stream_id":0`, `"stream_id":65536`, 1),
		"no payload":              strings.Replace(event, `,"payload":"YQ=="`, ``, 1),
		"an id with a sign":       strings.Replace(event, `"event_id":1`, `"event_id":"+1"`, 1),
		"a payload byte over 255": strings.Replace(strings.Replace(event, `"payload":"YQ=="`, `"payload":[256]`, 1), `"event_id":1`, `"event_id":"1"`, 1),
	} {
		invalid(t, schema("event.schema.json"), what, []byte(v))
	}
	line := `{"seq_id":1,"metric":"cert.persist","value":1,"metadata":{}}`
	valid(t, schema("metric-line.schema.json"), "a metric line", []byte(line))
	invalid(t, schema("metric-line.schema.json"), "seq_id 0", []byte(strings.Replace(line, `"seq_id":1`, `"seq_id":0`, 1)))
	invalid(t, schema("metric-line.schema.json"), "a numeric label", []byte(strings.Replace(line, `{}`, `{"batch":1}`, 1)))
	invalid(t, schema("incident.schema.json"), "an incident without its field", []byte(`{"incident_id":"`+strings.Repeat("0", 64)+`"}`))
}
