package omega

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// Reading the JSON views of SPEC 4 back: the result, the binding, and the
// checker output {"result":...,"binding":...}.
//
// Decoding is strict, as for the certificate view: every field of the kind
// present exactly once, no unknown field, integers exact (no sign, fraction,
// exponent, leading zero or quotes) and within range, hashes 64 lowercase hex
// digits, nothing after the object but whitespace. Fields may come in any
// order. The evidence events are read by the rules of [DecodeEventsJSON],
// which also accept the original system's forms (SPEC 3), with no limit
// below what the binary format can hold: the checker that decided the batch
// may have had larger [Limits] than the default.
//
// Then everything the view lets one recompute is recomputed, and a mismatch
// is refused naming the field:
//   - binding: binding_digest = D("binding", the other four fields);
//   - merge: accepted_count = len(accepted_event_ids), at most
//     [MaxBatchContents], the ids distinct; accepted_ids_digest = D("ids",
//     ids); merged_state_hash = D("state", prior_state_hash ||
//     batch_digest); witness_hash = D("merge witness", merged_state_hash ||
//     accepted_ids_digest || trace_root); for an empty merge also
//     batch_digest = D("batch", ""), heads_digest = D("heads", "") and a
//     zero trace_root;
//   - obstruction: violated_predicate_id a built-in id or in the domain
//     range 4000-4999; conflict_set one or two ids, strictly ascending;
//     overlap_context_digest = D("ids", conflict_set); evidence one or more
//     events (at most 65535) in strictly increasing canonical order, each
//     event's digest equal to the evidence_digests entry at its position;
//     witness_hash = D("obstruction witness", violated_predicate_id ||
//     conflict_set || evidence_digests).
//
// frontier_digest, heads_digest and batch_digest of a non-empty merge, and
// trace_root, depend on the prior State or on the batch's member digests,
// which the view does not hold: they are taken as written.

// Field names of the views, in the order MarshalJSON writes them.
var (
	resultJSONMergeFields = []string{
		"kind", "batch_digest", "merged_state_hash", "prior_state_hash",
		"accepted_ids_digest", "frontier_digest", "heads_digest", "trace_root",
		"witness_hash", "accepted_count", "accepted_event_ids",
	}
	resultJSONObstructionFields = []string{
		"kind", "violated_predicate_id", "conflict_set", "overlap_context_digest",
		"prior_state_hash", "evidence", "evidence_digests", "trace_root", "witness_hash",
	}
	bindingJSONFields = []string{"checker_version", "schema_version", "schema_hash", "catalog_hash", "binding_digest"}
	outputJSONFields  = []string{"result", "binding"}
)

// resultMalformed returns an error wrapping ErrMalformedResult that names
// the JSON field.
func resultMalformed(field, format string, args ...any) error {
	return malformedJSON(ErrMalformedResult, field, format, args...)
}

// DecodeOutputJSON decodes a checker output's JSON view,
// {"result":{...},"binding":{...}}, which must fill b (whitespace aside),
// with the rules of [Result.UnmarshalJSON] and [Binding.UnmarshalJSON].
// Every refusal wraps ErrMalformedResult.
//
// The decoded output certifies as the original: [Certify] on it gives, for
// the same binding, batch metadata, previous hash and key, the certificate
// byte for byte that certifying the output the checker returned gives.
func DecodeOutputJSON(b []byte) (Output, error) {
	v, err := jsonObjectFields(ErrMalformedResult, b, "checker output", outputJSONFields)
	if err != nil {
		return Output{}, err
	}
	r, err := decodeResultJSON(v[0])
	if err != nil {
		return Output{}, err
	}
	bd, err := decodeBindingJSON(v[1])
	if err != nil {
		return Output{}, err
	}
	return Output{Result: r, Binding: bd}, nil
}

// UnmarshalJSON decodes a checker output's JSON view into o, as
// DecodeOutputJSON does; o is left unchanged on error.
func (o *Output) UnmarshalJSON(b []byte) error {
	out, err := DecodeOutputJSON(b)
	if err != nil {
		return err
	}
	*o = out
	return nil
}

// UnmarshalJSON decodes a binding's JSON view, {"checker_version":[M,m,p],
// "schema_version","schema_hash","catalog_hash","binding_digest"}, and
// refuses a binding_digest that is not the digest of the other fields.
// Every refusal wraps ErrMalformedResult; b is left unchanged on error.
func (b *Binding) UnmarshalJSON(data []byte) error {
	bd, err := decodeBindingJSON(data)
	if err != nil {
		return err
	}
	*b = bd
	return nil
}

// UnmarshalJSON decodes a result's JSON view (SPEC 4), strictly, and
// refuses a view whose recomputable digests do not follow from its other
// fields; every refusal wraps ErrMalformedResult, and r is left unchanged on
// error. MarshalJSON of the decoded result gives back the view in compact
// form, fields in SPEC order.
//
// The view does not hold all of a Result, so the decoded one holds:
//   - for a Merge: Members with the accepted ids in the view's order and
//     zero digests (the view has no event digests), and Merge.Next nil (the
//     view has no State);
//   - for an Obstruction: Members nil (the view lists no members), and
//     Obstruction.Event zero (the view does not say which evidence event was
//     the offending one); Evidence and EvidenceDigests are as in the view.
//
// That is all [Certify] reads: a decoded result certifies to the same bytes
// as the one the checker returned.
func (r *Result) UnmarshalJSON(b []byte) error {
	d, err := decodeResultJSON(b)
	if err != nil {
		return err
	}
	*r = *d
	return nil
}

// resultJSONKind returns the value of b's "kind" member, or "" when there
// is none to be read before the first syntax error, so that a view damaged
// after its kind is reported for the damage, not for fields of the other
// kind. It only chooses which fields to expect: the strict pass that
// follows checks the kind again.
func resultJSONKind(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if tok == "kind" {
			var kind string
			if dec.Decode(&kind) != nil {
				return ""
			}
			return kind
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

func decodeResultJSON(b []byte) (*Result, error) {
	kind := resultJSONKind(b)
	names := resultJSONMergeFields
	switch kind {
	case "merge", "":
	case "obstruction":
		names = resultJSONObstructionFields
	default:
		return nil, resultMalformed("kind", "%.40q, want \"merge\" or \"obstruction\"", kind)
	}
	v, err := jsonObjectFields(ErrMalformedResult, b, "result", names)
	if err != nil {
		return nil, err
	}
	p := jsonParser{kind: ErrMalformedResult}
	if k := p.str(v[0], "kind"); p.err == nil && (k != kind || k == "") {
		p.fail("kind", "%.40q, want \"merge\" or \"obstruction\"", k)
	}
	if p.err != nil {
		return nil, p.err
	}
	if kind == "merge" {
		return decodeMergeJSON(&p, v)
	}
	return decodeObstructionJSON(&p, v)
}

func decodeMergeJSON(p *jsonParser, v []json.RawMessage) (*Result, error) {
	m := &Merge{
		BatchDigest:       p.hash(v[1], "batch_digest"),
		MergedStateHash:   p.hash(v[2], "merged_state_hash"),
		AcceptedIDsDigest: p.hash(v[4], "accepted_ids_digest"),
		FrontierDigest:    p.hash(v[5], "frontier_digest"),
		HeadsDigest:       p.hash(v[6], "heads_digest"),
	}
	r := &Result{
		Kind:           KindMerge,
		PriorStateHash: p.hash(v[3], "prior_state_hash"),
		TraceRoot:      p.hash(v[7], "trace_root"),
		WitnessHash:    p.hash(v[8], "witness_hash"),
		Merge:          m,
	}
	count := p.uint(v[9], "accepted_count", 0, MaxBatchContents)
	raw := p.array(v[10], "accepted_event_ids")
	if p.err == nil && uint64(len(raw)) != count {
		p.fail("accepted_count", "%d, but accepted_event_ids holds %d ids", count, len(raw))
	}
	if p.err != nil {
		return nil, p.err
	}
	ids := make([]EventID, len(raw))
	for i, x := range raw {
		ids[i] = p.u128(x, "accepted_event_ids")
	}
	if p.err != nil {
		return nil, p.err
	}
	// A merge accepts one distinct content per id: two contents with one
	// id are a 3001 obstruction, never a merge.
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, EventID.Compare)
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1] == sorted[i] {
			return nil, resultMalformed("accepted_event_ids", "id %v accepted twice", sorted[i])
		}
	}

	if len(ids) == 0 {
		if d := Hash(digest.Of(digest.Batch)); m.BatchDigest != d {
			return nil, resultMalformed("batch_digest", "%v, but an empty merge's is D(\"batch\", \"\") = %v", m.BatchDigest, d)
		}
	}
	if d := Hash(digest.Of(digest.State, r.PriorStateHash[:], m.BatchDigest[:])); m.MergedStateHash != d {
		return nil, resultMalformed("merged_state_hash", "%v, but D(\"state\", prior_state_hash || batch_digest) = %v", m.MergedStateHash, d)
	}
	if d := Hash(digest.Of(digest.IDs, idsBytes(ids))); m.AcceptedIDsDigest != d {
		return nil, resultMalformed("accepted_ids_digest", "%v, but D(\"ids\", accepted_event_ids) = %v", m.AcceptedIDsDigest, d)
	}
	if len(ids) == 0 {
		if d := Hash(digest.Of(digest.Heads)); m.HeadsDigest != d {
			return nil, resultMalformed("heads_digest", "%v, but an empty merge moves no head: D(\"heads\", \"\") = %v", m.HeadsDigest, d)
		}
		if !r.TraceRoot.IsZero() {
			return nil, resultMalformed("trace_root", "%v, but an empty batch's trace root is zero", r.TraceRoot)
		}
	}
	if d := Hash(digest.Of(digest.MergeWitness, m.MergedStateHash[:], m.AcceptedIDsDigest[:], r.TraceRoot[:])); r.WitnessHash != d {
		return nil, resultMalformed("witness_hash", "%v, but D(\"merge witness\", merged_state_hash || accepted_ids_digest || trace_root) = %v", r.WitnessHash, d)
	}
	r.Members = make([]Member, len(ids))
	for i, id := range ids {
		r.Members[i].ID = id
	}
	return r, nil
}

func decodeObstructionJSON(p *jsonParser, v []json.RawMessage) (*Result, error) {
	o := &Obstruction{
		Predicate:            predicates.ID(p.uint(v[1], "violated_predicate_id", 0, math.MaxUint32)),
		OverlapContextDigest: p.hash(v[3], "overlap_context_digest"),
	}
	r := &Result{
		Kind:           KindObstruction,
		PriorStateHash: p.hash(v[4], "prior_state_hash"),
		TraceRoot:      p.hash(v[7], "trace_root"),
		WitnessHash:    p.hash(v[8], "witness_hash"),
		Obstruction:    o,
	}
	if p.err == nil && !predicates.IsBuiltin(o.Predicate) && (o.Predicate < predicates.DomainMin || o.Predicate > predicates.DomainMax) {
		p.fail("violated_predicate_id", "%d is neither a built-in predicate nor in the domain range %d-%d", o.Predicate, predicates.DomainMin, predicates.DomainMax)
	}
	ids := p.array(v[2], "conflict_set")
	if p.err == nil && (len(ids) == 0 || len(ids) > 2) {
		p.fail("conflict_set", "%d ids, want one or two", len(ids))
	}
	if p.err == nil {
		o.ConflictSet = make([]EventID, len(ids))
		for i, x := range ids {
			o.ConflictSet[i] = p.u128(x, "conflict_set")
		}
	}
	ds := p.array(v[6], "evidence_digests")
	if p.err == nil && (len(ds) == 0 || len(ds) > maxEvidence) {
		p.fail("evidence_digests", "%d digests, want 1 to %d", len(ds), maxEvidence)
	}
	if p.err == nil {
		o.EvidenceDigests = make([]Hash, len(ds))
		for i, x := range ds {
			o.EvidenceDigests[i] = p.hash(x, "evidence_digests")
		}
	}
	if p.err == nil && (len(v[5]) == 0 || v[5][0] != '[') {
		p.fail("evidence", "not a JSON array")
	}
	if p.err != nil {
		return nil, p.err
	}
	for i := 1; i < len(o.ConflictSet); i++ {
		if o.ConflictSet[i-1].Compare(o.ConflictSet[i]) >= 0 {
			return nil, resultMalformed("conflict_set", "not strictly ascending")
		}
	}
	// DecodeEventsJSON reads an array as one; the check above keeps it
	// from reading an object as JSON lines.
	evidence, err := DecodeEventsJSON(v[5], Limits{MaxPayload: math.MaxInt})
	if err != nil {
		return nil, fmt.Errorf("%w: JSON evidence: %w", ErrMalformedResult, err)
	}
	if len(evidence) != len(o.EvidenceDigests) {
		return nil, resultMalformed("evidence_digests", "%d digests for %d evidence events", len(o.EvidenceDigests), len(evidence))
	}
	h := digest.New(digest.Event)
	for i := range evidence {
		e := &evidence[i]
		if d := eventDigest(h, e, nil); d != o.EvidenceDigests[i] {
			return nil, resultMalformed("evidence_digests", "entry %d is %v, but evidence event %d hashes to %v", i, o.EvidenceDigests[i], i, d)
		}
		if i > 0 {
			c := evidence[i-1].key().Compare(e.key())
			if c > 0 || c == 0 && o.EvidenceDigests[i-1].Compare(o.EvidenceDigests[i]) >= 0 {
				return nil, resultMalformed("evidence", "event %d is not after event %d in canonical order", i, i-1)
			}
		}
	}
	o.Evidence = evidence
	if d := Hash(digest.Of(digest.IDs, idsBytes(o.ConflictSet))); o.OverlapContextDigest != d {
		return nil, resultMalformed("overlap_context_digest", "%v, but D(\"ids\", conflict_set) = %v", o.OverlapContextDigest, d)
	}
	if d := obstructionWitness(o.Predicate, o.ConflictSet, o.EvidenceDigests); r.WitnessHash != d {
		return nil, resultMalformed("witness_hash", "%v, but D(\"obstruction witness\", violated_predicate_id || conflict_set || evidence_digests) = %v", r.WitnessHash, d)
	}
	return r, nil
}

func decodeBindingJSON(b []byte) (Binding, error) {
	v, err := jsonObjectFields(ErrMalformedResult, b, "binding", bindingJSONFields)
	if err != nil {
		return Binding{}, err
	}
	p := jsonParser{kind: ErrMalformedResult}
	var bd Binding
	if vs := p.array(v[0], "checker_version"); p.err == nil {
		if len(vs) != 3 {
			p.fail("checker_version", "%d numbers, want 3", len(vs))
		}
		for i := range min(len(vs), 3) {
			bd.CheckerVersion[i] = uint16(p.uint(vs[i], "checker_version", 0, math.MaxUint16))
		}
	}
	bd.SchemaVersion = uint16(p.uint(v[1], "schema_version", 0, math.MaxUint16))
	bd.SchemaHash = p.hash(v[2], "schema_hash")
	bd.CatalogHash = p.hash(v[3], "catalog_hash")
	want := p.hash(v[4], "binding_digest")
	if p.err != nil {
		return Binding{}, p.err
	}
	if d := bd.Digest(); d != want {
		return Binding{}, resultMalformed("binding_digest", "%v, but the binding's fields give %v", want, d)
	}
	return bd, nil
}
