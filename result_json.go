package omega

import "strconv"

// JSON views (SPEC 4). Field order is fixed; hashes are lowercase hex and
// ids JSON integers in full decimal. [DecodeOutputJSON],
// [Result.UnmarshalJSON] and [Binding.UnmarshalJSON] read them back.

// MarshalJSON writes the result's JSON view: the fields of SPEC 4 for its
// kind, in SPEC order.
func (r *Result) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends the result's JSON view to b.
func (r *Result) AppendJSON(b []byte) []byte {
	if r.Kind == KindMerge && r.Merge != nil {
		m := r.Merge
		b = append(b, `{"kind":"merge"`...)
		b = appendHashField(b, "batch_digest", m.BatchDigest)
		b = appendHashField(b, "merged_state_hash", m.MergedStateHash)
		b = appendHashField(b, "prior_state_hash", r.PriorStateHash)
		b = appendHashField(b, "accepted_ids_digest", m.AcceptedIDsDigest)
		b = appendHashField(b, "frontier_digest", m.FrontierDigest)
		b = appendHashField(b, "heads_digest", m.HeadsDigest)
		b = appendHashField(b, "trace_root", r.TraceRoot)
		b = appendHashField(b, "witness_hash", r.WitnessHash)
		b = append(b, `,"accepted_count":`...)
		b = strconv.AppendInt(b, int64(len(r.Members)), 10)
		b = append(b, `,"accepted_event_ids":[`...)
		for i, mb := range r.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = mb.ID.appendDecimal(b)
		}
		return append(b, "]}"...)
	}
	o := r.Obstruction
	if o == nil {
		o = &Obstruction{}
	}
	b = append(b, `{"kind":"obstruction","violated_predicate_id":`...)
	b = strconv.AppendUint(b, uint64(o.Predicate), 10)
	b = append(b, `,"conflict_set":`...)
	b = appendIDs(b, o.ConflictSet)
	b = appendHashField(b, "overlap_context_digest", o.OverlapContextDigest)
	b = appendHashField(b, "prior_state_hash", r.PriorStateHash)
	b = append(b, `,"evidence":[`...)
	for i := range o.Evidence {
		if i > 0 {
			b = append(b, ',')
		}
		b = o.Evidence[i].AppendJSON(b)
	}
	b = append(b, `],"evidence_digests":[`...)
	for i, d := range o.EvidenceDigests {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHashString(b, d)
	}
	b = append(b, ']')
	b = appendHashField(b, "trace_root", r.TraceRoot)
	b = appendHashField(b, "witness_hash", r.WitnessHash)
	return append(b, '}')
}

// MarshalJSON writes the binding's JSON view: checker_version,
// schema_version, schema_hash, catalog_hash and binding_digest.
func (b Binding) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil), nil }

// AppendJSON appends the binding's JSON view to dst.
func (b Binding) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"checker_version":`...)
	dst = appendCheckerVersion(dst, b.CheckerVersion)
	dst = append(dst, `,"schema_version":`...)
	dst = strconv.AppendUint(dst, uint64(b.SchemaVersion), 10)
	dst = appendHashField(dst, "schema_hash", b.SchemaHash)
	dst = appendHashField(dst, "catalog_hash", b.CatalogHash)
	dst = appendHashField(dst, "binding_digest", b.Digest())
	return append(dst, '}')
}

// MarshalJSON writes {"result":...,"binding":...}, with "result":null for
// an output without a result (which DecodeOutputJSON refuses).
func (o Output) MarshalJSON() ([]byte, error) { return o.AppendJSON(nil), nil }

// AppendJSON appends the output's JSON view to b.
func (o Output) AppendJSON(b []byte) []byte {
	b = append(b, `{"result":`...)
	if o.Result == nil {
		b = append(b, "null"...)
	} else {
		b = o.Result.AppendJSON(b)
	}
	b = append(b, `,"binding":`...)
	b = o.Binding.AppendJSON(b)
	return append(b, '}')
}
