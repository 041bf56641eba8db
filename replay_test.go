package omega

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/predicates"
)

func TestSpecBatchVector(t *testing.T) {
	vs := loadSpecVectors(t)
	v := vs["batch_payload_merge_genesis_3_events"]
	r := reconcileVector(t, vs, vs["merge_genesis_3_events"])
	meta := BatchMeta{BatchID: v.u64(t, "batch_id"), ReplaySeed: v.u64(t, "replay_seed"), CreatedAtNs: v.u64(t, "created_at_ns")}
	rec, err := Output{Result: r, Binding: DefaultBinding()}.BatchRecord(meta)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(payload), v.str(t, v.Outputs, "payload_hex"); got != want {
		t.Errorf("BATCH payload\n got %s\nwant %s", got, want)
	}
	frame, err := framelog.AppendFrame(nil, framelog.FrameBatch, payload)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(frame), v.str(t, v.Outputs, "frame_hex"); got != want {
		t.Errorf("BATCH frame\n got %s\nwant %s", got, want)
	}
	d, err := DecodeBatchRecord(payload)
	if err != nil {
		t.Fatalf("DecodeBatchRecord(vector) = %v", err)
	}
	again, _ := d.MarshalBinary()
	if !bytes.Equal(again, payload) {
		t.Errorf("decode then encode differs from the vector")
	}
}

func TestDecodeBatchRecordMalformed(t *testing.T) {
	vs := loadSpecVectors(t)
	v := vs["batch_payload_merge_genesis_3_events"]
	good, err := hex.DecodeString(v.str(t, v.Outputs, "payload_hex"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(good) {
		if _, err := DecodeBatchRecord(good[:n]); !errors.Is(err, ErrMalformedBatch) {
			t.Fatalf("DecodeBatchRecord(first %d bytes) = %v, want ErrMalformedBatch", n, err)
		}
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"kind 0", edit(func(b []byte) []byte { b[24] = 0; return b })},
		{"kind 3", edit(func(b []byte) []byte { b[24] = 3; return b })},
		{"pad", edit(func(b []byte) []byte { b[31] = 1; return b })},
		{"count over", edit(func(b []byte) []byte { b[batchOffMembers]++; return b })},
		{"count under", edit(func(b []byte) []byte { b[batchOffMembers]--; return b })},
		{"trailing byte", append(bytes.Clone(good), 0)},
	}
	for _, tt := range tests {
		if _, err := DecodeBatchRecord(tt.b); !errors.Is(err, ErrMalformedBatch) {
			t.Errorf("%s: DecodeBatchRecord = %v, want ErrMalformedBatch", tt.name, err)
		}
	}
}

func FuzzDecodeBatchRecord(f *testing.F) {
	vs := loadSpecVectors(f)
	v := vs["batch_payload_merge_genesis_3_events"]
	good, err := hex.DecodeString(v.str(f, v.Outputs, "payload_hex"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:batchFixedLen])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeBatchRecord(b)
		if err != nil {
			if r != nil || !errors.Is(err, ErrMalformedBatch) {
				t.Fatalf("DecodeBatchRecord = %v, %v, want nil and ErrMalformedBatch", r, err)
			}
			return
		}
		enc, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding = %x, %v, want the input %x", enc, err, b)
		}
	})
}

func TestSpecIncidentVector(t *testing.T) {
	vs := loadSpecVectors(t)
	v := vs["incident_member"]
	var in struct {
		BatchID  uint64 `json:"divergence_batch_id"`
		EventID  uint64 `json:"divergence_event_id"`
		Field    uint8  `json:"field"`
		Expected Hash   `json:"expected"`
		Observed Hash   `json:"observed"`
		Metadata struct {
			StateDigest Hash   `json:"state_digest"`
			SchemaHash  Hash   `json:"header_schema_hash"`
			Binding     Hash   `json:"binding_digest"`
			Seed        uint64 `json:"replay_seed"`
			LogLength   uint64 `json:"log_length"`
		} `json:"metadata"`
	}
	raw, _ := json.Marshal(v.Inputs)
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	if in.Metadata.Binding != DefaultBinding().Digest() {
		t.Fatalf("vector binding digest %v is not DefaultBinding's", in.Metadata.Binding)
	}
	md := incidentMetadataDigest(in.Metadata.StateDigest, in.Metadata.SchemaHash, in.Metadata.Binding, in.Metadata.Seed, in.Metadata.LogLength)
	if got, want := md.String(), v.str(t, v.Outputs, "metadata_digest"); got != want {
		t.Errorf("incidentMetadataDigest = %s, want %s", got, want)
	}
	inc := &Incident{BatchID: in.BatchID, EventID: ID64(in.EventID), Field: IncidentField(in.Field),
		Expected: in.Expected, Observed: in.Observed, MetadataDigest: md}
	inc.Seal()
	if got, want := inc.ID.String(), v.str(t, v.Outputs, "incident_id"); got != want {
		t.Errorf("incident_id = %s, want %s", got, want)
	}
	payload, _ := inc.AppendBinary(nil)
	if got, want := hex.EncodeToString(payload), v.str(t, v.Outputs, "payload_hex"); got != want {
		t.Errorf("INCIDENT payload\n got %s\nwant %s", got, want)
	}
	d, err := DecodeIncident(payload)
	if err != nil || *d != *inc {
		t.Fatalf("DecodeIncident(vector) = %+v, %v, want %+v", d, err, inc)
	}
	for i := range payload {
		b := bytes.Clone(payload)
		b[i] ^= 0x10
		if _, err := DecodeIncident(b); !errors.Is(err, ErrMalformedIncident) {
			t.Fatalf("DecodeIncident with byte %d changed = %v, want ErrMalformedIncident", i, err)
		}
	}
	js, _ := inc.MarshalJSON()
	var view map[string]any
	if err := json.Unmarshal(js, &view); err != nil {
		t.Fatal(err)
	}
	if view["field_name"] != "member" || view["field"] != 5.0 || view["incident_id"] != inc.ID.String() {
		t.Errorf("incident JSON = %s", js)
	}
}

// testHistory is an event log written by a Journal, with what the test
// needs to know about it.
type testHistory struct {
	log     []byte
	final   Hash
	outs    []Output
	metas   []BatchMeta
	batchAt []int64 // offset of each BATCH frame
	// members[i] are the events batch i was decided over.
	members [][]Event
	// eventAt maps an event's digest to the offset of its EVENT frame.
	eventAt map[Hash]int64
}

const testSeed = 99

// historyEvent returns event i of the test history: four nodes, two
// streams each, lamports increasing per stream, each event depending on the
// one three before it.
func historyEvent(i int) Event {
	p := []byte("payload-" + strconv.Itoa(i))
	e := Event{
		ID:          ID64(uint64(i) + 1),
		NodeID:      uint32(i % 4),
		StreamID:    uint16(i / 4 % 2),
		Lamport:     uint64(i + 1),
		MonoTSNs:    uint64(i) * 1000,
		PayloadHash: PayloadHash(p),
		Deps:        []EventID{},
		Payload:     p,
	}
	if i >= 3 {
		e.Deps = []EventID{ID64(uint64(i - 2))}
	}
	return e
}

// buildHistory journals nb batches of k events from genesis. Every batch
// whose index is 3 mod 5 also carries a new content under an id already
// accepted, so it is obstructed by 1002; its remainder is re-checked, not
// logged again, as the next batch. Batch ids skip numbers. pendingTail
// events are logged after the last batch and never decided.
func buildHistory(t testing.TB, nb, k, pendingTail int) *testHistory {
	t.Helper()
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), &framelog.WriterOptions{Sync: framelog.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	h := &testHistory{eventAt: make(map[Hash]int64)}
	next := 0
	batchID := uint64(0)
	decide := func(events []Event) Output {
		batchID += 2
		meta := BatchMeta{BatchID: batchID, ReplaySeed: testSeed, CreatedAtNs: 1_700_000_000_000_000_000 + batchID}
		h.batchAt = append(h.batchAt, w.Size())
		out, err := j.Decide(events, meta)
		if err != nil {
			t.Fatal(err)
		}
		h.outs = append(h.outs, out)
		h.metas = append(h.metas, meta)
		h.members = append(h.members, events)
		return out
	}
	logEvents := func(events []Event) {
		for i := range events {
			h.eventAt[events[i].Digest()] = w.Size()
			if _, err := j.LogEvents(events[i : i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for b := range nb {
		events := make([]Event, k)
		for i := range events {
			events[i] = historyEvent(next)
			next++
		}
		if b%5 == 3 && next > k {
			bad := historyEvent(next - k - 1) // accepted in an earlier batch
			bad.Payload = []byte("again")
			bad.PayloadHash = PayloadHash(bad.Payload)
			bad.Lamport = events[0].Lamport
			bad.NodeID = 9
			events = append(events, bad)
		}
		logEvents(events)
		out := decide(events)
		if out.Result.Kind == KindObstruction {
			if got := out.Result.Obstruction.Predicate; got != predicates.EventUnique {
				t.Fatalf("batch %d obstructed by %v, want 1002", b, got)
			}
			decide(events[:k])
		}
	}
	logEvents(func() []Event {
		tail := make([]Event, pendingTail)
		for i := range tail {
			tail[i] = historyEvent(next + i)
		}
		return tail
	}())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h.log = buf.Bytes()
	h.final = j.State().MergedStateHash()
	return h
}

// fixCRC recomputes the CRC of the frame at off.
func fixCRC(log []byte, off int64) {
	n := binary.LittleEndian.Uint32(log[off:])
	f := log[off : off+int64(n)]
	binary.LittleEndian.PutUint32(f[frameOffCRC:], crc32.ChecksumIEEE(f[frameOffType:]))
}

func mustReplay(t testing.TB, snap *Snapshot, log []byte, expected Hash, seed uint64, c *Checker, opts *ReplayOptions) *ReplayReport {
	t.Helper()
	r, err := Replay(snap, log, expected, seed, c, opts)
	if err != nil {
		t.Fatalf("Replay = %v", err)
	}
	return r
}

func defaultChecker(t testing.TB) *Checker {
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReplayDeterministic(t *testing.T) {
	h := buildHistory(t, 12, 8, 3)
	c := defaultChecker(t)
	r := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	if r.Outcome != Deterministic || r.Incident != nil {
		t.Fatalf("Replay = %v, incident %+v, want deterministic", r.Outcome, r.Incident)
	}
	if len(r.Batches) != len(h.outs) {
		t.Fatalf("replayed %d batches, want %d", len(r.Batches), len(h.outs))
	}
	obstructions := 0
	for i, b := range r.Batches {
		if b.BatchID != h.metas[i].BatchID || b.Kind != h.outs[i].Result.Kind || b.Members != len(h.outs[i].Result.Members) {
			t.Errorf("batch %d = %+v, want id %d kind %v", i, b, h.metas[i].BatchID, h.outs[i].Result.Kind)
		}
		if b.Kind == KindObstruction {
			obstructions++
		}
	}
	if obstructions == 0 {
		t.Fatal("history has no obstruction: the test covers less than it says")
	}
	if r.State.MergedStateHash() != h.final || r.LastBatchID != h.metas[len(h.metas)-1].BatchID {
		t.Errorf("final state %v after batch %d, want %v after %d", r.State.MergedStateHash(), r.LastBatchID, h.final, h.metas[len(h.metas)-1].BatchID)
	}
	if len(r.Pending) != 3 {
		t.Fatalf("pending = %d events, want the 3 logged after the last batch", len(r.Pending))
	}
	for i := 1; i < len(r.Pending); i++ {
		if (&r.Pending[i-1]).Compare(&r.Pending[i]) >= 0 {
			t.Errorf("pending events not in canonical order")
		}
	}
	if r.LogEnd != int64(len(h.log)) || r.TornTail != 0 {
		t.Errorf("LogEnd %d, TornTail %d, want %d, 0", r.LogEnd, r.TornTail, len(h.log))
	}
	// The same replay under another checker on purpose is equivalent.
	r = mustReplay(t, nil, h.log, h.final, testSeed, c, &ReplayOptions{OtherChecker: true})
	if r.Outcome != Equivalent {
		t.Errorf("Replay with OtherChecker = %v, want equivalent", r.Outcome)
	}
}

// wantIncident fails the test unless r ended with an incident of field f
// at batch and event.
func wantIncident(t *testing.T, r *ReplayReport, f IncidentField, batch uint64, ev EventID) *Incident {
	t.Helper()
	if r.Outcome != Diverged || r.Incident == nil {
		t.Fatalf("Replay = %v, want an incident of field %v", r.Outcome, f)
	}
	inc := r.Incident
	if inc.Field != f || inc.BatchID != batch || inc.EventID != ev {
		t.Fatalf("incident = field %v batch %d event %v, want field %v batch %d event %v", inc.Field, inc.BatchID, inc.EventID, f, batch, ev)
	}
	return inc
}

func TestReplayAlteredEvent(t *testing.T) {
	h := buildHistory(t, 6, 8, 0)
	c := defaultChecker(t)
	// For each batch and a sample of its members, change one byte of the
	// member's EVENT frame (CRC fixed up): the incident names that batch
	// (the first batch the event is a member of) and that event.
	seen := make(map[Hash]bool)
	for bi, events := range h.members {
		for ei := 0; ei < len(events); ei += 3 {
			d := events[ei].Digest()
			if seen[d] {
				continue // decided by an earlier batch
			}
			seen[d] = true
			off := h.eventAt[d]
			for _, at := range []int{0, 17, 22, 49, eventHeaderLen} { // id, node, lamport, payload hash, deps
				log := bytes.Clone(h.log)
				log[off+framelog.FrameHeaderLen+int64(at)] ^= 0x01
				fixCRC(log, off)
				r := mustReplay(t, nil, log, h.final, testSeed, c, nil)
				wantIncident(t, r, FieldMember, h.metas[bi].BatchID, events[ei].ID)
			}
		}
	}
}

func TestReplayAlteredBatch(t *testing.T) {
	h := buildHistory(t, 5, 4, 0)
	c := defaultChecker(t)
	for bi, off := range h.batchAt {
		n := int64(binary.LittleEndian.Uint32(h.log[off:]))
		for i := int64(framelog.FrameHeaderLen); i < n; i++ {
			p := i - framelog.FrameHeaderLen
			if 16 <= p && p < 24 {
				continue // created_at_ns: only the certificate chain covers it
			}
			log := bytes.Clone(h.log)
			log[off+i] ^= 0x80
			fixCRC(log, off)
			r, err := Replay(nil, log, h.final, testSeed, c, nil)
			if err != nil {
				if !errors.Is(err, ErrReplayFormat) {
					t.Fatalf("batch %d byte %d: Replay error %v, want ErrReplayFormat", bi, p, err)
				}
				continue
			}
			if r.Outcome == Deterministic {
				if p < 8 {
					// A batch id changed to another increasing one: only
					// the certificate chain covers it, as below.
					certs := certifyHistory(t, h)
					r = mustReplay(t, nil, log, h.final, testSeed, c, &ReplayOptions{Certificates: certs})
					if r.Outcome != Diverged {
						t.Fatalf("batch %d batch_id byte %d changed: with certificates %v, want an incident", bi, p, r.Outcome)
					}
					continue
				}
				t.Fatalf("batch %d byte %d changed: Replay = deterministic", bi, p)
			}
		}
	}
}

// certifyHistory certifies every batch of h, in order.
func certifyHistory(t testing.TB, h *testHistory) []*Certificate {
	t.Helper()
	var certs []*Certificate
	var prev Hash
	for i, out := range h.outs {
		c, err := Certify(out, DefaultBinding(), h.metas[i], prev, vectorKey())
		if err != nil {
			t.Fatal(err)
		}
		prev = c.Hash()
		certs = append(certs, c)
	}
	return certs
}

func TestReplayCertificates(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	if _, err := VerifyChain(context.Background(), certs, vectorRing(), DefaultBinding(), nil); err != nil {
		t.Fatal(err)
	}
	r := mustReplay(t, nil, h.log, h.final, testSeed, c, &ReplayOptions{Certificates: certs})
	if r.Outcome != Deterministic {
		t.Fatalf("Replay with the certificates = %v %+v, want deterministic", r.Outcome, r.Incident)
	}
	// A missing certificate.
	missing := append(append([]*Certificate(nil), certs[:2]...), certs[3:]...)
	r = mustReplay(t, nil, h.log, h.final, testSeed, c, &ReplayOptions{Certificates: missing})
	wantIncident(t, r, FieldCertificate, h.metas[2].BatchID, EventID{})
	// A certificate whose batch has no BATCH frame: the log cut after the
	// second BATCH, replayed to the state there.
	cut := h.log[:h.batchAt[2]]
	mid := h.outs[1].Result.PriorStateHash
	if h.outs[1].Result.Kind == KindMerge {
		mid = h.outs[1].Result.Merge.MergedStateHash
	}
	r = mustReplay(t, nil, cut, mid, testSeed, c, &ReplayOptions{Certificates: certs})
	wantIncident(t, r, FieldCertificate, h.metas[2].BatchID, EventID{})
	// created_at_ns changed in a BATCH frame: the certificate differs.
	log := bytes.Clone(h.log)
	log[h.batchAt[1]+framelog.FrameHeaderLen+16] ^= 1
	fixCRC(log, h.batchAt[1])
	r = mustReplay(t, nil, log, h.final, testSeed, c, &ReplayOptions{Certificates: certs})
	inc := wantIncident(t, r, FieldCreatedAt, h.metas[1].BatchID, EventID{})
	if inc.Observed != u64Hash(h.metas[1].CreatedAtNs) {
		t.Errorf("observed = %v, want the certificate's created_at_ns", inc.Observed)
	}
}

func TestReplaySeedBindingOrder(t *testing.T) {
	h := buildHistory(t, 4, 4, 0)
	c := defaultChecker(t)
	first := h.metas[0].BatchID

	inc := wantIncident(t, mustReplay(t, nil, h.log, h.final, testSeed+1, c, nil), FieldReplaySeed, first, EventID{})
	if inc.Expected != u64Hash(testSeed) || inc.Observed != u64Hash(testSeed+1) {
		t.Errorf("seed incident expected %v observed %v", inc.Expected, inc.Observed)
	}

	// Another catalog: every BATCH names the default binding.
	other, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{testDomain{}}})
	if err != nil {
		t.Fatal(err)
	}
	inc = wantIncident(t, mustReplay(t, nil, h.log, h.final, testSeed, other, nil), FieldBinding, first, EventID{})
	if inc.Expected != DefaultBinding().Digest() || inc.Observed != other.Binding().Digest() {
		t.Errorf("binding incident expected %v observed %v", inc.Expected, inc.Observed)
	}
	// A log header bound to another schema: found before any batch.
	log := bytes.Clone(h.log)
	log[logOffSchemaHash] ^= 1
	wantIncident(t, mustReplay(t, nil, log, h.final, testSeed, c, nil), FieldBinding, 0, EventID{})
	// The original system's unbound header (all-zero schema hash) too.
	log = bytes.Clone(h.log)
	clear(log[logOffSchemaHash : logOffSchemaHash+32])
	wantIncident(t, mustReplay(t, nil, log, h.final, testSeed, c, nil), FieldBinding, 0, EventID{})
	// A snapshot bound to another catalog.
	snap := &Snapshot{BaseOffset: framelog.HeaderSize, Binding: other.Binding()}
	wantIncident(t, mustReplay(t, snap, h.log, h.final, testSeed, c, nil), FieldBinding, 0, EventID{})

	// A batch id that does not increase: the second BATCH given the first's id.
	log = bytes.Clone(h.log)
	binary.LittleEndian.PutUint64(log[h.batchAt[1]+framelog.FrameHeaderLen:], first)
	fixCRC(log, h.batchAt[1])
	inc = wantIncident(t, mustReplay(t, nil, log, h.final, testSeed, c, nil), FieldOrder, first, EventID{})
	if inc.Observed != u64Hash(first) {
		t.Errorf("order incident observed %v, want the previous batch id", inc.Observed)
	}

	// The wrong final hash.
	wrong := h.final
	wrong[0] ^= 1
	inc = wantIncident(t, mustReplay(t, nil, h.log, wrong, testSeed, c, nil), FieldFinalState, h.metas[len(h.metas)-1].BatchID, EventID{})
	if inc.Expected != wrong || inc.Observed != h.final {
		t.Errorf("final incident expected %v observed %v", inc.Expected, inc.Observed)
	}
}

type testDomain struct{}

func (testDomain) Entry() predicates.Entry {
	return predicates.Entry{ID: 4000, Name: "never", Arity: 1, SemanticsRef: "test://never/v1"}
}
func (testDomain) Violated(*Event, *State) bool { return false }

func TestReplayIncidentDeterministic(t *testing.T) {
	h := buildHistory(t, 4, 4, 0)
	c := defaultChecker(t)
	a := mustReplay(t, nil, h.log, h.final, 7, c, nil).Incident
	b := mustReplay(t, nil, h.log, h.final, 7, c, nil).Incident
	if a == nil || *a != *b {
		t.Fatalf("two replays gave incidents %+v and %+v", a, b)
	}
	want := incidentMetadataDigest(Hash{}, schemaHash(), DefaultBinding().Digest(), 7, uint64(len(h.log)))
	if a.MetadataDigest != want {
		t.Errorf("metadata digest %v, want %v", a.MetadataDigest, want)
	}
	dir := t.TempDir()
	hdr := DefaultBinding().Header()
	if err := a.WriteFile(dir, hdr); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(dir, a.ID.String()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	view, _ := a.MarshalJSON()
	if !bytes.Equal(bytes.TrimSpace(js), view) {
		t.Errorf("incident JSON file = %s, want %s", js, view)
	}
	b2, err := os.ReadFile(filepath.Join(dir, "incidents.omega"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := framelog.NewScanner(b2, nil).Next()
	if err != nil || f.Type != framelog.FrameIncident {
		t.Fatalf("incidents.omega first frame = %v, %v", f.Type, err)
	}
	if d, err := DecodeIncident(f.Payload); err != nil || *d != *a {
		t.Fatalf("INCIDENT frame decodes to %+v, %v", d, err)
	}
}

func TestReplayMember(t *testing.T) {
	h := buildHistory(t, 3, 4, 0)
	c := defaultChecker(t)
	// Two members of the second batch swapped: the second one is out of
	// canonical order.
	off := h.batchAt[1] + framelog.FrameHeaderLen + batchFixedLen
	log := bytes.Clone(h.log)
	m0 := bytes.Clone(log[off : off+batchMemberLen])
	copy(log[off:], log[off+batchMemberLen:off+2*batchMemberLen])
	copy(log[off+batchMemberLen:], m0)
	fixCRC(log, h.batchAt[1])
	mem := h.outs[1].Result.Members
	inc := wantIncident(t, mustReplay(t, nil, log, h.final, testSeed, c, nil), FieldMember, h.metas[1].BatchID, mem[0].ID)
	if inc.Expected != mem[0].Digest || inc.Observed != mem[1].Digest {
		t.Errorf("order incident expected %v observed %v, want the member's and the previous member's digests", inc.Expected, inc.Observed)
	}
	// A member whose id was never logged.
	log = bytes.Clone(h.log)
	binary.LittleEndian.PutUint64(log[off:], 1<<40)
	fixCRC(log, h.batchAt[1])
	inc = wantIncident(t, mustReplay(t, nil, log, h.final, testSeed, c, nil), FieldMember, h.metas[1].BatchID, ID64(1<<40))
	if !inc.Observed.IsZero() {
		t.Errorf("observed %v, want zero for an id never logged", inc.Observed)
	}
}

func TestReplayFormatErrors(t *testing.T) {
	h := buildHistory(t, 3, 4, 0)
	c := defaultChecker(t)
	tests := []struct {
		name string
		log  []byte
		snap *Snapshot
	}{
		{"bad magic", func() []byte { b := bytes.Clone(h.log); b[0] = 'X'; return b }(), nil},
		{"torn header", h.log[:10], nil},
		{"corrupt frame followed by data", func() []byte { b := bytes.Clone(h.log); b[framelog.HeaderSize+20] ^= 1; return b }(), nil},
		{"malformed BATCH", func() []byte {
			b := bytes.Clone(h.log)
			b[h.batchAt[0]+framelog.FrameHeaderLen+25] = 1 // pad
			fixCRC(b, h.batchAt[0])
			return b
		}(), nil},
		{"base offset inside a frame", h.log, &Snapshot{BaseOffset: framelog.HeaderSize + 3, Binding: DefaultBinding()}},
		{"base offset past the end", h.log, &Snapshot{BaseOffset: int64(len(h.log)) + 100, Binding: DefaultBinding()}},
		{"base offset below the header", h.log, &Snapshot{BaseOffset: 10, Binding: DefaultBinding()}},
		{"base offset at the int64 limit", h.log, &Snapshot{BaseOffset: math.MaxInt64, Binding: DefaultBinding()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Replay(tt.snap, tt.log, h.final, testSeed, c, nil)
			if !errors.Is(err, ErrReplayFormat) {
				t.Fatalf("Replay = %+v, %v, want ErrReplayFormat", r, err)
			}
		})
	}
	// A torn tail is the end of the log, reported.
	cut := h.log[:len(h.log)-5]
	r := mustReplay(t, nil, cut, h.outs[len(h.outs)-1].Result.PriorStateHash, testSeed, c, nil)
	if r.TornTail == 0 || r.LogEnd != h.batchAt[len(h.batchAt)-1] {
		t.Errorf("torn tail: LogEnd %d TornTail %d, want end at the last BATCH %d", r.LogEnd, r.TornTail, h.batchAt[len(h.batchAt)-1])
	}
}

// A checker whose limits allow more than the defaults replays the events
// they allowed: logged events are read back under the checker's limits.
func TestReplayUnderWiderLimits(t *testing.T) {
	c, err := NewChecker(&CheckerOptions{Limits: Limits{MaxPayload: 32 << 20, MaxDeps: 2000}})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{7}, 17<<20)
	deps := make([]EventID, 1500)
	for i := range deps {
		deps[i] = ID64(uint64(i) + 10)
	}
	events := []Event{
		{ID: ID64(1), NodeID: 1, Lamport: 1, PayloadHash: PayloadHash(big), Deps: []EventID{}, Payload: big},
		{ID: ID64(2), NodeID: 2, Lamport: 1, PayloadHash: PayloadHash(nil), Deps: []EventID{}},
	}
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	if _, err := j.LogEvents(events); err != nil {
		t.Fatal(err)
	}
	out, err := j.Decide(events, BatchMeta{BatchID: 1, ReplaySeed: testSeed})
	if err != nil || out.Result.Kind != KindMerge {
		t.Fatalf("Decide = %v, %v; want a merge", out.Result, err)
	}
	// A second batch whose event has more dependencies than the default
	// limit: a 2002 obstruction, recorded and replayed as one.
	wide := Event{ID: ID64(3), NodeID: 3, Lamport: 2, PayloadHash: PayloadHash(nil), Deps: deps}
	if _, err := j.LogEvents([]Event{wide}); err != nil {
		t.Fatal(err)
	}
	if out, err = j.Decide([]Event{wide}, BatchMeta{BatchID: 2, ReplaySeed: testSeed}); err != nil || out.Result.Kind != KindObstruction {
		t.Fatalf("Decide = %v, %v; want an obstruction", out.Result, err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	r := mustReplay(t, nil, buf.Bytes(), j.State().MergedStateHash(), testSeed, c, nil)
	if r.Outcome != Deterministic || len(r.Batches) != 2 {
		t.Fatalf("Replay = %v, %d batches, %+v; want deterministic, 2", r.Outcome, len(r.Batches), r.Incident)
	}
}

// An event logged again, byte for byte, after the batch that merged it is
// pending (SPEC 7: it meets 1002 when batched): a snapshot taken there
// holds it, and the batch that obstructs it replays from that snapshot.
func TestReplayRelogCopyIsPending(t *testing.T) {
	c := defaultChecker(t)
	e := Event{ID: ID64(1), NodeID: 1, Lamport: 1, PayloadHash: PayloadHash([]byte("e")), Deps: []EventID{}, Payload: []byte("e")}
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	if _, err := j.LogEvents([]Event{e}); err != nil {
		t.Fatal(err)
	}
	if out, err := j.Decide([]Event{e}, BatchMeta{BatchID: 1, ReplaySeed: testSeed}); err != nil || out.Result.Kind != KindMerge {
		t.Fatalf("Decide = %v, %v; want a merge", out.Result, err)
	}
	if _, err := j.LogEvents([]Event{e}); err != nil { // again, not yet batched
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	mid := bytes.Clone(buf.Bytes())
	pre := mustReplay(t, nil, mid, j.State().MergedStateHash(), testSeed, c, nil)
	if len(pre.Pending) != 1 || pre.Pending[0].ID != e.ID {
		t.Fatalf("pending after the copy logged again = %d events, want it", len(pre.Pending))
	}
	file, err := pre.Snapshot(1, 0).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := DecodeSnapshot(file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := j.Decide([]Event{e}, BatchMeta{BatchID: 2, ReplaySeed: testSeed})
	if err != nil || out.Result.Kind != KindObstruction {
		t.Fatalf("Decide(the copy) = %v, %v; want a 1002 obstruction", out.Result, err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	for name, from := range map[string]*Snapshot{"genesis": nil, "the snapshot": snap} {
		r := mustReplay(t, from, buf.Bytes(), j.State().MergedStateHash(), testSeed, c, nil)
		if r.Outcome != Deterministic || len(r.Pending) != 0 {
			t.Errorf("replay from %s = %v, %d pending, %+v; want deterministic, none pending", name, r.Outcome, len(r.Pending), r.Incident)
		}
	}
}

// Members resolve among many logged copies of one id, more than resolve
// walks, to the last copy with their digest, older copies included.
func TestReplayManyCopiesOfOneID(t *testing.T) {
	c := defaultChecker(t)
	copyOf := func(i int) Event {
		p := []byte(fmt.Sprint("copy ", i))
		return Event{ID: ID64(7), NodeID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}
	}
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	logCopies := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := j.LogEvents([]Event{copyOf(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	decide := func(id uint64, i int, want Kind) {
		t.Helper()
		if out, err := j.Decide([]Event{copyOf(i)}, BatchMeta{BatchID: id, ReplaySeed: testSeed}); err != nil || out.Result.Kind != want {
			t.Fatalf("Decide(copy %d) = %v, %v; want %v", i, out.Result, err, want)
		}
	}
	logCopies(0, 4*chainScan)
	decide(1, 5, KindMerge)
	logCopies(100, 100+4*chainScan)
	decide(2, 5, KindObstruction) // an older copy: 1002
	logCopies(110, 111)           // copy 110 twice: batch 3 decides the later
	decide(3, 110, KindObstruction)
	logCopies(5, 6) // copy 5 again, after the batches that decided it
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	r := mustReplay(t, nil, buf.Bytes(), j.State().MergedStateHash(), testSeed, c, nil)
	if r.Outcome != Deterministic || len(r.Batches) != 3 {
		t.Fatalf("Replay = %v, %d batches, %+v; want deterministic, 3", r.Outcome, len(r.Batches), r.Incident)
	}
	if want := 8*chainScan - 2 + 1; len(r.Pending) != want {
		t.Errorf("%d pending, want %d: every copy but the two decided, and copy 5 logged again", len(r.Pending), want)
	}
}

// A report that ends in an incident gives no snapshot to continue from:
// one past the diverging batch would hide it from the next replay.
func TestReplayDivergedGivesNoSnapshot(t *testing.T) {
	h := buildHistory(t, 3, 4, 0)
	r, err := Replay(nil, h.log, h.final, testSeed+1, defaultChecker(t), nil)
	if err != nil || r.Outcome != Diverged {
		t.Fatalf("Replay with another seed = %v, %v; want an incident", r, err)
	}
	if s := r.Snapshot(1, 0); s != nil {
		t.Errorf("Snapshot of a diverged report = %+v, want nil", s)
	}
}

func TestReplayFromMidHistorySnapshot(t *testing.T) {
	h := buildHistory(t, 10, 6, 2)
	c := defaultChecker(t)
	full := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	if full.Outcome != Deterministic {
		t.Fatal(full.Outcome)
	}
	// Cut points: at a BATCH frame, and at the third EVENT frame of a
	// batch, so that the snapshot holds pending events.
	for _, bi := range []int{1, 4, 7} {
		cuts := []int64{h.batchAt[bi]}
		if at, ok := h.eventAt[h.members[bi][2].Digest()]; ok && at > h.batchAt[bi-1] {
			cuts = append(cuts, at)
		}
		for _, cut := range cuts {
			pre := mustReplay(t, nil, h.log[:cut], stateAt(h, full, cut), testSeed, c, nil)
			if pre.Outcome != Deterministic {
				t.Fatalf("replay of the first %d bytes: %v %+v", cut, pre.Outcome, pre.Incident)
			}
			// Through the snapshot file, as a restart would load it.
			file, err := pre.Snapshot(uint64(bi), 1).AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := DecodeSnapshot(file)
			if err != nil {
				t.Fatal(err)
			}
			if cut != h.batchAt[bi] && len(snap.Pending) == 0 {
				t.Fatalf("snapshot cut inside batch %d holds no pending event", bi)
			}
			r := mustReplay(t, snap, h.log, h.final, testSeed, c, nil)
			if r.Outcome != Deterministic {
				t.Fatalf("replay from a snapshot at %d: %v %+v", cut, r.Outcome, r.Incident)
			}
			if got, want := r.State.KnownIDs(), full.State.KnownIDs(); !slices.Equal(got, want) {
				t.Fatalf("known ids differ: %d, want %d", len(got), len(want))
			}
			if r.State.HeadsDigest() != full.State.HeadsDigest() || r.State.FrontierDigest() != full.State.FrontierDigest() {
				t.Errorf("snapshot replay state differs from the full replay's")
			}
			if len(r.Pending) != len(full.Pending) || len(r.Batches)+len(pre.Batches) != len(full.Batches) {
				t.Errorf("pending %d after %d+%d batches, want %d after %d", len(r.Pending), len(pre.Batches), len(r.Batches), len(full.Pending), len(full.Batches))
			}
		}
	}
}

// stateAt returns the merged state hash of h at byte offset cut: after the
// last BATCH frame before it.
func stateAt(h *testHistory, full *ReplayReport, cut int64) Hash {
	var s Hash
	for i, at := range h.batchAt {
		if at < cut {
			s = full.Batches[i].MergedStateHash
		}
	}
	return s
}

func FuzzDecodeIncident(f *testing.F) {
	vs := loadSpecVectors(f)
	v := vs["incident_member"]
	good, err := hex.DecodeString(v.str(f, v.Outputs, "payload_hex"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		inc, err := DecodeIncident(b)
		if err != nil {
			if inc != nil || !errors.Is(err, ErrMalformedIncident) {
				t.Fatalf("DecodeIncident = %v, %v, want nil and ErrMalformedIncident", inc, err)
			}
			return
		}
		enc, _ := inc.AppendBinary(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding = %x, want the input %x", enc, b)
		}
	})
}

// FuzzReplay replays mutated logs: Replay never panics, every error wraps
// ErrReplayFormat, and a log that is not the original byte for byte (up to
// created_at_ns and batch ids, which only certificates cover, and a torn
// tail of frames no member needs) is never reported deterministic unless
// its batches re-execute to the expected final state.
func FuzzReplay(f *testing.F) {
	h := buildHistory(f, 3, 3, 1)
	f.Add(h.log)
	f.Add(h.log[:len(h.log)-7])
	c := defaultChecker(f)
	f.Fuzz(func(t *testing.T, log []byte) {
		r, err := Replay(nil, log, h.final, testSeed, c, nil)
		if err != nil {
			if r != nil || !errors.Is(err, ErrReplayFormat) {
				t.Fatalf("Replay = %v, %v, want nil and ErrReplayFormat", r, err)
			}
			return
		}
		if r.Outcome == Deterministic && r.State.MergedStateHash() != h.final {
			t.Fatalf("deterministic at state %v, want %v", r.State.MergedStateHash(), h.final)
		}
		if (r.Outcome == Diverged) != (r.Incident != nil) {
			t.Fatalf("outcome %v with incident %v", r.Outcome, r.Incident)
		}
	})
}

// A snapshot not taken from a log (base offset 64) replays only the
// batches after its last_batch_id.
func TestReplaySnapshotNotFromLog(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	full := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	const k = 2
	pre := mustReplay(t, nil, h.log[:h.batchAt[k+1]], full.Batches[k].MergedStateHash, testSeed, c, nil)
	snap := &Snapshot{ID: 1, BaseOffset: framelog.HeaderSize, LastBatchID: h.metas[k].BatchID, Binding: DefaultBinding(), State: pre.State}
	r := mustReplay(t, snap, h.log, h.final, testSeed, c, nil)
	if r.Outcome != Deterministic {
		t.Fatalf("Replay from a snapshot at batch %d = %v %+v", h.metas[k].BatchID, r.Outcome, r.Incident)
	}
	if len(r.Batches) != len(full.Batches)-(k+1) || r.Batches[0].BatchID != h.metas[k+1].BatchID {
		t.Fatalf("replayed %d batches from %d, want %d from %d", len(r.Batches), r.Batches[0].BatchID, len(full.Batches)-(k+1), h.metas[k+1].BatchID)
	}
	// A batch id at or below the snapshot's after a replayed batch is out
	// of order.
	log := bytes.Clone(h.log)
	binary.LittleEndian.PutUint64(log[h.batchAt[k+2]+framelog.FrameHeaderLen:], h.metas[k].BatchID)
	fixCRC(log, h.batchAt[k+2])
	wantIncident(t, mustReplay(t, snap, log, h.final, testSeed, c, nil), FieldOrder, h.metas[k].BatchID, EventID{})
}

// A member that names an older copy of an id logged again with other
// content resolves to that older copy: the last EVENT frame with the
// member's digest, not the last with its id.
func TestReplayOlderCopy(t *testing.T) {
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := defaultChecker(t)
	j := NewJournal(w, c, nil, 0)
	a, b := historyEvent(0), historyEvent(0)
	b.Payload = []byte("other content, same id")
	b.PayloadHash = PayloadHash(b.Payload)
	if _, err := j.LogEvents([]Event{a, b}); err != nil {
		t.Fatal(err)
	}
	out, err := j.Decide([]Event{a}, BatchMeta{BatchID: 1, ReplaySeed: testSeed})
	if err != nil || out.Result.Kind != KindMerge {
		t.Fatal(err, out.Result.Kind)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustReplay(t, nil, buf.Bytes(), j.State().MergedStateHash(), testSeed, c, nil)
	if r.Outcome != Deterministic {
		t.Fatalf("Replay = %v %+v, want deterministic", r.Outcome, r.Incident)
	}
	// b was logged and never decided: pending.
	if len(r.Pending) != 1 || r.Pending[0].Digest() != b.Digest() {
		t.Fatalf("pending = %v, want the other copy", r.Pending)
	}
}

// frameLen returns the length of the frame at off.
func frameLen(log []byte, off int64) int64 { return int64(binary.LittleEndian.Uint32(log[off:])) }

// What replay alone cannot judge (SPEC 7) is in its report: a BATCH frame
// recording an obstruction that is cut off, deleted or re-typed, or a last
// batch id grown larger, leaves the final hash as it was, but changes the
// counts of batches, the last batch id or the torn tail the report
// carries; with the certificate chain it is a field-11 incident.
func TestReplayReportsWhatOnlyTheChainCovers(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	ob := slices.IndexFunc(h.outs, func(o Output) bool { return o.Result.Kind == KindObstruction })
	if ob < 1 || ob == len(h.outs)-1 {
		t.Fatalf("obstruction at batch %d of %d: the test needs one with batches before and after it", ob, len(h.outs))
	}
	obAt, obLen := h.batchAt[ob], frameLen(h.log, h.batchAt[ob])
	last := len(h.outs) - 1
	lastAt := h.batchAt[last]

	// The log up to the obstruction's BATCH frame, and the whole log,
	// intact.
	upTo := h.log[:obAt+obLen]
	mid := h.outs[ob].Result.PriorStateHash // the state there
	full := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	part := mustReplay(t, nil, upTo, mid, testSeed, c, nil)
	if full.Outcome != Deterministic || part.Outcome != Deterministic || full.Obstructions == 0 || part.Obstructions == 0 {
		t.Fatalf("intact replays = %v with %d obstructions, %v with %d; want deterministic with some",
			full.Outcome, full.Obstructions, part.Outcome, part.Obstructions)
	}
	if full.Merges+full.Obstructions != len(h.outs) || part.Merges+part.Obstructions != ob+1 {
		t.Fatalf("intact replays count %d+%d and %d+%d batches, want %d and %d",
			full.Merges, full.Obstructions, part.Merges, part.Obstructions, len(h.outs), ob+1)
	}

	cut := upTo[:len(upTo)-5]
	deleted := slices.Concat(h.log[:obAt], h.log[obAt+obLen:])
	retyped := bytes.Clone(h.log)
	binary.LittleEndian.PutUint16(retyped[obAt+frameOffType:], uint16(framelog.FrameAppMin))
	fixCRC(retyped, obAt)
	larger := bytes.Clone(h.log)
	binary.LittleEndian.PutUint64(larger[lastAt+framelog.FrameHeaderLen:], h.metas[last].BatchID+5)
	fixCRC(larger, lastAt)

	tests := []struct {
		name  string
		log   []byte
		certs []*Certificate // the chain of the intact log
		// What the report of the damaged log shows, against the intact one.
		want func(r, intact *ReplayReport) string
		// The certificate the chain finds without its batch.
		orphan uint64
	}{
		{"obstruction BATCH cut off", cut, certs[:ob+1], func(r, intact *ReplayReport) string {
			if r.Obstructions != intact.Obstructions-1 || r.LastBatchID != h.metas[ob-1].BatchID || r.TornTail != obLen-5 || r.LogEnd != obAt {
				return fmt.Sprintf("%d obstructions, last batch %d, torn tail of %d bytes at %d; want %d, %d, %d at %d",
					r.Obstructions, r.LastBatchID, r.TornTail, r.LogEnd, intact.Obstructions-1, h.metas[ob-1].BatchID, obLen-5, obAt)
			}
			return ""
		}, h.metas[ob].BatchID},
		{"obstruction BATCH deleted", deleted, certs, func(r, intact *ReplayReport) string {
			if r.Obstructions != intact.Obstructions-1 || r.Merges != intact.Merges || len(r.Pending) != len(intact.Pending)+1 {
				return fmt.Sprintf("%d obstructions, %d merges, %d pending; want %d, %d, %d",
					r.Obstructions, r.Merges, len(r.Pending), intact.Obstructions-1, intact.Merges, len(intact.Pending)+1)
			}
			return ""
		}, h.metas[ob].BatchID},
		{"obstruction BATCH re-typed", retyped, certs, func(r, intact *ReplayReport) string {
			if r.Obstructions != intact.Obstructions-1 || r.Merges != intact.Merges || r.LogEnd != intact.LogEnd {
				return fmt.Sprintf("%d obstructions, %d merges, log end %d; want %d, %d, %d",
					r.Obstructions, r.Merges, r.LogEnd, intact.Obstructions-1, intact.Merges, intact.LogEnd)
			}
			return ""
		}, h.metas[ob].BatchID},
		{"last batch id larger", larger, certs, func(r, intact *ReplayReport) string {
			if r.LastBatchID != intact.LastBatchID+5 || r.Merges != intact.Merges || r.Obstructions != intact.Obstructions {
				return fmt.Sprintf("last batch %d, %d merges, %d obstructions; want %d, %d, %d",
					r.LastBatchID, r.Merges, r.Obstructions, intact.LastBatchID+5, intact.Merges, intact.Obstructions)
			}
			return ""
		}, h.metas[last].BatchID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			intact, final := full, h.final
			if len(tt.certs) < len(certs) {
				intact, final = part, mid
			}
			// Alone, replay reaches the same final state: deterministic,
			// with the damage in the report.
			r := mustReplay(t, nil, tt.log, final, testSeed, c, nil)
			if r.Outcome != Deterministic || r.State.MergedStateHash() != final {
				t.Fatalf("Replay = %v %+v, want deterministic at the intact log's final state", r.Outcome, r.Incident)
			}
			if msg := tt.want(r, intact); msg != "" {
				t.Errorf("Replay reports %s", msg)
			}
			// With the chain, the certificate without its BATCH frame,
			// whether or not an uncertified suffix is accepted.
			for _, suffix := range []bool{false, true} {
				r = mustReplay(t, nil, tt.log, final, testSeed, c, &ReplayOptions{Certificates: tt.certs, UncertifiedSuffix: suffix})
				inc := wantIncident(t, r, FieldCertificate, tt.orphan, EventID{})
				if inc.Expected != u64Hash(tt.orphan) || !inc.Observed.IsZero() {
					t.Errorf("incident expected %v observed %v, want the batch id and zero", inc.Expected, inc.Observed)
				}
			}
		})
	}
}

// With the certificate chain given, a snapshot is trusted only as far as
// it matches the last Merge certificate at or before its last batch (SPEC
// 7). One whose frontier digest or merged state hash was changed, and
// written again through the API so that it loads, is a field-11 incident
// before any batch; without the chain nothing covers its frontier digest.
func TestReplaySnapshotAgainstChain(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	full := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	ob := slices.IndexFunc(h.outs, func(o Output) bool { return o.Result.Kind == KindObstruction })
	if ob < 1 || h.outs[ob-1].Result.Kind != KindMerge {
		t.Fatalf("obstruction at batch %d: the test needs a merge before it", ob)
	}
	// Snapshots after a merge, and after an obstruction, whose last Merge
	// certificate is the one before it.
	for _, k := range []int{ob - 1, ob} {
		lastMerge := certs[ob-1].Merge
		pre := mustReplay(t, nil, h.log[:h.batchAt[k+1]], full.Batches[k].MergedStateHash, testSeed, c, nil)
		if pre.LastBatchID != h.metas[k].BatchID {
			t.Fatalf("snapshot after batch %d, want %d", pre.LastBatchID, h.metas[k].BatchID)
		}
		reseal := func(merged, frontier Hash) *Snapshot {
			t.Helper()
			st, err := NewState(pre.State.KnownIDs(), pre.State.Heads(), merged, frontier)
			if err != nil {
				t.Fatal(err)
			}
			s := pre.Snapshot(1, 1)
			s.State = st
			file, err := s.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := DecodeSnapshot(file)
			if err != nil {
				t.Fatalf("the resealed snapshot does not load: %v", err)
			}
			return snap
		}
		withChain := &ReplayOptions{Certificates: certs}
		merged, frontier := pre.State.MergedStateHash(), pre.State.FrontierDigest()
		if merged != lastMerge.MergedStateHash || frontier != lastMerge.FrontierDigest {
			t.Fatalf("batch %d: the snapshot's state is not the last merge certificate's", k)
		}
		if r := mustReplay(t, reseal(merged, frontier), h.log, h.final, testSeed, c, withChain); r.Outcome != Deterministic {
			t.Fatalf("batch %d: Replay from the intact snapshot with the chain = %v %+v", k, r.Outcome, r.Incident)
		}

		badFrontier := frontier
		badFrontier[0] ^= 1
		snap := reseal(merged, badFrontier)
		if r := mustReplay(t, snap, h.log, h.final, testSeed, c, nil); r.Outcome != Deterministic {
			t.Fatalf("batch %d: Replay from a snapshot with another frontier, without the chain = %v, want deterministic", k, r.Outcome)
		}
		inc := wantIncident(t, mustReplay(t, snap, h.log, h.final, testSeed, c, withChain), FieldCertificate, h.metas[k].BatchID, EventID{})
		if inc.Expected != frontier || inc.Observed != badFrontier {
			t.Errorf("batch %d: frontier incident expected %v observed %v, want the certificate's and the snapshot's", k, inc.Expected, inc.Observed)
		}

		badMerged := merged
		badMerged[0] ^= 1
		inc = wantIncident(t, mustReplay(t, reseal(badMerged, badFrontier), h.log, h.final, testSeed, c, withChain), FieldCertificate, h.metas[k].BatchID, EventID{})
		if inc.Expected != merged || inc.Observed != badMerged {
			t.Errorf("batch %d: merged state incident expected %v observed %v, want the certificate's and the snapshot's", k, inc.Expected, inc.Observed)
		}
	}
	// Before any Merge certificate, the hashes must be zero.
	st, err := NewState(nil, nil, Hash{}, Hash{1})
	if err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{BaseOffset: framelog.HeaderSize, Binding: DefaultBinding(), State: st}
	inc := wantIncident(t, mustReplay(t, snap, h.log, h.final, testSeed, c, &ReplayOptions{Certificates: certs}), FieldCertificate, 0, EventID{})
	if !inc.Expected.IsZero() || inc.Observed != (Hash{1}) {
		t.Errorf("genesis frontier incident expected %v observed %v, want zero and the snapshot's", inc.Expected, inc.Observed)
	}
}

// Replay scans its log ahead on a second goroutine; it is gone when Replay
// returns, whether the replay reached the end, ended at an incident near
// the start of a long log, or met a format error.
func TestReplayLeavesNoGoroutine(t *testing.T) {
	// More frames than the scan hands over before it waits for the
	// replay: an early end leaves it waiting.
	h := buildHistory(t, 3*preChunk/8, 8, 3)
	c := defaultChecker(t)
	corrupt := bytes.Clone(h.log)
	corrupt[len(corrupt)/2] ^= 0x20
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name string
		log  []byte
		seed uint64
	}{
		{"whole", h.log, testSeed},
		{"incident at the first batch", h.log, testSeed + 1},
		{"corrupt", corrupt, testSeed},
	} {
		r, err := Replay(nil, tc.log, h.final, tc.seed, c, nil)
		switch tc.name {
		case "whole":
			if err != nil || r.Outcome != Deterministic {
				t.Fatalf("%s: Replay = %v, %v", tc.name, r, err)
			}
		case "incident at the first batch":
			if err != nil || r.Incident == nil || r.Incident.BatchID != h.metas[0].BatchID {
				t.Fatalf("%s: Replay = %+v, %v; want an incident at the first batch", tc.name, r, err)
			}
		case "corrupt":
			if err == nil && r.Outcome == Deterministic {
				t.Fatalf("%s: Replay of a corrupt log is deterministic", tc.name)
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Replay, %d before", n, before)
	}
}
