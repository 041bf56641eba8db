package omega

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/omega-sheaf/omega/predicates"
)

// JSON view of a certificate (SPEC 6).
//
// The view is one object holding the TBS fields in TBS order, the body as
// an object with its fields in body order, then the signature and the
// cert_hash:
//
//	{"magic":"OMEGACRT","format_version":1,"cert_type":"Merge","reserved":0,
//	 "cert_id":N,"batch_id":N,"created_at_ns":N,"checker_version":[1,0,0],
//	 "schema_version":1,"schema_hash":H,"catalog_hash":H,"issuer_key_id":K,
//	 "trace_root_hash":H,"prev_cert_hash":H,"body_hash":H,"body_len":N,
//	 "body":{...},"signature":S,"cert_hash":H}
//
// A Merge body is {"batch_digest","merged_state_hash","prior_state_hash",
// "accepted_ids_digest","frontier_digest","heads_digest","witness_hash",
// "accepted_count","replay_seed"}; an Obstruction body is
// {"violated_predicate_id","conflict_set_len","conflict_set","witness_hash",
// "overlap_context_digest","prior_state_hash","evidence_count",
// "evidence_digests","replay_seed"}, conflict_set an array of ids and
// evidence_digests an array of hashes.
//
// Naming and form, where SPEC leaves a choice:
//   - Every TBS field is present under its SPEC 6 name, magic, format_version
//     and reserved included, although a decodable envelope fixes them
//     ("OMEGACRT", 1, 0): the view is the whole TBS, and a view that names
//     another magic or version is refused, as the envelope would be.
//   - cert_type is "Merge" or "Obstruction", capitalised, as the original
//     system wrote it; the Result view's lowercase "kind" is another field.
//   - The evidence digests are named evidence_digests, as in the Result view.
//   - Integers, cert_id and the conflict set ids included, are JSON integers
//     in full decimal; hashes, issuer_key_id (16 bytes) and the signature are
//     lowercase hex.
//
// Decoding reads the view strictly, by the rules of jsonread.go: every
// field present exactly once, no unknown field, no null, integers exact (no
// sign, fraction, exponent, leading zero or quotes) and within their
// u8/u16/u32/u64/u128 range, hex lowercase and of the field's exact length,
// nothing after the object. It rebuilds the
// envelope from the fields and decodes it with the strictness of
// DecodeCertificate. The fields the envelope holds no place for are checked
// against it: body_len and the counts against the lists, cert_hash against
// D("cert", envelope). Since cert_hash covers every byte, a view with any
// field changed and cert_hash left alone is refused; a view changed and
// rehashed decodes to another envelope, which Verify refuses (its body_hash,
// cert_id or signature no longer holds). cert_id and body_hash are envelope
// bytes: decoding takes them as written, and checking them is Verify's work,
// as for DecodeCertificate.

// Field names of the view, in TBS and body order.
var (
	certJSONFields = []string{
		"magic", "format_version", "cert_type", "reserved", "cert_id", "batch_id",
		"created_at_ns", "checker_version", "schema_version", "schema_hash",
		"catalog_hash", "issuer_key_id", "trace_root_hash", "prev_cert_hash",
		"body_hash", "body_len", "body", "signature", "cert_hash",
	}
	certJSONMergeFields = []string{
		"batch_digest", "merged_state_hash", "prior_state_hash", "accepted_ids_digest",
		"frontier_digest", "heads_digest", "witness_hash", "accepted_count", "replay_seed",
	}
	certJSONObstructionFields = []string{
		"violated_predicate_id", "conflict_set_len", "conflict_set", "witness_hash",
		"overlap_context_digest", "prior_state_hash", "evidence_count",
		"evidence_digests", "replay_seed",
	}
)

// cert_type names of the view.
const (
	certTypeMerge       = "Merge"
	certTypeObstruction = "Obstruction"
)

// MarshalJSON writes the certificate's JSON view, compact, fields in SPEC
// order. It is written from the envelope, the truth, not from the fields
// (see Certificate); a certificate without a decodable envelope, such as
// the zero value, is an error wrapping ErrMalformedCertificate.
func (c *Certificate) MarshalJSON() ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil certificate", ErrMalformedCertificate)
	}
	d, err := decodeCertificate(c.envelope)
	if err != nil {
		return nil, err
	}
	env := c.envelope
	b := make([]byte, 0, 2*len(env)+1024)
	b = append(b, `{"magic":"OMEGACRT","format_version":1,"cert_type":"`...)
	if d.Kind == KindMerge {
		b = append(b, certTypeMerge...)
	} else {
		b = append(b, certTypeObstruction...)
	}
	b = append(b, `","reserved":0,"cert_id":`...)
	b = readID(env[certIDOff:]).appendDecimal(b)
	b = appendUintField(b, "batch_id", d.BatchID)
	b = appendUintField(b, "created_at_ns", d.CreatedAtNs)
	b = append(b, `,"checker_version":`...)
	b = appendCheckerVersion(b, d.Binding.CheckerVersion)
	b = appendUintField(b, "schema_version", uint64(d.Binding.SchemaVersion))
	b = appendHashField(b, "schema_hash", d.Binding.SchemaHash)
	b = appendHashField(b, "catalog_hash", d.Binding.CatalogHash)
	b = appendHexField(b, "issuer_key_id", d.IssuerKeyID[:])
	b = appendHashField(b, "trace_root_hash", d.TraceRoot)
	b = appendHashField(b, "prev_cert_hash", d.PrevCertHash)
	b = appendHashField(b, "body_hash", d.BodyHash)
	b = appendUintField(b, "body_len", uint64(binary.LittleEndian.Uint32(env[certBodyLenOff:])))
	b = append(b, `,"body":{`...)
	if m := d.Merge; m != nil {
		b = append(b, `"batch_digest":`...)
		b = appendHashString(b, m.BatchDigest)
		b = appendHashField(b, "merged_state_hash", m.MergedStateHash)
		b = appendHashField(b, "prior_state_hash", d.PriorStateHash)
		b = appendHashField(b, "accepted_ids_digest", m.AcceptedIDsDigest)
		b = appendHashField(b, "frontier_digest", m.FrontierDigest)
		b = appendHashField(b, "heads_digest", m.HeadsDigest)
		b = appendHashField(b, "witness_hash", d.WitnessHash)
		b = appendUintField(b, "accepted_count", uint64(m.AcceptedCount))
	} else {
		o := d.Obstruction
		b = append(b, `"violated_predicate_id":`...)
		b = strconv.AppendUint(b, uint64(o.Predicate), 10)
		b = appendUintField(b, "conflict_set_len", uint64(len(o.ConflictSet)))
		b = append(b, `,"conflict_set":`...)
		b = appendIDs(b, o.ConflictSet)
		b = appendHashField(b, "witness_hash", d.WitnessHash)
		b = appendHashField(b, "overlap_context_digest", o.OverlapContextDigest)
		b = appendHashField(b, "prior_state_hash", d.PriorStateHash)
		b = appendUintField(b, "evidence_count", uint64(len(o.EvidenceDigests)))
		b = append(b, `,"evidence_digests":[`...)
		for i, h := range o.EvidenceDigests {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendHashString(b, h)
		}
		b = append(b, ']')
	}
	b = appendUintField(b, "replay_seed", d.ReplaySeed)
	b = append(b, '}')
	b = appendHexField(b, "signature", d.Signature[:])
	b = appendHashField(b, "cert_hash", c.Hash())
	return append(b, '}'), nil
}

// UnmarshalJSON decodes a certificate's JSON view into c, as
// DecodeCertificateJSON does; c is left unchanged on error.
func (c *Certificate) UnmarshalJSON(b []byte) error {
	d, err := DecodeCertificateJSON(b)
	if err != nil {
		return err
	}
	*c = *d
	return nil
}

// DecodeCertificateJSON decodes a certificate's JSON view, which must
// fill b (whitespace aside), and returns the certificate of the envelope it
// describes: decoding the view of an envelope gives back that envelope,
// byte for byte. Every refusal wraps ErrMalformedCertificate. It checks no
// signature, body hash or cert_id: that is Verify's work, on Bytes.
func DecodeCertificateJSON(b []byte) (*Certificate, error) {
	v := newJSONView(ErrMalformedCertificate, b)
	sp := v.fields(v.whole(), "certificate", certJSONFields)
	if magic := v.str(sp[0], "magic"); v.err == nil && magic != certMagic {
		v.fail("magic", "%q, want %q", magic, certMagic)
	}
	if n := v.uint(sp[1], "format_version", math.MaxUint16, "u16"); v.err == nil && n != certVersion {
		v.fail("format_version", "%d, want %d", n, certVersion)
	}
	var kind Kind
	bodyNames := certJSONMergeFields
	switch t := v.str(sp[2], "cert_type"); {
	case v.err != nil:
	case t == certTypeMerge:
		kind = KindMerge
	case t == certTypeObstruction:
		kind = KindObstruction
		bodyNames = certJSONObstructionFields
	default:
		v.fail("cert_type", "%q, want %q or %q", t, certTypeMerge, certTypeObstruction)
	}
	if n := v.uint(sp[3], "reserved", math.MaxUint8, "u8"); v.err == nil && n != 0 {
		v.fail("reserved", "%d, want 0", n)
	}
	certID := v.u128(sp[4], "cert_id")
	c := &Certificate{
		Kind:        kind,
		BatchID:     v.uint(sp[5], "batch_id", math.MaxUint64, "u64"),
		CreatedAtNs: v.uint(sp[6], "created_at_ns", math.MaxUint64, "u64"),
	}
	c.Binding.CheckerVersion = v.checkerVersion(sp[7])
	c.Binding.SchemaVersion = uint16(v.uint(sp[8], "schema_version", math.MaxUint16, "u16"))
	c.Binding.SchemaHash = v.hash(sp[9], "schema_hash")
	c.Binding.CatalogHash = v.hash(sp[10], "catalog_hash")
	v.hex(c.IssuerKeyID[:], sp[11], "issuer_key_id")
	c.TraceRoot = v.hash(sp[12], "trace_root_hash")
	c.PrevCertHash = v.hash(sp[13], "prev_cert_hash")
	c.BodyHash = v.hash(sp[14], "body_hash")
	bodyLen := v.uint(sp[15], "body_len", math.MaxUint32, "u32")
	v.hex(c.Signature[:], sp[17], "signature")
	certHash := v.hash(sp[18], "cert_hash")
	if v.err != nil {
		return nil, v.err
	}

	bv := v.fields(sp[16], "body", bodyNames)
	if kind == KindMerge {
		c.Merge = &CertMerge{
			BatchDigest:       v.hash(bv[0], "batch_digest"),
			MergedStateHash:   v.hash(bv[1], "merged_state_hash"),
			AcceptedIDsDigest: v.hash(bv[3], "accepted_ids_digest"),
			FrontierDigest:    v.hash(bv[4], "frontier_digest"),
			HeadsDigest:       v.hash(bv[5], "heads_digest"),
			AcceptedCount:     uint32(v.uint(bv[7], "accepted_count", math.MaxUint32, "u32")),
		}
		c.PriorStateHash = v.hash(bv[2], "prior_state_hash")
		c.WitnessHash = v.hash(bv[6], "witness_hash")
	} else {
		o := &CertObstruction{}
		o.Predicate = predicates.ID(v.uint(bv[0], "violated_predicate_id", math.MaxUint32, "u32"))
		nc := v.uint(bv[1], "conflict_set_len", math.MaxUint16, "u16")
		o.ConflictSet = v.ids(bv[2], "conflict_set")
		if v.err == nil && uint64(len(o.ConflictSet)) != nc {
			v.fail("conflict_set_len", "%d, but conflict_set holds %d ids", nc, len(o.ConflictSet))
		}
		c.WitnessHash = v.hash(bv[3], "witness_hash")
		o.OverlapContextDigest = v.hash(bv[4], "overlap_context_digest")
		c.PriorStateHash = v.hash(bv[5], "prior_state_hash")
		ne := v.uint(bv[6], "evidence_count", math.MaxUint16, "u16")
		o.EvidenceDigests = v.hashes(bv[7], "evidence_digests")
		if v.err == nil && uint64(len(o.EvidenceDigests)) != ne {
			v.fail("evidence_count", "%d, but evidence_digests holds %d digests", ne, len(o.EvidenceDigests))
		}
		c.Obstruction = o
	}
	c.ReplaySeed = v.uint(bv[8], "replay_seed", math.MaxUint64, "u64")
	if v.err != nil {
		return nil, v.err
	}
	if n := c.bodyLen(); uint64(n) != bodyLen {
		return nil, jsonMalformed("body_len", "%d, but the body is %d bytes", bodyLen, n)
	}

	env := c.appendTBS(make([]byte, 0, c.envelopeLen()))
	copy(env[certIDOff:], appendID(nil, certID))
	env = append(env, c.Signature[:]...)
	d, err := decodeCertificate(env)
	if err != nil {
		return nil, err
	}
	if h := d.Hash(); h != certHash {
		return nil, jsonMalformed("cert_hash", "%v, but the envelope hashes to %v", certHash, h)
	}
	return d, nil
}

func jsonMalformed(field, format string, args ...any) error {
	return malformedJSON(ErrMalformedCertificate, field, format, args...)
}
