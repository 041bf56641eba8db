package omega

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// certJSONView returns the JSON view of c, failing the test on error.
func certJSONView(t testing.TB, c *Certificate) []byte {
	t.Helper()
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	return b
}

func TestCertificateJSONRoundTrip(t *testing.T) {
	vs := loadSpecVectors(t)
	for i, c := range vectorCerts(t) {
		name := []string{"cert_merge_batch1", "cert_obstruction_1001_batch2"}[i]
		t.Run(name, func(t *testing.T) {
			view := certJSONView(t, c)
			if !json.Valid(view) {
				t.Fatalf("MarshalJSON wrote invalid JSON: %s", view)
			}
			var obj map[string]any
			if err := json.Unmarshal(view, &obj); err != nil {
				t.Fatal(err)
			}
			v := vs[name]
			if got, want := obj["cert_hash"], v.str(t, v.Outputs, "cert_hash"); got != want {
				t.Errorf("view cert_hash = %v, want %v", got, want)
			}
			if got, want := obj["cert_type"], []string{"Merge", "Obstruction"}[i]; got != want {
				t.Errorf("view cert_type = %v, want %v", got, want)
			}
			// Field order is part of the view: TBS order, then signature
			// and cert_hash.
			last := -1
			for _, f := range certJSONFields {
				at := bytes.Index(view, []byte(`"`+f+`":`))
				if at < 0 || at < last {
					t.Fatalf("field %q at %d, after %d: view out of SPEC order: %s", f, at, last, view)
				}
				last = at
			}

			d, err := DecodeCertificateJSON(view)
			if err != nil {
				t.Fatalf("DecodeCertificateJSON(MarshalJSON(c)) = %v", err)
			}
			if !bytes.Equal(d.Bytes(), c.Bytes()) {
				t.Fatalf("DecodeCertificateJSON gave another envelope\n got %x\nwant %x", d.Bytes(), c.Bytes())
			}
			if _, err := Verify(d.Bytes(), vectorRing(), DefaultBinding()); err != nil {
				t.Fatalf("Verify(decoded view) = %v", err)
			}

			// encoding/json reaches the same code through the Marshaler
			// interfaces, and indented input decodes the same.
			var indented bytes.Buffer
			if err := json.Indent(&indented, view, "", "  "); err != nil {
				t.Fatal(err)
			}
			var viaStd Certificate
			if err := json.Unmarshal(indented.Bytes(), &viaStd); err != nil {
				t.Fatalf("json.Unmarshal(indented view) = %v", err)
			}
			if !bytes.Equal(viaStd.Bytes(), c.Bytes()) {
				t.Fatal("json.Unmarshal gave another envelope")
			}
			again, err := json.Marshal(&viaStd)
			if err != nil || !bytes.Equal(again, view) {
				t.Fatalf("json.Marshal(decoded) = %s, %v, want %s", again, err, view)
			}
		})
	}
}

func TestCertificateJSONRefusals(t *testing.T) {
	certs := vectorCerts(t)
	merge := string(certJSONView(t, certs[0]))
	obstruction := string(certJSONView(t, certs[1]))
	var mergeObj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(merge), &mergeObj); err != nil {
		t.Fatal(err)
	}
	field := func(view, name string) string {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(view), &obj); err != nil {
			t.Fatal(err)
		}
		if raw, ok := obj[name]; ok {
			return `"` + name + `":` + string(raw)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(obj["body"], &body); err != nil {
			t.Fatal(err)
		}
		return `"` + name + `":` + string(body[name])
	}
	// replace swaps the first occurrence of one field for text, and fails
	// the test if the field is not there.
	replace := func(view, name, text string) string {
		old := field(view, name)
		if !strings.Contains(view, old) {
			t.Fatalf("view has no %s", old)
		}
		return strings.Replace(view, old, text, 1)
	}
	certHash := field(merge, "cert_hash")

	tests := []struct {
		name, view string
	}{
		{"empty", ``},
		{"not an object", `[]`},
		{"null", `null`},
		{"trailing data", merge + `{}`},
		{"truncated", merge[:len(merge)-1]},
		{"unknown field", strings.Replace(merge, `{"magic"`, `{"extra":1,"magic"`, 1)},
		{"repeated field", strings.Replace(merge, `{"magic":"OMEGACRT"`, `{"magic":"OMEGACRT","magic":"OMEGACRT"`, 1)},
		{"missing field", strings.Replace(merge, `,`+field(merge, "reserved"), ``, 1)},
		{"missing body field", strings.Replace(merge, `,`+field(merge, "heads_digest"), ``, 1)},
		{"wrong magic", replace(merge, "magic", `"magic":"OMEGACRX"`)},
		{"wrong format_version", replace(merge, "format_version", `"format_version":2`)},
		{"lowercase cert_type", replace(merge, "cert_type", `"cert_type":"merge"`)},
		{"cert_type of the other body", replace(merge, "cert_type", `"cert_type":"Obstruction"`)},
		{"non-zero reserved", replace(merge, "reserved", `"reserved":1`)},
		{"quoted integer", replace(merge, "batch_id", `"batch_id":"1"`)},
		{"leading zero", replace(merge, "batch_id", `"batch_id":01`)},
		{"negative", replace(merge, "batch_id", `"batch_id":-1`)},
		{"fraction", replace(merge, "batch_id", `"batch_id":1.0`)},
		{"exponent", replace(merge, "batch_id", `"batch_id":1e0`)},
		{"u64 overflow", replace(merge, "created_at_ns", `"created_at_ns":18446744073709551616`)},
		{"u128 overflow", replace(merge, "cert_id", `"cert_id":340282366920938463463374607431768211456`)},
		{"checker_version of two", replace(merge, "checker_version", `"checker_version":[1,0]`)},
		{"checker_version over u16", replace(merge, "checker_version", `"checker_version":[65536,0,0]`)},
		{"uppercase hex", replace(merge, "schema_hash", strings.ToUpper(field(merge, "schema_hash")))},
		{"short hash", replace(merge, "trace_root_hash", `"trace_root_hash":"00"`)},
		{"key id of a hash's length", replace(merge, "issuer_key_id", `"issuer_key_id":"`+strings.Repeat("0", 64)+`"`)},
		{"short signature", replace(merge, "signature", `"signature":"`+strings.Repeat("0", 126)+`"`)},
		{"body_len off by one", replace(merge, "body_len", `"body_len":233`)},
		{"cert_hash of another envelope", replace(merge, "cert_hash", field(obstruction, "cert_hash"))},
		{"field changed, cert_hash kept", strings.Replace(replace(merge, "created_at_ns", `"created_at_ns":1`), certHash, certHash, 1)},
		{"body not an object", replace(merge, "body", `"body":[]`)},
		{"conflict_set_len disagrees", replace(obstruction, "conflict_set_len", `"conflict_set_len":3`)},
		{"conflict_set unsorted", replace(obstruction, "conflict_set", `"conflict_set":[31,30]`)},
		{"conflict_set id quoted", replace(obstruction, "conflict_set", `"conflict_set":["30",31]`)},
		{"evidence_count disagrees", replace(obstruction, "evidence_count", `"evidence_count":1`)},
		{"evidence digest short", replace(obstruction, "evidence_digests", `"evidence_digests":["00","00"]`)},
		{"predicate over u32", replace(obstruction, "violated_predicate_id", `"violated_predicate_id":4294967296`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.view == merge || tt.view == obstruction {
				t.Fatal("test case left the view unchanged")
			}
			c, err := DecodeCertificateJSON([]byte(tt.view))
			if err == nil || c != nil || !errors.Is(err, ErrMalformedCertificate) {
				t.Fatalf("DecodeCertificateJSON = %v, %v, want nil and ErrMalformedCertificate", c, err)
			}
			var into Certificate
			if err := into.UnmarshalJSON([]byte(tt.view)); err == nil || into.Bytes() != nil {
				t.Fatalf("Certificate.UnmarshalJSON = %v, left %x, want an error and c unchanged", err, into.Bytes())
			}
		})
	}
	if _, err := (&Certificate{}).MarshalJSON(); !errors.Is(err, ErrMalformedCertificate) {
		t.Errorf("MarshalJSON(zero Certificate) = %v, want ErrMalformedCertificate", err)
	}
}

// FuzzDecodeCertificateJSON checks that decoding a view never panics,
// that every refusal wraps ErrMalformedCertificate, and that an accepted
// view stands for exactly one envelope: writing the certificate's view and
// reading it back gives the same envelope and the same view.
func FuzzDecodeCertificateJSON(f *testing.F) {
	vs := loadSpecVectors(f)
	for _, name := range []string{"cert_merge_batch1", "cert_obstruction_1001_batch2"} {
		c := certifyVector(f, vs, name)
		view := certJSONView(f, c)
		f.Add(view)
		f.Add(view[:len(view)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCertificateJSON(b)
		if err != nil {
			if c != nil || !errors.Is(err, ErrMalformedCertificate) {
				t.Fatalf("DecodeCertificateJSON = %v, %v, want nil and ErrMalformedCertificate", c, err)
			}
			return
		}
		view := certJSONView(t, c)
		d, err := DecodeCertificateJSON(view)
		if err != nil {
			t.Fatalf("re-reading the view of an accepted certificate: %v\n%s", err, view)
		}
		if !bytes.Equal(d.Bytes(), c.Bytes()) {
			t.Fatalf("the view of an accepted certificate reads back as another envelope")
		}
		if again := certJSONView(t, d); !bytes.Equal(again, view) {
			t.Fatalf("view not stable:\n%s\n%s", view, again)
		}
		if _, err := DecodeCertificate(c.Bytes()); err != nil {
			t.Fatalf("an accepted view gave an envelope DecodeCertificate refuses: %v", err)
		}
	})
}
