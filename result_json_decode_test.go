package omega

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

var updateResultSeeds = flag.Bool("update-result-json-seeds", false, "rewrite the FuzzDecodeOutputJSON seed corpus")

// resultVectors names the spec vectors that are results, one of each kind.
var resultVectors = []string{
	"merge_genesis_3_events", "merge_second_batch",
	"obstruction_1001", "obstruction_1001_prior_head", "obstruction_1003",
	"obstruction_2001", "obstruction_2002", "obstruction_3001",
}

// outputView returns the JSON view of r under the default binding.
func outputView(r *Result) []byte {
	return Output{Result: r, Binding: DefaultBinding()}.AppendJSON(nil)
}

// certifyBoth certifies two outputs with the same inputs and fails the test
// unless the certificates are identical.
func certifyBoth(t rapid.TB, want, got Output, meta BatchMeta, prev Hash) *Certificate {
	t.Helper()
	key := vectorKey()
	a, err := Certify(want, want.Binding, meta, prev, key)
	if err != nil {
		t.Fatalf("Certify(original) = %v", err)
	}
	b, err := Certify(got, want.Binding, meta, prev, key)
	if err != nil {
		t.Fatalf("Certify(decoded) = %v", err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("Certify(decoded) differs from Certify(original)\n got %x\nwant %x", b.Bytes(), a.Bytes())
	}
	return b
}

// checkDecoded checks what a decoded result holds against the original, as
// Result.UnmarshalJSON documents it.
func checkDecoded(t rapid.TB, want, got *Result) {
	t.Helper()
	if got.Kind != want.Kind || got.PriorStateHash != want.PriorStateHash || got.TraceRoot != want.TraceRoot || got.WitnessHash != want.WitnessHash {
		t.Fatalf("decoded common fields %v %v %v %v, want %v %v %v %v", got.Kind, got.PriorStateHash, got.TraceRoot, got.WitnessHash,
			want.Kind, want.PriorStateHash, want.TraceRoot, want.WitnessHash)
	}
	if want.Kind == KindMerge {
		if got.Obstruction != nil || got.Merge == nil || got.Merge.Next != nil || len(got.Members) != len(want.Members) {
			t.Fatalf("decoded merge: obstruction %v, merge %v, %d members; want no obstruction, Next nil, %d members", got.Obstruction, got.Merge, len(got.Members), len(want.Members))
		}
		w, g := *want.Merge, *got.Merge
		w.Next = nil
		if w != g {
			t.Errorf("decoded merge fields %+v, want %+v", g, w)
		}
		for i, m := range got.Members {
			if m.ID != want.Members[i].ID || !m.Digest.IsZero() {
				t.Errorf("member %d = %v, want id %v with a zero digest", i, m, want.Members[i].ID)
			}
		}
		return
	}
	if got.Merge != nil || got.Members != nil || got.Obstruction == nil {
		t.Fatalf("decoded obstruction: merge %v, members %v", got.Merge, got.Members)
	}
	w, g := want.Obstruction, got.Obstruction
	if g.Predicate != w.Predicate || !g.Event.IsZero() || g.OverlapContextDigest != w.OverlapContextDigest ||
		!equalSlices(g.ConflictSet, w.ConflictSet) || !equalSlices(g.EvidenceDigests, w.EvidenceDigests) || len(g.Evidence) != len(w.Evidence) {
		t.Fatalf("decoded obstruction %+v, want %+v with a zero Event", g, w)
	}
	for i := range g.Evidence {
		if !bytes.Equal(g.Evidence[i].AppendJSON(nil), w.Evidence[i].AppendJSON(nil)) {
			t.Errorf("evidence %d differs", i)
		}
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOutputJSONSpecVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range resultVectors {
		t.Run(name, func(t *testing.T) {
			v := vs[name]
			r := reconcileVector(t, vs, v)
			orig := Output{Result: r, Binding: DefaultBinding()}
			view := orig.AppendJSON(nil)

			got, err := DecodeOutputJSON(view)
			if err != nil {
				t.Fatalf("DecodeOutputJSON(view) = %v", err)
			}
			if again := got.AppendJSON(nil); !bytes.Equal(again, view) {
				t.Fatalf("Marshal(Unmarshal(view)) differs\n got %s\nwant %s", again, view)
			}
			if got.Binding != DefaultBinding() {
				t.Errorf("decoded binding %v, want %v", got.Binding, DefaultBinding())
			}
			checkDecoded(t, r, got.Result)
			certifyBoth(t, orig, got, BatchMeta{BatchID: 7, ReplaySeed: 99, CreatedAtNs: 1700000000000000000}, Hash{1})

			// The vector's own JSON, indented and written by another
			// program, decodes to the same result.
			var fromVector Result
			if err := fromVector.UnmarshalJSON(v.Outputs["result"]); err != nil {
				t.Fatalf("Result.UnmarshalJSON(vector result) = %v", err)
			}
			if got, _ := fromVector.MarshalJSON(); string(got) != compactJSON(t, v.Outputs["result"]) {
				t.Errorf("vector result re-marshalled\n got %s\nwant %s", got, compactJSON(t, v.Outputs["result"]))
			}
		})
	}
}

// The certificate vectors, certified from outputs decoded from their JSON
// views, give the vectors' envelopes.
func TestOutputJSONCertVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range []string{"cert_merge_batch1", "cert_obstruction_1001_batch2"} {
		t.Run(name, func(t *testing.T) {
			v := vs[name]
			var resName string
			if err := json.Unmarshal(v.Inputs["result"], &resName); err != nil {
				t.Fatal(err)
			}
			out, err := DecodeOutputJSON(outputView(reconcileVector(t, vs, vs[resName])))
			if err != nil {
				t.Fatal(err)
			}
			prev, err := ParseHash(v.str(t, v.Inputs, "prev_cert_hash"))
			if err != nil {
				t.Fatal(err)
			}
			meta := BatchMeta{BatchID: v.u64(t, "batch_id"), ReplaySeed: v.u64(t, "replay_seed"), CreatedAtNs: v.u64(t, "created_at_ns")}
			c, err := Certify(out, DefaultBinding(), meta, prev, vectorKey())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := hex.EncodeToString(c.Bytes()), v.str(t, v.Outputs, "envelope_hex"); got != want {
				t.Errorf("envelope\n got %s\nwant %s", got, want)
			}
		})
	}
}

// rjDomain is a domain predicate for the random round trip: an event of
// kind 7 violates it.
type rjDomain struct{}

func (rjDomain) Entry() predicates.Entry {
	return predicates.Entry{ID: 4001, Name: "kind_not_7", Arity: 1, SemanticsRef: "test://kind_not_7/v1"}
}

func (rjDomain) Violated(e *Event, _ *State) bool { return e.Kind == 7 }

// rjBatch draws a batch small enough to hit every predicate often: ids,
// nodes, streams and lamports from small ranges, some dependencies on
// missing or prior ids, some wrong payload hashes. With clean set, the
// batch merges from genesis, unless a domain predicate objects to its kind
// 7: distinct ids from base, one stream per node, increasing lamports,
// dependencies on earlier events only.
func rjBatch(t *rapid.T, label string, clean bool, base uint64) []Event {
	n := rapid.IntRange(0, 8).Draw(t, label+" size")
	events := make([]Event, n)
	for i := range events {
		payload := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, label+" payload")
		e := Event{
			ID:          ID64(rapid.Uint64Range(1, 10).Draw(t, label+" id")),
			NodeID:      rapid.Uint32Range(0, 2).Draw(t, label+" node"),
			StreamID:    uint16(rapid.IntRange(0, 1).Draw(t, label+" stream")),
			Lamport:     rapid.Uint64Range(0, 6).Draw(t, label+" lamport"),
			MonoTSNs:    rapid.Uint64Range(0, 3).Draw(t, label+" mono"),
			Kind:        uint16(rapid.IntRange(0, 7).Draw(t, label+" kind")),
			Deps:        rapid.SliceOfN(rapid.Map(rapid.Uint64Range(0, 12), ID64), 0, 2).Draw(t, label+" deps"),
			Payload:     payload,
			PayloadHash: PayloadHash(payload),
		}
		if clean {
			e.ID, e.NodeID, e.StreamID, e.Lamport = ID64(base+uint64(i)), uint32(i%3), 0, uint64(i+1)
			e.Kind = rapid.SampledFrom([]uint16{0, 0, 0, 7}).Draw(t, label+" clean kind")
			e.Deps = nil
			if i > 0 && rapid.Bool().Draw(t, label+" dep") {
				e.Deps = []EventID{ID64(base + uint64(rapid.IntRange(0, i-1).Draw(t, label+" dep on")))}
			}
		} else if rapid.IntRange(0, 9).Draw(t, label+" bad hash") == 0 {
			e.PayloadHash[0] ^= 1
		}
		events[i] = e
	}
	// Redeliver some events, and a second content for an id (3001).
	if n > 0 && !clean && rapid.Bool().Draw(t, label+" copy") {
		c := cloneEvent(&events[rapid.IntRange(0, n-1).Draw(t, label+" copy of")])
		if rapid.Bool().Draw(t, label+" change copy") {
			c.MonoTSNs++
		}
		events = append(events, c)
	}
	return events
}

// TestOutputJSONRandom round-trips the outputs of random batches, merges
// and obstructions of every predicate, domain ones included: the view
// decodes, re-marshals to the same bytes, and certifies to the same
// certificate as the output the checker returned.
func TestOutputJSONRandom(t *testing.T) {
	plain, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	domain, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{rjDomain{}}})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{"merge", "1001", "1002", "1003", "2001", "2002", "3001", "4001"}
	seen := map[string]bool{}
	prop := func(t *rapid.T) {
		c := plain
		if rapid.Bool().Draw(t, "domain") {
			c = domain
		}
		prior := &State{}
		var history []Event
		if rapid.Bool().Draw(t, "history") {
			history = rjBatch(t, "history", true, 5)
			out, err := c.Reconcile(prior, history)
			if err != nil {
				t.Fatal(err)
			}
			if out.Result.Kind == KindMerge {
				prior = out.Result.Merge.Next
			}
		}
		var batch []Event
		switch mode := rapid.IntRange(0, 4).Draw(t, "mode"); {
		case mode == 0 && prior.MergedStateHash() != Hash{} && len(history) > 0:
			// An accepted event sent again: a 1002.
			batch = []Event{cloneEvent(&history[rapid.IntRange(0, len(history)-1).Draw(t, "resend")])}
		case mode <= 2:
			batch = rjBatch(t, "batch", true, 1)
		default:
			batch = rjBatch(t, "batch", false, 1)
		}
		orig, err := c.Reconcile(prior, batch)
		if err != nil {
			t.Fatal(err)
		}
		if orig.Result.Kind == KindMerge {
			seen["merge"] = true
		} else {
			seen[strconv.Itoa(int(orig.Result.Obstruction.Predicate))] = true
		}
		view := orig.AppendJSON(nil)
		got, err := DecodeOutputJSON(view)
		if err != nil {
			t.Fatalf("DecodeOutputJSON(%s) = %v", view, err)
		}
		if again := got.AppendJSON(nil); !bytes.Equal(again, view) {
			t.Fatalf("Marshal(Unmarshal(view)) differs\n got %s\nwant %s", again, view)
		}
		if got.Binding != c.Binding() {
			t.Fatalf("decoded binding %v, want %v", got.Binding, c.Binding())
		}
		checkDecoded(t, orig.Result, got.Result)
		certifyBoth(t, orig, got, BatchMeta{BatchID: 3, ReplaySeed: 4, CreatedAtNs: 5}, Hash{})
	}
	// The generator reaches every kind, some only in a few percent of
	// cases: draw more rounds until each has been seen, so that the
	// property is known to have been checked on all of them.
	for round := 0; round < 20 && len(seen) < len(kinds) && !t.Failed(); round++ {
		rapid.Check(t, prop)
	}
	for _, k := range kinds {
		if !seen[k] && !t.Failed() {
			t.Errorf("no random batch gave %s in 20 rounds: the generator misses a kind", k)
		}
	}
}

// TestOutputJSONEncodingJSON decodes the views through encoding/json, as a
// caller's struct holding a result and a binding does.
func TestOutputJSONEncodingJSON(t *testing.T) {
	vs := loadSpecVectors(t)
	r := reconcileVector(t, vs, vs["obstruction_3001"])
	view := outputView(r)
	var indented bytes.Buffer
	if err := json.Indent(&indented, view, "", "\t"); err != nil {
		t.Fatal(err)
	}
	var file struct {
		BatchID uint64  `json:"batch_id"`
		Result  *Result `json:"result"`
		Binding Binding `json:"binding"`
	}
	in := append([]byte(`{"batch_id":4,`), bytes.TrimPrefix(indented.Bytes(), []byte("{"))...)
	if err := json.Unmarshal(in, &file); err != nil {
		t.Fatalf("json.Unmarshal = %v", err)
	}
	if file.BatchID != 4 || file.Binding != DefaultBinding() || file.Result == nil {
		t.Fatalf("json.Unmarshal gave %+v", file)
	}
	if got := (Output{Result: file.Result, Binding: file.Binding}).AppendJSON(nil); !bytes.Equal(got, view) {
		t.Errorf("re-marshalled\n got %s\nwant %s", got, view)
	}
	var out Output
	if err := json.Unmarshal(indented.Bytes(), &out); err != nil {
		t.Fatalf("json.Unmarshal into Output = %v", err)
	}
	if got, err := json.Marshal(out); err != nil || !bytes.Equal(got, view) {
		t.Errorf("json.Marshal(decoded Output) = %s, %v, want %s", got, err, view)
	}
	bad := bytes.Replace(indented.Bytes(), []byte(`"kind": "obstruction"`), []byte(`"kind": "obstruction", "extra": 1`), 1)
	if err := json.Unmarshal(bad, &out); !errors.Is(err, ErrMalformedResult) {
		t.Errorf("json.Unmarshal(view with an extra field) = %v, want ErrMalformedResult", err)
	}
}

// rjViews returns the views the refusal table tampers with: a merge, an
// obstruction with two evidence events, and an empty merge.
func rjViews(t testing.TB) (merge, obstruction, empty string) {
	vs := loadSpecVectors(t)
	rOut, err := Reconcile(nil, nil)
	r := rOut.Result
	if err != nil {
		t.Fatal(err)
	}
	return string(outputView(reconcileVector(t, vs, vs["merge_genesis_3_events"]))),
		string(outputView(reconcileVector(t, vs, vs["obstruction_1001"]))),
		string(outputView(r))
}

func TestOutputJSONRefusals(t *testing.T) {
	merge, obstruction, empty := rjViews(t)
	// member returns "name":value as the view writes it, for a field of the
	// result or the binding.
	member := func(view, name string) string {
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(view), &top); err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{"result", "binding"} {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(top[part], &obj); err != nil {
				t.Fatal(err)
			}
			if raw, ok := obj[name]; ok {
				return `"` + name + `":` + string(raw)
			}
		}
		t.Fatalf("no field %s", name)
		return ""
	}
	set := func(view, name, value string) string {
		old := member(view, name)
		if strings.Count(view, old) != 1 {
			t.Fatalf("%s occurs %d times", old, strings.Count(view, old))
		}
		return strings.Replace(view, old, `"`+name+`":`+value, 1)
	}
	hashOf := func(b byte) string { return `"` + strings.Repeat(hex.EncodeToString([]byte{b}), 32) + `"` }
	quote := func(h Hash) string { return `"` + h.String() + `"` }
	var ev []json.RawMessage
	{
		var top struct {
			Result struct {
				Evidence []json.RawMessage `json:"evidence"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(obstruction), &top); err != nil {
			t.Fatal(err)
		}
		ev = top.Result.Evidence
	}
	evDigests := strings.TrimPrefix(member(obstruction, "evidence_digests"), `"evidence_digests":`)
	var ds []string
	if err := json.Unmarshal([]byte(evDigests), &ds); err != nil {
		t.Fatal(err)
	}
	// An obstruction of 1001 over the same evidence in the other order,
	// every digest recomputed: only the canonical order is wrong.
	swapped := set(set(obstruction, "evidence", "["+string(ev[1])+","+string(ev[0])+"]"),
		"evidence_digests", `["`+ds[1]+`","`+ds[0]+`"]`)
	{
		d0, _ := ParseHash(ds[0])
		d1, _ := ParseHash(ds[1])
		w := obstructionWitness(predicates.LamportMonotonic, []EventID{ID64(30), ID64(31)}, []Hash{d1, d0})
		swapped = set(swapped, "witness_hash", quote(w))
	}
	// A merge whose accepted ids repeat one, every digest recomputed.
	dupIDs := set(merge, "accepted_event_ids", "[1,1,2]")
	{
		var m struct {
			Result struct {
				Batch Hash `json:"batch_digest"`
				Prior Hash `json:"prior_state_hash"`
				Trace Hash `json:"trace_root"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(merge), &m); err != nil {
			t.Fatal(err)
		}
		ids := Hash(digest.Of(digest.IDs, idsBytes([]EventID{ID64(1), ID64(1), ID64(2)})))
		merged := Hash(digest.Of(digest.State, m.Result.Prior[:], m.Result.Batch[:]))
		dupIDs = set(dupIDs, "accepted_ids_digest", quote(ids))
		dupIDs = set(dupIDs, "witness_hash", quote(Hash(digest.Of(digest.MergeWitness, merged[:], ids[:], m.Result.Trace[:]))))
	}

	tests := []struct {
		name, view, field string
	}{
		{"empty input", ``, "checker output"},
		{"null", `null`, "checker output"},
		{"array", `[]`, "checker output"},
		{"trailing data", merge + `{}`, "checker output"},
		{"truncated", merge[:len(merge)-1], "checker output"},
		{"result null", strings.Replace(merge, merge[len(`{"result":`):strings.Index(merge, `,"binding"`)], `null`, 1), "result"},
		{"unknown top field", strings.Replace(merge, `{"result"`, `{"extra":1,"result"`, 1), "extra"},
		{"repeated top field", strings.Replace(merge, `,"binding":`, `,"result":{},"binding":`, 1), "result"},
		{"missing binding", merge[:strings.Index(merge, `,"binding"`)] + "}", "binding"},

		{"unknown result field", strings.Replace(merge, `{"kind":"merge"`, `{"kind":"merge","extra":1`, 1), "extra"},
		{"repeated result field", strings.Replace(merge, `{"kind":"merge"`, `{"kind":"merge","kind":"merge"`, 1), "kind"},
		{"missing result field", strings.Replace(merge, ","+member(merge, "heads_digest"), "", 1), "heads_digest"},
		{"kind capitalised", set(merge, "kind", `"Merge"`), "kind"},
		{"kind a number", set(merge, "kind", `1`), "kind"},
		{"kind of the other fields", set(merge, "kind", `"obstruction"`), "result"},
		{"uppercase hex", set(merge, "frontier_digest", strings.ToUpper(hashOf(0xab))), "frontier_digest"},
		{"short hash", set(merge, "trace_root", `"00"`), "trace_root"},
		{"hash as bytes", set(merge, "heads_digest", `[0,1]`), "heads_digest"},
		{"accepted_count off", set(merge, "accepted_count", `4`), "accepted_count"},
		{"accepted_count quoted", set(merge, "accepted_count", `"3"`), "accepted_count"},
		{"accepted_count negative", set(merge, "accepted_count", `-3`), "accepted_count"},
		{"accepted_count fraction", set(merge, "accepted_count", `3.0`), "accepted_count"},
		{"accepted_count exponent", set(merge, "accepted_count", `3e0`), "accepted_count"},
		{"accepted_count leading zero", set(merge, "accepted_count", `03`), "result"}, // not JSON
		{"accepted_count over the batch limit", set(set(merge, "accepted_count", `1048577`), "accepted_event_ids", `[]`), "accepted_count"},
		{"accepted id quoted", set(merge, "accepted_event_ids", `["1",2,3]`), "accepted_event_ids"},
		{"accepted id over u128", set(merge, "accepted_event_ids", `[340282366920938463463374607431768211456,2,3]`), "accepted_event_ids"},
		{"accepted id repeated", dupIDs, "accepted_event_ids"},
		{"accepted ids reordered", set(merge, "accepted_event_ids", `[2,1,3]`), "accepted_ids_digest"},
		{"accepted_ids_digest", set(merge, "accepted_ids_digest", hashOf(1)), "accepted_ids_digest"},
		{"batch_digest", set(merge, "batch_digest", hashOf(1)), "merged_state_hash"},
		{"prior_state_hash", set(merge, "prior_state_hash", hashOf(1)), "merged_state_hash"},
		{"merged_state_hash", set(merge, "merged_state_hash", hashOf(1)), "merged_state_hash"},
		{"trace_root", set(merge, "trace_root", hashOf(1)), "witness_hash"},
		{"witness_hash", set(merge, "witness_hash", hashOf(1)), "witness_hash"},
		{"empty merge batch_digest", set(empty, "batch_digest", hashOf(1)), "batch_digest"},
		{"empty merge heads_digest", set(empty, "heads_digest", hashOf(1)), "heads_digest"},
		{"empty merge trace_root", set(empty, "trace_root", hashOf(1)), "trace_root"},

		{"predicate unknown", set(obstruction, "violated_predicate_id", `1004`), "violated_predicate_id"},
		{"predicate past the domain range", set(obstruction, "violated_predicate_id", `5000`), "violated_predicate_id"},
		{"predicate over u32", set(obstruction, "violated_predicate_id", `4294967296`), "violated_predicate_id"},
		{"predicate changed", set(obstruction, "violated_predicate_id", `1003`), "witness_hash"},
		{"conflict set empty", set(obstruction, "conflict_set", `[]`), "conflict_set"},
		{"conflict set of three", set(obstruction, "conflict_set", `[29,30,31]`), "conflict_set"},
		{"conflict set unsorted", set(obstruction, "conflict_set", `[31,30]`), "conflict_set"},
		{"conflict set repeated", set(obstruction, "conflict_set", `[30,30]`), "conflict_set"},
		{"conflict set id quoted", set(obstruction, "conflict_set", `["30",31]`), "conflict_set"},
		{"conflict set changed", set(obstruction, "conflict_set", `[30,32]`), "overlap_context_digest"},
		{"overlap_context_digest", set(obstruction, "overlap_context_digest", hashOf(1)), "overlap_context_digest"},
		{"evidence not an array", set(obstruction, "evidence", string(ev[0])), "evidence"},
		{"evidence null", set(obstruction, "evidence", `null`), "evidence"},
		{"evidence event malformed", strings.Replace(obstruction, `"lamport":5,`, `"lamport":5.5,`, 1), "lamport"},
		{"evidence event changed", strings.Replace(obstruction, `"mono_ts_ns":5000`, `"mono_ts_ns":5002`, 1), "evidence_digests"},
		{"evidence digest missing", set(obstruction, "evidence_digests", `["`+ds[0]+`"]`), "evidence_digests"},
		{"evidence digests empty", set(set(obstruction, "evidence_digests", `[]`), "evidence", `[]`), "evidence_digests"},
		{"evidence digest uppercase", set(obstruction, "evidence_digests", `["`+strings.ToUpper(ds[0])+`","`+ds[1]+`"]`), "evidence_digests"},
		{"evidence out of canonical order", swapped, "evidence"},
		{"obstruction witness_hash", set(obstruction, "witness_hash", hashOf(1)), "witness_hash"},
		{"obstruction trace_root where a merge's fields are", set(obstruction, "kind", `"merge"`), "result"},

		{"binding_digest", set(merge, "binding_digest", hashOf(1)), "binding_digest"},
		{"schema_version changed", set(merge, "schema_version", `2`), "binding_digest"},
		{"catalog_hash changed", set(merge, "catalog_hash", hashOf(1)), "binding_digest"},
		{"checker_version of two", set(merge, "checker_version", `[1,0]`), "checker_version"},
		{"checker_version over u16", set(merge, "checker_version", `[65536,0,0]`), "checker_version"},
		{"binding unknown field", strings.Replace(merge, `{"checker_version"`, `{"extra":0,"checker_version"`, 1), "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.view == merge || tt.view == obstruction || tt.view == empty {
				t.Fatal("test case left the view unchanged")
			}
			out, err := DecodeOutputJSON([]byte(tt.view))
			if err == nil || out.Result != nil || !errors.Is(err, ErrMalformedResult) {
				t.Fatalf("DecodeOutputJSON = %+v, %v, want ErrMalformedResult", out, err)
			}
			if errors.Is(err, ErrMalformedCertificate) {
				t.Errorf("error %v wraps ErrMalformedCertificate", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "omega: malformed result: ") || !strings.Contains(msg, tt.field) {
				t.Errorf("error %q does not start with omega: malformed result or does not name %s", msg, tt.field)
			}
			keep := Output{Binding: Binding{SchemaVersion: 9}}
			into := keep
			if err := into.UnmarshalJSON([]byte(tt.view)); err == nil || into != keep {
				t.Errorf("Output.UnmarshalJSON = %v, left %+v, want an error and the output unchanged", err, into)
			}
		})
	}

	// A bad evidence event is also an *EventError naming its position.
	_, err := DecodeOutputJSON([]byte(strings.Replace(obstruction, `"mono_ts_ns":5001`, `"mono_ts_ns":-1`, 1)))
	var ee *EventError
	if !errors.As(err, &ee) || ee.Index != 1 || ee.Field != "mono_ts_ns" || !errors.Is(err, ErrMalformedResult) {
		t.Errorf("bad evidence event 1: %v, want an *EventError at index 1, field mono_ts_ns, wrapping ErrMalformedResult", err)
	}

	// A result view damaged after its kind is refused for the damage, not
	// for holding the other kind's fields.
	for _, view := range []string{merge, obstruction} {
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(view), &top); err != nil {
			t.Fatal(err)
		}
		res := string(top["result"])
		for _, tc := range []struct{ damaged, want string }{
			{res[:len(res)-1], "object not closed"},
			{res + " x", "data after the object"},
		} {
			var r Result
			err := r.UnmarshalJSON([]byte(tc.damaged))
			if !errors.Is(err, ErrMalformedResult) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Result.UnmarshalJSON(%.20s...%s) = %v, want ErrMalformedResult saying %s", tc.damaged, tc.damaged[len(tc.damaged)-5:], err, tc.want)
			}
		}
	}
}

// What the view cannot recompute is taken as written: a non-empty merge's
// frontier and heads digests, and an obstruction's trace root. The binding
// of another checker decodes too: refusing it is Certify's work.
func TestOutputJSONTakenAsWritten(t *testing.T) {
	merge, obstruction, _ := rjViews(t)
	other := DefaultBinding()
	other.CatalogHash = Hash{7}
	for _, view := range []string{
		replaceHash(merge, "frontier_digest"),
		replaceHash(merge, "heads_digest"),
		replaceHash(obstruction, "trace_root"),
		strings.Replace(merge, string(DefaultBinding().AppendJSON(nil)), string(other.AppendJSON(nil)), 1),
	} {
		out, err := DecodeOutputJSON([]byte(view))
		if err != nil {
			t.Errorf("DecodeOutputJSON = %v, want the field taken as written", err)
			continue
		}
		if got := out.AppendJSON(nil); string(got) != view {
			t.Errorf("re-marshalled\n got %s\nwant %s", got, view)
		}
	}
}

// replaceHash sets the first hash field called name in view to 32 bytes of
// 0x5a.
func replaceHash(view, name string) string {
	at := strings.Index(view, `"`+name+`":"`) + len(name) + 4
	return view[:at] + strings.Repeat("5a", 32) + view[at+64:]
}

// rjSeeds are the inputs of the FuzzDecodeOutputJSON seed corpus, named
// valid_* or invalid_* after what decoding must do with them.
func rjSeeds(t testing.TB) map[string][]byte {
	vs := loadSpecVectors(t)
	merge, obstruction, empty := rjViews(t)
	seeds := map[string][]byte{
		"valid_merge":                []byte(merge),
		"valid_empty_merge":          []byte(empty),
		"valid_obstruction_1001":     []byte(obstruction),
		"invalid_merge_witness":      []byte(replaceHash(merge, "witness_hash")),
		"invalid_obstruction_digest": []byte(replaceHash(obstruction, "overlap_context_digest")),
		"invalid_binding_digest":     []byte(replaceHash(merge, "binding_digest")),
		"invalid_trailing":           []byte(merge + " {}"),
		"invalid_repeated_field":     []byte(strings.Replace(merge, `{"kind":"merge"`, `{"kind":"merge","kind":"merge"`, 1)),
		"invalid_unknown_field":      []byte(strings.Replace(obstruction, `{"kind":"obstruction"`, `{"kind":"obstruction","event":30`, 1)),
		"invalid_result_null":        []byte(`{"result":null,"binding":` + string(DefaultBinding().AppendJSON(nil)) + `}`),
	}
	for _, name := range []string{"obstruction_1003", "obstruction_2001", "obstruction_2002", "obstruction_3001", "obstruction_1001_prior_head", "merge_second_batch"} {
		seeds["valid_"+name] = outputView(reconcileVector(t, vs, vs[name]))
	}
	// The evidence in the original system's forms: ids as strings, hashes
	// and payloads as byte arrays.
	r := reconcileVector(t, vs, vs["obstruction_2001"])
	e := &r.Obstruction.Evidence[0]
	canonical := string(e.AppendJSON(nil))
	var hashBytes, payloadBytes []string
	for _, c := range e.PayloadHash {
		hashBytes = append(hashBytes, strconv.Itoa(int(c)))
	}
	for _, c := range e.Payload {
		payloadBytes = append(payloadBytes, strconv.Itoa(int(c)))
	}
	original := fmt.Sprintf(`{"event_id":"%v","node_id":%d,"stream_id":%d,"lamport":%d,"mono_ts_ns":%d,"event_kind":%d,"flags":%d,"payload_hash":[%s],"deps":[],"payload":[%s]}`,
		e.ID, e.NodeID, e.StreamID, e.Lamport, e.MonoTSNs, e.Kind, e.Flags, strings.Join(hashBytes, ","), strings.Join(payloadBytes, ","))
	if len(e.Deps) != 0 {
		t.Fatalf("obstruction_2001's evidence has deps; the original-form seed assumes none")
	}
	seeds["valid_evidence_original_form"] = []byte(strings.Replace(string(outputView(r)), canonical, original, 1))
	return seeds
}

// TestDecodeOutputJSONSeeds checks that the committed seed corpus is the
// one rjSeeds makes, and that each seed decodes or fails as its name says.
// Regenerate the corpus with
//
//	go test -run TestDecodeOutputJSONSeeds -update-result-json-seeds .
func TestDecodeOutputJSONSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeOutputJSON")
	seeds := rjSeeds(t)
	if *updateResultSeeds {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(seeds) {
		t.Errorf("%s holds %d files, want the %d seeds", dir, len(ents), len(seeds))
	}
	for _, ent := range ents {
		text, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lit, ok := strings.CutPrefix(string(text), "go test fuzz v1\n[]byte(")
		lit, ok2 := strings.CutSuffix(lit, ")\n")
		data, err := strconv.Unquote(lit)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a go test fuzz v1 []byte file", ent.Name())
		}
		if want, ok := seeds[ent.Name()]; !ok || !bytes.Equal([]byte(data), want) {
			t.Errorf("%s is not the seed rjSeeds makes: regenerate the corpus", ent.Name())
		}
		_, err = DecodeOutputJSON([]byte(data))
		if wantErr := strings.HasPrefix(ent.Name(), "invalid_"); (err != nil) != wantErr {
			t.Errorf("%s: DecodeOutputJSON = %v, want error %v", ent.Name(), err, wantErr)
		}
	}
}

// FuzzDecodeOutputJSON checks that decoding never panics, that every
// refusal wraps ErrMalformedResult, and that an accepted view stands for one
// output: its re-marshalled view decodes again to the same bytes, and it
// certifies into a certificate that Verify accepts, since every digest
// Verify recomputes was recomputed by the decoder.
func FuzzDecodeOutputJSON(f *testing.F) {
	merge, obstruction, _ := rjViews(f)
	f.Add([]byte(merge))
	f.Add([]byte(obstruction))
	key := vectorKey()
	ring := vectorRing()
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := DecodeOutputJSON(b)
		if err != nil {
			if out.Result != nil || !errors.Is(err, ErrMalformedResult) || !strings.HasPrefix(err.Error(), "omega: malformed result: ") {
				t.Fatalf("DecodeOutputJSON = %+v, %v, want a zero output and ErrMalformedResult", out, err)
			}
			return
		}
		view := out.AppendJSON(nil)
		again, err := DecodeOutputJSON(view)
		if err != nil {
			t.Fatalf("re-reading the view of an accepted output: %v\n%s", err, view)
		}
		if v2 := again.AppendJSON(nil); !bytes.Equal(v2, view) {
			t.Fatalf("view not stable:\n%s\n%s", view, v2)
		}
		c, err := Certify(out, out.Binding, BatchMeta{BatchID: 1}, Hash{}, key)
		if err != nil {
			t.Fatalf("Certify(accepted output) = %v", err)
		}
		if _, err := Verify(c.Bytes(), ring, out.Binding); err != nil {
			t.Fatalf("Verify(certificate of an accepted output) = %v", err)
		}
	})
}

func ExampleDecodeOutputJSON() {
	payload := []byte("hello")
	c, err := NewChecker(nil)
	if err != nil {
		panic(err)
	}
	out, err := c.Reconcile(&State{}, []Event{{
		ID: ID64(1), NodeID: 7, Lamport: 1, PayloadHash: PayloadHash(payload), Payload: payload,
	}})
	if err != nil {
		panic(err)
	}
	view := out.AppendJSON(nil) // as a file stores it

	back, err := DecodeOutputJSON(view)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Result.Kind, back.Result.AcceptedIDs(), back.Binding == c.Binding())

	// A view whose digests do not follow from its fields is refused.
	edited := bytes.Replace(view, []byte(`"accepted_event_ids":[1]`), []byte(`"accepted_event_ids":[2]`), 1)
	_, err = DecodeOutputJSON(edited)
	fmt.Println(errors.Is(err, ErrMalformedResult))
	// Output:
	// merge [1] true
	// true
}
