package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

// history writes a multi-batch log with generate-history and returns its
// output.
func history(t *testing.T, dir string, extra ...string) result {
	t.Helper()
	args := append([]string{"generate-history", "--log", filepath.Join(dir, "h.omega"), "--count", "600",
		"--batch-size", "16", "--seed", "3", "--replay-seed", "9", "--obstruct-every", "4"}, extra...)
	r := omegaCmd(t, args...)
	if r.code != 0 {
		t.Fatalf("generate-history = %s", r.raw)
	}
	if num(t, r.obj["obstructions"]) == 0 || num(t, r.obj["merges"]) == 0 {
		t.Fatalf("generate-history made no obstruction or no merge: %s", r.raw)
	}
	return r
}

func TestGenerateHistoryDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ra, rb := history(t, a), history(t, b)
	la, _ := os.ReadFile(filepath.Join(a, "h.omega"))
	lb, _ := os.ReadFile(filepath.Join(b, "h.omega"))
	if string(la) != string(lb) || ra.obj["final_state_hash"] != rb.obj["final_state_hash"] {
		t.Fatal("generate-history with the same flags wrote different logs")
	}
	if int64(len(la)) != num(t, ra.obj["log_bytes"]) {
		t.Errorf("log_bytes %v, file has %d", ra.obj["log_bytes"], len(la))
	}
}

// replay refuses a --cert-log that verify would fail as a log with exit 20
// and the same check, as certify does: here a frame other than CERT.
func TestReplayDamagedCertLog(t *testing.T) {
	dir := t.TempDir()
	h := history(t, dir)
	event, err := benchEvents(1)[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	l := newLog(t, boundHeader())
	l.add(t, framelog.FrameEvent, event)
	certs := filepath.Join(dir, "certs")
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "cert.log"), l.bytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	r := omegaCmd(t, "replay", "--log-suffix", filepath.Join(dir, "h.omega"), "--expected_hash_hex", h.obj["final_state_hash"].(string),
		"--replay-seed", "9", "--cert-log", certs)
	if r.code != exitCert || r.obj["check"] != "log_corrupt" || num(t, r.obj["offset"]) != framelog.HeaderSize {
		t.Errorf("replay --cert-log holding an EVENT frame = %s, want exit 20, check log_corrupt at offset %d", r.raw, framelog.HeaderSize)
	}
}

// generate-history refuses what it cannot write: a directory given as the
// log is left in place, and a first created_at_ns too close to 2^64 for the
// batches is refused before anything is written.
func TestGenerateHistoryRefusals(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := omegaCmd(t, "generate-history", "--log", sub, "--count", "3"); r.code == 0 {
		t.Errorf("generate-history into a directory = %s, want a failure", r.raw)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("generate-history replaced the directory given as --log (%v)", err)
	}
	log := filepath.Join(dir, "h.omega")
	for _, tc := range []struct {
		created string
		ok      bool
	}{
		{"18446744073709551615", false},
		{"18446744073709551610", true}, // 3 events, batch size 1: at most 6 batches
		{"18446744073709551611", false},
	} {
		r := omegaCmd(t, "generate-history", "--log", log, "--count", "3", "--batch-size", "1", "--created-at-ns", tc.created)
		if (r.code == 0) != tc.ok {
			t.Errorf("generate-history --created-at-ns %s = %s, want ok %v", tc.created, r.raw, tc.ok)
		}
	}
}

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "h.omega")
	snap := filepath.Join(dir, "snap.omega")
	h := history(t, dir, "--snapshot", snap, "--snapshot-at", "8")
	final := h.obj["final_state_hash"].(string)
	batches := num(t, h.obj["batches"])

	r := omegaCmd(t, "replay", "--log_suffix", log, "--expected_hash_hex", final, "--replay-seed", "9")
	if r.code != 0 || r.obj["result"] != "deterministic" || num(t, r.obj["batches"]) != batches || r.obj["final_state_hash"] != final {
		t.Fatalf("replay from genesis = %s", r.raw)
	}
	if n := len(r.obj["per_batch"].([]any)); int64(n) != batches {
		t.Errorf("per_batch has %d entries, want %d", n, batches)
	}

	if r.obj["replay_seed_from"] != "flag" || num(t, r.obj["replay_seed"]) != 9 {
		t.Errorf("replay with --replay-seed reports %v from %v", r.obj["replay_seed"], r.obj["replay_seed_from"])
	}
	// Without --replay-seed, the seed is the log's.
	r = omegaCmd(t, "replay", "--log_suffix", log, "--expected_hash_hex", final)
	if r.code != 0 || r.obj["result"] != "deterministic" || r.obj["replay_seed_from"] != "log" || num(t, r.obj["replay_seed"]) != 9 {
		t.Fatalf("replay without --replay-seed = %s", r.raw)
	}

	// From the snapshot taken after batch 8: only the later batches.
	r = omegaCmd(t, "replay", "--snapshot", snap, "--log-suffix", log, "--expected_hash_hex", final, "--replay-seed", "9")
	if r.code != 0 || r.obj["result"] != "deterministic" || num(t, r.obj["batches"]) != batches-8 {
		t.Fatalf("replay from the snapshot = %s", r.raw)
	}

	// Another seed: exit 30 with the incident, written to --incident-dir.
	incDir := filepath.Join(dir, "incidents")
	r = omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", final, "--replay-seed", "8", "--incident-dir", incDir)
	if r.code != exitReplay || field(t, r.obj, "incident.field_name") != "replay_seed" || num(t, field(t, r.obj, "incident.divergence_batch_id")) != 1 {
		t.Fatalf("replay with another seed = %s", r.raw)
	}
	if field(t, r.obj, "incident_decimal.expected") != "9" || field(t, r.obj, "incident_decimal.observed") != "8" {
		t.Errorf("the seed incident's decimals: %s", r.raw)
	}
	// The original's --divergence_batch_id: where a divergence is expected.
	d := omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", final, "--replay-seed", "8", "--divergence_batch_id", "1")
	if d.code != exitReplay || field(t, d.obj, "expected_divergence.found") != true {
		t.Errorf("replay expecting the divergence at batch 1 = %s", d.raw)
	}
	d = omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", final, "--replay-seed", "8", "--divergence-batch-id", "5", "--divergence_event_id", "3")
	if d.code != exitReplay || field(t, d.obj, "expected_divergence.found") != false || field(t, d.obj, "expected_divergence.event_id") != "3" {
		t.Errorf("replay expecting the divergence at batch 5 = %s", d.raw)
	}
	d = omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", final, "--divergence_batch_id", "2")
	if d.code != 0 || field(t, d.obj, "expected_divergence.found") != false {
		t.Errorf("a deterministic replay expecting a divergence = %s", d.raw)
	}
	if r := omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", final, "--divergence_event_id", "x"); r.code != exitOther {
		t.Errorf("--divergence_event_id x = %s", r.raw)
	}
	id := field(t, r.obj, "incident.incident_id").(string)
	if _, err := os.Stat(filepath.Join(incDir, id+".json")); err != nil {
		t.Errorf("incident JSON not written: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(incDir, "incidents.omega"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := framelog.NewScanner(b, nil).Next()
	if err != nil || f.Type != framelog.FrameIncident {
		t.Fatalf("incidents.omega: %v, %v", f.Type, err)
	}
	if inc, err := omega.DecodeIncident(f.Payload); err != nil || inc.ID.String() != id {
		t.Fatalf("INCIDENT frame = %v, %v, want id %s", inc, err, id)
	}

	// An --incident-dir that cannot take the incident (a file) does not
	// hide it.
	r = omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", final, "--replay-seed", "8",
		"--incident-dir", filepath.Join(incDir, "incidents.omega"))
	if r.code != exitReplay || field(t, r.obj, "incident.incident_id") != id || r.obj["incident_file"] != nil ||
		!strings.Contains(r.obj["error"].(string), "not written") {
		t.Fatalf("replay with an unusable --incident-dir = %s, want exit 30, the incident and why it was not written", r.raw)
	}

	// The wrong final hash.
	wrong := omega.Hash{1}.String()
	r = omegaCmd(t, "replay", "--log-suffix", log, "--expected_hash_hex", wrong, "--replay-seed", "9")
	if r.code != exitReplay || field(t, r.obj, "incident.field_name") != "final_state" || field(t, r.obj, "incident.observed") != final {
		t.Fatalf("replay with a wrong expected hash = %s", r.raw)
	}

	// One byte of an EVENT frame changed, its CRC fixed up: an incident
	// naming a member.
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(framelog.HeaderSize)
	n := int64(binary.LittleEndian.Uint32(data[off:]))
	data[off+12+90] ^= 1 // a byte of the first event's payload or deps
	binary.LittleEndian.PutUint32(data[off+4:], crc32.ChecksumIEEE(data[off+8:off+n]))
	altered := filepath.Join(dir, "altered.omega")
	if err := os.WriteFile(altered, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r = omegaCmd(t, "replay", "--log-suffix", altered, "--expected_hash_hex", final, "--replay-seed", "9")
	if r.code != exitReplay || field(t, r.obj, "incident.field_name") != "member" || num(t, field(t, r.obj, "incident.divergence_batch_id")) != 1 {
		t.Fatalf("replay of an altered event = %s", r.raw)
	}
	// Without the CRC fixed up, the damage is corruption: exit 10.
	data[off+12+91] ^= 1
	if err := os.WriteFile(altered, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r = omegaCmd(t, "replay", "--log-suffix", altered, "--expected_hash_hex", final); r.code != exitFormat {
		t.Fatalf("replay of a corrupt log = %s, want exit 10", r.raw)
	}

	// Usage.
	for _, args := range [][]string{
		{"replay", "--expected_hash_hex", final},
		{"replay", "--log-suffix", log},
		{"replay", "--log-suffix", log, "--expected_hash_hex", "xyz"},
		{"replay", "--log-suffix", filepath.Join(dir, "missing"), "--expected_hash_hex", final},
	} {
		if r := omegaCmd(t, args...); r.code != exitOther {
			t.Errorf("omega %q = %s, want exit 50", args, r.raw)
		}
	}
}

// reconcile writes the event log last: when --output or --snapshot-out
// cannot be written, the log is left as it was (here: not created), and the
// same command runs again once the path is fixed.
func TestReconcileWritesLogLast(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if r := omegaCmd(t, "generate-events", "--output", p("e.json"), "--count", "20", "--seed", "4"); r.code != 0 {
		t.Fatal(string(r.raw))
	}
	for _, bad := range [][]string{
		{"--output", p("no/such/dir/r.json")},
		{"--snapshot-out", p("no/such/dir/s.omega")},
	} {
		args := append([]string{"reconcile", "--input", p("e.json"), "--batch-id", "1", "--log", p("ev.omega")}, bad...)
		if r := omegaCmd(t, args...); r.code == 0 {
			t.Fatalf("omega %q = %s, want a failure", args, r.raw)
		}
		if _, err := os.Stat(p("ev.omega")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("omega %q failed but wrote the log (%v)", args, err)
		}
	}
	r := omegaCmd(t, "reconcile", "--input", p("e.json"), "--batch-id", "1", "--log", p("ev.omega"), "--output", p("r.json"))
	if r.code != 0 {
		t.Fatalf("reconcile after fixing the path = %s", r.raw)
	}
	if r := omegaCmd(t, "ingest", "--input", p("ev.omega")); r.code != 0 || num(t, field(t, r.obj, "frames_by_type.EVENT")) != 20 ||
		num(t, field(t, r.obj, "frames_by_type.BATCH")) != 1 {
		t.Errorf("ingest of the log = %s, want 20 EVENT frames and 1 BATCH", r.raw)
	}
}

// reconcile --log refuses an event log bound to another schema, or unbound
// (SPEC section 4), with exit 10 before it writes any file.
func TestReconcileLogBinding(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if r := omegaCmd(t, "generate-events", "--output", p("e.json"), "--count", "5"); r.code != 0 {
		t.Fatal(string(r.raw))
	}
	other := boundHeader()
	other.SchemaHash[0] ^= 1
	for name, hdr := range map[string]framelog.Header{"unbound": {SchemaVersion: omega.SchemaVersion}, "another schema": other} {
		log := p(name + ".omega")
		if err := os.WriteFile(log, newLog(t, hdr).bytes(t), 0o644); err != nil {
			t.Fatal(err)
		}
		r := omegaCmd(t, "reconcile", "--input", p("e.json"), "--batch-id", "1", "--log", log,
			"--output", p(name+".json"), "--snapshot-out", p(name+".snap"))
		if r.code != exitFormat || !strings.Contains(r.obj["error"].(string), "bound to another schema") {
			t.Errorf("reconcile --log with an %s header = %s, want exit 10, a schema mismatch", name, r.raw)
		}
		for _, f := range []string{name + ".json", name + ".snap"} {
			if _, err := os.Stat(p(f)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("reconcile --log with an %s header failed but wrote %s (%v)", name, f, err)
			}
		}
	}
}

// A history built batch by batch with reconcile --log, --snapshot and
// --snapshot-out, certified with certify --cert-log, replays against its
// certificate chain.
func TestReconcileLogSnapshotCertifyReplay(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if r := omegaCmd(t, "generate-events", "--output", p("e.json"), "--count", "50", "--seed", "4"); r.code != 0 {
		t.Fatal(string(r.raw))
	}
	if r := omegaCmd(t, "keygen", "--out", p("k.pem")); r.code != 0 {
		t.Fatal(string(r.raw))
	}
	// Batch 1 merges from genesis; batch 2 re-sends the same events
	// against the snapshot after batch 1: 1002, the state unchanged.
	r1 := omegaCmd(t, "reconcile", "--input", p("e.json"), "--batch-id", "1", "--replay-seed", "5",
		"--log", p("ev.omega"), "--snapshot-out", p("s1.omega"), "--created-at-ns", "100", "--output", p("r1.json"))
	if r1.code != 0 || field(t, r1.obj, "checker_output.result.kind") != "merge" || num(t, r1.obj["created_at_ns"]) != 100 {
		t.Fatalf("reconcile batch 1 = %s", r1.raw)
	}
	r2 := omegaCmd(t, "reconcile", "--input", p("e.json"), "--batch-id", "3", "--replay-seed", "5", "--snapshot", p("s1.omega"),
		"--log", p("ev.omega"), "--snapshot-out", p("s2.omega"), "--created-at-ns", "200", "--output", p("r2.json"))
	if r2.code != 0 || field(t, r2.obj, "checker_output.result.kind") != "obstruction" ||
		num(t, field(t, r2.obj, "checker_output.result.violated_predicate_id")) != 1002 {
		t.Fatalf("reconcile batch 3 = %s", r2.raw)
	}
	final := field(t, r1.obj, "checker_output.result.merged_state_hash").(string)
	s2, err := omega.LoadSnapshotFile(p("s2.omega"))
	if err != nil || s2.State.MergedStateHash().String() != final || s2.LastBatchID != 3 || s2.CreatedAtNs != 200 {
		t.Fatalf("snapshot after the obstruction = %+v, %v; want the state after batch 1", s2, err)
	}
	// A batch id that does not follow the log's last batch, and a batch
	// decided from a state other than the one the log ends in (genesis,
	// without --snapshot): refused, the log left as it was.
	logged, err := os.ReadFile(p("ev.omega"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"reconcile", "--input", p("e.json"), "--batch-id", "3", "--log", p("ev.omega")},
		{"reconcile", "--input", p("e.json"), "--batch-id", "2", "--snapshot", p("s2.omega")},
		{"reconcile", "--input", p("e.json"), "--batch-id", "4", "--log", p("ev.omega")},
	} {
		if r := omegaCmd(t, args...); r.code != exitFormat {
			t.Errorf("omega %q = %s, want exit 10", args, r.raw)
		}
	}
	if now, err := os.ReadFile(p("ev.omega")); err != nil || !bytes.Equal(now, logged) {
		t.Errorf("refused reconciles changed the log (%v)", err)
	}

	for i, res := range []string{"r1.json", "r2.json"} {
		id, created := []string{"1", "3"}[i], []string{"100", "200"}[i]
		if r := omegaCmd(t, "certify", "--result", p(res), "--batch-id", id, "--replay-seed", "5", "--schema-version", "1",
			"--key", p("k.pem"), "--cert-log", p("certs"), "--created-at-ns", created, "--output", p(res+".cert")); r.code != 0 {
			t.Fatalf("certify %s = %s", res, r.raw)
		}
	}
	r := omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "5", "--cert-log", p("certs"))
	if r.code != 0 || r.obj["result"] != "deterministic" || num(t, r.obj["certificates"]) != 2 || num(t, r.obj["obstructions"]) != 1 {
		t.Fatalf("replay with the certificate log = %s", r.raw)
	}
	// From the snapshot after batch 1 (not taken from a log): batch 3 only.
	r = omegaCmd(t, "replay", "--snapshot", p("s1.omega"), "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "5")
	if r.code != 0 || num(t, r.obj["batches"]) != 1 {
		t.Fatalf("replay from the snapshot after batch 1 = %s", r.raw)
	}
	// A certificate log whose created_at_ns differs from the BATCH frame's.
	if r := omegaCmd(t, "certify", "--result", p("r1.json"), "--batch-id", "1", "--replay-seed", "5", "--schema-version", "1",
		"--key", p("k.pem"), "--cert-log", p("certs2"), "--created-at-ns", "101", "--output", p("x.cert")); r.code != 0 {
		t.Fatalf("certify = %s", r.raw)
	}
	r = omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "5", "--cert-log", p("certs2"))
	if r.code != exitReplay || field(t, r.obj, "incident.field_name") != "created_at" {
		t.Fatalf("replay against a certificate of another created_at_ns = %s", r.raw)
	}
	if got := field(t, r.obj, "incident.observed").(string); got[:2] != strconv.FormatInt(101, 16) {
		t.Errorf("created_at incident observed %s, want 101 little-endian", got)
	}
	if field(t, r.obj, "incident_decimal.observed") != "101" {
		t.Errorf("created_at incident's decimals: %s", r.raw)
	}

	// The obstruction's BATCH frame, the log's last, cut off: the final
	// state is the same, so replay alone is deterministic, but it prints
	// one obstruction fewer, an earlier last batch and the torn tail; the
	// certificate log finds batch 3's certificate without its BATCH.
	data, err := os.ReadFile(p("ev.omega"))
	if err != nil {
		t.Fatal(err)
	}
	var lastBatch int64
	for s := framelog.NewScanner(data, nil); ; {
		f, err := s.Next()
		if err != nil {
			break
		}
		if f.Type == framelog.FrameBatch {
			lastBatch = f.Offset
		}
	}
	cut := data[:len(data)-5]
	if err := os.WriteFile(p("cut.omega"), cut, 0o644); err != nil {
		t.Fatal(err)
	}
	r = omegaCmd(t, "replay", "--log-suffix", p("cut.omega"), "--expected_hash_hex", final, "--replay-seed", "5")
	if r.code != 0 || r.obj["result"] != "deterministic" || num(t, r.obj["merges"]) != 1 || num(t, r.obj["obstructions"]) != 0 ||
		num(t, r.obj["last_batch_id"]) != 1 || num(t, r.obj["torn_tail_bytes"]) != int64(len(cut))-lastBatch ||
		num(t, r.obj["torn_tail_offset"]) != lastBatch {
		t.Fatalf("replay with the obstruction's BATCH cut off = %s, want 1 merge, 0 obstructions, last batch 1, a torn tail at %d", r.raw, lastBatch)
	}
	r = omegaCmd(t, "replay", "--log-suffix", p("cut.omega"), "--expected_hash_hex", final, "--replay-seed", "5", "--cert-log", p("certs"))
	if r.code != exitReplay || field(t, r.obj, "incident.field_name") != "certificate" || num(t, field(t, r.obj, "incident.divergence_batch_id")) != 3 {
		t.Fatalf("replay with the obstruction's BATCH cut off, against the certificate log = %s", r.raw)
	}

	// The log in two segments, cut before the last BATCH frame: its
	// events in the first, the BATCH in the second.
	seg2 := append(append([]byte(nil), data[:framelog.HeaderSize]...), data[lastBatch:]...)
	if err := os.WriteFile(p("seg1.omega"), data[:lastBatch], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("seg2.omega"), seg2, 0o644); err != nil {
		t.Fatal(err)
	}
	whole := omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "5", "--cert-log", p("certs"))
	r = omegaCmd(t, "replay", "--log-suffix", p("seg1.omega"), "--log_suffix", p("seg2.omega"), "--expected_hash_hex", final,
		"--replay-seed", "5", "--cert-log", p("certs"))
	if r.code != 0 || string(r.raw) != string(whole.raw) {
		t.Fatalf("replay of the log in two segments = %s, want what the whole log gives: %s", r.raw, whole.raw)
	}

	// Batch 3 decided and logged, its certificate never appended: with
	// --uncertified-suffix it is replayed and listed; without, field 11.
	if r := omegaCmd(t, "certify", "--result", p("r1.json"), "--batch-id", "1", "--replay-seed", "5", "--schema-version", "1",
		"--key", p("k.pem"), "--cert-log", p("certs3"), "--created-at-ns", "100", "--output", p("y.cert")); r.code != 0 {
		t.Fatalf("certify = %s", r.raw)
	}
	r = omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "5",
		"--cert-log", p("certs3"), "--uncertified-suffix")
	if r.code != 0 || r.obj["result"] != "deterministic" || len(r.obj["uncertified"].([]any)) != 1 ||
		num(t, r.obj["uncertified"].([]any)[0]) != 3 || field(t, r.obj, "per_batch").([]any)[1].(map[string]any)["uncertified"] != true {
		t.Fatalf("replay with batch 3 uncertified = %s, want it listed", r.raw)
	}
	r = omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--replay-seed", "5", "--cert-log", p("certs3"))
	if r.code != exitReplay || field(t, r.obj, "incident.field_name") != "certificate" || num(t, field(t, r.obj, "incident.divergence_batch_id")) != 3 {
		t.Fatalf("replay with batch 3 uncertified, without --uncertified-suffix = %s", r.raw)
	}
	if r := omegaCmd(t, "replay", "--log-suffix", p("ev.omega"), "--expected_hash_hex", final, "--uncertified-suffix"); r.code != exitOther {
		t.Errorf("replay --uncertified-suffix without --cert-log = %s, want exit 50", r.raw)
	}
}
