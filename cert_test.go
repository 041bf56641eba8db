package omega

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/internal/digest"
)

// vectorKey returns the key of the ed25519_key vector: seed 0x01 x 32.
func vectorKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
}

// testKey returns a fixed key other than the vector key.
func testKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

func (v specVector) u64(t testing.TB, key string) uint64 {
	t.Helper()
	var n uint64
	if err := json.Unmarshal(v.Inputs[key], &n); err != nil {
		t.Fatalf("%s: %s: %v", v.Name, key, err)
	}
	return n
}

// certifyVector certifies the result a certificate vector names, with the
// vector's inputs.
func certifyVector(t testing.TB, vs map[string]specVector, name string) *Certificate {
	t.Helper()
	v := vs[name]
	var resName string
	if err := json.Unmarshal(v.Inputs["result"], &resName); err != nil {
		t.Fatal(err)
	}
	r := reconcileVector(t, vs, vs[resName])
	prev, err := ParseHash(v.str(t, v.Inputs, "prev_cert_hash"))
	if err != nil {
		t.Fatal(err)
	}
	meta := BatchMeta{BatchID: v.u64(t, "batch_id"), ReplaySeed: v.u64(t, "replay_seed"), CreatedAtNs: v.u64(t, "created_at_ns")}
	c, err := Certify(Output{Result: r, Binding: DefaultBinding()}, DefaultBinding(), meta, prev, vectorKey())
	if err != nil {
		t.Fatalf("%s: Certify: %v", name, err)
	}
	return c
}

func vectorCerts(t *testing.T) []*Certificate {
	vs := loadSpecVectors(t)
	return []*Certificate{
		certifyVector(t, vs, "cert_merge_batch1"),
		certifyVector(t, vs, "cert_obstruction_1001_batch2"),
	}
}

// ringOf is NewKeyRing for keys known to be 32 bytes long.
func ringOf(keys ...ed25519.PublicKey) KeyRing {
	r, err := NewKeyRing(keys...)
	if err != nil {
		panic(err)
	}
	return r
}

func TestNewKeyRing(t *testing.T) {
	a, b := testKey(1).Public().(ed25519.PublicKey), testKey(2).Public().(ed25519.PublicKey)
	keep := ed25519.PublicKey(bytes.Clone(a))
	r, err := NewKeyRing(a, b, a)
	if err != nil || len(r) != 2 || !r[KeyID(a)].Equal(a) || !r[KeyID(b)].Equal(b) {
		t.Fatalf("NewKeyRing(a, b, a) = %v, %v; want a ring of a and b", r, err)
	}
	a[0] ^= 1
	if !r[KeyID(keep)].Equal(keep) {
		t.Errorf("NewKeyRing kept the caller's key, not a copy")
	}
	for _, bad := range []ed25519.PublicKey{nil, {}, b[:31], append(bytes.Clone(b), 0)} {
		r, err := NewKeyRing(keep, b, bad)
		if r != nil || !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "key 2 is") {
			t.Errorf("NewKeyRing(a, b, %d bytes) = %v, %v; want an ErrBadKey naming key 2", len(bad), r, err)
		}
	}
	if r, err := NewKeyRing(); err != nil || len(r) != 0 {
		t.Errorf("NewKeyRing() = %v, %v; want an empty ring", r, err)
	}
}

func vectorRing() KeyRing { return ringOf(vectorKey().Public().(ed25519.PublicKey)) }

func TestSpecKeyVector(t *testing.T) {
	v := loadSpecVectors(t)["ed25519_key"]
	if got, want := hex.EncodeToString(bytes.Repeat([]byte{1}, 32)), v.str(t, v.Inputs, "seed_hex"); got != want {
		t.Fatalf("seed = %s, want %s", got, want)
	}
	pub := vectorKey().Public().(ed25519.PublicKey)
	if got, want := hex.EncodeToString(pub), v.str(t, v.Outputs, "public_key_hex"); got != want {
		t.Errorf("public key = %s, want %s", got, want)
	}
	id := KeyID(pub)
	if got, want := hex.EncodeToString(id[:]), v.str(t, v.Outputs, "issuer_key_id"); got != want {
		t.Errorf("KeyID = %s, want %s", got, want)
	}
}

func TestSpecCertVectors(t *testing.T) {
	vs := loadSpecVectors(t)
	ring := vectorRing()
	for _, name := range []string{"cert_merge_batch1", "cert_obstruction_1001_batch2"} {
		t.Run(name, func(t *testing.T) {
			v := vs[name]
			c := certifyVector(t, vs, name)
			env := c.Bytes()
			tbs := env[:len(env)-64]
			body := tbs[certTBSFixed:]
			var certType int
			if err := json.Unmarshal(v.Outputs["cert_type"], &certType); err != nil {
				t.Fatal(err)
			}
			var certID json.Number
			if err := json.Unmarshal(v.Outputs["cert_id"], &certID); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ field, got string }{
				{"body_hex", hex.EncodeToString(body)},
				{"body_hash", c.BodyHash.String()},
				{"tbs_hex", hex.EncodeToString(tbs)},
				{"cert_id_hex", hex.EncodeToString(env[certIDOff : certIDOff+16])},
				{"signature", hex.EncodeToString(c.Signature[:])},
				{"envelope_hex", hex.EncodeToString(env)},
				{"cert_hash", c.Hash().String()},
			} {
				if want := v.str(t, v.Outputs, f.field); f.got != want {
					t.Errorf("%s\n got %s\nwant %s", f.field, f.got, want)
				}
			}
			if int(c.Kind) != certType {
				t.Errorf("cert_type = %d, want %d", c.Kind, certType)
			}
			if got := c.ID().String(); got != certID.String() {
				t.Errorf("cert_id = %s, want %s", got, certID)
			}
			if got := hex.EncodeToString([]byte(certSigContext)); got != v.str(t, vs["cert_merge_batch1"].Inputs, "signed_message_prefix_hex") {
				t.Errorf("signed message prefix = %s", got)
			}
			d, err := Verify(env, ring, DefaultBinding())
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if !bytes.Equal(d.appendTBS(nil), tbs) || d.Signature != c.Signature {
				t.Errorf("decoded fields do not re-encode to the envelope")
			}
			again := certifyVector(t, vs, name)
			if !bytes.Equal(again.Bytes(), env) {
				t.Errorf("Certify is not deterministic")
			}
		})
	}
	certs := vectorCerts(t)
	a, err := VerifyChain(context.Background(), certs, ring, DefaultBinding(), nil)
	if err != nil {
		t.Fatalf("VerifyChain(vectors) = %v", err)
	}
	if a.CertHash != certs[1].Hash() || a.BatchID != 2 || a.MergedStateHash != certs[0].Merge.MergedStateHash {
		t.Errorf("VerifyChain anchor = %+v", a)
	}
}

// TestCertVectorFiles keeps testdata/cert in step with the vectors: each
// file is the envelope_hex of its vector, decoded, as other implementations
// read it. Regenerate one with
//
//	xxd -r -p <<<"$envelope_hex" > testdata/cert/merge_batch1.cert
func TestCertVectorFiles(t *testing.T) {
	for i, c := range vectorCerts(t) {
		name := []string{"merge_batch1.cert", "obstruction_1001_batch2.cert"}[i]
		b, err := os.ReadFile(filepath.Join("testdata", "cert", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, c.Bytes()) {
			t.Errorf("testdata/cert/%s differs from the certificate of its vector", name)
		}
	}
}

func TestVerifyEveryBitFlip(t *testing.T) {
	skipExhaustiveUnderRace(t)
	ring := vectorRing()
	certs := vectorCerts(t)
	for ci, c := range certs {
		env := c.Bytes()
		for i := range env {
			for bit := range 8 {
				b := bytes.Clone(env)
				b[i] ^= 1 << bit
				if _, err := Verify(b, ring, DefaultBinding()); err == nil {
					t.Fatalf("cert %d: Verify with byte %d bit %d flipped = nil, want an error", ci, i, bit)
				}
				d, err := DecodeCertificate(b)
				if err != nil {
					continue
				}
				chain := []*Certificate{certs[0], certs[1]}
				chain[ci] = d
				if _, err := VerifyChain(context.Background(), chain, ring, DefaultBinding(), nil); err == nil {
					t.Fatalf("cert %d: VerifyChain with byte %d bit %d flipped = nil, want an error", ci, i, bit)
				}
			}
		}
	}
}

func TestVerifyCheckOrder(t *testing.T) {
	ring := vectorRing()
	certs := vectorCerts(t)
	m := certs[0].Bytes()
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	other := DefaultBinding()
	other.CatalogHash[0] ^= 1

	// A merge whose digests do not follow, correctly signed.
	vs := loadSpecVectors(t)
	r := reconcileVector(t, vs, vs["merge_genesis_3_events"])
	bad := *r
	bm := *r.Merge
	bm.MergedStateHash[0] ^= 1
	bad.Merge = &bm
	badMerge, err := Certify(Output{Result: &bad, Binding: DefaultBinding()}, DefaultBinding(), BatchMeta{BatchID: 1}, Hash{}, vectorKey())
	if err != nil {
		t.Fatal(err)
	}
	bw := *r
	bw.WitnessHash[0] ^= 1
	badWitness, err := Certify(Output{Result: &bw, Binding: DefaultBinding()}, DefaultBinding(), BatchMeta{BatchID: 1}, Hash{}, vectorKey())
	if err != nil {
		t.Fatal(err)
	}
	ro := reconcileVector(t, vs, vs["obstruction_1001"])
	bo := *ro
	o := *ro.Obstruction
	o.OverlapContextDigest[3] ^= 1
	bo.Obstruction = &o
	badOverlap, err := Certify(Output{Result: &bo, Binding: DefaultBinding()}, DefaultBinding(), BatchMeta{BatchID: 1}, Hash{}, vectorKey())
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := KeyRing{KeyID(vectorKey().Public().(ed25519.PublicKey)): testKey(7).Public().(ed25519.PublicKey)}

	for _, tc := range []struct {
		name string
		env  []byte
		ring KeyRing
		want Binding
		err  error
	}{
		{"magic", flip(m, 0), ring, DefaultBinding(), ErrMalformedCertificate},
		{"body", flip(m, certTBSFixed+5), ring, DefaultBinding(), ErrBodyHash},
		{"body hash", flip(m, 200), ring, DefaultBinding(), ErrBodyHash},
		{"cert id", flip(m, certIDOff), ring, DefaultBinding(), ErrCertID},
		{"batch id", flip(m, 28), ring, DefaultBinding(), ErrCertID},
		{"unknown key", m, ringOf(testKey(7).Public().(ed25519.PublicKey)), DefaultBinding(), ErrUnknownKey},
		{"empty ring", m, nil, DefaultBinding(), ErrUnknownKey},
		{"wrong key", m, wrongKey, DefaultBinding(), ErrBadSignature},
		{"signature", flip(m, len(m)-1), ring, DefaultBinding(), ErrBadSignature},
		{"binding", m, ring, other, ErrBindingMismatch},
		{"binding before digests", badMerge.Bytes(), ring, other, ErrBindingMismatch},
		{"merged state", badMerge.Bytes(), ring, DefaultBinding(), ErrDigestMismatch},
		{"merge witness", badWitness.Bytes(), ring, DefaultBinding(), ErrDigestMismatch},
		{"overlap context", badOverlap.Bytes(), ring, DefaultBinding(), ErrDigestMismatch},
	} {
		_, err := Verify(tc.env, tc.ring, tc.want)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.err)
		}
	}
	var be *BindingError
	if _, err := Verify(m, ring, other); !errors.As(err, &be) || be.Got != DefaultBinding() {
		t.Errorf("Verify(other binding) = %v, want a *BindingError", err)
	}
}

func TestDecodeCertificateMalformed(t *testing.T) {
	certs := vectorCerts(t)
	m, o := certs[0].Bytes(), certs[1].Bytes()
	edit := func(b []byte, f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	setBodyLen := func(b []byte, n int) []byte {
		b[certBodyLenOff] = byte(n)
		b[certBodyLenOff+1] = byte(n >> 8)
		return b
	}
	oc := certTBSFixed + 6 // first conflict id in the obstruction
	cases := map[string][]byte{
		"empty":         nil,
		"magic":         edit(m, func(b []byte) []byte { b[7] = 'X'; return b }),
		"version 0":     edit(m, func(b []byte) []byte { b[8] = 0; return b }),
		"version 2":     edit(m, func(b []byte) []byte { b[8] = 2; return b }),
		"type 0":        edit(m, func(b []byte) []byte { b[10] = 0; return b }),
		"type 3":        edit(m, func(b []byte) []byte { b[10] = 3; return b }),
		"merge as obst": edit(m, func(b []byte) []byte { b[10] = 2; return b }),
		"obst as merge": edit(o, func(b []byte) []byte { b[10] = 1; return b }),
		"reserved":      edit(m, func(b []byte) []byte { b[11] = 1; return b }),
		"body_len +1":   edit(m, func(b []byte) []byte { return setBodyLen(b, certMergeBody+1) }),
		"body_len -1":   edit(m, func(b []byte) []byte { return setBodyLen(b, certMergeBody-1) }),
		"body_len high": edit(m, func(b []byte) []byte { b[certBodyLenOff+3] = 0x80; return b }),
		"trailing":      append(bytes.Clone(m), 0),
		"obst trailing": append(bytes.Clone(o), 0),
		"merge long body": edit(m, func(b []byte) []byte {
			return append(setBodyLen(b, certMergeBody+1)[:232+certMergeBody], make([]byte, 65)...)
		}),
		"conflict repeat":  edit(o, func(b []byte) []byte { copy(b[oc+16:oc+32], b[oc:oc+16]); return b }),
		"conflict order":   edit(o, func(b []byte) []byte { b[oc], b[oc+16] = b[oc+16], b[oc]; return b }),
		"conflict len +1":  edit(o, func(b []byte) []byte { b[certTBSFixed+4]++; return b }),
		"conflict len max": edit(o, func(b []byte) []byte { b[certTBSFixed+4], b[certTBSFixed+5] = 0xFF, 0xFF; return b }),
		"evidence len +1":  edit(o, func(b []byte) []byte { b[oc+32+96]++; return b }),
		"evidence len -1":  edit(o, func(b []byte) []byte { b[oc+32+96]--; return b }),
	}
	for name, b := range cases {
		c, err := DecodeCertificate(b)
		if !errors.Is(err, ErrMalformedCertificate) || c != nil {
			t.Errorf("%s: DecodeCertificate = %v, %v, want ErrMalformedCertificate", name, c, err)
		}
		if _, err := Verify(b, vectorRing(), DefaultBinding()); !errors.Is(err, ErrMalformedCertificate) {
			t.Errorf("%s: Verify = %v, want ErrMalformedCertificate", name, err)
		}
	}
	for _, env := range [][]byte{m, o} {
		for n := range len(env) {
			if _, err := DecodeCertificate(env[:n]); !errors.Is(err, ErrMalformedCertificate) {
				t.Fatalf("DecodeCertificate(prefix of %d bytes) = %v, want ErrMalformedCertificate", n, err)
			}
		}
	}
}

func TestCertifyRefuses(t *testing.T) {
	vs := loadSpecVectors(t)
	r := reconcileVector(t, vs, vs["merge_genesis_3_events"])
	out := Output{Result: r, Binding: DefaultBinding()}
	meta := BatchMeta{BatchID: 1}
	other := DefaultBinding()
	other.CheckerVersion[2]++
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	noKind := *r
	noKind.Merge = nil
	for _, tc := range []struct {
		name   string
		out    Output
		want   Binding
		meta   BatchMeta
		signer crypto.Signer
		err    error
	}{
		{"binding", out, other, meta, vectorKey(), ErrBindingMismatch},
		{"output binding", Output{Result: r, Binding: other}, DefaultBinding(), meta, vectorKey(), ErrBindingMismatch},
		{"ecdsa", out, DefaultBinding(), meta, ec, ErrNotEd25519},
		{"nil signer", out, DefaultBinding(), meta, nil, ErrNotEd25519},
		{"nil ed25519 key", out, DefaultBinding(), meta, ed25519.PrivateKey(nil), ErrNotEd25519},
		{"short ed25519 key", out, DefaultBinding(), meta, ed25519.PrivateKey(make([]byte, 40)), ErrNotEd25519},
		{"batch 0", out, DefaultBinding(), BatchMeta{}, vectorKey(), ErrCannotCertify},
		{"nil result", Output{Binding: DefaultBinding()}, DefaultBinding(), meta, vectorKey(), ErrCannotCertify},
		{"kind without fields", Output{Result: &noKind, Binding: DefaultBinding()}, DefaultBinding(), meta, vectorKey(), ErrCannotCertify},
	} {
		c, err := Certify(tc.out, tc.want, tc.meta, Hash{}, tc.signer)
		if !errors.Is(err, tc.err) || c != nil {
			t.Errorf("%s: Certify = %v, %v, want %v", tc.name, c, err, tc.err)
		}
	}
}

// chainSpec says how to make one certificate of a test chain.
type chainSpec struct {
	signer     ed25519.PrivateKey
	obstruct   bool   // a batch that violates 2001
	batchIDGap uint64 // added to the batch id
}

// buildChain certifies n batches of one event each, threading the state and
// the cert hashes; spec(i) shapes batch i.
func buildChain(tb testing.TB, n int, spec func(i int) chainSpec) []*Certificate {
	tb.Helper()
	c, err := NewChecker(&CheckerOptions{Workers: 1})
	if err != nil {
		tb.Fatal(err)
	}
	state := &State{}
	var prev Hash
	var batch uint64
	certs := make([]*Certificate, n)
	for i := range n {
		s := spec(i)
		p := []byte(fmt.Sprintf("payload %d", i))
		e := Event{ID: ID64(uint64(i + 1)), NodeID: 1, StreamID: 1, Lamport: uint64(i + 1),
			PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}
		if s.obstruct {
			e.PayloadHash[0] ^= 1
		}
		out, err := c.Reconcile(state, []Event{e})
		if err != nil {
			tb.Fatal(err)
		}
		if (out.Result.Kind == KindObstruction) != s.obstruct {
			tb.Fatalf("batch %d: kind %v", i, out.Result.Kind)
		}
		batch += 1 + s.batchIDGap
		cert, err := Certify(out, DefaultBinding(), BatchMeta{BatchID: batch, ReplaySeed: 7, CreatedAtNs: uint64(i)}, prev, s.signer)
		if err != nil {
			tb.Fatal(err)
		}
		if out.Result.Kind == KindMerge {
			state = out.Result.Merge.Next
		}
		prev = cert.Hash()
		certs[i] = cert
	}
	return certs
}

func simpleSpec(i int) chainSpec {
	return chainSpec{signer: vectorKey(), obstruct: i%5 == 3, batchIDGap: uint64(i % 3)}
}

func wantChainError(t *testing.T, what string, err error, index int, sentinel error) {
	t.Helper()
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Index != index || !errors.Is(err, sentinel) {
		t.Errorf("%s: VerifyChain = %v, want a failure at %d wrapping %v", what, err, index, sentinel)
	}
}

func TestVerifyChainTamper(t *testing.T) {
	ring := vectorRing()
	want := DefaultBinding()
	certs := buildChain(t, 12, simpleSpec)
	if _, err := VerifyChain(context.Background(), certs, ring, want, nil); err != nil {
		t.Fatalf("VerifyChain = %v", err)
	}
	if a, err := VerifyChain(context.Background(), nil, ring, want, nil); err != nil || a != (ChainAnchor{}) {
		t.Errorf("VerifyChain(nil) = %v, %v", a, err)
	}
	for i := 0; i+1 < len(certs); i++ {
		swapped := append([]*Certificate(nil), certs...)
		swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
		wantChainError(t, fmt.Sprintf("swap %d", i), errOnly(VerifyChain(context.Background(), swapped, ring, want, nil)), i, ErrChainLink)

		dropped := append(append([]*Certificate(nil), certs[:i]...), certs[i+1:]...)
		wantChainError(t, fmt.Sprintf("drop %d", i), errOnly(VerifyChain(context.Background(), dropped, ring, want, nil)), i, ErrChainLink)

		dup := append(append([]*Certificate(nil), certs[:i+1]...), certs[i:]...)
		wantChainError(t, fmt.Sprintf("duplicate %d", i), errOnly(VerifyChain(context.Background(), dup, ring, want, nil)), i+1, ErrChainLink)
	}
	// Relinked: a certificate re-signed to point past its predecessor.
	for i := 2; i < len(certs); i++ {
		d, err := DecodeCertificate(certs[i].Bytes())
		if err != nil {
			t.Fatal(err)
		}
		relinked := resign(t, d, func(c *Certificate) { c.PrevCertHash = certs[i-2].Hash() })
		chain := append([]*Certificate(nil), certs...)
		chain[i] = relinked
		wantChainError(t, fmt.Sprintf("relink %d", i), errOnly(VerifyChain(context.Background(), chain, ring, want, nil)), i, ErrChainLink)

		back := resign(t, d, func(c *Certificate) { c.BatchID = certs[i-1].BatchID })
		chain[i] = back
		wantChainError(t, fmt.Sprintf("batch id %d", i), errOnly(VerifyChain(context.Background(), chain, ring, want, nil)), i, ErrBatchOrder)

		prior := resign(t, d, func(c *Certificate) {
			c.PriorStateHash[0] ^= 1
			if m := c.Merge; m != nil {
				mm := *m
				mm.MergedStateHash = digest.Of(digest.State, c.PriorStateHash[:], mm.BatchDigest[:])
				c.Merge = &mm
				c.WitnessHash = digest.Of(digest.MergeWitness, mm.MergedStateHash[:], mm.AcceptedIDsDigest[:], c.TraceRoot[:])
			}
		})
		chain[i] = prior
		if _, err := Verify(prior.Bytes(), ring, want); err != nil {
			t.Fatalf("re-signed certificate: %v", err)
		}
		wantChainError(t, fmt.Sprintf("prior state %d", i), errOnly(VerifyChain(context.Background(), chain, ring, want, nil)), i, ErrChainState)

		if d.Merge != nil {
			front := resign(t, d, func(c *Certificate) {
				mm := *c.Merge
				mm.FrontierDigest[0] ^= 1
				c.Merge = &mm
			})
			chain[i] = front
			wantChainError(t, fmt.Sprintf("frontier %d", i), errOnly(VerifyChain(context.Background(), chain, ring, want, nil)), i, ErrChainState)
		}
	}
	// Genesis: a chain must start from zero unless anchored.
	wantChainError(t, "no genesis", errOnly(VerifyChain(context.Background(), certs[1:], ring, want, nil)), 0, ErrChainLink)
	a, err := VerifyChain(context.Background(), certs[:5], ring, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := VerifyChain(context.Background(), certs[5:], ring, want, &ChainOptions{Anchor: a}); err != nil {
		t.Errorf("VerifyChain(rest, anchor) = %v", err)
	} else if full, _ := VerifyChain(context.Background(), certs, ring, want, nil); b != full {
		t.Errorf("anchored verification ends at %+v, want %+v", b, full)
	}
	bad := a
	bad.FrontierDigest[0] ^= 1
	wantChainError(t, "bad anchor", errOnly(VerifyChain(context.Background(), certs[5:], ring, want, &ChainOptions{Anchor: bad})), firstMerge(certs[5:]), ErrChainState)
	wantChainError(t, "nil certificate", errOnly(VerifyChain(context.Background(), []*Certificate{certs[0], nil}, ring, want, nil)), 1, ErrMalformedCertificate)
	wantChainError(t, "zero certificate", errOnly(VerifyChain(context.Background(), []*Certificate{{}}, ring, want, nil)), 0, ErrMalformedCertificate)
}

func firstMerge(certs []*Certificate) int {
	for i, c := range certs {
		if c.Kind == KindMerge {
			return i
		}
	}
	return -1
}

func errOnly(_ ChainAnchor, err error) error { return err }

// resign re-encodes d after edit, with a fresh body hash and cert id, and
// signs it with the vector key.
func resign(t *testing.T, d *Certificate, edit func(c *Certificate)) *Certificate {
	t.Helper()
	c := *d
	c.envelope = nil
	edit(&c)
	tbs := c.appendTBS(nil)
	c.BodyHash = digest.Of(digest.CertBody, tbs[certTBSFixed:])
	copy(tbs[196:228], c.BodyHash[:])
	id := certIDOf(tbs)
	copy(tbs[certIDOff:], id[:])
	sig := ed25519.Sign(vectorKey(), append([]byte(certSigContext), tbs...))
	out, err := DecodeCertificate(append(tbs, sig...))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyChainKeyRotation(t *testing.T) {
	a, b := vectorKey(), testKey(2)
	certs := buildChain(t, 10, func(i int) chainSpec {
		s := simpleSpec(i)
		if i >= 6 {
			s.signer = b
		}
		return s
	})
	both := ringOf(a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey))
	if _, err := VerifyChain(context.Background(), certs, both, DefaultBinding(), nil); err != nil {
		t.Errorf("VerifyChain(two keys) = %v", err)
	}
	wantChainError(t, "retired key missing", errOnly(VerifyChain(context.Background(), certs, ringOf(b.Public().(ed25519.PublicKey)), DefaultBinding(), nil)), 0, ErrUnknownKey)
	wantChainError(t, "new key missing", errOnly(VerifyChain(context.Background(), certs, ringOf(a.Public().(ed25519.PublicKey)), DefaultBinding(), nil)), 6, ErrUnknownKey)
	swapped := KeyRing{KeyID(a.Public().(ed25519.PublicKey)): b.Public().(ed25519.PublicKey)}
	wantChainError(t, "wrong key", errOnly(VerifyChain(context.Background(), certs, swapped, DefaultBinding(), nil)), 0, ErrBadSignature)
	other := DefaultBinding()
	other.SchemaVersion++
	wantChainError(t, "binding", errOnly(VerifyChain(context.Background(), certs, both, other, nil)), 0, ErrBindingMismatch)
}

// TestVerifyChainWindows checks that the parallel checks report the first
// failure of a sequential walk, and the anchor before it, across window
// boundaries and with several failures in one window, whatever the number
// of workers.
func TestVerifyChainWindows(t *testing.T) {
	skipExhaustiveUnderRace(t)
	n := chainWindow*2 + 40
	certs := buildChain(t, n, simpleSpec)
	ring := vectorRing()
	ctx := context.Background()
	anchors := make(map[int]ChainAnchor) // after the first i certificates
	anchorAt := func(i int) ChainAnchor {
		if a, ok := anchors[i]; ok {
			return a
		}
		a, err := VerifyChain(ctx, certs[:i], ring, DefaultBinding(), &ChainOptions{Workers: 1})
		if err != nil {
			t.Fatalf("VerifyChain(first %d) = %v", i, err)
		}
		anchors[i] = a
		return a
	}
	for _, workers := range []int{0, 1, 2, 8} {
		if a, err := VerifyChain(ctx, certs, ring, DefaultBinding(), &ChainOptions{Workers: workers}); err != nil || a != anchorAt(n) {
			t.Fatalf("VerifyChain(%d workers) = %+v, %v; want %+v", workers, a, err, anchorAt(n))
		}
	}
	damage := func(c *Certificate, i int) *Certificate {
		b := bytes.Clone(c.Bytes())
		b[i] ^= 0x10
		d, err := DecodeCertificate(b)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, bad := range [][]int{{0}, {chainWindow - 1, chainWindow + 3}, {chainWindow + 7, chainWindow + 2}, {n - 1}, {600, 700, 1000}} {
		chain := append([]*Certificate(nil), certs...)
		first := n
		for _, i := range bad {
			chain[i] = damage(chain[i], len(chain[i].Bytes())-3) // signature
			first = min(first, i)
		}
		for _, workers := range []int{1, 2, 8} {
			what := fmt.Sprintf("bad %v, %d workers", bad, workers)
			a, err := VerifyChain(ctx, chain, ring, DefaultBinding(), &ChainOptions{Workers: workers})
			wantChainError(t, what, err, first, ErrBadSignature)
			if a != anchorAt(first) {
				t.Errorf("%s: VerifyChain anchor = %+v, want the anchor after %d: %+v", what, a, first, anchorAt(first))
			}
		}
		old := runtime.GOMAXPROCS(1)
		_, err := VerifyChain(ctx, chain, ring, DefaultBinding(), nil)
		runtime.GOMAXPROCS(old)
		wantChainError(t, fmt.Sprintf("bad %v, GOMAXPROCS 1", bad), err, first, ErrBadSignature)
	}
}

// endingCtx is a context that ends at the ctx.Err call numbered end,
// counting from 1, so that a test can end it between two windows.
type endingCtx struct {
	context.Context
	calls, end int
	done       chan struct{}
}

func (c *endingCtx) Done() <-chan struct{} { return c.done }

func (c *endingCtx) Err() error {
	c.calls++
	if c.calls == c.end {
		close(c.done)
	}
	if c.calls >= c.end {
		return context.Canceled
	}
	return nil
}

func TestVerifyChainContext(t *testing.T) {
	n := chainWindow*2 + 40
	certs := buildChain(t, n, simpleSpec)
	ring := vectorRing()
	start := ChainAnchor{CertHash: Hash{1}, BatchID: 5}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a, err := VerifyChain(ctx, certs, ring, DefaultBinding(), &ChainOptions{Anchor: start}); err != context.Canceled || a != start {
		t.Errorf("VerifyChain(a cancelled context) = %+v, %v; want the start anchor, context.Canceled", a, err)
	}
	if _, err := VerifyChain(ctx, nil, ring, DefaultBinding(), nil); err != context.Canceled {
		t.Errorf("VerifyChain(a cancelled context, no certificates) = %v, want context.Canceled", err)
	}

	// Ended after the first window was walked: the anchor is the one
	// after that window.
	want, err := VerifyChain(context.Background(), certs[:chainWindow], ring, DefaultBinding(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 8} {
		ectx := &endingCtx{Context: context.Background(), end: 3, done: make(chan struct{})}
		a, err := VerifyChain(ectx, certs, ring, DefaultBinding(), &ChainOptions{Workers: workers})
		if err != context.Canceled || a != want {
			t.Errorf("VerifyChain(%d workers, a context ending after the first window) = %+v, %v; want %+v, context.Canceled", workers, a, err, want)
		}
	}

	for _, workers := range []int{-1, MaxWorkers + 1} {
		if _, err := VerifyChain(context.Background(), certs[:1], ring, DefaultBinding(), &ChainOptions{Workers: workers}); err == nil {
			t.Errorf("VerifyChain(Workers %d) = nil, want an error", workers)
		}
	}
	if _, err := VerifyChain(context.Background(), certs[:1], ring, DefaultBinding(), &ChainOptions{Workers: MaxWorkers}); err != nil {
		t.Errorf("VerifyChain(Workers %d) = %v", MaxWorkers, err)
	}
}

var (
	benchChainOnce sync.Once
	benchChain     []*Certificate
)

func benchCerts(b *testing.B) []*Certificate {
	benchChainOnce.Do(func() {
		benchChain = buildChain(b, 10000, simpleSpec)
	})
	return benchChain
}

func BenchmarkCertify(b *testing.B) {
	c, err := NewChecker(nil)
	if err != nil {
		b.Fatal(err)
	}
	p := []byte("payload")
	out, err := c.Reconcile(&State{}, []Event{{ID: ID64(1), NodeID: 1, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}})
	if err != nil {
		b.Fatal(err)
	}
	key := vectorKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Certify(out, DefaultBinding(), BatchMeta{BatchID: 1}, Hash{}, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	env := benchCerts(b)[3].Bytes() // an obstruction
	ring := vectorRing()
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(env, ring, DefaultBinding()); err != nil {
			b.Fatal(err)
		}
	}
}

// ed25519Rate measures single-core ed25519.Verify calls per second on a
// message the size of a merge TBS.
func ed25519Rate() float64 {
	key := vectorKey()
	pub := key.Public().(ed25519.PublicKey)
	msg := make([]byte, len(certSigContext)+certTBSFixed+certMergeBody)
	sig := ed25519.Sign(key, msg)
	const n = 2000
	start := time.Now()
	for range n {
		if !ed25519.Verify(pub, msg, sig) {
			panic("ed25519.Verify failed")
		}
	}
	return n / time.Since(start).Seconds()
}

func BenchmarkEd25519Verify(b *testing.B) {
	key := vectorKey()
	pub := key.Public().(ed25519.PublicKey)
	msg := make([]byte, len(certSigContext)+certTBSFixed+certMergeBody)
	sig := ed25519.Sign(key, msg)
	for b.Loop() {
		ed25519.Verify(pub, msg, sig)
	}
}

// BenchmarkVerifyChain verifies a chain of 10,000 certificates and reports
// certificates per second and that rate over the single-core ed25519.Verify
// rate measured in the same run.
func BenchmarkVerifyChain(b *testing.B) {
	certs := benchCerts(b)
	ring := vectorRing()
	base := ed25519Rate()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyChain(context.Background(), certs, ring, DefaultBinding(), nil); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(len(certs)) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "certs/s")
	b.ReportMetric(rate/base, "x-ed25519-1core")
	b.ReportMetric(base, "ed25519/s")
}

func ExampleCertify() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)) // from a key file or an HSM in real use
	c, _ := NewChecker(nil)
	p := []byte("hello")
	events := []Event{{ID: ID64(1), NodeID: 1, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}}
	out, err := c.Reconcile(&State{}, events)
	if err != nil {
		panic(err)
	}
	cert, err := Certify(out, c.Binding(), BatchMeta{BatchID: 1, ReplaySeed: 99, CreatedAtNs: 1700000000000000000}, Hash{}, key)
	if err != nil {
		panic(err)
	}
	ring := ringOf(key.Public().(ed25519.PublicKey))
	if _, err := Verify(cert.Bytes(), ring, c.Binding()); err != nil {
		panic(err)
	}
	anchor, err := VerifyChain(context.Background(), []*Certificate{cert}, ring, c.Binding(), nil)
	fmt.Println(cert.Kind, len(cert.Bytes()), anchor.BatchID, anchor.CertHash == cert.Hash(), err)
	// Output: merge 532 1 true <nil>
}
