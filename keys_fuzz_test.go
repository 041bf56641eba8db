package omega

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// FuzzParseKeyPEM: the key parsers never panic, refuse with ErrBadKey, and
// whatever they accept is an Ed25519 key that marshals and parses back to
// itself. More seeds (a key of another algorithm, PEM headers, text around
// the block) are in testdata/fuzz/FuzzParseKeyPEM.
func FuzzParseKeyPEM(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		f.Fatal(err)
	}
	pubPEM, err := MarshalPublicKeyPEM(priv.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(privPEM)
	f.Add(pubPEM)
	f.Add(append([]byte(" \n"), privPEM[:len(privPEM)-10]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if priv, err := ParsePrivateKeyPEM(b); err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParsePrivateKeyPEM error %v does not wrap ErrBadKey", err)
			}
		} else {
			again, err := MarshalPrivateKeyPEM(priv)
			if err != nil {
				t.Fatalf("MarshalPrivateKeyPEM of a parsed key: %v", err)
			}
			back, err := ParsePrivateKeyPEM(again)
			if err != nil || !back.Equal(priv) {
				t.Fatalf("private key does not survive marshal and parse: %v", err)
			}
		}
		if pub, err := ParsePublicKeyPEM(b); err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParsePublicKeyPEM error %v does not wrap ErrBadKey", err)
			}
		} else {
			again, err := MarshalPublicKeyPEM(pub)
			if err != nil {
				t.Fatalf("MarshalPublicKeyPEM of a parsed key: %v", err)
			}
			back, err := ParsePublicKeyPEM(again)
			if err != nil || !back.Equal(pub) {
				t.Fatalf("public key does not survive marshal and parse: %v", err)
			}
		}
	})
}
