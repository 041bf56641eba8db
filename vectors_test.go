package omega

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/merkle"
	"github.com/omega-sheaf/omega/predicates"
)

// testdata/spec_vectors.json is a verbatim copy of the normative vectors
// that accompany SPEC.md. Refresh it with
//
//	cp ../shared/vectors.json testdata/spec_vectors.json
//
// and every test below must still pass: the vectors are the contract other
// implementations check omega against.
const specVectorsPath = "testdata/spec_vectors.json"

type specVector struct {
	Name    string                     `json:"name"`
	Spec    string                     `json:"spec"`
	Inputs  map[string]json.RawMessage `json:"inputs"`
	Outputs map[string]json.RawMessage `json:"outputs"`
}

func loadSpecVectors(t testing.TB) map[string]specVector {
	t.Helper()
	raw, err := os.ReadFile(specVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []specVector `json:"vectors"`
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&file); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]specVector, len(file.Vectors))
	for _, v := range file.Vectors {
		out[v.Name] = v
	}
	return out
}

func (v specVector) str(t testing.TB, m map[string]json.RawMessage, key string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(m[key], &s); err != nil {
		t.Fatalf("%s: %s: %v", v.Name, key, err)
	}
	return s
}

func (v specVector) hexBytes(t testing.TB, m map[string]json.RawMessage, key string) []byte {
	t.Helper()
	b, err := hex.DecodeString(v.str(t, m, key))
	if err != nil {
		t.Fatalf("%s: %s: %v", v.Name, key, err)
	}
	return b
}

func compactJSON(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSpecDigestVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range []string{"D_event_empty", "D_ids_16_zero_bytes", "D_trace_node_00_to_3f"} {
		v := vs[name]
		purpose := v.str(t, v.Inputs, "purpose")
		if got, want := digest.Context(purpose), v.str(t, v.Inputs, "context_string"); got != want {
			t.Errorf("%s: Context(%q) = %q, want %q", name, purpose, got, want)
		}
		got := Hash(digest.Of(purpose, v.hexBytes(t, v.Inputs, "input_hex")))
		if want := v.str(t, v.Outputs, "digest"); got.String() != want {
			t.Errorf("%s: D = %v, want %s", name, got, want)
		}
	}
	v := vs["blake3_plain_empty"]
	if got, want := Hash(digest.Plain(nil)).String(), v.str(t, v.Outputs, "digest"); got != want {
		t.Errorf("BLAKE3-256(\"\") = %s, want %s", got, want)
	}
}

func TestSpecTraceRootVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range []string{"trace_root_0_leaves", "trace_root_1_leaves", "trace_root_2_leaves", "trace_root_3_leaves", "trace_root_5_leaves"} {
		v := vs[name]
		var hexLeaves []string
		if err := json.Unmarshal(v.Inputs["leaves"], &hexLeaves); err != nil {
			t.Fatal(err)
		}
		leaves := make([]Hash, len(hexLeaves))
		for i, s := range hexLeaves {
			leaves[i] = mustHash(t, s)
		}
		got := merkle.Root(merkle.NewHasher(), leaves, nil)
		if want := v.str(t, v.Outputs, "trace_root"); got.String() != want {
			t.Errorf("%s: trace root = %v, want %s", name, got, want)
		}
	}
}

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatalf("ParseHash(%q): %v", s, err)
	}
	return h
}

func TestSpecEventVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range []string{"event_basic", "event_u128"} {
		v := vs[name]
		evs, err := DecodeEventsJSON([]byte("["+compactJSON(t, v.Outputs["json"])+"]"), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		e := evs[0]
		if got, want := hex.EncodeToString(e.Payload), v.str(t, v.Inputs, "payload_hex"); got != want {
			t.Errorf("%s: payload = %s, want %s", name, got, want)
		}
		if got, want := Hash(digest.Plain(e.Payload)).String(), v.str(t, v.Outputs, "payload_hash"); got != want {
			t.Errorf("%s: payload hash = %s, want %s", name, got, want)
		}
		enc, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hex.EncodeToString(enc), v.str(t, v.Outputs, "canonical_encoding_hex"); got != want {
			t.Errorf("%s: encoding = %s, want %s", name, got, want)
		}
		if got, want := e.Digest().String(), v.str(t, v.Outputs, "event_digest"); got != want {
			t.Errorf("%s: digest = %s, want %s", name, got, want)
		}
		back, err := DecodeEvent(enc, Limits{})
		if err != nil {
			t.Fatalf("%s: DecodeEvent: %v", name, err)
		}
		if !bytes.Equal(mustMarshal(t, &back), enc) {
			t.Errorf("%s: decode then encode changed the bytes", name)
		}
	}
}

func mustMarshal(t testing.TB, e *Event) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpecBindingVector(t *testing.T) {
	v := loadSpecVectors(t)["binding"]
	if got, want := SchemaDescriptor, v.str(t, v.Inputs, "schema_descriptor"); got != want {
		t.Errorf("SchemaDescriptor = %q, want %q", got, want)
	}
	b := DefaultBinding()
	if got, want := b.SchemaHash.String(), v.str(t, v.Outputs, "schema_hash"); got != want {
		t.Errorf("SchemaHash = %s, want %s", got, want)
	}
	if got, want := b.SchemaHash.String(), "8286e473832e02f763eea8052e57cef90bb33a65be430e47c187e8afeb6faadb"; got != want {
		t.Errorf("SchemaHash = %s, want SPEC 4's %s", got, want)
	}
	if got, want := hex.EncodeToString(predicates.Default().AppendBinary(nil)), v.str(t, v.Outputs, "catalog_bytes_hex"); got != want {
		t.Errorf("catalog bytes = %s, want %s", got, want)
	}
	if got, want := b.CatalogHash.String(), "190ddf6dc268a1cea3bd1d6117382164fdcf896ba551dc2117860ea18c9f02f7"; got != want {
		t.Errorf("CatalogHash = %s, want SPEC 4's %s", got, want)
	}
	enc, _ := b.AppendBinary(nil)
	if got, want := hex.EncodeToString(enc), v.str(t, v.Outputs, "binding_digest_input_hex"); got != want {
		t.Errorf("binding encoding = %s, want %s", got, want)
	}
	if got, want := b.Digest().String(), v.str(t, v.Outputs, "binding_digest"); got != want {
		t.Errorf("binding digest = %s, want %s", got, want)
	}
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Binding() != b {
		t.Errorf("NewChecker(nil).Binding() = %v, want %v", c.Binding(), b)
	}
}

// vectorState resolves a vector's prior_state: genesis, or the next_state
// of the vector it names (which this test reconciles first).
func vectorState(t testing.TB, vs map[string]specVector, v specVector) *State {
	t.Helper()
	var ref string
	if err := json.Unmarshal(v.Inputs["prior_state"], &ref); err != nil {
		t.Fatalf("%s: prior_state: %v", v.Name, err)
	}
	if len(ref) >= 7 && ref[:7] == "genesis" {
		return &State{}
	}
	const suffix = ".outputs.next_state"
	if len(ref) <= len(suffix) || ref[len(ref)-len(suffix):] != suffix {
		t.Fatalf("%s: unknown prior_state %q", v.Name, ref)
	}
	base := vs[ref[:len(ref)-len(suffix)]]
	r := reconcileVector(t, vs, base)
	if r.Kind != KindMerge {
		t.Fatalf("%s: prior %s is not a merge", v.Name, base.Name)
	}
	return r.Merge.Next
}

func reconcileVector(t testing.TB, vs map[string]specVector, v specVector) *Result {
	t.Helper()
	prior := vectorState(t, vs, v)
	events, err := DecodeEventsJSON(v.Inputs["batch"], Limits{})
	if err != nil {
		t.Fatalf("%s: batch: %v", v.Name, err)
	}
	rOut, err := Reconcile(prior, events)
	r := rOut.Result
	if err != nil {
		t.Fatalf("%s: Reconcile: %v", v.Name, err)
	}
	return r
}

func TestSpecReconcileVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range []string{
		"merge_genesis_3_events", "merge_second_batch",
		"obstruction_1001", "obstruction_1001_prior_head", "obstruction_1003",
		"obstruction_2001", "obstruction_2002", "obstruction_3001",
	} {
		t.Run(name, func(t *testing.T) {
			v := vs[name]
			r := reconcileVector(t, vs, v)
			got, _ := r.MarshalJSON()
			if want := compactJSON(t, v.Outputs["result"]); string(got) != want {
				t.Errorf("result JSON\n got %s\nwant %s", got, want)
			}
			if raw, ok := v.Outputs["canonical_event_digests"]; ok {
				var want []string
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
				if len(want) != len(r.Members) {
					t.Fatalf("%d members, want %d", len(r.Members), len(want))
				}
				for i, m := range r.Members {
					if m.Digest.String() != want[i] {
						t.Errorf("member %d digest = %v, want %s", i, m.Digest, want[i])
					}
				}
			}
			if raw, ok := v.Outputs["offending_event_id"]; ok {
				if r.Obstruction == nil {
					t.Fatal("no obstruction")
				}
				if got := r.Obstruction.Event.String(); got != string(raw) {
					t.Errorf("offending event = %s, want %s", got, raw)
				}
			}
			if raw, ok := v.Outputs["next_state"]; ok {
				checkStateVector(t, r.Merge.Next, raw)
			}
		})
	}
}

func checkStateVector(t *testing.T, s *State, raw json.RawMessage) {
	t.Helper()
	var want struct {
		KnownIDs []struct {
			EventID json.Number `json:"event_id"`
			Lamport uint64      `json:"lamport"`
		} `json:"known_ids"`
		StreamHeads []struct {
			NodeID   uint32      `json:"node_id"`
			StreamID uint16      `json:"stream_id"`
			Lamport  uint64      `json:"lamport"`
			EventID  json.Number `json:"event_id"`
		} `json:"stream_heads"`
		MergedStateHash   string `json:"merged_state_hash"`
		FrontierDigest    string `json:"frontier_digest"`
		StreamHeadsDigest string `json:"stream_heads_digest"`
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&want); err != nil {
		t.Fatal(err)
	}
	if want.KnownIDs != nil {
		got := s.KnownIDs()
		if len(got) != len(want.KnownIDs) {
			t.Fatalf("KnownIDs() has %d ids, want %d", len(got), len(want.KnownIDs))
		}
		for i, k := range want.KnownIDs {
			if got[i].ID.String() != k.EventID.String() || got[i].Lamport != k.Lamport {
				t.Errorf("KnownIDs()[%d] = %v/%d, want %s/%d", i, got[i].ID, got[i].Lamport, k.EventID, k.Lamport)
			}
		}
	}
	heads := s.Heads()
	if len(heads) != len(want.StreamHeads) {
		t.Fatalf("Heads() has %d heads, want %d", len(heads), len(want.StreamHeads))
	}
	for i, h := range want.StreamHeads {
		g := heads[i]
		if g.NodeID != h.NodeID || g.StreamID != h.StreamID || g.Lamport != h.Lamport || g.ID.String() != h.EventID.String() {
			t.Errorf("Heads()[%d] = %+v, want %+v", i, g, h)
		}
	}
	if got := s.MergedStateHash().String(); got != want.MergedStateHash {
		t.Errorf("MergedStateHash() = %s, want %s", got, want.MergedStateHash)
	}
	if got := s.FrontierDigest().String(); got != want.FrontierDigest {
		t.Errorf("FrontierDigest() = %s, want %s", got, want.FrontierDigest)
	}
	if got := s.HeadsDigest().String(); got != want.StreamHeadsDigest {
		t.Errorf("HeadsDigest() = %s, want %s", got, want.StreamHeadsDigest)
	}
}
