package omega

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
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
// Decoding reads the view strictly: every field present exactly once, no
// unknown field, integers exact (no sign, fraction, exponent, leading zero
// or quotes) and within their u8/u16/u32/u64/u128 range, hex lowercase and
// of the field's exact length, nothing after the object. It rebuilds the
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
	b = append(b, `,"checker_version":[`...)
	for i, v := range d.Binding.CheckerVersion {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	b = append(b, ']')
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

func appendUintField(b []byte, name string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendHexField(b []byte, name string, v []byte) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = hex.AppendEncode(b, v)
	return append(b, '"')
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
	v, err := jsonObjectFields(ErrMalformedCertificate, b, "certificate", certJSONFields)
	if err != nil {
		return nil, err
	}
	p := jsonParser{kind: ErrMalformedCertificate}
	magic := p.str(v[0], "magic")
	if p.err == nil && magic != certMagic {
		p.fail("magic", "%q, want %q", magic, certMagic)
	}
	p.uint(v[1], "format_version", certVersion, certVersion)
	var kind Kind
	bodyNames := certJSONMergeFields
	switch t := p.str(v[2], "cert_type"); {
	case p.err != nil:
	case t == certTypeMerge:
		kind = KindMerge
	case t == certTypeObstruction:
		kind = KindObstruction
		bodyNames = certJSONObstructionFields
	default:
		p.fail("cert_type", "%q, want %q or %q", t, certTypeMerge, certTypeObstruction)
	}
	p.uint(v[3], "reserved", 0, 0)
	certID := p.u128(v[4], "cert_id")
	c := &Certificate{
		Kind:        kind,
		BatchID:     p.uint(v[5], "batch_id", 0, 1<<64-1),
		CreatedAtNs: p.uint(v[6], "created_at_ns", 0, 1<<64-1),
	}
	if vs := p.array(v[7], "checker_version"); p.err == nil {
		if len(vs) != 3 {
			p.fail("checker_version", "%d numbers, want 3", len(vs))
		}
		for i := range min(len(vs), 3) {
			c.Binding.CheckerVersion[i] = uint16(p.uint(vs[i], "checker_version", 0, 0xFFFF))
		}
	}
	c.Binding.SchemaVersion = uint16(p.uint(v[8], "schema_version", 0, 0xFFFF))
	c.Binding.SchemaHash = p.hash(v[9], "schema_hash")
	c.Binding.CatalogHash = p.hash(v[10], "catalog_hash")
	p.hex(c.IssuerKeyID[:], v[11], "issuer_key_id")
	c.TraceRoot = p.hash(v[12], "trace_root_hash")
	c.PrevCertHash = p.hash(v[13], "prev_cert_hash")
	c.BodyHash = p.hash(v[14], "body_hash")
	bodyLen := p.uint(v[15], "body_len", 0, 1<<32-1)
	p.hex(c.Signature[:], v[17], "signature")
	certHash := p.hash(v[18], "cert_hash")
	if p.err != nil {
		return nil, p.err
	}

	bv, err := jsonObjectFields(ErrMalformedCertificate, v[16], "body", bodyNames)
	if err != nil {
		return nil, err
	}
	if kind == KindMerge {
		c.Merge = &CertMerge{
			BatchDigest:       p.hash(bv[0], "batch_digest"),
			MergedStateHash:   p.hash(bv[1], "merged_state_hash"),
			AcceptedIDsDigest: p.hash(bv[3], "accepted_ids_digest"),
			FrontierDigest:    p.hash(bv[4], "frontier_digest"),
			HeadsDigest:       p.hash(bv[5], "heads_digest"),
			AcceptedCount:     uint32(p.uint(bv[7], "accepted_count", 0, 1<<32-1)),
		}
		c.PriorStateHash = p.hash(bv[2], "prior_state_hash")
		c.WitnessHash = p.hash(bv[6], "witness_hash")
	} else {
		o := &CertObstruction{}
		o.Predicate = predicates.ID(p.uint(bv[0], "violated_predicate_id", 0, 1<<32-1))
		nc := p.uint(bv[1], "conflict_set_len", 0, 0xFFFF)
		ids := p.array(bv[2], "conflict_set")
		if p.err == nil && uint64(len(ids)) != nc {
			p.fail("conflict_set_len", "%d, but conflict_set holds %d ids", nc, len(ids))
		}
		if p.err == nil {
			o.ConflictSet = make([]EventID, len(ids))
			for i, raw := range ids {
				o.ConflictSet[i] = p.u128(raw, "conflict_set")
			}
		}
		c.WitnessHash = p.hash(bv[3], "witness_hash")
		o.OverlapContextDigest = p.hash(bv[4], "overlap_context_digest")
		c.PriorStateHash = p.hash(bv[5], "prior_state_hash")
		ne := p.uint(bv[6], "evidence_count", 0, 0xFFFF)
		ds := p.array(bv[7], "evidence_digests")
		if p.err == nil && uint64(len(ds)) != ne {
			p.fail("evidence_count", "%d, but evidence_digests holds %d digests", ne, len(ds))
		}
		if p.err == nil {
			o.EvidenceDigests = make([]Hash, len(ds))
			for i, raw := range ds {
				o.EvidenceDigests[i] = p.hash(raw, "evidence_digests")
			}
		}
		c.Obstruction = o
	}
	c.ReplaySeed = p.uint(bv[8], "replay_seed", 0, 1<<64-1)
	if p.err != nil {
		return nil, p.err
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

// malformedJSON returns an error wrapping kind, the sentinel of the view
// being decoded, that names the field at fault.
func malformedJSON(kind error, field, format string, args ...any) error {
	return fmt.Errorf("%w: JSON %s: %s", kind, field, fmt.Sprintf(format, args...))
}

// jsonObjectFields reads b as one JSON object, with nothing but whitespace
// after it, whose keys are exactly names, each once, in any order, and
// returns the raw values in the order of names. Its errors wrap kind.
func jsonObjectFields(kind error, b []byte, what string, names []string) ([]json.RawMessage, error) {

	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, malformedJSON(kind, what, "not a JSON object")
	}
	vals := make([]json.RawMessage, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformedJSON(kind, what, "%v", err)
		}
		key, _ := tok.(string)
		i := slices.Index(names, key)
		if i < 0 {
			return nil, malformedJSON(kind, what, "unknown field %q", key)
		}
		if vals[i] != nil {
			return nil, malformedJSON(kind, what, "field %q repeated", key)
		}
		if err := dec.Decode(&vals[i]); err != nil {
			return nil, malformedJSON(kind, key, "%v", err)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, malformedJSON(kind, what, "object not closed")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformedJSON(kind, what, "data after the object")
	}
	for i, v := range vals {
		if v == nil {
			return nil, malformedJSON(kind, what, "field %q missing", names[i])
		}
	}
	return vals, nil
}

// jsonParser converts raw JSON values, keeping the first error, which
// wraps kind: the sentinel of the view being decoded.
type jsonParser struct{ kind, err error }

func (p *jsonParser) fail(field, format string, args ...any) {
	if p.err == nil {
		p.err = malformedJSON(p.kind, field, format, args...)
	}
}

// digits returns raw when it is a canonical unsigned JSON integer.
func (p *jsonParser) digits(raw json.RawMessage, field string) []byte {
	if p.err != nil {
		return nil
	}
	if len(raw) == 0 || (raw[0] == '0' && len(raw) > 1) {
		p.fail(field, "%.40s is not an unsigned integer", raw)
		return nil
	}
	for _, ch := range raw {
		if ch < '0' || ch > '9' {
			p.fail(field, "%.40s is not an unsigned integer", raw)
			return nil
		}
	}
	return raw
}

func (p *jsonParser) uint(raw json.RawMessage, field string, lo, hi uint64) uint64 {
	s := p.digits(raw, field)
	if p.err != nil {
		return 0
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil || v < lo || v > hi {
		if lo == hi {
			p.fail(field, "%.40s, want %d", s, lo)
		} else {
			p.fail(field, "%.40s out of range %d..%d", s, lo, hi)
		}
		return 0
	}
	return v
}

func (p *jsonParser) u128(raw json.RawMessage, field string) EventID {
	s := p.digits(raw, field)
	if p.err != nil {
		return EventID{}
	}
	id, err := parseDecimal128(s)
	if err != nil {
		p.fail(field, "%.50s: %v", s, err)
	}
	return id
}

func (p *jsonParser) str(raw json.RawMessage, field string) string {
	if p.err != nil {
		return ""
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		p.fail(field, "not a JSON string")
		return ""
	}
	return s
}

func (p *jsonParser) array(raw json.RawMessage, field string) []json.RawMessage {
	if p.err != nil {
		return nil
	}
	var vs []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &vs) != nil {
		p.fail(field, "not a JSON array")
		return nil
	}
	return vs
}

// hex fills dst from a string of exactly 2*len(dst) lowercase hex digits.
func (p *jsonParser) hex(dst []byte, raw json.RawMessage, field string) {
	s := p.str(raw, field)
	if p.err != nil {
		return
	}
	if len(s) != 2*len(dst) {
		p.fail(field, "%d hex digits, want %d", len(s), 2*len(dst))
		return
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f') {
			p.fail(field, "not lowercase hex")
			return
		}
	}
	hex.Decode(dst, []byte(s))
}

func (p *jsonParser) hash(raw json.RawMessage, field string) (h Hash) {
	p.hex(h[:], raw, field)
	return h
}
