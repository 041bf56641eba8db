package omega

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// A Certificate is a signed statement that one batch was decided as its
// result says, under one binding, as one link of a chain (SPEC 6).
//
// # Envelope
//
// The envelope is the to-be-signed encoding (TBS) followed by a 64-byte
// Ed25519 signature; it is a CERT frame's payload. Integers are little-endian,
// hashes are 32 bytes. The TBS, byte by byte:
//
//	offset size field
//	     0    8 magic "OMEGACRT"
//	     8    2 format_version = 1
//	    10    1 cert_type: 1 Merge, 2 Obstruction
//	    11    1 reserved = 0
//	    12   16 cert_id: the first 16 bytes of D("cert id", TBS with cert_id zeroed)
//	    28    8 batch_id (never 0)
//	    36    8 created_at_ns
//	    44    6 checker_version: major, minor, patch, u16 each
//	    50    2 schema_version
//	    52   32 schema_hash
//	    84   32 catalog_hash
//	   116   16 issuer_key_id: the first 16 bytes of D("key id", public key)
//	   132   32 trace_root_hash: the result's trace_root
//	   164   32 prev_cert_hash: the previous certificate's cert_hash, or zero
//	   196   32 body_hash = D("cert body", body)
//	   228    4 body_len
//	   232    n body
//
// A Merge body is 236 bytes:
//
//	batch_digest | merged_state_hash | prior_state_hash | accepted_ids_digest |
//	frontier_digest | heads_digest | witness_hash (32 each) |
//	accepted_count u32 | replay_seed u64
//
// An Obstruction body is 112 + 16c + 32e bytes:
//
//	violated_predicate_id u32 | conflict_set_len u16 (c) |
//	conflict_set (u128 each, strictly ascending) |
//	witness_hash | overlap_context_digest | prior_state_hash (32 each) |
//	evidence_count u16 (e) | evidence event digests (32 each) | replay_seed u64
//
// The signature is Ed25519 over "omega v1 certificate\x00" || TBS, and the
// certificate's hash is cert_hash = D("cert", envelope).
//
// # Fields
//
// The fields are a decoded view of the envelope, which is the truth:
// [Certificate.Bytes] returns the envelope, and [Verify] and [VerifyChain]
// check it, not the fields. Changing a field changes neither. Exactly one of
// Merge and Obstruction is set, as Kind says.
type Certificate struct {
	Kind         Kind // cert_type
	BatchID      uint64
	CreatedAtNs  uint64
	Binding      Binding
	IssuerKeyID  [16]byte
	TraceRoot    Hash
	PrevCertHash Hash
	BodyHash     Hash

	// Body fields both kinds carry.
	PriorStateHash Hash
	WitnessHash    Hash
	ReplaySeed     uint64

	Merge       *CertMerge
	Obstruction *CertObstruction

	Signature [ed25519.SignatureSize]byte

	envelope []byte
}

// CertMerge holds the body fields only a Merge certificate has.
type CertMerge struct {
	BatchDigest       Hash
	MergedStateHash   Hash
	AcceptedIDsDigest Hash
	FrontierDigest    Hash
	HeadsDigest       Hash
	AcceptedCount     uint32
}

// CertObstruction holds the body fields only an Obstruction certificate has.
type CertObstruction struct {
	Predicate            predicates.ID
	ConflictSet          []EventID // strictly ascending
	OverlapContextDigest Hash
	EvidenceDigests      []Hash // canonical order
}

// CertID is a certificate's u128 cert_id. Its 16 bytes are stored in the
// envelope unchanged, which reads them as a little-endian u128.
type CertID struct {
	Hi, Lo uint64
}

// String returns id in decimal, the form of cert.idx and the JSON view.
func (id CertID) String() string { return EventID(id).String() }

// BatchMeta holds the facts about a batch that a certificate records beside
// its result. They are inputs, never read from a clock, so that certifying
// the same batch twice gives the same bytes.
type BatchMeta struct {
	BatchID     uint64 // position in the chain; strictly increasing, never 0
	ReplaySeed  uint64
	CreatedAtNs uint64
}

// KeyRing holds the public keys trusted to sign certificates, by key id.
// A retired key stays in the ring to verify what it signed.
type KeyRing map[[16]byte]ed25519.PublicKey

// NewKeyRing returns a ring of copies of keys; a key given twice is held
// once. It refuses a key that is not 32 bytes long with an error wrapping
// [ErrBadKey] that names its index among keys: a ring missing a key the
// caller meant to trust would fail every certificate that key signed.
func NewKeyRing(keys ...ed25519.PublicKey) (KeyRing, error) {
	r := make(KeyRing, len(keys))
	for i, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: key %d is %d bytes, want %d", ErrBadKey, i, len(k), ed25519.PublicKeySize)
		}
		r[KeyID(k)] = append(ed25519.PublicKey(nil), k...)
	}
	return r, nil
}

// KeyID returns issuer_key_id: the first 16 bytes of D("key id", pub).
func KeyID(pub ed25519.PublicKey) [16]byte {
	d := digest.Of(digest.KeyID, pub)
	return [16]byte(d[:16])
}

// ChainAnchor is what a chain verification carries from one certificate to
// the next: the cert_hash and batch_id of the last certificate verified, and
// the merged_state_hash and frontier_digest of the last Merge at or before
// it. The zero value is genesis.
type ChainAnchor struct {
	CertHash        Hash
	BatchID         uint64
	MergedStateHash Hash
	FrontierDigest  Hash
}

// ChainError reports the first certificate of a chain that failed, by its
// index in the input. It unwraps to the error of the failed check.
type ChainError struct {
	Index int
	Err   error
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("omega: certificate %d: %v", e.Index, e.Err)
}

// Unwrap returns the error of the failed check.
func (e *ChainError) Unwrap() error { return e.Err }

// Frozen wire format (SPEC 6).
const (
	certMagic      = "OMEGACRT"
	certVersion    = 1
	certTBSFixed   = 232 // TBS bytes before the body
	certMergeBody  = 7*32 + 4 + 8
	certObstFixed  = 4 + 2 + 3*32 + 2 + 8
	certSigContext = "omega v1 certificate\x00"
	certIDOff      = 12
	certBodyLenOff = 228
)

// certSigPrefix is certSigContext, for signing without concatenating.
var certSigPrefix = []byte(certSigContext)

// Bytes returns the envelope. The caller must not modify it.
func (c *Certificate) Bytes() []byte { return c.envelope }

// Hash returns cert_hash = D("cert", envelope).
func (c *Certificate) Hash() Hash { return digest.Of(digest.Cert, c.envelope) }

// ID returns the certificate's cert_id.
func (c *Certificate) ID() CertID {
	if len(c.envelope) < certIDOff+16 {
		return CertID{}
	}
	return CertID(readID(c.envelope[certIDOff:]))
}

// Certify certifies out as batch meta.BatchID, linked to the certificate
// whose cert_hash is prev (zero for the first of a chain), and signs it with
// signer, whose public key must be an ed25519.PublicKey (an HSM or KMS key
// plugs in). The result is a pure function of its inputs.
//
// It refuses an output made under another binding than want (a
// *BindingError, wrapping ErrBindingMismatch), a signer that is nil or not
// Ed25519 (ErrNotEd25519), and an output without a result, batch id 0 or a
// result that a body cannot hold (ErrCannotCertify). An ed25519.PrivateKey
// signer that is not 64 bytes long, a nil one included, is refused too
// (ErrNotEd25519). An error of the signer is returned wrapped.
//
// An ed25519.PrivateKey is not called through its Sign method: Certify
// expands it and signs with filippo.io/edwards25519, the standard library's
// own curve arithmetic as a module, encoding the nonce point once where
// crypto/ed25519 encodes it twice. Ed25519 is deterministic, so the
// signature is the same to the byte, at about a sixth less cost. In FIPS
// 140-3 mode (crypto/fips140.Enabled) every signer is called through Sign.
func Certify(out Output, want Binding, meta BatchMeta, prev Hash, signer crypto.Signer) (*Certificate, error) {
	return certify(out, want, meta, prev, signer, nil)
}

// certify is Certify signing with key when key is not nil: signer
// expanded for signing ahead of time (see expandEd25519).
func certify(out Output, want Binding, meta BatchMeta, prev Hash, signer crypto.Signer, key *ed25519Key) (*Certificate, error) {
	r := out.Result
	if r == nil {
		return nil, fmt.Errorf("%w: no result", ErrCannotCertify)
	}
	if err := out.Binding.Check(want); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: nil signer", ErrNotEd25519)
	}
	if priv, ok := signer.(ed25519.PrivateKey); ok && len(priv) != ed25519.PrivateKeySize {
		// Public and Sign would panic on it (a nil key included).
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrNotEd25519, len(priv))
	}
	if key == nil {
		key = expandEd25519(signer)
	}
	var keyID [16]byte
	if key != nil {
		keyID = key.id
	} else {
		pub, ok := signer.Public().(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: public key is %T", ErrNotEd25519, signer.Public())
		}
		keyID = KeyID(pub)
	}
	if meta.BatchID == 0 {
		return nil, fmt.Errorf("%w: batch id 0", ErrCannotCertify)
	}
	c := &Certificate{
		Kind:           r.Kind,
		BatchID:        meta.BatchID,
		CreatedAtNs:    meta.CreatedAtNs,
		Binding:        out.Binding,
		IssuerKeyID:    keyID,
		TraceRoot:      r.TraceRoot,
		PrevCertHash:   prev,
		PriorStateHash: r.PriorStateHash,
		WitnessHash:    r.WitnessHash,
		ReplaySeed:     meta.ReplaySeed,
	}
	switch {
	case r.Kind == KindMerge && r.Merge != nil && r.Obstruction == nil:
		if uint64(len(r.Members)) > 1<<32-1 {
			return nil, fmt.Errorf("%w: %d accepted events", ErrCannotCertify, len(r.Members))
		}
		m := r.Merge
		c.Merge = &CertMerge{
			BatchDigest:       m.BatchDigest,
			MergedStateHash:   m.MergedStateHash,
			AcceptedIDsDigest: m.AcceptedIDsDigest,
			FrontierDigest:    m.FrontierDigest,
			HeadsDigest:       m.HeadsDigest,
			AcceptedCount:     uint32(len(r.Members)),
		}
	case r.Kind == KindObstruction && r.Obstruction != nil && r.Merge == nil:
		o := r.Obstruction
		if len(o.ConflictSet) > 0xFFFF || len(o.EvidenceDigests) > 0xFFFF {
			return nil, fmt.Errorf("%w: conflict set of %d or %d evidence digests", ErrCannotCertify, len(o.ConflictSet), len(o.EvidenceDigests))
		}
		for i := 1; i < len(o.ConflictSet); i++ {
			if o.ConflictSet[i-1].Compare(o.ConflictSet[i]) >= 0 {
				return nil, fmt.Errorf("%w: conflict set not strictly ascending", ErrCannotCertify)
			}
		}
		c.Obstruction = &CertObstruction{
			Predicate:            o.Predicate,
			ConflictSet:          append([]EventID(nil), o.ConflictSet...),
			OverlapContextDigest: o.OverlapContextDigest,
			EvidenceDigests:      append([]Hash(nil), o.EvidenceDigests...),
		}
	default:
		return nil, fmt.Errorf("%w: result of kind %d with mismatched fields", ErrCannotCertify, r.Kind)
	}

	tbs := c.appendTBS(make([]byte, 0, c.envelopeLen()))
	c.BodyHash = Hash(digest.Of(digest.CertBody, tbs[certTBSFixed:]))
	copy(tbs[196:228], c.BodyHash[:])
	id := certIDOf(tbs)
	copy(tbs[certIDOff:], id[:])

	if key != nil {
		c.envelope = tbs[:len(tbs)+ed25519.SignatureSize]
		key.sign(&c.Signature, certSigPrefix, tbs)
		copy(c.envelope[len(tbs):], c.Signature[:])
		return c, nil
	}
	msg := make([]byte, 0, len(certSigContext)+len(tbs))
	msg = append(append(msg, certSigContext...), tbs...)
	sig, err := signer.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("omega: signing certificate: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrNotEd25519, len(sig))
	}
	c.Signature = [64]byte(sig)
	c.envelope = append(tbs, sig...)
	return c, nil
}

// certIDOf returns the first 16 bytes of D("cert id", tbs with cert_id
// zeroed).
func certIDOf(tbs []byte) [16]byte {
	var zero [16]byte
	d := digest.Of(digest.CertID, tbs[:certIDOff], zero[:], tbs[certIDOff+16:])
	return [16]byte(d[:16])
}

func (c *Certificate) bodyLen() int {
	if c.Obstruction != nil {
		return certObstFixed + 16*len(c.Obstruction.ConflictSet) + 32*len(c.Obstruction.EvidenceDigests)
	}
	return certMergeBody
}

func (c *Certificate) envelopeLen() int {
	return certTBSFixed + c.bodyLen() + ed25519.SignatureSize
}

// appendTBS appends the TBS encoding of c's fields, with the cert_id and
// body_hash taken from the fields too (ID from the stored envelope, if any).
func (c *Certificate) appendTBS(b []byte) []byte {
	le := binary.LittleEndian
	b = append(b, certMagic...)
	b = le.AppendUint16(b, certVersion)
	b = append(b, byte(c.Kind), 0)
	id := c.ID()
	b = appendID(b, EventID(id))
	b = le.AppendUint64(b, c.BatchID)
	b = le.AppendUint64(b, c.CreatedAtNs)
	for _, v := range c.Binding.CheckerVersion {
		b = le.AppendUint16(b, v)
	}
	b = le.AppendUint16(b, c.Binding.SchemaVersion)
	b = append(b, c.Binding.SchemaHash[:]...)
	b = append(b, c.Binding.CatalogHash[:]...)
	b = append(b, c.IssuerKeyID[:]...)
	b = append(b, c.TraceRoot[:]...)
	b = append(b, c.PrevCertHash[:]...)
	b = append(b, c.BodyHash[:]...)
	b = le.AppendUint32(b, uint32(c.bodyLen()))
	if o := c.Obstruction; o != nil {
		b = le.AppendUint32(b, uint32(o.Predicate))
		b = le.AppendUint16(b, uint16(len(o.ConflictSet)))
		for _, id := range o.ConflictSet {
			b = appendID(b, id)
		}
		b = append(b, c.WitnessHash[:]...)
		b = append(b, o.OverlapContextDigest[:]...)
		b = append(b, c.PriorStateHash[:]...)
		b = le.AppendUint16(b, uint16(len(o.EvidenceDigests)))
		for _, d := range o.EvidenceDigests {
			b = append(b, d[:]...)
		}
	} else if m := c.Merge; m != nil {
		b = append(b, m.BatchDigest[:]...)
		b = append(b, m.MergedStateHash[:]...)
		b = append(b, c.PriorStateHash[:]...)
		b = append(b, m.AcceptedIDsDigest[:]...)
		b = append(b, m.FrontierDigest[:]...)
		b = append(b, m.HeadsDigest[:]...)
		b = append(b, c.WitnessHash[:]...)
		b = le.AppendUint32(b, m.AcceptedCount)
	}
	return le.AppendUint64(b, c.ReplaySeed)
}

func malformed(off int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformedCertificate, off, fmt.Sprintf(format, args...))
}

// DecodeCertificate decodes an envelope, which must fill b exactly. Decoding
// is strict (SPEC 6): a wrong magic, format version, cert_type or reserved
// byte, a body_len that disagrees with the bytes, a body of the wrong size
// for its type, a conflict set not strictly ascending, a short input and
// trailing bytes are each an error wrapping ErrMalformedCertificate, so an
// envelope that decodes is the only encoding of its fields. It checks no
// hash or signature: that is Verify's work. It allocates no more than b's
// length justifies, and the certificate does not retain b.
func DecodeCertificate(b []byte) (*Certificate, error) {
	c, err := decodeCertificate(b)
	if err != nil {
		return nil, err
	}
	c.envelope = append([]byte(nil), b...)
	return c, nil
}

// decodeCertificate decodes b into a certificate whose envelope aliases b.
func decodeCertificate(b []byte) (*Certificate, error) {
	le := binary.LittleEndian
	if len(b) < certTBSFixed+ed25519.SignatureSize {
		return nil, malformed(len(b), "short envelope of %d bytes", len(b))
	}
	if string(b[:8]) != certMagic {
		return nil, malformed(0, "wrong magic")
	}
	if v := le.Uint16(b[8:]); v != certVersion {
		return nil, malformed(8, "format_version %d", v)
	}
	kind := Kind(b[10])
	if kind != KindMerge && kind != KindObstruction {
		return nil, malformed(10, "cert_type %d", b[10])
	}
	if b[11] != 0 {
		return nil, malformed(11, "reserved byte %d", b[11])
	}
	bodyLen := le.Uint32(b[certBodyLenOff:])
	if have := len(b) - certTBSFixed - ed25519.SignatureSize; uint64(bodyLen) != uint64(have) {
		return nil, malformed(certBodyLenOff, "body_len %d, but %d body bytes", bodyLen, have)
	}
	body := b[certTBSFixed : len(b)-ed25519.SignatureSize]
	c := &Certificate{
		Kind:        kind,
		BatchID:     le.Uint64(b[28:]),
		CreatedAtNs: le.Uint64(b[36:]),
		Binding: Binding{
			CheckerVersion: [3]uint16{le.Uint16(b[44:]), le.Uint16(b[46:]), le.Uint16(b[48:])},
			SchemaVersion:  le.Uint16(b[50:]),
			SchemaHash:     Hash(b[52:84]),
			CatalogHash:    Hash(b[84:116]),
		},
		IssuerKeyID:  [16]byte(b[116:132]),
		TraceRoot:    Hash(b[132:164]),
		PrevCertHash: Hash(b[164:196]),
		BodyHash:     Hash(b[196:228]),
		Signature:    [64]byte(b[len(b)-ed25519.SignatureSize:]),
	}
	if kind == KindMerge {
		if len(body) != certMergeBody {
			return nil, malformed(certTBSFixed, "merge body of %d bytes, want %d", len(body), certMergeBody)
		}
		c.Merge = &CertMerge{
			BatchDigest:       Hash(body[0:32]),
			MergedStateHash:   Hash(body[32:64]),
			AcceptedIDsDigest: Hash(body[96:128]),
			FrontierDigest:    Hash(body[128:160]),
			HeadsDigest:       Hash(body[160:192]),
			AcceptedCount:     le.Uint32(body[224:]),
		}
		c.PriorStateHash = Hash(body[64:96])
		c.WitnessHash = Hash(body[192:224])
		c.ReplaySeed = le.Uint64(body[228:])
	} else {
		if len(body) < certObstFixed {
			return nil, malformed(certTBSFixed, "obstruction body of %d bytes, want at least %d", len(body), certObstFixed)
		}
		nc := int(le.Uint16(body[4:]))
		p := 6 + 16*nc
		if len(body) < p+98+8 {
			return nil, malformed(certTBSFixed+6, "conflict_set_len %d overruns a body of %d bytes", nc, len(body))
		}
		ne := int(le.Uint16(body[p+96:]))
		if want := certObstFixed + 16*nc + 32*ne; len(body) != want {
			return nil, malformed(certTBSFixed+p+96, "obstruction body of %d bytes, want %d for %d ids and %d evidence digests", len(body), want, nc, ne)
		}
		o := &CertObstruction{
			Predicate:       predicates.ID(le.Uint32(body)),
			ConflictSet:     make([]EventID, nc),
			EvidenceDigests: make([]Hash, ne),
		}
		for i := range o.ConflictSet {
			o.ConflictSet[i] = readID(body[6+16*i:])
			if i > 0 && o.ConflictSet[i-1].Compare(o.ConflictSet[i]) >= 0 {
				return nil, malformed(certTBSFixed+6+16*i, "conflict set not strictly ascending")
			}
		}
		c.WitnessHash = Hash(body[p : p+32])
		o.OverlapContextDigest = Hash(body[p+32 : p+64])
		c.PriorStateHash = Hash(body[p+64 : p+96])
		q := p + 98
		for i := range o.EvidenceDigests {
			o.EvidenceDigests[i] = Hash(body[q+32*i : q+32*i+32])
		}
		c.ReplaySeed = le.Uint64(body[len(body)-8:])
		c.Obstruction = o
	}
	c.envelope = b
	return c, nil
}

// Verify decodes the envelope and checks it alone, in the order of SPEC 6,
// each failure with its own error: malformed encoding
// (ErrMalformedCertificate), body hash (ErrBodyHash), cert_id (ErrCertID),
// issuer key in ring (ErrUnknownKey), signature (ErrBadSignature), binding
// against want (a *BindingError, wrapping ErrBindingMismatch), then the
// digests recomputable from the body and the TBS (ErrDigestMismatch): for a
// Merge the merged state hash and then the witness, for an Obstruction the
// overlap context digest and then the witness. It returns the decoded
// certificate when every check passes.
//
// Verify does not check the certificate's place in a chain: see VerifyChain.
func Verify(envelope []byte, ring KeyRing, want Binding) (*Certificate, error) {
	c, err := DecodeCertificate(envelope)
	if err != nil {
		return nil, err
	}
	if err := c.verify(ring, want, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// verify runs the checks after decoding on c's envelope, which c's fields
// were decoded from. scratch, when not nil, is reused for the signed
// message.
func (c *Certificate) verify(ring KeyRing, want Binding, scratch *[]byte) error {
	env := c.envelope
	tbs := env[:len(env)-ed25519.SignatureSize]
	if Hash(digest.Of(digest.CertBody, tbs[certTBSFixed:])) != c.BodyHash {
		return ErrBodyHash
	}
	if id := certIDOf(tbs); string(id[:]) != string(tbs[certIDOff:certIDOff+16]) {
		return ErrCertID
	}
	pub, ok := ring[c.IssuerKeyID]
	if !ok {
		return fmt.Errorf("%w: key id %x", ErrUnknownKey, c.IssuerKeyID)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: ring key of %d bytes", ErrBadSignature, len(pub))
	}
	var msg []byte
	if scratch != nil {
		msg = (*scratch)[:0]
	}
	msg = append(append(msg, certSigContext...), tbs...)
	if scratch != nil {
		*scratch = msg
	}
	if !ed25519.Verify(pub, msg, c.Signature[:]) {
		return ErrBadSignature
	}
	if err := c.Binding.Check(want); err != nil {
		return err
	}
	if m := c.Merge; m != nil {
		if Hash(digest.Of(digest.State, c.PriorStateHash[:], m.BatchDigest[:])) != m.MergedStateHash {
			return fmt.Errorf("%w: merged_state_hash", ErrDigestMismatch)
		}
		if Hash(digest.Of(digest.MergeWitness, m.MergedStateHash[:], m.AcceptedIDsDigest[:], c.TraceRoot[:])) != c.WitnessHash {
			return fmt.Errorf("%w: witness_hash", ErrDigestMismatch)
		}
		return nil
	}
	o := c.Obstruction
	if Hash(digest.Of(digest.IDs, idsBytes(o.ConflictSet))) != o.OverlapContextDigest {
		return fmt.Errorf("%w: overlap_context_digest", ErrDigestMismatch)
	}
	if obstructionWitness(o.Predicate, o.ConflictSet, o.EvidenceDigests) != c.WitnessHash {
		return fmt.Errorf("%w: witness_hash", ErrDigestMismatch)
	}
	return nil
}

// chainWindow is how many certificates VerifyChain checks ahead, in
// parallel, before walking them in order.
const chainWindow = 512

// ChainOptions configures [VerifyChain]. A nil *ChainOptions and zero
// fields mean the defaults.
type ChainOptions struct {
	// Anchor is the trusted position the chain continues from: the
	// anchor a previous VerifyChain returned, or one the caller trusts
	// otherwise. The zero value, the default, is genesis (previous cert
	// hash, merged state and frontier zero, last batch id 0).
	Anchor ChainAnchor
	// Workers caps the goroutines that check signatures, at most
	// MaxWorkers; 0, the default, means GOMAXPROCS. Results never depend
	// on it.
	Workers int
}

// VerifyChain verifies certs as a chain in log order, starting from
// opts.Anchor (genesis by default). Each certificate goes through the
// checks of Verify and then through the chain checks of SPEC 6: its
// prev_cert_hash is the previous cert_hash (ErrChainLink), its batch id is
// greater than the previous one (ErrBatchOrder; gaps are allowed), its
// prior_state_hash is the merged state of the last Merge before it, and a
// Merge's frontier_digest is D("frontier", previous Merge's frontier_digest
// || accepted_ids_digest) (ErrChainState).
//
// It reports the first failure, as a *ChainError naming the index of the
// certificate, and returns the anchor after the last certificate that passed
// (the starting anchor when none did), from which a growing log is verified
// on. A nil certificate is malformed.
//
// The single-certificate checks run on opts.Workers goroutines, a window of
// certificates ahead of the walk, which VerifyChain joins before returning;
// the walk is in order, so the failure reported is the one a sequential
// walk reports, whatever the number of workers. When ctx ends first,
// VerifyChain stops within a certificate's check per worker and returns
// ctx.Err() with the anchor after the last certificate walked. It refuses a
// worker count out of range. It panics if ctx is nil.
func VerifyChain(ctx context.Context, certs []*Certificate, ring KeyRing, want Binding, opts *ChainOptions) (ChainAnchor, error) {
	var o ChainOptions
	if opts != nil {
		o = *opts
	}
	a := o.Anchor
	if o.Workers < 0 || o.Workers > MaxWorkers {
		return a, fmt.Errorf("omega: ChainOptions.Workers %d out of range 0..%d", o.Workers, MaxWorkers)
	}
	workers := o.Workers
	if workers == 0 {
		workers = min(runtime.GOMAXPROCS(0), MaxWorkers)
	}
	if err := ctx.Err(); err != nil {
		return a, err
	}
	done := ctx.Done()
	// Two windows alternate: while the walk checks one in order, the
	// workers verify the next, so no core waits on the walk.
	type window struct {
		decoded []*Certificate
		hashes  []Hash
		errs    []error
		wg      sync.WaitGroup
	}
	var wins [2]window
	for i := range wins {
		n := min(chainWindow, len(certs))
		wins[i] = window{decoded: make([]*Certificate, n), hashes: make([]Hash, n), errs: make([]error, n)}
	}
	launch := func(w *window, start int) {
		batch := certs[start:min(start+chainWindow, len(certs))]
		// The envelope is decoded again, aliased: the fields of certs
		// may have been changed, the envelope may not.
		check := func(i int, scratch *[]byte) {
			w.decoded[i], w.errs[i] = nil, nil
			c := batch[i]
			if c == nil {
				w.errs[i] = malformed(0, "nil certificate")
				return
			}
			d, err := decodeCertificate(c.envelope)
			if err == nil {
				err = d.verify(ring, want, scratch)
			}
			if err == nil {
				w.hashes[i] = d.Hash()
			}
			w.decoded[i], w.errs[i] = d, err
		}
		var next atomic.Int64
		for range min(workers, len(batch)) {
			w.wg.Go(func() {
				var scratch []byte
				for {
					i := int(next.Add(1) - 1)
					if i >= len(batch) {
						return
					}
					// A window left unchecked is never
					// walked: the walk sees ctx end too.
					select {
					case <-done:
						return
					default:
					}
					check(i, &scratch)
				}
			})
		}
	}
	if len(certs) > 0 {
		launch(&wins[0], 0)
	}
	for k, start := 0, 0; start < len(certs); k, start = k+1, start+chainWindow {
		w := &wins[k%2]
		w.wg.Wait()
		if err := ctx.Err(); err != nil {
			return a, err // the window ahead was not launched
		}
		if next := start + chainWindow; next < len(certs) {
			launch(&wins[(k+1)%2], next)
		}
		for i := range min(chainWindow, len(certs)-start) {
			err := w.errs[i]
			if err == nil {
				err = a.next(w.decoded[i], w.hashes[i])
			}
			if err != nil {
				wins[(k+1)%2].wg.Wait() // join the window ahead before returning
				return a, &ChainError{Index: start + i, Err: err}
			}
		}
	}
	return a, nil
}

// next runs the chain checks of c, whose cert_hash is hash, against a and,
// when they pass, moves a past c.
func (a *ChainAnchor) next(c *Certificate, hash Hash) error {
	if c.PrevCertHash != a.CertHash {
		return fmt.Errorf("%w: prev_cert_hash %v, want %v", ErrChainLink, c.PrevCertHash, a.CertHash)
	}
	if c.BatchID <= a.BatchID {
		return fmt.Errorf("%w: batch id %d after %d", ErrBatchOrder, c.BatchID, a.BatchID)
	}
	if c.PriorStateHash != a.MergedStateHash {
		return fmt.Errorf("%w: prior_state_hash %v, want %v", ErrChainState, c.PriorStateHash, a.MergedStateHash)
	}
	n := *a
	if m := c.Merge; m != nil {
		if Hash(digest.Of(digest.Frontier, a.FrontierDigest[:], m.AcceptedIDsDigest[:])) != m.FrontierDigest {
			return fmt.Errorf("%w: frontier_digest", ErrChainState)
		}
		n.MergedStateHash = m.MergedStateHash
		n.FrontierDigest = m.FrontierDigest
	}
	n.CertHash = hash
	n.BatchID = c.BatchID
	*a = n
	return nil
}
