package omega

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// Reading the JSON views of SPEC 4 back: the result, the binding, and the
// checker output {"result":...,"binding":...}.
//
// Decoding is strict, by the rules of jsonread.go, as for the certificate
// view: every field of the kind present exactly once, no unknown field, no
// null, integers exact (no sign, fraction, exponent, leading zero or quotes)
// and within range, hashes 64 lowercase hex digits, nothing after the
// object but whitespace. Fields may come in any order. The evidence events are read by the rules of [DecodeEventsJSON],
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

// resultJSONFields holds the field names of both kinds of result: the
// members of a result view are read before its kind says which it has.
var resultJSONFields = []string{
	"kind", "batch_digest", "merged_state_hash", "prior_state_hash",
	"accepted_ids_digest", "frontier_digest", "heads_digest", "trace_root",
	"witness_hash", "accepted_count", "accepted_event_ids",
	"violated_predicate_id", "conflict_set", "overlap_context_digest",
	"evidence", "evidence_digests",
}

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
	v := newJSONView(ErrMalformedResult, b)
	sp := v.fields(v.whole(), "checker output", outputJSONFields)
	if v.err != nil {
		return Output{}, v.err
	}
	r, err := decodeResultJSON(v, sp[0])
	if err != nil {
		return Output{}, err
	}
	bd, err := decodeBindingJSON(v, sp[1])
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
	v := newJSONView(ErrMalformedResult, data)
	bd, err := decodeBindingJSON(v, v.whole())
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
	v := newJSONView(ErrMalformedResult, b)
	d, err := decodeResultJSON(v, v.whole())
	if err != nil {
		return err
	}
	*r = *d
	return nil
}

// decodeResultJSON reads the result view at s.
func decodeResultJSON(v *jsonView, s jsonSpan) (*Result, error) {
	all, seen, at := v.object(s, "result", resultJSONFields)
	if v.err == nil { // kind first: it says which other fields there must be
		v.check(v.r.missing(resultJSONFields, seen, 1<<0, "result", at), "result")
	}
	kind := v.str(all[0], "kind")
	if v.err != nil {
		return nil, v.err
	}
	var names []string
	switch kind {
	case "merge":
		names = resultJSONMergeFields
	case "obstruction":
		names = resultJSONObstructionFields
	default:
		return nil, resultMalformed("kind", "%.40q, want \"merge\" or \"obstruction\"", kind)
	}
	// The kind's fields, in its order, and which of them are present.
	sp := make([]jsonSpan, len(names))
	var kindSeen, required uint64
	for i, name := range names {
		j := slices.Index(resultJSONFields, name)
		sp[i] = all[j]
		if seen&(1<<j) != 0 {
			kindSeen |= 1 << i
		}
		required |= 1 << j
	}
	if extra := seen &^ required; extra != 0 {
		return nil, resultMalformed("result", "unknown field %q in a result of kind %q", resultJSONFields[bits.TrailingZeros64(extra)], kind)
	}
	if !v.check(v.r.missing(names, kindSeen, 1<<len(names)-1, "result", at), "result") {
		return nil, v.err
	}
	if kind == "merge" {
		return decodeMergeJSON(v, sp)
	}
	return decodeObstructionJSON(v, sp)
}

func decodeMergeJSON(v *jsonView, sp []jsonSpan) (*Result, error) {
	m := &Merge{
		BatchDigest:       v.hash(sp[1], "batch_digest"),
		MergedStateHash:   v.hash(sp[2], "merged_state_hash"),
		AcceptedIDsDigest: v.hash(sp[4], "accepted_ids_digest"),
		FrontierDigest:    v.hash(sp[5], "frontier_digest"),
		HeadsDigest:       v.hash(sp[6], "heads_digest"),
	}
	r := &Result{
		Kind:           KindMerge,
		PriorStateHash: v.hash(sp[3], "prior_state_hash"),
		TraceRoot:      v.hash(sp[7], "trace_root"),
		WitnessHash:    v.hash(sp[8], "witness_hash"),
		Merge:          m,
	}
	count := v.uint(sp[9], "accepted_count", math.MaxUint64, "u64")
	if v.err == nil && count > MaxBatchContents {
		v.fail("accepted_count", "%d exceeds the limit of %d distinct contents in a batch", count, MaxBatchContents)
	}
	ids := v.ids(sp[10], "accepted_event_ids")
	if v.err == nil && uint64(len(ids)) != count {
		v.fail("accepted_count", "%d, but accepted_event_ids holds %d ids", count, len(ids))
	}
	if v.err != nil {
		return nil, v.err
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

func decodeObstructionJSON(v *jsonView, sp []jsonSpan) (*Result, error) {
	o := &Obstruction{
		Predicate:            predicates.ID(v.uint(sp[1], "violated_predicate_id", math.MaxUint32, "u32")),
		OverlapContextDigest: v.hash(sp[3], "overlap_context_digest"),
	}
	r := &Result{
		Kind:           KindObstruction,
		PriorStateHash: v.hash(sp[4], "prior_state_hash"),
		TraceRoot:      v.hash(sp[7], "trace_root"),
		WitnessHash:    v.hash(sp[8], "witness_hash"),
		Obstruction:    o,
	}
	if v.err == nil && !predicates.IsBuiltin(o.Predicate) && (o.Predicate < predicates.DomainMin || o.Predicate > predicates.DomainMax) {
		v.fail("violated_predicate_id", "%d is neither a built-in predicate nor in the domain range %d-%d", o.Predicate, predicates.DomainMin, predicates.DomainMax)
	}
	o.ConflictSet = v.ids(sp[2], "conflict_set")
	if v.err == nil && (len(o.ConflictSet) == 0 || len(o.ConflictSet) > 2) {
		v.fail("conflict_set", "%d ids, want one or two", len(o.ConflictSet))
	}
	o.EvidenceDigests = v.hashes(sp[6], "evidence_digests")
	if n := len(o.EvidenceDigests); v.err == nil && (n == 0 || n > maxEvidence) {
		v.fail("evidence_digests", "%d digests, want 1 to %d", n, maxEvidence)
	}
	if v.at(sp[5]) && !v.r.next('[') {
		v.check(v.r.unexpected("evidence", "an array of events"), "evidence")
	}
	if v.err != nil {
		return nil, v.err
	}
	for i := 1; i < len(o.ConflictSet); i++ {
		if o.ConflictSet[i-1].Compare(o.ConflictSet[i]) >= 0 {
			return nil, resultMalformed("conflict_set", "not strictly ascending")
		}
	}
	// DecodeEventsJSON reads an array as one; the check above keeps it
	// from reading an object as JSON lines.
	evidence, err := DecodeEventsJSON(v.r.data[sp[5].start:sp[5].end], Limits{MaxPayload: math.MaxInt})
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

// decodeBindingJSON reads the binding view at s.
func decodeBindingJSON(v *jsonView, s jsonSpan) (Binding, error) {
	sp := v.fields(s, "binding", bindingJSONFields)
	bd := Binding{
		CheckerVersion: v.checkerVersion(sp[0]),
		SchemaVersion:  uint16(v.uint(sp[1], "schema_version", math.MaxUint16, "u16")),
		SchemaHash:     v.hash(sp[2], "schema_hash"),
		CatalogHash:    v.hash(sp[3], "catalog_hash"),
	}
	want := v.hash(sp[4], "binding_digest")
	if v.err != nil {
		return Binding{}, v.err
	}
	if d := bd.Digest(); d != want {
		return Binding{}, resultMalformed("binding_digest", "%v, but the binding's fields give %v", want, d)
	}
	return bd, nil
}
