package omega

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
)

// testdata/snapshot/*.omega are the files of SPEC's two snapshot vectors,
// for tools that want a snapshot on disk. Regenerate them (only ever from
// the vectors, which are normative) with
//
//	go test -run TestSnapshotGolden -update-snapshot .
var updateSnapshot = flag.Bool("update-snapshot", false, "rewrite testdata/snapshot from the spec vectors")

// snapVectorNames are the spec vectors that pin snapshot files.
var snapVectorNames = []string{"snapshot_after_merge_second_batch", "snapshot_with_pending_event"}

// snapVectorInput is the Snapshot a vector's inputs describe: the State
// after merge_second_batch, the manifest fields, the binding vector's
// binding and, for snapshot_with_pending_event, event_basic pending.
func snapVectorInput(t testing.TB, vs map[string]specVector, name string) *Snapshot {
	t.Helper()
	v := vs["snapshot_after_merge_second_batch"]
	r := reconcileVector(t, vs, vs["merge_second_batch"])
	if r.Kind != KindMerge {
		t.Fatalf("merge_second_batch is a %v", r.Kind)
	}
	num := func(key string) uint64 {
		var n uint64
		if err := json.Unmarshal(v.Inputs[key], &n); err != nil {
			t.Fatalf("%s: %s: %v", v.Name, key, err)
		}
		return n
	}
	if ref := v.str(t, v.Inputs, "binding"); ref != "binding" {
		t.Fatalf("%s: binding %q, want the binding vector", v.Name, ref)
	}
	bv := vs["binding"]
	var cv [3]uint16
	if err := json.Unmarshal(bv.Inputs["checker_version"], &cv); err != nil {
		t.Fatal(err)
	}
	var sv uint16
	if err := json.Unmarshal(bv.Inputs["schema_version"], &sv); err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{
		ID:          num("snapshot_id"),
		CreatedAtNs: num("created_at_ns"),
		BaseOffset:  int64(num("base_checkpoint_offset")),
		LastBatchID: num("last_batch_id"),
		Binding: Binding{
			CheckerVersion: cv,
			SchemaVersion:  sv,
			SchemaHash:     mustHash(t, bv.str(t, bv.Outputs, "schema_hash")),
			CatalogHash:    mustHash(t, bv.str(t, bv.Outputs, "catalog_hash")),
		},
		State: r.Merge.Next,
	}
	if name == "snapshot_with_pending_event" {
		e, err := DecodeEvent(vs["event_basic"].hexBytes(t, vs["event_basic"].Outputs, "canonical_encoding_hex"), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		s.Pending = []Event{e}
	}
	return s
}

// snapVectorPayloads resolves a vector's state_payloads_hex, whose entries
// may name another vector's entry.
func snapVectorPayloads(t testing.TB, vs map[string]specVector, name string) [][]byte {
	t.Helper()
	var list []string
	if err := json.Unmarshal(vs[name].Outputs["state_payloads_hex"], &list); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range list {
		const ref = "snapshot_after_merge_second_batch.outputs.state_payloads_hex["
		if strings.HasPrefix(s, ref) {
			var i int
			fmt.Sscanf(s[len(ref):], "%d]", &i)
			s = snapVectorPayloadsHex(t, vs, "snapshot_after_merge_second_batch")[i]
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("%s: state_payloads_hex: %v", name, err)
		}
		out = append(out, b)
	}
	return out
}

func snapVectorPayloadsHex(t testing.TB, vs map[string]specVector, name string) []string {
	var list []string
	if err := json.Unmarshal(vs[name].Outputs["state_payloads_hex"], &list); err != nil {
		t.Fatal(err)
	}
	return list
}

func snapVectorFile(t testing.TB, vs map[string]specVector, name string) []byte {
	t.Helper()
	v := vs[name]
	return v.hexBytes(t, v.Outputs, "file_hex")
}

// snapTB is what the checks need of a *testing.T or a *rapid.T.
type snapTB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

func mustAppendSnapshot(t snapTB, s *Snapshot) []byte {
	t.Helper()
	b, err := s.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary() error %v", err)
	}
	return b
}

func TestSnapshotVectorsEncode(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range snapVectorNames {
		t.Run(name, func(t *testing.T) {
			v := vs[name]
			s := snapVectorInput(t, vs, name)
			file := mustAppendSnapshot(t, s)
			if want := v.hexBytes(t, v.Outputs, "file_hex"); !bytes.Equal(file, want) {
				t.Errorf("AppendBinary()\n got %x\nwant %x", file, want)
			}
			if got, want := s.StateDigest(), mustHash(t, v.str(t, v.Outputs, "state_digest")); got != want {
				t.Errorf("StateDigest() = %v, want %v", got, want)
			}
			if got, want := s.State.HeadsDigest(), mustHash(t, v.str(t, v.Outputs, "stream_heads_digest")); got != want {
				t.Errorf("HeadsDigest() = %v, want %v", got, want)
			}
			// The file's pieces, one by one.
			sc := framelog.NewScanner(file, nil)
			f, err := sc.Next()
			if err != nil || f.Type != framelog.FrameSnapshot {
				t.Fatalf("first frame = %v, %v, want SNAPSHOT", f.Type, err)
			}
			if want := v.hexBytes(t, v.Outputs, "manifest_hex"); !bytes.Equal(f.Payload, want) {
				t.Errorf("manifest\n got %x\nwant %x", f.Payload, want)
			}
			var payloads [][]byte
			for {
				f, err := sc.Next()
				if err != nil {
					break
				}
				payloads = append(payloads, f.Payload)
			}
			want := snapVectorPayloads(t, vs, name)
			if diff := cmp.Diff(want, payloads); diff != "" {
				t.Errorf("STATE payloads (-want +got)\n%s", diff)
			}
			// Appending keeps what b held.
			pre := []byte("prefix")
			got, err := s.AppendBinary(slices.Clip(pre))
			if err != nil || !bytes.Equal(got[:len(pre)], pre) || !bytes.Equal(got[len(pre):], file) {
				t.Errorf("AppendBinary(prefix) = %x, %v, want the prefix then the file", got, err)
			}
		})
	}
}

func TestSnapshotVectorsDecode(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range snapVectorNames {
		t.Run(name, func(t *testing.T) {
			v := vs[name]
			file := snapVectorFile(t, vs, name)
			got, err := DecodeSnapshot(file)
			if err != nil {
				t.Fatalf("DecodeSnapshot() error %v", err)
			}
			want := snapVectorInput(t, vs, name)
			snapCompare(t, got, want)
			if got.State.MergedStateHash().String() != "f9c698d28af39d59eae8633c6dd533f8a0624416a8381f115fbea6dba9eac965" ||
				got.State.FrontierDigest().String() != "0388a651f2dbae508041dfc73e6d67d7b06097784dd6b8c73cc632e64c25c587" {
				t.Errorf("decoded hashes %v, %v, want merge_second_batch's", got.State.MergedStateHash(), got.State.FrontierDigest())
			}
			if got, want := got.State.HeadsDigest(), mustHash(t, v.str(t, v.Outputs, "stream_heads_digest")); got != want {
				t.Errorf("HeadsDigest() = %v, want %v", got, want)
			}
			if got, want := got.StateDigest(), mustHash(t, v.str(t, v.Outputs, "state_digest")); got != want {
				t.Errorf("StateDigest() = %v, want %v", got, want)
			}
			if got.Binding != DefaultBinding() {
				t.Errorf("Binding = %v, want %v", got.Binding, DefaultBinding())
			}
			wantKnown := []KnownID{{ID64(1), 1}, {ID64(2), 1}, {ID64(3), 2}, {ID64(4), 3}, {ID64(5), 4}}
			if diff := cmp.Diff(wantKnown, got.State.KnownIDs()); diff != "" {
				t.Errorf("KnownIDs() (-want +got)\n%s", diff)
			}
			checkStateVector(t, got.State, vs["merge_second_batch"].Outputs["next_state"])
			if re := mustAppendSnapshot(t, got); !bytes.Equal(re, file) {
				t.Errorf("re-encoding\n got %x\nwant %x", re, file)
			}
		})
	}
}

// snapCompare fails t unless got and want hold the same snapshot.
func snapCompare(t snapTB, got, want *Snapshot) {
	t.Helper()
	if got.ID != want.ID || got.CreatedAtNs != want.CreatedAtNs || got.BaseOffset != want.BaseOffset ||
		got.LastBatchID != want.LastBatchID || got.Binding != want.Binding {
		t.Errorf("manifest fields = %d %d %d %d %v, want %d %d %d %d %v",
			got.ID, got.CreatedAtNs, got.BaseOffset, got.LastBatchID, got.Binding,
			want.ID, want.CreatedAtNs, want.BaseOffset, want.LastBatchID, want.Binding)
	}
	if !slices.Equal(got.State.KnownIDs(), want.State.KnownIDs()) {
		t.Errorf("known ids differ: %d, want %d", got.State.KnownCount(), want.State.KnownCount())
	}
	if !slices.Equal(got.State.Heads(), want.State.Heads()) {
		t.Errorf("heads differ: %v, want %v", len(got.State.Heads()), len(want.State.Heads()))
	}
	if got.State.MergedStateHash() != want.State.MergedStateHash() || got.State.FrontierDigest() != want.State.FrontierDigest() {
		t.Errorf("state hashes = %v %v, want %v %v", got.State.MergedStateHash(), got.State.FrontierDigest(), want.State.MergedStateHash(), want.State.FrontierDigest())
	}
	if diff := cmp.Diff(want.Pending, got.Pending, snapEventsEqual, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("pending (-want +got)\n%s", diff)
	}
}

// snapEventsEqual compares events by canonical encoding, so that nil and
// empty lists are equal.
var snapEventsEqual = cmp.Comparer(func(a, b Event) bool {
	x, _ := a.AppendBinary(nil)
	y, _ := b.AppendBinary(nil)
	return bytes.Equal(x, y)
})

func TestSnapshotGolden(t *testing.T) {
	vs := loadSpecVectors(t)
	for _, name := range snapVectorNames {
		path := filepath.Join("testdata", "snapshot", strings.TrimPrefix(name, "snapshot_")+".omega")
		want := snapVectorFile(t, vs, name)
		if *updateSnapshot {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := LoadSnapshotFile(path)
		if err != nil {
			t.Fatalf("LoadSnapshotFile(%s) error %v", path, err)
		}
		if got := mustAppendSnapshot(t, s); !bytes.Equal(got, want) {
			t.Errorf("%s re-encodes to\n%x\nwant the vector's file_hex\n%x", path, got, want)
		}
	}
}

// snapEvent returns an event with a correct payload hash.
func snapEvent(id uint64, node uint32, stream uint16, lamport uint64, payload string, deps ...uint64) Event {
	e := Event{ID: ID64(id), NodeID: node, StreamID: stream, Lamport: lamport, MonoTSNs: lamport * 1000, Kind: 1,
		PayloadHash: PayloadHash([]byte(payload)), Deps: []EventID{}, Payload: []byte(payload)}
	for _, d := range deps {
		e.Deps = append(e.Deps, ID64(d))
	}
	return e
}

// snapRef is a small snapshot with every section: three known ids, two
// heads, two pending events.
func snapRef(t testing.TB) *Snapshot {
	t.Helper()
	st, err := NewState(
		[]KnownID{{ID64(1), 10}, {ID64(2), 20}, {EventID{Hi: 1}, 30}},
		[]StreamHead{{NodeID: 1, StreamID: 0, Lamport: 20, ID: ID64(2)}, {NodeID: 1, StreamID: 1, Lamport: 30, ID: EventID{Hi: 1}}},
		Hash{1}, Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	return &Snapshot{
		ID: 7, CreatedAtNs: 1700000000000000000, BaseOffset: 4096, LastBatchID: 3,
		Binding: DefaultBinding(), State: st,
		Pending: []Event{snapEvent(4, 1, 0, 40, "x"), snapEvent(5, 2, 0, 41, "y", 4)},
	}
}

// snapFrame is a frame of a hand-built file.
type snapFrame struct {
	typ     framelog.FrameType
	payload []byte
}

func snapState(section byte, count uint32, records []byte) snapFrame {
	p := append([]byte{section, 0, 0, 0}, binary.LittleEndian.AppendUint32(nil, count)...)
	return snapFrame{framelog.FrameState, append(p, records...)}
}

func snapKnownRecords(ids ...EventID) []byte {
	var b []byte
	for _, id := range ids {
		b = appendID(b, id)
		b = binary.LittleEndian.AppendUint64(b, id.Lo*10) // lamport 10 x id
	}
	return b
}

func snapKnown(ids ...uint64) snapFrame {
	var list []EventID
	for _, id := range ids {
		list = append(list, ID64(id))
	}
	return snapState(sectionKnown, uint32(len(ids)), snapKnownRecords(list...))
}

// snapKnownRange is a section 1 frame of ids first, first+1, ..., n of them.
func snapKnownRange(first uint64, n int) snapFrame {
	ids := make([]EventID, n)
	for i := range ids {
		ids[i] = ID64(first + uint64(i))
	}
	return snapState(sectionKnown, uint32(n), snapKnownRecords(ids...))
}

func snapHeadRecords(heads ...StreamHead) []byte {
	var b []byte
	for _, h := range heads {
		b = binary.LittleEndian.AppendUint32(b, h.NodeID)
		b = binary.LittleEndian.AppendUint16(b, h.StreamID)
		b = binary.LittleEndian.AppendUint64(b, h.Lamport)
		b = appendID(b, h.ID)
	}
	return b
}

func snapHeads(heads ...StreamHead) snapFrame {
	return snapState(sectionHeads, uint32(len(heads)), snapHeadRecords(heads...))
}

func snapPending(t testing.TB, e Event) snapFrame {
	return snapState(sectionPending, 1, mustMarshal(t, &e))
}

// snapAssemble encodes hdr and frames as a file.
func snapAssemble(hdr framelog.Header, frames ...snapFrame) []byte {
	b, _ := hdr.AppendBinary(nil)
	for _, f := range frames {
		b = appendFrame(b, f.typ, f.payload)
	}
	return b
}

var snapHdr = framelog.Header{SchemaVersion: DefaultBinding().SchemaVersion, SchemaHash: DefaultBinding().SchemaHash}

// snapManifest returns snapRef's manifest fields with the digests the
// frames give: state_digest over the STATE payloads, stream_heads_digest
// over the records of section 2 payloads (a head record is the heads
// digest's encoding of the head).
func snapManifest(frames []snapFrame) []byte {
	sd, hd := digest.New(digest.SnapshotState), digest.New(digest.Heads)
	hd.Reset()
	for _, f := range frames {
		if f.typ == framelog.FrameState {
			sd.Write(f.payload)
			if len(f.payload) >= stateHeaderLen && f.payload[0] == sectionHeads {
				hd.Write(f.payload[stateHeaderLen:])
			}
		}
	}
	s := &Snapshot{ID: 7, CreatedAtNs: 1700000000000000000, BaseOffset: 4096, LastBatchID: 3, Binding: DefaultBinding()}
	st, _ := NewState(nil, nil, Hash{1}, Hash{2})
	s.State = st
	return s.appendManifest(nil, hd.Sum(), sd.Sum())
}

// snapMake builds a file of snapHdr, a manifest consistent with frames
// (changed by mutate, when not nil), and frames.
func snapMake(mutate func(m []byte), frames ...snapFrame) []byte {
	m := snapManifest(frames)
	if mutate != nil {
		mutate(m)
	}
	return snapAssemble(snapHdr, append([]snapFrame{{framelog.FrameSnapshot, m}}, frames...)...)
}

func TestSnapshotHandBuiltMatchesEncoder(t *testing.T) {
	s := snapRef(t)
	// snapKnownRecords gives lamport 10 x Lo: 10, 20 and 0 for {Hi: 1}.
	s.State, _ = NewState([]KnownID{{ID64(1), 10}, {ID64(2), 20}, {EventID{Hi: 1}, 0}},
		[]StreamHead{{1, 0, 20, ID64(2)}, {1, 1, 0, EventID{Hi: 1}}}, Hash{1}, Hash{2})
	want := mustAppendSnapshot(t, s)
	got := snapMake(nil,
		snapState(sectionKnown, 3, snapKnownRecords(ID64(1), ID64(2), EventID{Hi: 1})),
		snapHeads(StreamHead{1, 0, 20, ID64(2)}, StreamHead{1, 1, 0, EventID{Hi: 1}}),
		snapPending(t, s.Pending[0]), snapPending(t, s.Pending[1]))
	if !bytes.Equal(got, want) {
		t.Fatalf("hand-built file\n got %x\nwant %x", got, want)
	}
	if _, err := DecodeSnapshot(got); err != nil {
		t.Fatalf("DecodeSnapshot(hand-built) error %v", err)
	}
}

func TestDecodeSnapshotMalformed(t *testing.T) {
	e1, e2 := snapEvent(4, 1, 0, 40, "x"), snapEvent(5, 2, 0, 41, "y", 4)
	// Two contents with one ordering key, in canonical (digest) order.
	k1, k2 := snapEvent(6, 3, 0, 50, "a"), snapEvent(6, 3, 0, 50, "b")
	if (&k1).Compare(&k2) > 0 {
		k1, k2 = k2, k1
	}
	known := snapKnown(1, 2, 3)
	heads := snapHeads(StreamHead{1, 0, 20, ID64(2)}, StreamHead{1, 1, 30, ID64(3)})
	good := []snapFrame{known, heads, snapPending(t, e1), snapPending(t, e2)}
	valid := snapMake(nil, good...)
	if _, err := DecodeSnapshot(valid); err != nil {
		t.Fatalf("DecodeSnapshot(valid) error %v", err)
	}
	manOff := int64(framelog.HeaderSize + framelog.FrameHeaderLen)
	knownOff := manOff + manifestLen
	headsOff := knownOff + framelog.FrameHeaderLen + int64(len(known.payload))
	pend := func(b []byte) snapFrame { return snapState(sectionPending, 1, b) }
	enc1 := mustMarshal(t, &e1)
	withHdr := func(h framelog.Header) []byte {
		b := slices.Clone(valid)
		hb, _ := h.AppendBinary(nil)
		copy(b, hb)
		return b
	}
	setU64 := func(off int, v uint64) func([]byte) {
		return func(m []byte) { binary.LittleEndian.PutUint64(m[off:], v) }
	}
	flip := func(off int) func([]byte) { return func(m []byte) { m[off] ^= 1 } }
	padded := func(f snapFrame, i int) snapFrame {
		p := slices.Clone(f.payload)
		p[i] = 1
		return snapFrame{f.typ, p}
	}
	full := snapKnownRange(1, stateChunk)
	bigEvent := slices.Clone(enc1)
	binary.LittleEndian.PutUint32(bigEvent[offPayloadLen:], 16<<20+1)

	cases := []struct {
		name string
		file []byte
		want string // in the error's text
		off  int64  // the error's Offset; -2: not checked
		is   error  // also matched by errors.Is, when not nil
	}{
		{"empty", nil, "bad header", 0, framelog.ErrBadHeader},
		{"header cut short", valid[:40], "bad header", 40, framelog.ErrBadHeader},
		{"zero header", append(make([]byte, framelog.HeaderSize), valid[framelog.HeaderSize:]...), "magic", 0, framelog.ErrBadHeader},
		{"bad magic", append([]byte("OMEGB"), valid[5:]...), "magic", 4, framelog.ErrBadHeader},
		{"bad endian flag", func() []byte { b := slices.Clone(valid); b[logOffEndian] = 2; return b }(), "endian_flag", logOffEndian, framelog.ErrBadHeader},
		{"header reserved byte", func() []byte { b := slices.Clone(valid); b[60] = 1; return b }(), "reserved", 60, framelog.ErrBadHeader},
		{"header only", valid[:framelog.HeaderSize], "no SNAPSHOT frame", framelog.HeaderSize, nil},
		{"first frame STATE", snapAssemble(snapHdr, good...), "first frame is STATE", framelog.HeaderSize, nil},
		{"first frame EVENT", snapAssemble(snapHdr, snapFrame{framelog.FrameEvent, enc1}), "first frame is EVENT", framelog.HeaderSize, nil},
		{"two manifests", snapMake(nil, known, snapFrame{framelog.FrameSnapshot, snapManifest(nil)}), "SNAPSHOT frame after the manifest", -2, nil},
		{"EVENT frame after", snapMake(nil, known, snapFrame{framelog.FrameEvent, enc1}), "EVENT frame after the manifest", headsOff, nil},
		{"program frame after", snapMake(nil, snapFrame{framelog.FrameAppMin, []byte("x")}), "APP(0x8000) frame after the manifest", knownOff, nil},
		{"INCIDENT frame after", snapMake(nil, known, heads, snapFrame{framelog.FrameIncident, make([]byte, 168)}), "INCIDENT frame", -2, nil},
		{"trailing bytes", append(slices.Clone(valid), 1, 2, 3), "torn tail", int64(len(valid)), framelog.ErrTornTail},
		{"trailing zeros", append(slices.Clone(valid), make([]byte, 100)...), "torn tail", int64(len(valid)), framelog.ErrTornTail},
		{"torn last frame", valid[:len(valid)-1], "torn tail", -2, framelog.ErrTornTail},
		{"corrupt frame", func() []byte { b := slices.Clone(valid); b[knownOff+20] ^= 1; return b }(), "corruption", knownOff, framelog.ErrCorrupt},
		{"manifest short", snapAssemble(snapHdr, snapFrame{framelog.FrameSnapshot, snapManifest(nil)[:manifestLen-1]}), "manifest of 231 bytes", framelog.HeaderSize, nil},
		{"manifest long", snapAssemble(snapHdr, snapFrame{framelog.FrameSnapshot, append(snapManifest(nil), 0)}), "manifest of 233 bytes", framelog.HeaderSize, nil},
		{"empty manifest", snapAssemble(snapHdr, snapFrame{framelog.FrameSnapshot, nil}), "manifest of 0 bytes", framelog.HeaderSize, nil},
		{"base offset 0", snapMake(setU64(manOffBaseOffset, 0), good...), "base_checkpoint_offset 0", manOff + manOffBaseOffset, nil},
		{"base offset 63", snapMake(setU64(manOffBaseOffset, 63), good...), "base_checkpoint_offset 63", manOff + manOffBaseOffset, nil},
		{"base offset 2^63", snapMake(setU64(manOffBaseOffset, 1<<63), good...), "base_checkpoint_offset 9223372036854775808", manOff + manOffBaseOffset, nil},
		{"header schema version", withHdr(framelog.Header{SchemaVersion: 2, SchemaHash: snapHdr.SchemaHash}), "schema_version 1 differs from the header's 2", manOff + manOffSchemaVer, nil},
		{"header schema hash", withHdr(framelog.Header{SchemaVersion: 1, SchemaHash: Hash{9}}), "schema_hash", manOff + manOffSchemaHash, nil},
		{"header schema hash zero", withHdr(framelog.Header{SchemaVersion: 1}), "schema_hash", manOff + manOffSchemaHash, nil},
		{"STATE payload short", snapMake(nil, snapFrame{framelog.FrameState, []byte{1, 0, 0, 0, 1, 0, 0}}), "7 bytes", knownOff, nil},
		{"STATE payload empty", snapMake(nil, snapFrame{framelog.FrameState, nil}), "0 bytes", knownOff, nil},
		{"section 0", snapMake(nil, snapState(0, 1, snapKnownRecords(ID64(1)))), "unknown STATE section 0", knownOff, nil},
		{"section 4", snapMake(nil, known, snapState(4, 1, nil)), "unknown STATE section 4", -2, nil},
		{"section 255", snapMake(nil, snapState(255, 1, nil)), "unknown STATE section 255", knownOff, nil},
		{"heads before known", snapMake(nil, heads, known), "section 1 after section 2", -2, nil},
		{"pending before known", snapMake(nil, snapPending(t, e1), known), "section 1 after section 3", -2, nil},
		{"pending before heads", snapMake(nil, known, snapPending(t, e1), heads), "section 2 after section 3", -2, nil},
		{"pad byte 1", snapMake(nil, padded(known, 1)), "pad bytes 01 00 00", knownOff, nil},
		{"pad byte 2", snapMake(nil, padded(known, 2)), "pad bytes 00 01 00", knownOff, nil},
		{"pad byte 3", snapMake(nil, known, padded(heads, 3)), "pad bytes 00 00 01", -2, nil},
		{"pending pad byte", snapMake(nil, padded(snapPending(t, e1), 2)), "pad bytes", knownOff, nil},
		{"zero record count", snapMake(nil, snapState(sectionKnown, 0, nil)), "no record", knownOff, nil},
		{"zero heads count", snapMake(nil, known, snapState(sectionHeads, 0, nil)), "no record", -2, nil},
		{"zero pending count", snapMake(nil, snapState(sectionPending, 0, enc1)), "no record", knownOff, nil},
		{"known count over records", snapMake(nil, snapState(sectionKnown, 4, known.payload[8:])), "record_count 4 of section 1 needs 96 bytes", knownOff, nil},
		{"known count under records", snapMake(nil, snapState(sectionKnown, 2, known.payload[8:])), "record_count 2 of section 1 needs 48 bytes", knownOff, nil},
		{"known partial record", snapMake(nil, snapState(sectionKnown, 1, known.payload[8:8+25])), "needs 24 bytes of records, payload has 25", knownOff, nil},
		{"heads count disagrees", snapMake(nil, known, snapState(sectionHeads, 1, heads.payload[8:])), "record_count 1 of section 2 needs 30 bytes", -2, nil},
		{"known frame over 65536", snapMake(nil, snapKnownRange(1, stateChunk+1)), "65537 records, over 65536", knownOff, nil},
		{"short known frame then another", snapMake(nil, snapKnown(1), snapKnown(2)), "second STATE frame of section 1 after a frame of 1 records", knownOff + framelog.FrameHeaderLen + 8 + 24, nil},
		{"65535 then 2", snapMake(nil, snapKnownRange(1, stateChunk-1), snapKnownRange(stateChunk, 2)), "after a frame of 65535 records", -2, nil},
		{"short heads frame then another", snapMake(nil, known, snapHeads(StreamHead{1, 0, 20, ID64(2)}), snapHeads(StreamHead{1, 1, 30, ID64(3)})), "second STATE frame of section 2", -2, nil},
		{"known ids equal", snapMake(nil, snapKnown(1, 2, 2)), "known id 2 does not follow 2", knownOff + framelog.FrameHeaderLen + 8 + 48, nil},
		{"known ids descending", snapMake(nil, snapKnown(1, 3, 2)), "known id 2 does not follow 3", knownOff + framelog.FrameHeaderLen + 8 + 48, nil},
		{"known ids by high half", snapMake(nil, snapState(sectionKnown, 2, snapKnownRecords(EventID{Hi: 1}, ID64(5)))), "known id 5 does not follow 18446744073709551616", -2, nil},
		{"known ids across frames", snapMake(nil, full, snapKnown(stateChunk)), "known id 65536 does not follow 65536", -2, nil},
		{"streams equal", snapMake(nil, known, snapHeads(StreamHead{1, 0, 20, ID64(2)}, StreamHead{1, 0, 30, ID64(3)})), "stream (1, 0) does not follow (1, 0)", -2, nil},
		{"streams descending by node", snapMake(nil, known, snapHeads(StreamHead{2, 0, 20, ID64(2)}, StreamHead{1, 5, 30, ID64(3)})), "stream (1, 5) does not follow (2, 0)", -2, nil},
		{"streams descending by stream", snapMake(nil, known, snapHeads(StreamHead{1, 1, 20, ID64(2)}, StreamHead{1, 0, 30, ID64(3)})), "stream (1, 0) does not follow (1, 1)", -2, nil},
		{"pending count 2", snapMake(nil, snapState(sectionPending, 2, append(slices.Clone(enc1), mustMarshal(t, &e2)...))), "record_count 2, want 1", knownOff, nil},
		{"pending truncated", snapMake(nil, pend(enc1[:len(enc1)-1])), "field payload", knownOff, ErrMalformedEvent},
		{"pending short header", snapMake(nil, pend(enc1[:79])), "pending event 0", knownOff, ErrMalformedEvent},
		{"pending trailing byte", snapMake(nil, pend(append(slices.Clone(enc1), 0))), "trailing", knownOff, ErrMalformedEvent},
		{"pending over limits", snapMake(nil, pend(bigEvent)), "payload_len: 16777217 exceeds", knownOff, ErrMalformedEvent},
		{"pending out of order", snapMake(nil, snapPending(t, e2), snapPending(t, e1)), "pending event 1 (id 4) comes before event 0 (id 5)", -2, nil},
		{"pending identical copies", snapMake(nil, snapPending(t, e1), snapPending(t, e1)), "identical copy", -2, nil},
		{"pending same key by digest", snapMake(nil, snapPending(t, k2), snapPending(t, k1)), "comes before", -2, nil},
		{"state digest", snapMake(flip(manOffStateDigest+31), good...), "state_digest", manOff + manOffStateDigest, nil},
		{"state digest of no frames", snapMake(flip(manOffStateDigest)), "state_digest", manOff + manOffStateDigest, nil},
		{"heads digest", snapMake(flip(manOffHeadsDigest), good...), "stream_heads_digest", manOff + manOffHeadsDigest, nil},
		{"head of unknown event", snapMake(nil, known, snapHeads(StreamHead{1, 0, 90, ID64(9)})), "inconsistent state", headsOff, ErrInvalidState},
		{"head with wrong lamport", snapMake(nil, known, snapHeads(StreamHead{1, 0, 21, ID64(2)})), "not a known id with lamport 21", headsOff, ErrInvalidState},
		{"heads without known ids", snapMake(nil, snapHeads(StreamHead{1, 0, 20, ID64(2)})), "inconsistent state", knownOff, ErrInvalidState},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := DecodeSnapshot(c.file)
			if err == nil {
				t.Fatalf("DecodeSnapshot() = %+v, nil, want an error with %q", s, c.want)
			}
			if s != nil {
				t.Errorf("DecodeSnapshot() returned a snapshot with its error")
			}
			if !errors.Is(err, ErrMalformedSnapshot) {
				t.Errorf("DecodeSnapshot() error %v, want ErrMalformedSnapshot", err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("DecodeSnapshot() error %v, want it to match %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("DecodeSnapshot() error %q, want it to contain %q", err, c.want)
			}
			var se *SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("DecodeSnapshot() error %T, want *SnapshotError", err)
			}
			if c.off != -2 && se.Offset != c.off {
				t.Errorf("DecodeSnapshot() error at offset %d, want %d (%v)", se.Offset, c.off, err)
			}
			if !strings.HasPrefix(err.Error(), "omega: malformed snapshot") {
				t.Errorf("error %q does not start with omega: malformed snapshot", err)
			}
		})
	}
}

// Files that follow every rule decode, including the edges of the rules.
func TestDecodeSnapshotEdges(t *testing.T) {
	cases := []struct {
		name        string
		file        []byte
		known       int
		heads       int
		pending     int
		nilState    bool
		base        int64
		knownFrames []int
	}{
		{"genesis", snapMake(func(m []byte) { clear(m[manOffFrontier : manOffMerged+32]) }), 0, 0, 0, true, 4096, nil},
		{"hashes only", snapMake(nil), 0, 0, 0, false, 4096, nil},
		{"pending only", snapMake(nil, snapPending(t, snapEvent(1, 1, 0, 1, ""))), 0, 0, 1, false, 4096, nil},
		{"known only", snapMake(nil, snapKnown(1, 2)), 2, 0, 0, false, 4096, nil},
		{"base offset 64", snapMake(func(m []byte) { binary.LittleEndian.PutUint64(m[manOffBaseOffset:], 64) }), 0, 0, 0, false, 64, nil},
		{"base offset 2^63-1", snapMake(func(m []byte) { binary.LittleEndian.PutUint64(m[manOffBaseOffset:], math.MaxInt64) }), 0, 0, 0, false, math.MaxInt64, nil},
		{"one full frame", snapMake(nil, snapKnownRange(1, stateChunk)), stateChunk, 0, 0, false, 4096, []int{stateChunk}},
		{"full frame and one", snapMake(nil, snapKnownRange(1, stateChunk), snapKnownRange(stateChunk+1, 1)), stateChunk + 1, 0, 0, false, 4096, []int{stateChunk, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := DecodeSnapshot(c.file)
			if err != nil {
				t.Fatalf("DecodeSnapshot() error %v", err)
			}
			if (s.State == nil) != c.nilState {
				t.Errorf("State = %v, want nil: %v", s.State, c.nilState)
			}
			if s.State.KnownCount() != c.known || len(s.State.Heads()) != c.heads || len(s.Pending) != c.pending {
				t.Errorf("decoded %d known, %d heads, %d pending, want %d, %d, %d",
					s.State.KnownCount(), len(s.State.Heads()), len(s.Pending), c.known, c.heads, c.pending)
			}
			if s.BaseOffset != c.base {
				t.Errorf("BaseOffset = %d, want %d", s.BaseOffset, c.base)
			}
			if re := mustAppendSnapshot(t, s); !bytes.Equal(re, c.file) {
				t.Errorf("re-encoding differs from the input")
			}
		})
	}
}

func TestSnapshotAppendRefuses(t *testing.T) {
	e1, e2 := snapEvent(4, 1, 0, 40, "x"), snapEvent(5, 2, 0, 41, "y", 4)
	tooManyDeps := snapEvent(6, 1, 0, 42, "z")
	tooManyDeps.Deps = make([]EventID, maxDepsCount+1)
	tooBig := snapEvent(7, 1, 0, 43, "")
	tooBig.Payload = make([]byte, defaultMaxBytes+1)
	cases := []struct {
		name   string
		mutate func(s *Snapshot)
		want   string
		is     error
	}{
		{"base offset 63", func(s *Snapshot) { s.BaseOffset = 63 }, "base_checkpoint_offset 63", nil},
		{"base offset 0", func(s *Snapshot) { s.BaseOffset = 0 }, "base_checkpoint_offset 0", nil},
		{"base offset negative", func(s *Snapshot) { s.BaseOffset = -1 }, "base_checkpoint_offset -1", nil},
		{"pending out of order", func(s *Snapshot) { s.Pending = []Event{e2, e1} }, "pending event 1 (id 4) comes before event 0 (id 5)", nil},
		{"pending identical copies", func(s *Snapshot) { s.Pending = []Event{e1, e2, e2} }, "pending events 1 and 2 are identical copies", nil},
		{"pending too many deps", func(s *Snapshot) { s.Pending = []Event{e1, tooManyDeps} }, "pending event 1: event: field deps_count", ErrMalformedEvent},
		{"pending payload over limit", func(s *Snapshot) { s.Pending = []Event{tooBig} }, "field payload_len", ErrMalformedEvent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := snapRef(t)
			c.mutate(s)
			pre := []byte("keep")
			b, err := s.AppendBinary(pre)
			if err == nil {
				t.Fatalf("AppendBinary() = %d bytes, nil, want an error with %q", len(b), c.want)
			}
			if !bytes.Equal(b, pre) {
				t.Errorf("AppendBinary() returned %q, want b unchanged", b)
			}
			if !errors.Is(err, ErrMalformedSnapshot) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("AppendBinary() error %v, want ErrMalformedSnapshot (and %v)", err, c.is)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("AppendBinary() error %q, want it to contain %q", err, c.want)
			}
			if err := s.WriteFile(filepath.Join(t.TempDir(), "s.omega")); !errors.Is(err, ErrMalformedSnapshot) {
				t.Errorf("WriteFile() error %v, want ErrMalformedSnapshot", err)
			}
		})
	}
	var nilSnap *Snapshot
	if _, err := nilSnap.AppendBinary(nil); !errors.Is(err, ErrMalformedSnapshot) {
		t.Errorf("(*Snapshot)(nil).AppendBinary() error %v, want ErrMalformedSnapshot", err)
	}
}

// Every byte of a vector file is covered by a frame CRC, the header's fixed
// fields or the header's agreement with the manifest, so every single-byte
// change is refused. (A change in a frame_len makes the frame fail its CRC
// or run past the end.)
func TestSnapshotEveryByteChange(t *testing.T) {
	vs := loadSpecVectors(t)
	values := 255
	if testing.Short() {
		values = 3
	}
	for _, name := range snapVectorNames {
		t.Run(name, func(t *testing.T) {
			file := snapVectorFile(t, vs, name)
			b := slices.Clone(file)
			for i := range b {
				for d := 1; d <= values; d++ {
					delta := byte(d)
					if values < 255 {
						delta = []byte{0x01, 0x80, 0xff}[d-1]
					}
					b[i] = file[i] ^ delta
					if s, err := DecodeSnapshot(b); err == nil {
						t.Fatalf("byte %d changed from %#02x to %#02x: DecodeSnapshot() = %+v, want an error", i, file[i], b[i], s)
					} else if !errors.Is(err, ErrMalformedSnapshot) {
						t.Fatalf("byte %d changed: error %v, want ErrMalformedSnapshot", i, err)
					}
				}
				b[i] = file[i]
			}
		})
	}
}

// With the frame CRC recomputed after a change, what is left to catch it is
// SPEC 7's redundancy: the state digest covers every STATE byte, the heads
// digest and the header cover their manifest fields. The manifest fields
// nothing covers (ids, times, offsets, the frontier and merged hashes, the
// checker version and catalog hash) decode to a snapshot that differs in
// exactly that field.
func TestSnapshotReframedByteChange(t *testing.T) {
	vs := loadSpecVectors(t)
	type field struct {
		name    string
		from    int // manifest offset
		covered bool
	}
	fields := []field{
		{"snapshot_id", 0, false}, {"created_at_ns", manOffCreatedAt, false},
		{"base_checkpoint_offset", manOffBaseOffset, false}, {"last_batch_id", manOffLastBatch, false},
		{"frontier_digest", manOffFrontier, false}, {"merged_state_hash", manOffMerged, false},
		{"stream_heads_digest", manOffHeadsDigest, true}, {"checker_version", manOffBinding, false},
		{"schema_version", manOffSchemaVer, true}, {"schema_hash", manOffSchemaHash, true},
		{"catalog_hash", manOffCatalogHash, false}, {"state_digest", manOffStateDigest, true},
	}
	fieldAt := func(off int) field {
		for i := len(fields) - 1; i >= 0; i-- {
			if off >= fields[i].from {
				return fields[i]
			}
		}
		panic("unreachable")
	}
	changed := func(a, b *Snapshot) []string {
		var out []string
		add := func(name string, differ bool) {
			if differ {
				out = append(out, name)
			}
		}
		add("snapshot_id", a.ID != b.ID)
		add("created_at_ns", a.CreatedAtNs != b.CreatedAtNs)
		add("base_checkpoint_offset", a.BaseOffset != b.BaseOffset)
		add("last_batch_id", a.LastBatchID != b.LastBatchID)
		add("frontier_digest", a.State.FrontierDigest() != b.State.FrontierDigest())
		add("merged_state_hash", a.State.MergedStateHash() != b.State.MergedStateHash())
		add("checker_version", a.Binding.CheckerVersion != b.Binding.CheckerVersion)
		add("schema_version", a.Binding.SchemaVersion != b.Binding.SchemaVersion)
		add("schema_hash", a.Binding.SchemaHash != b.Binding.SchemaHash)
		add("catalog_hash", a.Binding.CatalogHash != b.Binding.CatalogHash)
		add("state", !slices.Equal(a.State.KnownIDs(), b.State.KnownIDs()) || !slices.Equal(a.State.Heads(), b.State.Heads()))
		add("pending", !cmp.Equal(a.Pending, b.Pending, snapEventsEqual, cmpopts.EquateEmpty()))
		return out
	}
	for _, name := range snapVectorNames {
		t.Run(name, func(t *testing.T) {
			file := snapVectorFile(t, vs, name)
			orig, err := DecodeSnapshot(file)
			if err != nil {
				t.Fatal(err)
			}
			var frames []framelog.Frame
			sc := framelog.NewScanner(file, nil)
			for {
				f, err := sc.Next()
				if err != nil {
					break
				}
				frames = append(frames, f)
			}
			for fi, f := range frames {
				for i := range f.Payload {
					b := slices.Clone(file)
					at := int(f.Offset) + framelog.FrameHeaderLen + i
					b[at] ^= 0x01
					fr := b[f.Offset : int(f.Offset)+framelog.FrameHeaderLen+len(f.Payload)]
					binary.LittleEndian.PutUint32(fr[frameOffCRC:], crc32IEEE(fr[frameOffType:]))
					s, err := DecodeSnapshot(b)
					if fi > 0 || fieldAt(i).covered {
						if err == nil {
							t.Fatalf("frame %d payload byte %d (file offset %d) changed, CRC fixed: decoded, want refused", fi, i, at)
						}
						continue
					}
					if err != nil {
						t.Fatalf("manifest byte %d (%s) changed, CRC fixed: error %v, want a snapshot", i, fieldAt(i).name, err)
					}
					if got, want := changed(orig, s), []string{fieldAt(i).name}; !slices.Equal(got, want) {
						t.Errorf("manifest byte %d changed: fields %v differ, want %v", i, got, want)
					}
					if re := mustAppendSnapshot(t, s); !bytes.Equal(re, b) {
						t.Errorf("manifest byte %d changed: re-encoding differs from the changed file", i)
					}
				}
			}
		})
	}
}

// crc32IEEE is the frame CRC, for tests that forge frames.
func crc32IEEE(b []byte) uint32 {
	f := appendFrame(nil, framelog.FrameType(binary.LittleEndian.Uint16(b)), b[4:])
	return binary.LittleEndian.Uint32(f[frameOffCRC:])
}

func TestSnapshotTruncations(t *testing.T) {
	vs := loadSpecVectors(t)
	files := [][]byte{mustAppendSnapshot(t, snapRef(t))}
	for _, name := range snapVectorNames {
		files = append(files, snapVectorFile(t, vs, name))
	}
	for fi, file := range files {
		for n := range len(file) {
			if s, err := DecodeSnapshot(file[:n]); err == nil {
				t.Fatalf("file %d cut to %d of %d bytes: DecodeSnapshot() = %+v, want an error", fi, n, len(file), s)
			} else if !errors.Is(err, ErrMalformedSnapshot) {
				t.Fatalf("file %d cut to %d bytes: error %v, want ErrMalformedSnapshot", fi, n, err)
			}
		}
		if _, err := DecodeSnapshot(file); err != nil {
			t.Fatalf("file %d whole: error %v", fi, err)
		}
	}
}

func snapHashGen() *rapid.Generator[Hash] {
	return rapid.OneOf(rapid.Just(Hash{}), rapid.Map(rapid.SliceOfN(rapid.Byte(), 32, 32), func(b []byte) Hash { return Hash(b) }))
}

func snapIDGen() *rapid.Generator[EventID] {
	return rapid.OneOf(
		rapid.Map(rapid.Uint64Range(0, 40), ID64),
		rapid.Custom(func(t *rapid.T) EventID {
			return EventID{Hi: rapid.Uint64().Draw(t, "hi"), Lo: rapid.Uint64().Draw(t, "lo")}
		}),
	)
}

// snapEventGen draws structurally valid events, some of them sharing an
// ordering key, so that canonical order falls back to the digest.
func snapEventGen() *rapid.Generator[Event] {
	return rapid.Custom(func(t *rapid.T) Event {
		e := Event{
			ID:       snapIDGen().Draw(t, "id"),
			NodeID:   rapid.Uint32Range(0, 2).Draw(t, "node"),
			StreamID: rapid.Uint16Range(0, 1).Draw(t, "stream"),
			Lamport:  rapid.OneOf(rapid.Uint64Range(0, 4), rapid.Uint64()).Draw(t, "lamport"),
			MonoTSNs: rapid.Uint64().Draw(t, "mono"),
			Kind:     rapid.Uint16().Draw(t, "kind"),
			Flags:    rapid.Uint16().Draw(t, "flags"),
			Deps:     rapid.SliceOfN(snapIDGen(), 0, 3).Draw(t, "deps"),
			Payload:  rapid.SliceOfN(rapid.Byte(), 0, 24).Draw(t, "payload"),
		}
		e.PayloadHash = PayloadHash(e.Payload)
		if rapid.Bool().Draw(t, "wrong hash") {
			e.PayloadHash = snapHashGen().Draw(t, "payload hash")
		}
		return e
	})
}

// snapRandomState draws known ids with lamports and heads among them.
func snapRandomState(t *rapid.T) *State {
	ids := rapid.SliceOfNDistinct(snapIDGen(), 0, 40, func(id EventID) EventID { return id }).Draw(t, "known")
	known := make([]KnownID, len(ids))
	var heads []StreamHead
	taken := map[[2]uint64]bool{}
	for i, id := range ids {
		known[i] = KnownID{ID: id, Lamport: rapid.OneOf(rapid.Uint64Range(0, 8), rapid.Uint64()).Draw(t, "lamport")}
		if rapid.Bool().Draw(t, "head") {
			node, stream := rapid.Uint32Range(0, 4).Draw(t, "node"), rapid.Uint16Range(0, 3).Draw(t, "stream")
			if !taken[[2]uint64{uint64(node), uint64(stream)}] {
				taken[[2]uint64{uint64(node), uint64(stream)}] = true
				heads = append(heads, StreamHead{NodeID: node, StreamID: stream, Lamport: known[i].Lamport, ID: id})
			}
		}
	}
	st, err := NewState(known, heads, snapHashGen().Draw(t, "merged"), snapHashGen().Draw(t, "frontier"))
	if err != nil {
		t.Fatalf("NewState() error %v", err)
	}
	return st
}

// snapHistoryState reconciles generated batches from genesis: events on a
// few streams with lamports rising above the heads, ids fresh, dependencies
// on earlier events of lower lamport, correct payload hashes; empty batches
// included.
func snapHistoryState(t *rapid.T) *State {
	var st *State
	type seen struct {
		id  EventID
		lam uint64
	}
	var all []seen
	next := uint64(1)
	for range rapid.IntRange(1, 4).Draw(t, "batches") {
		var batch []Event
		top := map[[2]uint32]uint64{}
		for _, h := range st.Heads() {
			top[[2]uint32{h.NodeID, uint32(h.StreamID)}] = h.Lamport
		}
		for range rapid.IntRange(0, 10).Draw(t, "events") {
			node, stream := rapid.Uint32Range(0, 2).Draw(t, "node"), rapid.Uint16Range(0, 1).Draw(t, "stream")
			k := [2]uint32{node, uint32(stream)}
			lam := top[k] + 1 + rapid.Uint64Range(0, 3).Draw(t, "step")
			top[k] = lam
			e := Event{
				ID:       EventID{Hi: rapid.Uint64Range(0, 1).Draw(t, "hi"), Lo: next},
				NodeID:   node,
				StreamID: stream,
				Lamport:  lam,
				Payload:  rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "payload"),
			}
			next++
			e.PayloadHash = PayloadHash(e.Payload)
			for _, d := range all {
				if d.lam < lam && rapid.IntRange(0, 7).Draw(t, "dep") == 0 {
					e.Deps = append(e.Deps, d.id)
				}
			}
			batch = append(batch, e)
			all = append(all, seen{e.ID, lam})
		}
		rOut, err := Reconcile(st, batch)
		r := rOut.Result
		if err != nil || r.Kind != KindMerge {
			t.Fatalf("Reconcile(%d events) = %v, %v, want a merge", len(batch), r, err)
		}
		st = r.Merge.Next
	}
	return st
}

func snapGen() *rapid.Generator[*Snapshot] {
	return rapid.Custom(func(t *rapid.T) *Snapshot {
		s := &Snapshot{
			ID:          rapid.Uint64().Draw(t, "snapshot_id"),
			CreatedAtNs: rapid.Uint64().Draw(t, "created_at_ns"),
			BaseOffset:  rapid.OneOf(rapid.Int64Range(framelog.HeaderSize, 1<<20), rapid.Int64Range(framelog.HeaderSize, math.MaxInt64)).Draw(t, "base"),
			LastBatchID: rapid.Uint64().Draw(t, "last_batch_id"),
			Binding: Binding{
				CheckerVersion: [3]uint16{rapid.Uint16().Draw(t, "major"), rapid.Uint16().Draw(t, "minor"), rapid.Uint16().Draw(t, "patch")},
				SchemaVersion:  rapid.Uint16().Draw(t, "schema_version"),
				SchemaHash:     snapHashGen().Draw(t, "schema_hash"),
				CatalogHash:    snapHashGen().Draw(t, "catalog_hash"),
			},
		}
		switch rapid.IntRange(0, 3).Draw(t, "state") {
		case 0:
			s.State = nil
		case 1:
			s.State = &State{}
		case 2:
			s.State = snapRandomState(t)
		case 3:
			s.State = snapHistoryState(t)
		}
		pending := rapid.SliceOfN(snapEventGen(), 0, 6).Draw(t, "pending")
		if len(pending) > 0 && rapid.Bool().Draw(t, "same key") {
			// Another content under the first one's ordering key.
			e := pending[0]
			e.Payload = append(slices.Clone(e.Payload), 1)
			pending = append(pending, e)
		}
		slices.SortFunc(pending, func(a, b Event) int { return (&a).Compare(&b) })
		s.Pending = slices.CompactFunc(pending, func(a, b Event) bool { return (&a).Compare(&b) == 0 })
		return s
	})
}

func TestSnapshotRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := snapGen().Draw(t, "snapshot")
		b, err := s.AppendBinary(nil)
		if err != nil {
			t.Fatalf("AppendBinary() error %v", err)
		}
		got, err := DecodeSnapshot(b)
		if err != nil {
			t.Fatalf("DecodeSnapshot(AppendBinary()) error %v", err)
		}
		snapCompare(t, got, s)
		if got.State.HeadsDigest() != s.State.HeadsDigest() {
			t.Fatalf("HeadsDigest() = %v, want %v", got.State.HeadsDigest(), s.State.HeadsDigest())
		}
		genesis := s.State.KnownCount() == 0 && s.State.MergedStateHash().IsZero() && s.State.FrontierDigest().IsZero()
		if (got.State == nil) != genesis {
			t.Fatalf("decoded State nil: %v, want %v", got.State == nil, genesis)
		}
		if re := mustAppendSnapshot(t, got); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs")
		}
		m := b[framelog.HeaderSize+framelog.FrameHeaderLen:]
		if sd := s.StateDigest(); Hash(m[manOffStateDigest:]) != sd || got.StateDigest() != sd {
			t.Fatalf("manifest state_digest %x, StateDigest() %v / %v", m[manOffStateDigest:manifestLen], sd, got.StateDigest())
		}
		if again := mustAppendSnapshot(t, s); !bytes.Equal(again, b) {
			t.Fatalf("AppendBinary() is not deterministic")
		}
	})
}

// snapBigState returns a State of n known ids, random 128-bit values with
// random lamports, and heads streams whose heads are the first ids drawn.
func snapBigState(t testing.TB, n, heads int) *State {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	known := make([]KnownID, n)
	for i := range known {
		known[i] = KnownID{ID: EventID{Hi: rng.Uint64() >> 1, Lo: rng.Uint64()}, Lamport: rng.Uint64()}
	}
	hs := make([]StreamHead, heads)
	for i := range hs {
		hs[i] = StreamHead{NodeID: uint32(i / 3), StreamID: uint16(i % 3), Lamport: known[i].Lamport, ID: known[i].ID}
	}
	st, err := NewState(known, hs, Hash{1}, Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// snapSections returns the record counts of a file's STATE frames, by
// section.
func snapSections(t testing.TB, b []byte) map[byte][]int {
	t.Helper()
	out := map[byte][]int{}
	sc := framelog.NewScanner(b, nil)
	sc.Next() // the manifest
	for {
		f, err := sc.Next()
		if err != nil {
			return out
		}
		out[f.Payload[0]] = append(out[f.Payload[0]], int(binary.LittleEndian.Uint32(f.Payload[4:])))
	}
}

func TestSnapshotChunking(t *testing.T) {
	longTest(t)
	s := &Snapshot{BaseOffset: framelog.HeaderSize, Binding: DefaultBinding(), State: snapBigState(t, 140000, 70000)}
	s.Pending = []Event{snapEvent(1, 1, 0, 1, "p")}
	b := mustAppendSnapshot(t, s)
	want := map[byte][]int{sectionKnown: {65536, 65536, 8928}, sectionHeads: {65536, 4464}, sectionPending: {1}}
	if diff := cmp.Diff(want, snapSections(t, b)); diff != "" {
		t.Errorf("STATE frames' record counts (-want +got)\n%s", diff)
	}
	got, err := DecodeSnapshot(b)
	if err != nil {
		t.Fatalf("DecodeSnapshot() error %v", err)
	}
	snapCompare(t, got, s)
	if re := mustAppendSnapshot(t, got); !bytes.Equal(re, b) {
		t.Errorf("re-encoding differs")
	}
	// Exactly full sections: one frame each, no empty frame after.
	s = &Snapshot{BaseOffset: framelog.HeaderSize, State: snapBigState(t, 2*stateChunk, stateChunk)}
	want = map[byte][]int{sectionKnown: {65536, 65536}, sectionHeads: {65536}}
	if diff := cmp.Diff(want, snapSections(t, mustAppendSnapshot(t, s))); diff != "" {
		t.Errorf("STATE frames' record counts (-want +got)\n%s", diff)
	}
}

// Decoding allocates per frame, not per record.
func TestSnapshotDecodeAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 140,000-id state; skipped in -short runs")
	}
	s := &Snapshot{BaseOffset: framelog.HeaderSize, State: snapBigState(t, 140000, 8)}
	b := mustAppendSnapshot(t, s)
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := DecodeSnapshot(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 64 {
		t.Errorf("DecodeSnapshot(140000 known ids) made %v allocations, want at most 64", allocs)
	}
	allocs = testing.AllocsPerRun(3, func() { mustAppendSnapshot(t, s) })
	if allocs > 64 {
		t.Errorf("AppendBinary(140000 known ids) made %v allocations, want at most 64", allocs)
	}
}

// A million known ids encode and decode in well under a second (the
// timings are logged, not asserted: they depend on the machine).
func TestSnapshotMillionIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a million-id state; skipped in -short runs")
	}
	s := &Snapshot{BaseOffset: framelog.HeaderSize, State: snapBigState(t, 1_000_000, 1000)}
	start := time.Now()
	b := mustAppendSnapshot(t, s)
	enc := time.Since(start)
	start = time.Now()
	got, err := DecodeSnapshot(b)
	dec := time.Since(start)
	if err != nil {
		t.Fatalf("DecodeSnapshot() error %v", err)
	}
	t.Logf("1,000,000 known ids: %d bytes, encode %v, decode %v", len(b), enc, dec)
	if got.State.KnownCount() != 1_000_000 || got.State.MergedStateHash() != s.State.MergedStateHash() {
		t.Errorf("decoded %d ids", got.State.KnownCount())
	}
}

func TestSnapshotFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.omega")
	s := snapRef(t)
	if err := s.WriteFile(path); err != nil {
		t.Fatalf("WriteFile() error %v", err)
	}
	got, err := LoadSnapshotFile(path)
	if err != nil {
		t.Fatalf("LoadSnapshotFile() error %v", err)
	}
	snapCompare(t, got, s)
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustAppendSnapshot(t, s); !bytes.Equal(onDisk, want) {
		t.Errorf("file holds %x, want %x", onDisk, want)
	}

	// Replacing keeps the old file until the new one is complete; a refused
	// snapshot leaves it untouched.
	s2 := snapRef(t)
	s2.ID = 8
	if err := s2.WriteFile(path); err != nil {
		t.Fatalf("WriteFile(replace) error %v", err)
	}
	bad := snapRef(t)
	bad.BaseOffset = 1
	if err := bad.WriteFile(path); !errors.Is(err, ErrMalformedSnapshot) {
		t.Errorf("WriteFile(bad) error %v, want ErrMalformedSnapshot", err)
	}
	if got, err := LoadSnapshotFile(path); err != nil || got.ID != 8 {
		t.Errorf("LoadSnapshotFile() after replace = %v, %v, want snapshot 8", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the snapshot (no temporary file left)", len(entries))
	}

	// Errors.
	if _, err := LoadSnapshotFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadSnapshotFile(missing) error %v, want ErrNotExist", err)
	}
	if err := s.WriteFile(filepath.Join(dir, "no", "such", "dir")); err == nil {
		t.Errorf("WriteFile(into a missing directory) = nil, want an error")
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSnapshotFile(garbage); !errors.Is(err, ErrMalformedSnapshot) {
		t.Errorf("LoadSnapshotFile(garbage) error %v, want ErrMalformedSnapshot", err)
	}
	if _, err := LoadSnapshotFile(dir); err == nil {
		t.Errorf("LoadSnapshotFile(a directory) = nil error")
	}
	// A sparse file over the limit is refused before anything is read.
	huge := filepath.Join(dir, "huge")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxSnapshotFile + 1); err != nil {
		f.Close()
		t.Skipf("cannot make a sparse file: %v", err)
	}
	f.Close()
	if _, err := LoadSnapshotFile(huge); !errors.Is(err, ErrMalformedSnapshot) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("LoadSnapshotFile(huge) error %v, want the size limit", err)
	}
}

func ExampleDecodeSnapshot() {
	e := Event{ID: ID64(1), NodeID: 7, Lamport: 1, Payload: []byte("hello"), PayloadHash: PayloadHash([]byte("hello"))}
	rOut, err := Reconcile(nil, []Event{e})
	r := rOut.Result
	if err != nil {
		panic(err)
	}
	s := &Snapshot{ID: 1, BaseOffset: framelog.HeaderSize, LastBatchID: 1, Binding: DefaultBinding(), State: r.Merge.Next}
	file, err := s.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	got, err := DecodeSnapshot(file)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(file), "bytes")
	fmt.Println("known ids:", got.State.KnownCount(), "heads:", len(got.State.Heads()))
	fmt.Println("same state:", got.State.MergedStateHash() == r.Merge.Next.MergedStateHash())
	fmt.Println("binding ok:", got.Binding.Check(DefaultBinding()) == nil)
	// Output:
	// 402 bytes
	// known ids: 1 heads: 1
	// same state: true
	// binding ok: true
}

// stream hands the file out in pieces of about streamChunk bytes, the last
// marked, then the manifest into the room it left; an error of put ends it.
func TestSnapshotStream(t *testing.T) {
	s := &Snapshot{BaseOffset: framelog.HeaderSize, Binding: DefaultBinding(), State: snapBigState(t, 140000, 70000)}
	want := mustAppendSnapshot(t, s)
	var got []byte
	var sizes []int
	var mores []bool
	patched := false
	err := s.stream(newStateWriter(s.State), func(p []byte, more bool) error {
		if patched {
			t.Fatal("put after patch")
		}
		got = append(got, p...)
		sizes, mores = append(sizes, len(p)), append(mores, more)
		return nil
	}, func(p []byte, off int64) error {
		room := got[off : off+int64(len(p))]
		if !bytes.Equal(room, make([]byte, len(p))) {
			t.Errorf("the manifest's room holds %x before patch, want zeros", room)
		}
		copy(room, p)
		patched = true
		return nil
	})
	if err != nil || !patched || !bytes.Equal(got, want) {
		t.Fatalf("stream: err %v, patched %v, %d bytes equal to AppendBinary's %d: %v", err, patched, len(got), len(want), bytes.Equal(got, want))
	}
	if len(sizes) < 3 {
		t.Fatalf("stream made %d pieces of a %d-byte file", len(sizes), len(want))
	}
	for i, n := range sizes {
		last := i == len(sizes)-1
		if mores[i] == last || !last && (n < streamChunk || n > streamChunk+stateChunk*knownRecordLen+64) {
			t.Errorf("piece %d of %d: %d bytes, more %v", i, len(sizes), n, mores[i])
		}
	}
	stop := errors.New("disk full")
	calls := 0
	err = s.stream(newStateWriter(s.State), func([]byte, bool) error { calls++; return stop },
		func([]byte, int64) error { t.Error("patch after a failed put"); return nil })
	if err != stop || calls != 1 {
		t.Errorf("stream with a failing put = %v after %d puts, want %v after 1", err, calls, stop)
	}
}
