package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/keyfile"
)

// certFixture holds the files of a certificate flow: an obstruction for
// batch 1 and a merge for batch 2, both reconciled from genesis (the merge
// continues a log holding the obstruction: an obstruction moves no state),
// and two key pairs.
type certFixture struct {
	dir          string
	events       string // 30 events that merge
	bad          string // the same events, one with a wrong payload hash
	obstruction  string // reconcile bad --batch-id 1 --output
	merge        string // reconcile events --batch-id 2 --output
	key, pub     string
	other        string // a public key that signed nothing
	reconcileOut []byte // what reconcile printed for the merge
}

const testCreatedAt = "1700000000000000000"

func newCertFixture(t *testing.T) *certFixture {
	t.Helper()
	dir := t.TempDir()
	f := &certFixture{dir: dir, events: filepath.Join(dir, "e.json"), bad: filepath.Join(dir, "bad.json")}
	generate(t, f.events, 30, "--seed", "3")
	b, err := os.ReadFile(f.events)
	if err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatal(err)
	}
	events[2]["payload_hash"] = strings.Repeat("00", 32)
	writeJSON(t, f.bad, events)
	f.obstruction = f.reconcile(t, f.bad, 1, "r1.json")
	f.merge = f.reconcile(t, f.events, 2, "r2.json")
	f.reconcileOut = omegaCmd(t, "reconcile", "--input", f.events, "--batch-id", "2", "--replay-seed", "7").raw
	f.key, f.pub = f.keygen(t, "k")
	_, f.other = f.keygen(t, "other")
	return f
}

func (f *certFixture) path(name string) string { return filepath.Join(f.dir, name) }

// reconcile writes the checker output of events as batch id to name.
func (f *certFixture) reconcile(t *testing.T, events string, id int, name string) string {
	t.Helper()
	out := f.path(name)
	if r := omegaCmd(t, "reconcile", "--input", events, "--batch-id", strconv.Itoa(id), "--replay-seed", "7", "--output", out); r.code != 0 {
		t.Fatalf("reconcile: %s", r.raw)
	}
	return out
}

func (f *certFixture) keygen(t *testing.T, name string) (priv, pub string) {
	t.Helper()
	priv = f.path(name + ".pem")
	r := omegaCmd(t, "keygen", "--out", priv)
	if r.code != 0 {
		t.Fatalf("keygen: %s", r.raw)
	}
	return priv, f.path(name + ".pub")
}

// certify certifies result as batch id into the file cert, with the
// fixture's key and a fixed creation time; extra flags come last.
func (f *certFixture) certify(t *testing.T, result string, id int, cert string, extra ...string) result {
	t.Helper()
	args := []string{"certify", "--result", result, "--batch-id", strconv.Itoa(id), "--replay-seed", "7",
		"--schema-version", "1", "--key", f.key, "--output", cert, "--created-at-ns", testCreatedAt}
	return omegaCmd(t, append(args, extra...)...)
}

// certLog certifies the obstruction and the merge into a new log directory
// and returns it with the two certify outputs.
func (f *certFixture) certLog(t *testing.T, name string) (string, result, result) {
	t.Helper()
	log := f.path(name)
	a := f.certify(t, f.obstruction, 1, f.path(name+"-1.cert"), "--cert-log", log)
	b := f.certify(t, f.merge, 2, f.path(name+"-2.cert"), "--cert-log", log)
	if a.code != 0 || b.code != 0 {
		t.Fatalf("certify into %s: %s\n%s", name, a.raw, b.raw)
	}
	return log, a, b
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantCheck checks that r is exit 20 naming check.
func wantCheck(t *testing.T, what string, r result, check string) {
	t.Helper()
	if r.code != exitCert || r.obj["check"] != check {
		t.Errorf("%s = exit %d, %s; want exit 20 with check %s", what, r.code, r.raw, check)
	}
}

func TestCertifyVerifyFlow(t *testing.T) {
	f := newCertFixture(t)
	log, first, second := f.certLog(t, "log")

	keys, _ := decodeObject(t, first.raw)
	if want := []string{"status", "command", "cert_id", "cert_hash", "batch_id", "kind", "created_at_ns", "created_at_from", "output", "format", "cert_log", "seq", "certificate"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("certify keys %q, want %q", keys, want)
	}
	for i, tc := range []struct {
		r    result
		kind string
		prev any
	}{
		{first, "obstruction", strings.Repeat("0", 64)},
		{second, "merge", first.obj["cert_hash"]},
	} {
		r := tc.r
		if r.obj["kind"] != tc.kind || num(t, r.obj["batch_id"]) != int64(i+1) || num(t, r.obj["seq"]) != int64(i) || r.obj["cert_log"] != log ||
			field(t, r.obj, "created_at_ns") != json.Number(testCreatedAt) {
			t.Errorf("certify %d = %s", i+1, r.raw)
		}
		if got := field(t, r.obj, "certificate.prev_cert_hash"); got != tc.prev {
			t.Errorf("certify %d: prev_cert_hash %v, want %v", i+1, got, tc.prev)
		}
		if got := field(t, r.obj, "certificate.cert_hash"); got != r.obj["cert_hash"] {
			t.Errorf("certify %d: certificate.cert_hash %v, cert_hash %v", i+1, got, r.obj["cert_hash"])
		}
		// The file holds the envelope, which verifies with the library.
		pub, err := keyfile.LoadPublic(f.pub)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := omega.NewKeyRing(pub)
		if err != nil {
			t.Fatal(err)
		}
		c, err := omega.Verify(readFile(t, r.obj["output"].(string)), ring, omega.DefaultBinding())
		if err != nil || c.Hash().String() != r.obj["cert_hash"] || c.ID().String() != r.obj["cert_id"].(json.Number).String() {
			t.Errorf("certify %d: the file does not verify as the certificate printed: %v", i+1, err)
		}
	}

	before := readFile(t, filepath.Join(log, "cert.log"))
	v := omegaCmd(t, "verify", "--cert-log", log, "--pub", f.pub)
	if v.code != 0 {
		t.Fatalf("verify --cert-log: %s", v.raw)
	}
	if num(t, v.obj["verified"]) != 2 || field(t, v.obj, "head.cert_hash") != second.obj["cert_hash"] ||
		num(t, field(t, v.obj, "head.batch_id")) != 2 || num(t, v.obj["torn_tail_bytes"]) != 0 {
		t.Errorf("verify --cert-log = %s", v.raw)
	}
	if field(t, v.obj, "head.merged_state_hash") != field(t, second.obj, "certificate.body.merged_state_hash") {
		t.Errorf("verify head merged_state_hash is not the merge's")
	}

	// One certificate, as the envelope and as its JSON view.
	var printed struct {
		Certificate json.RawMessage `json:"certificate"`
	}
	if err := json.Unmarshal(second.raw, &printed); err != nil {
		t.Fatal(err)
	}
	view := f.path("2.json")
	if err := os.WriteFile(view, printed.Certificate, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cert := range []string{second.obj["output"].(string), view} {
		r := omegaCmd(t, "verify", "--cert", cert, "--pub", f.pub)
		if r.code != 0 || r.obj["cert_hash"] != second.obj["cert_hash"] || r.obj["kind"] != "merge" || num(t, r.obj["batch_id"]) != 2 ||
			r.obj["prev_cert_hash"] != first.obj["cert_hash"] {
			t.Errorf("verify --cert %s = %s", cert, r.raw)
		}
	}

	// Another key: exit 20, unknown_key, at the first certificate.
	r := omegaCmd(t, "verify", "--cert-log", log, "--pub", f.other)
	wantCheck(t, "verify --cert-log with another key", r, "unknown_key")
	if r.obj["position"] != json.Number("0") {
		t.Errorf("verify --cert-log with another key: position %v, want 0", r.obj["position"])
	}
	wantCheck(t, "verify --cert with another key", omegaCmd(t, "verify", "--cert", view, "--pub", f.other), "unknown_key")
	// A key ring holding the signer and another key.
	if r := omegaCmd(t, "verify", "--cert-log", log, "--pub", f.other, "--pub", f.pub); r.code != 0 || num(t, r.obj["verified"]) != 2 {
		t.Errorf("verify with a ring of two keys = %s", r.raw)
	}
	if after := readFile(t, filepath.Join(log, "cert.log")); !bytes.Equal(before, after) {
		t.Errorf("verify changed cert.log")
	}
}

// Without --cert-log the certificate is the first of a chain, and the same
// inputs give the same bytes; --created-at-ns defaults to the current time.
func TestCertifyAlone(t *testing.T) {
	f := newCertFixture(t)
	a := f.certify(t, f.merge, 2, f.path("a.cert"))
	b := f.certify(t, f.merge, 2, f.path("b.cert"))
	if a.code != 0 || b.code != 0 {
		t.Fatalf("certify: %s\n%s", a.raw, b.raw)
	}
	if _, ok := a.obj["cert_log"]; ok {
		t.Errorf("certify without --cert-log printed cert_log: %s", a.raw)
	}
	if _, ok := a.obj["seq"]; ok {
		t.Errorf("certify without --cert-log printed seq: %s", a.raw)
	}
	if field(t, a.obj, "certificate.prev_cert_hash") != strings.Repeat("0", 64) {
		t.Errorf("certify without --cert-log: prev_cert_hash not zero")
	}
	if !bytes.Equal(readFile(t, f.path("a.cert")), readFile(t, f.path("b.cert"))) {
		t.Errorf("certify twice with the same inputs gave different envelopes")
	}
	args := []string{"certify", "--result", f.merge, "--batch-id", "2", "--replay-seed", "7", "--schema-version", "1", "--key", f.key, "--output", f.path("now.cert")}
	r := omegaCmd(t, args...)
	if r.code != 0 || num(t, r.obj["created_at_ns"]) < 1_700_000_000_000_000_000 || field(t, r.obj, "certificate.created_at_ns") != r.obj["created_at_ns"] {
		t.Errorf("certify without --created-at-ns = %s, want the current time echoed", r.raw)
	}
}

func TestCertifyRefusals(t *testing.T) {
	f := newCertFixture(t)
	text := string(readFile(t, f.merge))

	// The same result under another catalog, its binding digest recomputed
	// so that it decodes: a binding mismatch, which Certify refuses.
	other := omega.DefaultBinding()
	other.CatalogHash[0] ^= 1
	otherBinding := f.path("other-binding.json")
	if err := os.WriteFile(otherBinding, []byte(strings.Replace(text, string(omega.DefaultBinding().AppendJSON(nil)), string(other.AppendJSON(nil)), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	edited := func(name, old, new string) string {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("%s: no %s in the result file", name, old)
		}
		p := f.path(name)
		if err := os.WriteFile(p, []byte(strings.Replace(text, old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var merge struct {
		Result struct {
			Witness string `json:"witness_hash"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(text), &merge); err != nil {
		t.Fatal(err)
	}
	badWitness := edited("witness.json", merge.Result.Witness, strings.Repeat("ab", 32))
	catalog := omega.DefaultBinding().CatalogHash.String()
	badDigest := edited("digest.json", catalog, strings.Repeat("cd", 32))
	extra := edited("extra.json", `{"batch_id"`, `{"extra":1,"batch_id"`)
	repeated := edited("repeated.json", `{"batch_id":2,`, `{"batch_id":2,"batch_id":2,`)
	notJSON := f.path("not.json")
	if err := os.WriteFile(notJSON, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		result string
		args   []string
		code   int
		msg    string
	}{
		{"wrong batch id", f.merge, []string{"--batch-id", "3"}, 10, "batch"},
		{"wrong replay seed", f.merge, []string{"--replay-seed", "8"}, 10, "replay seed"},
		{"wrong schema version", f.merge, []string{"--schema-version", "2"}, 10, "binding mismatch"},
		{"another binding", otherBinding, nil, 10, "binding mismatch"},
		{"witness edited", badWitness, nil, 10, "witness_hash"},
		{"binding edited without its digest", badDigest, nil, 10, "binding_digest"},
		{"unknown member", extra, nil, 10, "extra"},
		{"repeated member", repeated, nil, 10, "batch_id"},
		{"not JSON", notJSON, nil, 10, "not a checker output"},
		{"the events, not a result", f.events, nil, 10, "not a checker output"},
		{"public key to sign with", f.merge, []string{"--key", f.pub}, 10, "key"},
		{"missing key", f.merge, []string{"--key", f.path("missing.pem")}, 50, "missing.pem"},
		{"missing result", f.path("missing.json"), nil, 50, "missing.json"},
		{"missing --schema-version", f.merge, []string{"--schema-version"}, 50, "schema-version"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert := f.path("refused" + strconv.Itoa(i) + ".cert")
			args := []string{"certify", "--result", tc.result, "--batch-id", "2", "--replay-seed", "7", "--schema-version", "1", "--key", f.key, "--output", cert}
			for j := 0; j < len(tc.args); j += 2 {
				k := slices.Index(args, tc.args[j])
				if j+1 == len(tc.args) { // drop the flag
					args = slices.Delete(args, k, k+2)
					break
				}
				args[k+1] = tc.args[j+1]
			}
			r := omegaCmd(t, args...)
			if msg, _ := r.obj["error"].(string); r.code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("certify %s = exit %d, %s; want exit %d naming %q", tc.name, r.code, r.raw, tc.code, tc.msg)
			}
			if _, err := os.Stat(cert); err == nil {
				t.Errorf("certify %s wrote %s", tc.name, cert)
			}
		})
	}
}

// A result that does not continue the log's chain is refused with exit 20
// and the log is left as it was.
func TestCertifyChain(t *testing.T) {
	f := newCertFixture(t)
	log, _, second := f.certLog(t, "log")
	before := readFile(t, filepath.Join(log, "cert.log"))

	// Reconciled from genesis: its prior state is not the merge's.
	fromGenesis := f.reconcile(t, f.events, 3, "r3.json")
	r := f.certify(t, fromGenesis, 3, f.path("3.cert"), "--cert-log", log)
	wantCheck(t, "certify a result from genesis after a merge", r, "chain_state")
	// Batch 2 again.
	again := f.reconcile(t, f.bad, 2, "r2-again.json")
	r = f.certify(t, again, 2, f.path("2-again.cert"), "--cert-log", log)
	wantCheck(t, "certify batch 2 after batch 2", r, "batch_order")

	for _, p := range []string{f.path("3.cert"), f.path("2-again.cert")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a refused certify wrote %s", p)
		}
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(log, "cert.log"))) {
		t.Errorf("a refused certify changed cert.log")
	}
	v := omegaCmd(t, "verify", "--cert-log", log, "--pub", f.pub)
	if v.code != 0 || num(t, v.obj["verified"]) != 2 || field(t, v.obj, "head.cert_hash") != second.obj["cert_hash"] {
		t.Errorf("verify after refusals = %s", v.raw)
	}
}

// certify appends to the certificate log last: when the certificate file
// cannot be written, the log does not grow, and the same command runs again
// once the path is fixed.
func TestCertifyWritesLogLast(t *testing.T) {
	f := newCertFixture(t)
	log := f.path("log")
	r := f.certify(t, f.obstruction, 1, f.path("no/such/dir/1.cert"), "--cert-log", log)
	if r.code == 0 {
		t.Fatalf("certify into a missing directory = %s, want a failure", r.raw)
	}
	if v := omegaCmd(t, "verify", "--cert-log", log, "--pub", f.pub); v.code != 0 || num(t, v.obj["verified"]) != 0 {
		t.Fatalf("verify after a failed certify = %s, want 0 certificates", v.raw)
	}
	if r := f.certify(t, f.obstruction, 1, f.path("1.cert"), "--cert-log", log); r.code != 0 || num(t, r.obj["seq"]) != 0 {
		t.Fatalf("certify again = %s, want seq 0", r.raw)
	}
}

// Every flipped byte of an envelope fails verify with exit 20 and a named
// check.
func TestVerifyEveryFlippedByte(t *testing.T) {
	f := newCertFixture(t)
	for _, res := range []struct {
		result string
		id     int
	}{{f.obstruction, 1}, {f.merge, 2}} {
		cert := f.path("c" + strconv.Itoa(res.id) + ".cert")
		if r := f.certify(t, res.result, res.id, cert); r.code != 0 {
			t.Fatal(string(r.raw))
		}
		env := readFile(t, cert)
		damaged := f.path("damaged.cert")
		checks := map[any]int{}
		for i := range env {
			b := bytes.Clone(env)
			b[i] ^= 0x10
			if err := os.WriteFile(damaged, b, 0o644); err != nil {
				t.Fatal(err)
			}
			r := omegaCmd(t, "verify", "--cert", damaged, "--pub", f.pub)
			if r.code != exitCert {
				t.Fatalf("verify with byte %d flipped = %s, want exit 20", i, r.raw)
			}
			checks[r.obj["check"]]++
		}
		for _, c := range []string{"malformed", "body_hash", "cert_id", "signature"} {
			if checks[c] == 0 {
				t.Errorf("batch %d: no flipped byte failed %s; checks %v", res.id, c, checks)
			}
		}
	}
}

func TestVerifyLogDamage(t *testing.T) {
	f := newCertFixture(t)
	log, first, second := f.certLog(t, "log")
	clean := readFile(t, filepath.Join(log, "cert.log"))
	c1, c2 := readFile(t, first.obj["output"].(string)), readFile(t, second.obj["output"].(string))
	secondFrame := int64(framelog.HeaderSize + 12 + len(c1))

	// logOf writes a cert.log holding the frames given into a new
	// directory: CERT frames, but for the event's payload, an EVENT frame.
	n := 0
	event, err := benchEvents(1)[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	logOf := func(hdr framelog.Header, frames ...[]byte) string {
		l := newLog(t, hdr)
		for _, p := range frames {
			typ := framelog.FrameCert
			if bytes.Equal(p, event) {
				typ = framelog.FrameEvent
			}
			l.add(t, typ, p)
		}
		return rawLog(t, f, &n, l.bytes(t))
	}
	flipped := bytes.Clone(c2)
	flipped[len(flipped)-1] ^= 1 // the signature
	corrupt := bytes.Clone(clean)
	corrupt[framelog.HeaderSize+12+40] ^= 1 // a byte of the first CERT frame: its CRC fails, a valid frame follows

	tests := []struct {
		name     string
		dir      string
		check    string
		position string
		offset   int64
	}{
		{"signature of the second, framed anew", logOf(boundHeader(), c1, flipped), "signature", "1", -1},
		{"out of order", logOf(boundHeader(), c2, c1), "chain_link", "0", -1},
		{"second repeated", logOf(boundHeader(), c1, c2, c2), "chain_link", "2", -1},
		{"an EVENT frame", logOf(boundHeader(), c1, event), "log_corrupt", "", secondFrame},
		{"a truncated envelope", logOf(boundHeader(), c1, c2[:len(c2)-1]), "malformed", "", secondFrame},
		{"unbound header", logOf(framelog.Header{SchemaVersion: 1}, c1, c2), "log_schema", "", -1},
		{"corrupt first frame", rawLog(t, f, &n, corrupt), "log_corrupt", "", -1},
		{"bad header", rawLog(t, f, &n, append([]byte("OMEGA\x00\x02\x00"), clean[8:]...)), "log_header", "", -1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// certify refuses the same log, whose certificates it does not
			// verify but which it cannot extend, with the same exit code
			// and check, and changes nothing.
			if tc.check != "signature" {
				before := readFile(t, filepath.Join(tc.dir, "cert.log"))
				r := f.certify(t, f.obstruction, 1, f.path("damaged-"+strconv.Itoa(i)+".cert"), "--cert-log", tc.dir)
				wantCheck(t, "certify into "+tc.name, r, tc.check)
				if !bytes.Equal(before, readFile(t, filepath.Join(tc.dir, "cert.log"))) {
					t.Errorf("certify into %s changed cert.log", tc.name)
				}
			}
			r := omegaCmd(t, "verify", "--cert-log", tc.dir, "--pub", f.pub)
			wantCheck(t, "verify "+tc.name, r, tc.check)
			if p, ok := r.obj["position"]; (tc.position == "") == ok || ok && p != json.Number(tc.position) {
				t.Errorf("verify %s: position %v, want %q", tc.name, p, tc.position)
			}
			if o, ok := r.obj["offset"]; (tc.offset < 0) == ok || ok && num(t, o) != tc.offset {
				t.Errorf("verify %s: offset %v, want %d", tc.name, o, tc.offset)
			}
		})
	}

	// A torn tail is reported, not an error, and left in place.
	torn := rawLog(t, f, &n, clean[:len(clean)-5])
	r := omegaCmd(t, "verify", "--cert-log", torn, "--pub", f.pub)
	if r.code != 0 || num(t, r.obj["verified"]) != 1 || num(t, r.obj["torn_tail_bytes"]) != int64(12+len(c2)-5) ||
		field(t, r.obj, "head.cert_hash") != first.obj["cert_hash"] {
		t.Errorf("verify with a torn tail = %s", r.raw)
	}
	if got := readFile(t, filepath.Join(torn, "cert.log")); len(got) != len(clean)-5 {
		t.Errorf("verify truncated the torn tail: %d bytes left of %d", len(got), len(clean)-5)
	}
	// An empty log verifies: nothing to check.
	if r := omegaCmd(t, "verify", "--cert-log", logOf(boundHeader()), "--pub", f.pub); r.code != 0 || num(t, r.obj["verified"]) != 0 {
		t.Errorf("verify of an empty log = %s", r.raw)
	}
	if r := omegaCmd(t, "verify", "--cert-log", f.path("nowhere"), "--pub", f.pub); r.code != 50 {
		t.Errorf("verify of a missing log = %s, want exit 50", r.raw)
	}
	if _, err := os.Stat(f.path("nowhere")); err == nil {
		t.Errorf("verify created the missing log")
	}
}

// rawLog writes b as cert.log of a new directory under f.
func rawLog(t *testing.T, f *certFixture, n *int, b []byte) string {
	t.Helper()
	*n++
	dir := f.path("damaged-log-" + strconv.Itoa(*n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.log"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExplain(t *testing.T) {
	f := newCertFixture(t)
	log, first, second := f.certLog(t, "log")
	var printed struct {
		Certificate   json.RawMessage `json:"certificate"`
		CheckerOutput json.RawMessage `json:"checker_output"`
	}
	if err := json.Unmarshal(second.raw, &printed); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(f.reconcileOut, &printed); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := f.path(name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	view := write("view.json", printed.Certificate)
	line := write("reconcile.json", f.reconcileOut)
	output := write("output.json", printed.CheckerOutput)
	var lines []byte
	events, err := omega.DecodeEventsJSON(readFile(t, f.events), omega.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range events {
		lines = append(events[i].AppendJSON(lines), '\n')
	}
	jsonl := write("e.jsonl", lines)
	eventLog := f.path("e.omega")
	generate(t, eventLog, 30, "--seed", "3")

	tests := []struct {
		name, input, typ, format string
		want                     map[string]any
	}{
		{"obstruction certificate", first.obj["output"].(string), "certificate", "envelope", map[string]any{
			"certificate.kind": "obstruction", "certificate.batch_id": json.Number("1"), "certificate.cert_hash": first.obj["cert_hash"],
			"certificate.chain_position": "first of a chain", "certificate.decision.predicate.id": json.Number("2001"),
			"certificate.decision.predicate.name": "payload_hash_match", "certificate.decision.evidence_count": json.Number("1"),
			"certificate.created_at": "2023-11-14T22:13:20Z", "certificate.signature_checked": false,
			"certificate.binding.this_checker": true,
		}},
		{"merge certificate", second.obj["output"].(string), "certificate", "envelope", map[string]any{
			"certificate.kind": "merge", "certificate.cert_id": second.obj["cert_id"], "certificate.prev_cert_hash": first.obj["cert_hash"],
			"certificate.chain_position":          "after the certificate with cert_hash " + first.obj["cert_hash"].(string),
			"certificate.decision.accepted_count": json.Number("30"),
		}},
		{"certificate JSON view", view, "certificate", "json_view", map[string]any{"certificate.cert_hash": second.obj["cert_hash"]}},
		{"result file", f.obstruction, "checker_output", "result_file", map[string]any{
			"checker_output.batch_id": json.Number("1"), "checker_output.replay_seed": json.Number("7"),
			"checker_output.decision.kind": "obstruction", "checker_output.decision.predicate.name": "payload_hash_match",
			"checker_output.decision.conflict_set": []any{json.Number("3")}, "checker_output.binding.this_checker": true,
		}},
		{"reconcile output", line, "checker_output", "reconcile_line", map[string]any{
			"checker_output.batch_id": json.Number("2"), "checker_output.decision.accepted_count": json.Number("30"),
		}},
		{"checker output view", output, "checker_output", "output_view", map[string]any{"checker_output.decision.kind": "merge"}},
		{"events array", f.events, "events", "json_array", map[string]any{
			"events.count": json.Number("30"), "events.nodes": json.Number("4"), "events.event_ids.min": json.Number("1"),
			"events.event_ids.max": json.Number("30"), "events.payload_hash_mismatches": json.Number("0"),
		}},
		{"events lines", jsonl, "events", "json_lines", map[string]any{"events.count": json.Number("30")}},
		{"bad events", f.bad, "events", "json_array", map[string]any{"events.payload_hash_mismatches": json.Number("1")}},
		{"event log", eventLog, "frame_log", "omega", map[string]any{"frame_log.frames_by_type.EVENT": json.Number("30"), "frame_log.tail": "clean"}},
		{"certificate log", filepath.Join(log, "cert.log"), "frame_log", "omega", map[string]any{"frame_log.frames_by_type.CERT": json.Number("2")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := omegaCmd(t, "explain", "--input", tc.input)
			if r.code != 0 {
				t.Fatalf("explain: %s", r.raw)
			}
			keys, _ := decodeObject(t, r.raw)
			if want := []string{"status", "command", "input", "type", "format", "summary"}; len(keys) != 7 || !reflect.DeepEqual(keys[:6], want) {
				t.Errorf("explain keys %q, want %q and one more", keys, want)
			}
			if r.obj["type"] != tc.typ || r.obj["format"] != tc.format || r.obj["summary"] == "" || r.obj["input"] != tc.input {
				t.Errorf("explain = %s, want type %s, format %s and a summary", r.raw, tc.typ, tc.format)
			}
			for path, want := range tc.want {
				if got := field(t, r.obj, path); !reflect.DeepEqual(got, want) {
					t.Errorf("explain %s = %#v, want %#v", path, got, want)
				}
			}
		})
	}

	damagedView := write("damaged-view.json", bytes.Replace(printed.Certificate, []byte(`"batch_id":2`), []byte(`"batch_id":3`), 1))
	for _, tc := range []struct {
		name, input string
		code        int
	}{
		{"a key file", f.key, 10},
		{"an empty file", write("empty", nil), 10},
		{"some text", write("text", []byte("hello")), 10},
		{"an object of nothing known", write("object.json", []byte(`{"hello":1}`)), 10},
		{"a result with its witness edited", write("edited.json", bytes.Replace(readFile(t, f.merge), []byte(`"witness_hash":"`), []byte(`"witness_hash":"00`), 1)), 10},
		{"a certificate view edited", damagedView, 20},
		{"a truncated envelope", write("short.cert", readFile(t, second.obj["output"].(string))[:100]), 20},
		{"a missing file", f.path("missing"), 50},
	} {
		if r := omegaCmd(t, "explain", "--input", tc.input); r.code != tc.code {
			t.Errorf("explain %s = %s, want exit %d", tc.name, r.raw, tc.code)
		}
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "signer.pem")
	r := omegaCmd(t, "keygen", "--out", priv)
	if r.code != 0 || r.obj["private_key"] != priv || r.obj["public_key"] != filepath.Join(dir, "signer.pub") {
		t.Fatalf("keygen = %s", r.raw)
	}
	pub, err := keyfile.LoadPublic(filepath.Join(dir, "signer.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.LoadPrivate(priv); err != nil {
		t.Fatal(err)
	}
	if id := omega.KeyID(pub); r.obj["key_id"] != hex.EncodeToString(id[:]) {
		t.Errorf("key_id %v, want %x", r.obj["key_id"], id)
	}
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key file mode %v, %v, want 0600", fi.Mode(), err)
	}
	before := readFile(t, priv)

	// An existing key is never replaced, whichever file exists.
	if r := omegaCmd(t, "keygen", "--out", priv); r.code != 50 {
		t.Errorf("keygen over an existing key = %s, want exit 50", r.raw)
	}
	if !bytes.Equal(before, readFile(t, priv)) {
		t.Errorf("keygen replaced an existing private key")
	}
	lone := filepath.Join(dir, "lone.pem")
	if err := os.WriteFile(filepath.Join(dir, "lone.pub"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := omegaCmd(t, "keygen", "--out", lone); r.code != 50 {
		t.Errorf("keygen beside an existing public key = %s, want exit 50", r.raw)
	}
	if _, err := os.Stat(lone); err == nil {
		t.Errorf("keygen left a private key without its public key")
	}
	if string(readFile(t, filepath.Join(dir, "lone.pub"))) != "keep" {
		t.Errorf("keygen replaced an existing public key")
	}
	if r := omegaCmd(t, "keygen", "--out", filepath.Join(dir, "k.pub")); r.code != 50 {
		t.Errorf("keygen --out k.pub = %s, want exit 50", r.raw)
	}
	if r := omegaCmd(t, "keygen", "--out", filepath.Join(dir, "plain")); r.code != 0 || r.obj["public_key"] != filepath.Join(dir, "plain.pub") {
		t.Errorf("keygen --out without an extension = %s", r.raw)
	}
}

func TestCertCommandUsage(t *testing.T) {
	f := newCertFixture(t)
	for _, args := range [][]string{
		{"keygen"},
		{"certify", "--result", f.merge, "--batch-id", "2"},
		{"verify", "--cert", f.path("x")},
		{"verify", "--pub", f.pub},
		{"verify", "--cert", f.path("x"), "--cert-log", f.path("y"), "--pub", f.pub},
		{"verify", "--cert", f.path("missing.cert"), "--pub", f.pub},
		{"explain"},
	} {
		if r := omegaCmd(t, args...); r.code != 50 {
			t.Errorf("omega %q = %s, want exit 50", args, r.raw)
		}
	}
	if r := omegaCmd(t, "verify", "--cert", f.merge, "--pub", f.key); r.code != 10 {
		t.Errorf("verify with a private key as --pub = %s, want exit 10", r.raw)
	}
}

// Certificates that only the library can make: signed under another binding,
// or over a result whose digests do not follow. verify names each check.
func TestVerifyNamesChecks(t *testing.T) {
	f := newCertFixture(t)
	priv, err := keyfile.LoadPrivate(f.key)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := readResultFile(readFile(t, f.merge))
	if err != nil {
		t.Fatal(err)
	}
	other := omega.DefaultBinding()
	other.CatalogHash[0] ^= 1
	badWitness := *rf.out.Result
	badWitness.WitnessHash[0] ^= 1
	meta := omega.BatchMeta{BatchID: 2, ReplaySeed: 7}
	for _, tc := range []struct {
		name  string
		out   omega.Output
		check string
	}{
		{"another binding", omega.Output{Result: rf.out.Result, Binding: other}, "binding"},
		{"a wrong witness", omega.Output{Result: &badWitness, Binding: rf.out.Binding}, "digests"},
	} {
		c, err := omega.Certify(tc.out, tc.out.Binding, meta, omega.Hash{}, priv)
		if err != nil {
			t.Fatal(err)
		}
		cert := f.path(strings.ReplaceAll(tc.name, " ", "-") + ".cert")
		if err := os.WriteFile(cert, c.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		wantCheck(t, "verify "+tc.name, omegaCmd(t, "verify", "--cert", cert, "--pub", f.pub), tc.check)
	}
}

// TestCertifyFromTheFirstHour covers what a first try of the command runs
// into: created_at_ns taken from what reconcile recorded, a .json output
// written as the JSON view, a missing key explained, and a --cert-log
// given as the path of cert.log.
func TestCertifyFromTheFirstHour(t *testing.T) {
	f := newCertFixture(t)
	rec := omegaCmd(t, "reconcile", "--input", f.events, "--batch-id", "1", "--replay-seed", "7", "--created-at-ns", "4242", "--output", f.path("r.json"))
	if rec.code != 0 {
		t.Fatalf("reconcile: %s", rec.raw)
	}
	base := []string{"certify", "--result", f.path("r.json"), "--batch-id", "1", "--replay-seed", "7", "--schema-version", "1"}

	r := omegaCmd(t, append(base, "--key", f.key, "--output", f.path("c.json"), "--cert-log", f.path("certs"))...)
	if r.code != 0 || num(t, r.obj["created_at_ns"]) != 4242 || r.obj["created_at_from"] != "result" || r.obj["format"] != "json" {
		t.Fatalf("certify = %s; want created_at_ns 4242 from the result, a JSON view", r.raw)
	}
	b, err := os.ReadFile(f.path("c.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := omega.DecodeCertificateJSON(bytes.TrimSpace(b)); err != nil || c.CreatedAtNs != 4242 {
		t.Fatalf("the .json output does not decode as a certificate's JSON view: %v", err)
	}

	// The flag wins over the result.
	r = omegaCmd(t, append(base, "--key", f.key, "--output", f.path("c2"), "--created-at-ns", "7")...)
	if r.code != 0 || num(t, r.obj["created_at_ns"]) != 7 || r.obj["created_at_from"] != "flag" || r.obj["format"] != "envelope" {
		t.Fatalf("certify --created-at-ns 7 = %s", r.raw)
	}

	// No key: the error says how to make one.
	r = omegaCmd(t, append(base, "--output", f.path("c3"))...)
	if r.code != exitOther || !strings.Contains(r.obj["error"].(string), "omega keygen --out") {
		t.Errorf("certify without --key = %s", r.raw)
	}

	// --cert-log as the path of cert.log, as the original's tools took it,
	// for verify and replay too.
	logFile := filepath.Join(f.path("certs"), "cert.log")
	if r := omegaCmd(t, "verify", "--cert-log", logFile, "--pub", f.pub); r.code != 0 {
		t.Errorf("verify --cert-log <cert.log> = %s", r.raw)
	}
	// A cert.log path that does not exist yet, as the original's first
	// certify took it: the store is made in its directory.
	fresh := filepath.Join(f.path("fresh"), "cert.log")
	os.MkdirAll(f.path("fresh"), 0o755)
	if r := omegaCmd(t, append(base, "--key", f.key, "--output", f.path("c4"), "--cert-log", fresh)...); r.code != 0 {
		t.Errorf("certify --cert-log <a cert.log to make> = %s", r.raw)
	} else if _, err := os.Stat(fresh); err != nil {
		t.Errorf("no cert.log where --cert-log named it: %v", err)
	}
	other := f.path("r.json")
	if r := omegaCmd(t, "verify", "--cert-log", other, "--pub", f.pub); r.code != exitOther || !strings.Contains(r.obj["error"].(string), "directory holding cert.log") {
		t.Errorf("verify --cert-log <another file> = %s", r.raw)
	}
}
