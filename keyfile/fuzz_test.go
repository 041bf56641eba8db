package keyfile

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/omega-sheaf/omega"
)

// FuzzParseKeyPEM: the key parsers never panic, refuse with omega.ErrBadKey, and
// whatever they accept is an Ed25519 key that marshals and parses back to
// itself. More seeds (a key of another algorithm, PEM headers, text around
// the block) are in testdata/fuzz/FuzzParseKeyPEM.
func FuzzParseKeyPEM(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	privPEM, err := MarshalPrivate(priv)
	if err != nil {
		f.Fatal(err)
	}
	pubPEM, err := MarshalPublic(priv.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(privPEM)
	f.Add(pubPEM)
	f.Add(append([]byte(" \n"), privPEM[:len(privPEM)-10]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		keyRoundTrip(t, b, "private", ParsePrivate, MarshalPrivate)
		keyRoundTrip(t, b, "public", ParsePublic, MarshalPublic)
	})
}

// keyRoundTrip checks that parse refuses b with omega.ErrBadKey, or accepts a key
// that marshals and parses back to itself.
func keyRoundTrip[K ~[]byte](t *testing.T, b []byte, what string,
	parse func([]byte) (K, error), marshal func(K) ([]byte, error)) {
	k, err := parse(b)
	if err != nil {
		if !errors.Is(err, omega.ErrBadKey) {
			t.Fatalf("parsing a %s key: error %v does not wrap omega.ErrBadKey", what, err)
		}
		return
	}
	again, err := marshal(k)
	if err != nil {
		t.Fatalf("marshalling a parsed %s key: %v", what, err)
	}
	back, err := parse(again)
	if err != nil || !bytes.Equal(back, k) {
		t.Fatalf("%s key does not survive marshal and parse: %v", what, err)
	}
}
