package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/predicates"
)

type explainOpts struct{ input string }

func (o *explainOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.input, "input", "", "the file to explain, recognized by its content (required)")
}

func explainFlags(fs *flag.FlagSet) { new(explainOpts).declare(fs) }

// What explain recognizes, by content (the type and format fields).
const (
	typeCertificate   = "certificate"
	typeCheckerOutput = "checker_output"
	typeEvents        = "events"
	typeFrameLog      = "frame_log"
	typeSnapshot      = "snapshot"
	typeIncident      = "incident"
	typeOriginal      = "original_snapshot_manifest"

	formatEnvelope      = "envelope"       // the binary certificate, starting with OMEGACRT
	formatJSONView      = "json_view"      // the certificate's JSON view
	formatResultFile    = "result_file"    // what reconcile --output writes
	formatReconcileLine = "reconcile_line" // what reconcile prints
	formatOutputView    = "output_view"    // {"result":...,"binding":...}
	formatJSONArray     = "json_array"
	formatJSONLines     = "json_lines"
	formatOmega         = "omega" // an .omega frame log, recognized by its magic
)

type explainOutput struct {
	Status        string           `json:"status"`
	Command       string           `json:"command"`
	Input         string           `json:"input"`
	Type          string           `json:"type"`
	Format        string           `json:"format"`
	Summary       string           `json:"summary"`
	Certificate   *certExplain     `json:"certificate,omitempty"`
	CheckerOutput *outputExplain   `json:"checker_output,omitempty"`
	Events        *eventsExplain   `json:"events,omitempty"`
	FrameLog      *frameLogSummary `json:"frame_log,omitempty"`
	Snapshot      *snapshotExplain `json:"snapshot,omitempty"`
	Incident      *incidentExplain `json:"incident,omitempty"`
}

type snapshotExplain struct {
	SnapshotID      uint64         `json:"snapshot_id"`
	CreatedAtNs     uint64         `json:"created_at_ns"`
	CreatedAt       string         `json:"created_at,omitempty"`
	LastBatchID     uint64         `json:"last_batch_id"`
	BaseOffset      int64          `json:"base_checkpoint_offset"`
	KnownIDs        int            `json:"known_ids"`
	StreamHeads     int            `json:"stream_heads"`
	Pending         int            `json:"pending"`
	MergedStateHash omega.Hash     `json:"merged_state_hash"`
	FrontierDigest  omega.Hash     `json:"frontier_digest"`
	StateDigest     omega.Hash     `json:"state_digest"`
	Binding         bindingExplain `json:"binding"`
}

type incidentExplain struct {
	IncidentID        string `json:"incident_id"`
	DivergenceBatchID uint64 `json:"divergence_batch_id"`
	DivergenceEventID string `json:"divergence_event_id"`
	Field             uint64 `json:"field"`
	FieldName         string `json:"field_name"`
	Expected          string `json:"expected"`
	Observed          string `json:"observed"`
	ExpectedDecimal   string `json:"expected_decimal,omitempty"`
	ObservedDecimal   string `json:"observed_decimal,omitempty"`
	MetadataDigest    string `json:"metadata_digest"`
	Meaning           string `json:"meaning"`
}

type certExplain struct {
	Kind             string          `json:"kind"`
	BatchID          uint64          `json:"batch_id"`
	CertID           json.Number     `json:"cert_id"`
	CertHash         omega.Hash      `json:"cert_hash"`
	PrevCertHash     omega.Hash      `json:"prev_cert_hash"`
	ChainPosition    string          `json:"chain_position"`
	CreatedAtNs      uint64          `json:"created_at_ns"`
	CreatedAt        string          `json:"created_at,omitempty"`
	IssuerKeyID      string          `json:"issuer_key_id"`
	ReplaySeed       uint64          `json:"replay_seed"`
	TraceRoot        omega.Hash      `json:"trace_root"`
	Binding          bindingExplain  `json:"binding"`
	Decision         decisionExplain `json:"decision"`
	SignatureChecked bool            `json:"signature_checked"`
}

type bindingExplain struct {
	CheckerVersion string     `json:"checker_version"`
	SchemaVersion  uint16     `json:"schema_version"`
	SchemaHash     omega.Hash `json:"schema_hash"`
	CatalogHash    omega.Hash `json:"catalog_hash"`
	BindingDigest  omega.Hash `json:"binding_digest"`
	ThisChecker    bool       `json:"this_checker"`
}

type decisionExplain struct {
	Kind            string            `json:"kind"`
	PriorStateHash  omega.Hash        `json:"prior_state_hash"`
	AcceptedCount   *uint64           `json:"accepted_count,omitempty"`
	MergedStateHash *omega.Hash       `json:"merged_state_hash,omitempty"`
	Predicate       *predicateExplain `json:"predicate,omitempty"`
	ConflictSet     []json.Number     `json:"conflict_set,omitempty"`
	EvidenceCount   *int              `json:"evidence_count,omitempty"`
	Evidence        []evidenceExplain `json:"evidence,omitempty"`
}

type predicateExplain struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
}

type evidenceExplain struct {
	EventID       json.Number `json:"event_id"`
	NodeID        uint32      `json:"node_id"`
	StreamID      uint16      `json:"stream_id"`
	Lamport       uint64      `json:"lamport"`
	Digest        omega.Hash  `json:"digest"`
	PayloadHashOK bool        `json:"payload_hash_ok"`
}

type outputExplain struct {
	BatchID    *uint64         `json:"batch_id,omitempty"`
	ReplaySeed *uint64         `json:"replay_seed,omitempty"`
	Decision   decisionExplain `json:"decision"`
	Binding    bindingExplain  `json:"binding"`
}

type eventsExplain struct {
	Count                 int       `json:"count"`
	Nodes                 int       `json:"nodes"`
	Streams               int       `json:"streams"`
	EventIDs              *idRange  `json:"event_ids,omitempty"`
	Lamports              *u64Range `json:"lamports,omitempty"`
	PayloadHashMismatches int       `json:"payload_hash_mismatches"`
}

type idRange struct {
	Min json.Number `json:"min"`
	Max json.Number `json:"max"`
}

type u64Range struct {
	Min uint64 `json:"min"`
	Max uint64 `json:"max"`
}

// frameLogMagic is the start of every .omega file (SPEC section 5).
const frameLogMagic = "OMEGA\x00\x01\x00"

func runExplain(args []string) ([]byte, error) {
	var o explainOpts
	fs := newFlagSet("explain")
	o.declare(fs)
	if err := parseFlags(fs, args, "input"); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(o.input)
	if err != nil {
		return nil, err
	}
	out, err := explain(data)
	if err != nil {
		return nil, fmt.Errorf("explain: %s: %w", o.input, err)
	}
	out.Status, out.Command, out.Input = "ok", "explain", o.input
	return marshal(out), nil
}

// explain recognizes data by its content and summarizes it.
func explain(data []byte) (explainOutput, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(data) == 0:
		return explainOutput{}, inputErrorf("the file is empty")
	case bytes.HasPrefix(data, []byte("OMEGACRT")):
		c, err := omega.DecodeCertificate(data)
		if err != nil {
			return explainOutput{}, err
		}
		return explainCert(c, formatEnvelope), nil
	case bytes.HasPrefix(data, []byte(frameLogMagic)),
		len(data) < len(frameLogMagic) && strings.HasPrefix(frameLogMagic, string(data)),
		data[0] == 0: // a header zeroed by a crash (SPEC section 5)
		sum, err := summarizeFrameLog(data)
		if err != nil {
			return explainOutput{}, err
		}
		if sum.FramesByType["SNAPSHOT"] > 0 {
			if snap, err := omega.DecodeSnapshot(data); err == nil {
				return explainSnapshot(snap), nil
			}
		}
		return explainOutput{Type: typeFrameLog, Format: formatOmega, Summary: frameLogSentence(sum), FrameLog: &sum}, nil
	case len(trimmed) > 0 && trimmed[0] == '[':
		return explainEvents(data, formatJSONArray)
	case len(trimmed) > 0 && trimmed[0] == '{':
		return explainObject(data)
	}
	return explainOutput{}, unknownContent()
}

func unknownContent() error {
	return inputErrorf("unknown content: not a certificate (binary envelope or JSON view), a checker output, an event set (JSON array or JSON lines), an .omega frame log, a snapshot or a replay incident. The original system's replay read an opaque log suffix, bytes it hashed whole; omega replays an .omega event log of EVENT and BATCH frames instead (reconcile --log writes one), re-executing every batch")
}

func explainSnapshot(s *omega.Snapshot) explainOutput {
	x := &snapshotExplain{
		SnapshotID: s.ID, CreatedAtNs: s.CreatedAtNs, LastBatchID: s.LastBatchID, BaseOffset: s.BaseOffset,
		Pending: len(s.Pending), StateDigest: s.StateDigest(), Binding: explainBinding(s.Binding),
	}
	if s.State != nil {
		x.KnownIDs, x.StreamHeads = s.State.KnownCount(), len(s.State.Heads())
		x.MergedStateHash, x.FrontierDigest = s.State.MergedStateHash(), s.State.FrontierDigest()
	}
	if s.CreatedAtNs > 0 && s.CreatedAtNs <= math.MaxInt64 {
		x.CreatedAt = time.Unix(0, int64(s.CreatedAtNs)).UTC().Format(time.RFC3339Nano)
	}
	sum := fmt.Sprintf("A snapshot: the State after batch %d, %d known ids in %d streams, merged state %s..., with %d events logged and not yet decided; replay from it with replay --snapshot.",
		s.LastBatchID, x.KnownIDs, x.StreamHeads, x.MergedStateHash.String()[:16], x.Pending)
	return explainOutput{Type: typeSnapshot, Format: formatOmega, Summary: sum, Snapshot: x}
}

// explainObject tells the JSON objects apart by their members.
func explainObject(data []byte) (explainOutput, error) {
	keys, err := topLevelKeys(data)
	if err != nil {
		return explainOutput{}, inputErrorf("a JSON object that does not decode: %v", err)
	}
	has := func(k string) bool { return slices.Contains(keys, k) }
	switch {
	case has("incident_id") && has("field_name"):
		return explainIncident(data)
	case has("snapshot_id") && has("base_checkpoint_offset") && has("stream_heads_digest") && !has("state"):
		return explainOutput{Type: typeOriginal, Format: "json",
			Summary: "The original system's JSON snapshot manifest: it names a state by its hashes but holds no state, and its replay hashed it with an opaque log suffix. omega's snapshots are binary .omega files that hold the State itself and the events pending (SPEC section 7): reconcile --snapshot-out writes one after a batch, a Kernel takes them as it runs, and replay --snapshot starts from one, re-executing the batches of the event log after it."}, nil
	case has("magic") && has("cert_type"):
		c, err := omega.DecodeCertificateJSON(data)
		if err != nil {
			return explainOutput{}, err
		}
		return explainCert(c, formatJSONView), nil
	case has("checker_output"):
		var line struct {
			BatchID       uint64          `json:"batch_id"`
			ReplaySeed    uint64          `json:"replay_seed"`
			CheckerOutput json.RawMessage `json:"checker_output"`
		}
		if err := json.Unmarshal(data, &line); err != nil {
			return explainOutput{}, inputErrorf("a reconcile output that does not decode: %v", err)
		}
		out, err := omega.DecodeOutputJSON(line.CheckerOutput)
		if err != nil {
			return explainOutput{}, err
		}
		return explainCheckerOutput(out, &line.BatchID, &line.ReplaySeed, formatReconcileLine), nil
	case sameKeys(keys, resultFileFields), sameKeys(keys, resultFileFieldsV0):
		rf, err := readResultFile(data)
		if err != nil {
			return explainOutput{}, err
		}
		return explainCheckerOutput(rf.out, &rf.batchID, &rf.replaySeed, formatResultFile), nil
	case sameKeys(keys, []string{"result", "binding"}):
		out, err := omega.DecodeOutputJSON(data)
		if err != nil {
			return explainOutput{}, err
		}
		return explainCheckerOutput(out, nil, nil, formatOutputView), nil
	case has("event_id"):
		return explainEvents(data, formatJSONLines)
	}
	return explainOutput{}, unknownContent()
}

func explainIncident(data []byte) (explainOutput, error) {
	var x incidentExplain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw struct {
		IncidentID        string      `json:"incident_id"`
		DivergenceBatchID uint64      `json:"divergence_batch_id"`
		DivergenceEventID json.Number `json:"divergence_event_id"`
		Field             uint64      `json:"field"`
		FieldName         string      `json:"field_name"`
		Expected          string      `json:"expected"`
		Observed          string      `json:"observed"`
		MetadataDigest    string      `json:"metadata_digest"`
	}
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return explainOutput{}, inputErrorf("a replay incident that does not decode: %v", err)
	}
	x = incidentExplain{IncidentID: raw.IncidentID, DivergenceBatchID: raw.DivergenceBatchID, DivergenceEventID: raw.DivergenceEventID.String(),
		Field: raw.Field, FieldName: raw.FieldName, Expected: raw.Expected, Observed: raw.Observed, MetadataDigest: raw.MetadataDigest}
	x.Meaning = incidentMeaning(omega.IncidentField(raw.Field))
	switch omega.IncidentField(raw.Field) {
	case omega.FieldReplaySeed, omega.FieldOrder, omega.FieldCreatedAt:
		for _, v := range []struct {
			hex string
			dst *string
		}{{raw.Expected, &x.ExpectedDecimal}, {raw.Observed, &x.ObservedDecimal}} {
			b, err := hex.DecodeString(v.hex)
			if err == nil && len(b) >= 8 {
				*v.dst = fmt.Sprint(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
			}
		}
	}
	where := fmt.Sprintf("at batch %d", x.DivergenceBatchID)
	if x.DivergenceBatchID == 0 {
		where = "before any batch"
	}
	if x.DivergenceEventID != "0" {
		where += ", event " + x.DivergenceEventID
	}
	sum := fmt.Sprintf("A replay incident: %s differs %s. %s", x.FieldName, where, x.Meaning)
	if x.ExpectedDecimal != "" {
		sum += fmt.Sprintf(" The log recorded %s, replay had %s.", x.ExpectedDecimal, x.ObservedDecimal)
	}
	return explainOutput{Type: typeIncident, Format: "json", Summary: sum, Incident: &x}, nil
}

// incidentMeaning says what an incident in field f means (SPEC section 7).
func incidentMeaning(f omega.IncidentField) string {
	switch f {
	case omega.FieldKind:
		return "Re-executing the batch gave the other kind (merge or obstruction) than its BATCH frame records."
	case omega.FieldWitnessHash:
		return "Re-executing the batch gave another witness hash than its BATCH frame records."
	case omega.FieldMergedStateHash:
		return "Re-executing the batch reached another merged state than its BATCH frame records."
	case omega.FieldTraceRoot:
		return "The batch's members give another trace root than its BATCH frame records."
	case omega.FieldMember:
		return "A member of the batch resolves to no EVENT frame of the log, or is out of order."
	case omega.FieldReplaySeed:
		return "The BATCH frame carries another replay seed than the replay was given (replay takes the log's seed when --replay-seed is left out)."
	case omega.FieldBinding:
		return "The log, snapshot or BATCH frame was made by another checker (binding) than the one replaying."
	case omega.FieldOrder:
		return "A batch id does not increase."
	case omega.FieldFinalState:
		return "Every batch re-executed the same, but the final merged state is not the one expected (--expected_hash_hex)."
	case omega.FieldCreatedAt:
		return "The certificate's created_at_ns differs from the BATCH frame's."
	case omega.FieldCertificate:
		return "A batch and the certificate chain do not pair up: a batch without its certificate, or a certificate without its batch."
	}
	return "An incident in a field this command does not know."
}

func explainCert(c *omega.Certificate, format string) explainOutput {
	ce := &certExplain{
		Kind:          c.Kind.String(),
		BatchID:       c.BatchID,
		CertID:        json.Number(c.ID().String()),
		CertHash:      c.Hash(),
		PrevCertHash:  c.PrevCertHash,
		ChainPosition: "first of a chain",
		CreatedAtNs:   c.CreatedAtNs,
		IssuerKeyID:   hex.EncodeToString(c.IssuerKeyID[:]),
		ReplaySeed:    c.ReplaySeed,
		TraceRoot:     c.TraceRoot,
		Binding:       explainBinding(c.Binding),
		Decision:      decisionExplain{Kind: c.Kind.String(), PriorStateHash: c.PriorStateHash},
	}
	if !c.PrevCertHash.IsZero() {
		ce.ChainPosition = "after the certificate with cert_hash " + c.PrevCertHash.String()
	}
	if c.CreatedAtNs <= math.MaxInt64 {
		ce.CreatedAt = time.Unix(0, int64(c.CreatedAtNs)).UTC().Format(time.RFC3339Nano)
	}
	d := &ce.Decision
	if m := c.Merge; m != nil {
		n := uint64(m.AcceptedCount)
		d.AcceptedCount, d.MergedStateHash = &n, &m.MergedStateHash
	} else {
		o := c.Obstruction
		n := len(o.EvidenceDigests)
		d.Predicate, d.ConflictSet, d.EvidenceCount = explainPredicate(o.Predicate), idNumbers(o.ConflictSet), &n
	}
	what := "binary"
	if format == formatJSONView {
		what = "JSON view of a"
	}
	position := "the first of a chain"
	if !c.PrevCertHash.IsZero() {
		position = "following certificate " + c.PrevCertHash.String()[:16] + "..."
	}
	summary := fmt.Sprintf("A %s %s certificate of batch %d, %s, signed by key %s%s: %s. Its signature is not checked here: run verify with the issuer's public key.",
		what, c.Kind, c.BatchID, position, ce.IssuerKeyID, createdAt(ce.CreatedAt), decisionSentence(d))
	return explainOutput{Type: typeCertificate, Format: format, Summary: summary, Certificate: ce}
}

func createdAt(s string) string {
	if s == "" {
		return ""
	}
	return " at " + s
}

func explainCheckerOutput(out omega.Output, batchID, replaySeed *uint64, format string) explainOutput {
	r := out.Result
	d := decisionExplain{Kind: r.Kind.String(), PriorStateHash: r.PriorStateHash}
	if m := r.Merge; m != nil {
		n := uint64(len(r.Members))
		d.AcceptedCount, d.MergedStateHash = &n, &m.MergedStateHash
	} else {
		o := r.Obstruction
		n := len(o.Evidence)
		d.Predicate, d.ConflictSet, d.EvidenceCount = explainPredicate(o.Predicate), idNumbers(o.ConflictSet), &n
		for i := range o.Evidence {
			e := &o.Evidence[i]
			d.Evidence = append(d.Evidence, evidenceExplain{
				EventID:       json.Number(e.ID.String()),
				NodeID:        e.NodeID,
				StreamID:      e.StreamID,
				Lamport:       e.Lamport,
				Digest:        o.EvidenceDigests[i],
				PayloadHashOK: e.PayloadHashOK(),
			})
		}
	}
	oe := &outputExplain{BatchID: batchID, ReplaySeed: replaySeed, Decision: d, Binding: explainBinding(out.Binding)}
	of := "A checker output"
	if batchID != nil {
		of = fmt.Sprintf("The checker output of batch %d (replay seed %d)", *batchID, *replaySeed)
	}
	bound := "this checker's binding"
	if !oe.Binding.ThisChecker {
		bound = "another binding than this checker's, so certify refuses it"
	}
	summary := fmt.Sprintf("%s: %s. Made under %s.", of, decisionSentence(&d), bound)
	return explainOutput{Type: typeCheckerOutput, Format: format, Summary: summary, CheckerOutput: oe}
}

func explainBinding(b omega.Binding) bindingExplain {
	v := b.CheckerVersion
	return bindingExplain{
		CheckerVersion: fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]),
		SchemaVersion:  b.SchemaVersion,
		SchemaHash:     b.SchemaHash,
		CatalogHash:    b.CatalogHash,
		BindingDigest:  b.Digest(),
		ThisChecker:    b == omega.DefaultBinding(),
	}
}

// explainPredicate names a predicate from the built-in catalog; a domain
// predicate's name is in its program's catalog, which a file does not hold.
func explainPredicate(id predicates.ID) *predicateExplain {
	p := &predicateExplain{ID: uint32(id), Name: "unknown"}
	if e, ok := predicates.Default().Lookup(id); ok {
		p.Name = e.Name
	} else if id >= predicates.DomainMin && id <= predicates.DomainMax {
		p.Name = "a domain predicate of the program that made it"
	}
	return p
}

func idNumbers(ids []omega.EventID) []json.Number {
	out := make([]json.Number, len(ids))
	for i, id := range ids {
		out[i] = json.Number(id.String())
	}
	return out
}

func decisionSentence(d *decisionExplain) string {
	if d.Kind == omega.KindMerge.String() {
		return fmt.Sprintf("a merge of %s into merged state %s...", plural(int(*d.AcceptedCount), "event"), d.MergedStateHash.String()[:16])
	}
	ids := make([]string, len(d.ConflictSet))
	for i, id := range d.ConflictSet {
		ids[i] = id.String()
	}
	return fmt.Sprintf("an obstruction: predicate %d (%s) violated with conflict set [%s], %s",
		d.Predicate.ID, d.Predicate.Name, strings.Join(ids, ", "), plural(*d.EvidenceCount, "evidence event"))
}

// plural returns "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func explainEvents(data []byte, format string) (explainOutput, error) {
	events, err := omega.DecodeEventsJSON(data, omega.Limits{})
	if err != nil {
		return explainOutput{}, err
	}
	ex := &eventsExplain{Count: len(events)}
	type stream struct {
		node   uint32
		stream uint16
	}
	nodes, streams := map[uint32]bool{}, map[stream]bool{}
	for i := range events {
		e := &events[i]
		nodes[e.NodeID] = true
		streams[stream{e.NodeID, e.StreamID}] = true
		if !e.PayloadHashOK() {
			ex.PayloadHashMismatches++
		}
	}
	if len(events) > 0 {
		lo, hi := events[0].ID, events[0].ID
		ex.Lamports = &u64Range{events[0].Lamport, events[0].Lamport}
		for i := range events {
			e := &events[i]
			if e.ID.Compare(lo) < 0 {
				lo = e.ID
			}
			if e.ID.Compare(hi) > 0 {
				hi = e.ID
			}
			ex.Lamports.Min, ex.Lamports.Max = min(ex.Lamports.Min, e.Lamport), max(ex.Lamports.Max, e.Lamport)
		}
		ex.EventIDs = &idRange{json.Number(lo.String()), json.Number(hi.String())}
	}
	ex.Nodes, ex.Streams = len(nodes), len(streams)
	what := map[string]string{formatJSONArray: "A JSON array", formatJSONLines: "JSON lines"}[format]
	summary := fmt.Sprintf("%s of %s", what, plural(ex.Count, "event"))
	if ex.Count > 0 {
		summary += fmt.Sprintf(" from %s over %s, event ids %s to %s, lamports %d to %d, %d with a wrong payload hash",
			plural(ex.Nodes, "node"), plural(ex.Streams, "stream"), ex.EventIDs.Min, ex.EventIDs.Max, ex.Lamports.Min, ex.Lamports.Max, ex.PayloadHashMismatches)
	}
	return explainOutput{Type: typeEvents, Format: format, Summary: summary + ".", Events: ex}, nil
}

func frameLogSentence(s frameLogSummary) string {
	if s.TornHeader {
		return "An .omega frame log whose creation was cut short before its header was written: it holds no frames."
	}
	bound := fmt.Sprintf("bound to schema version %d (%s...)", s.Header.SchemaVersion, s.Header.SchemaHash.String()[:16])
	if !s.Header.SchemaBound {
		bound = "unbound (an all-zero schema hash, as the original system's tools wrote it)"
	}
	types := make([]string, 0, len(s.FramesByType))
	for t := range s.FramesByType {
		types = append(types, t)
	}
	slices.Sort(types)
	for i, t := range types {
		types[i] = fmt.Sprintf("%d %s", s.FramesByType[t], t)
	}
	frames := "no frames"
	if len(types) > 0 {
		frames = fmt.Sprintf("%s (%s)", plural(s.Frames, "frame"), strings.Join(types, ", "))
	}
	tail := "it ends cleanly"
	switch s.Tail {
	case "torn":
		tail = fmt.Sprintf("a torn tail of %d bytes at offset %d, the normal trace of a crash", s.MalformedTailBytes, s.TailOffset)
	case "corrupt":
		tail = fmt.Sprintf("corruption at offset %d: %s", s.TailOffset, s.Reason)
	}
	return fmt.Sprintf("An .omega frame log %s, with %s; %s.", bound, frames, tail)
}
