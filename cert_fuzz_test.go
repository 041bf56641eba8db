package omega

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"testing"
)

// FuzzDecodeCertificate checks that decoding never panics, that every
// refusal wraps ErrMalformedCertificate, and that an accepted envelope is
// the only encoding of its fields: re-encoding them gives the input back.
func FuzzDecodeCertificate(f *testing.F) {
	vs := loadSpecVectors(f)
	for _, name := range []string{"cert_merge_batch1", "cert_obstruction_1001_batch2"} {
		v := vs[name]
		env, err := hex.DecodeString(v.str(f, v.Outputs, "envelope_hex"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
		f.Add(env[:len(env)-1])
	}
	ring := vectorRing()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCertificate(b)
		if err != nil {
			if c != nil || !errors.Is(err, ErrMalformedCertificate) {
				t.Fatalf("DecodeCertificate = %v, %v, want nil and ErrMalformedCertificate", c, err)
			}
			return
		}
		enc := append(c.appendTBS(nil), c.Signature[:]...)
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs from the input\n got %x\nwant %x", enc, b)
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatalf("Bytes() differs from the input")
		}
		if (c.Kind == KindMerge) != (c.Merge != nil) || (c.Kind == KindObstruction) != (c.Obstruction != nil) {
			t.Fatalf("kind %v with merge %v, obstruction %v", c.Kind, c.Merge != nil, c.Obstruction != nil)
		}
		_, _ = Verify(b, ring, DefaultBinding())
		_, _ = VerifyChain(context.Background(), []*Certificate{c}, ring, DefaultBinding(), nil)
	})
}
