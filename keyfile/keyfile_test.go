package keyfile

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/omega-sheaf/omega"
)

func TestKeyPEMRoundTrip(t *testing.T) {
	priv := testKey(9)
	pub := priv.Public().(ed25519.PublicKey)
	privPEM, err := MarshalPrivate(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("private PEM = %q", privPEM)
	}
	if !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Errorf("public PEM = %q", pubPEM)
	}
	gotPriv, err := ParsePrivate(privPEM)
	if err != nil || !gotPriv.Equal(priv) {
		t.Errorf("ParsePrivate(Marshal(k)) = %x, %v, want %x", gotPriv, err, priv)
	}
	gotPub, err := ParsePublic(pubPEM)
	if err != nil || !gotPub.Equal(pub) {
		t.Errorf("ParsePublic(Marshal(k)) = %x, %v, want %x", gotPub, err, pub)
	}
	// The standard library's encoding, byte for byte.
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if want := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}); !bytes.Equal(privPEM, want) {
		t.Errorf("MarshalPrivate = %q, want %q", privPEM, want)
	}
	// Whitespace around the block is allowed.
	if _, err := ParsePublic(append(append([]byte("\n\n"), pubPEM...), "\r\n \n"...)); err != nil {
		t.Errorf("ParsePublic(with whitespace) = %v", err)
	}
	// Another block before the key, even one pem.Decode skips as
	// malformed, is not.
	for _, before := range []string{
		"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
		"-----BEGIN NOTHING\n",
	} {
		if _, err := ParsePublic(append([]byte(before), pubPEM...)); !errors.Is(err, omega.ErrBadKey) {
			t.Errorf("ParsePublic(%q before the key) = %v, want omega.ErrBadKey", before, err)
		}
		if _, err := ParsePrivate(append([]byte(before), privPEM...)); !errors.Is(err, omega.ErrBadKey) {
			t.Errorf("ParsePrivate(%q before the key) = %v, want omega.ErrBadKey", before, err)
		}
	}
}

func TestMarshalKeyPEMBadLength(t *testing.T) {
	if _, err := MarshalPrivate(make([]byte, 32)); !errors.Is(err, omega.ErrBadKey) {
		t.Errorf("MarshalPrivate(32 bytes) error = %v, want omega.ErrBadKey", err)
	}
	// A key whose public half is not its seed's would read back as
	// another key: refused, and so is saving it.
	mixed := append(bytes.Clone(testKey(1)[:32]), testKey(2)[32:]...)
	if _, err := MarshalPrivate(mixed); !errors.Is(err, omega.ErrBadKey) {
		t.Errorf("MarshalPrivate(halves of two keys) error = %v, want omega.ErrBadKey", err)
	}
	dir := t.TempDir()
	if err := Save(filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub"), mixed); !errors.Is(err, omega.ErrBadKey) {
		t.Errorf("Save(halves of two keys) error = %v, want omega.ErrBadKey", err)
	}
	if _, err := MarshalPublic(make([]byte, 31)); !errors.Is(err, omega.ErrBadKey) {
		t.Errorf("MarshalPublic(31 bytes) error = %v, want omega.ErrBadKey", err)
	}
}

// TestOpenSSLKeys loads the keys testdata/keys/README.txt says openssl made.
func TestOpenSSLKeys(t *testing.T) {
	priv, err := LoadPrivate(filepath.Join("testdata", "keys", "openssl_ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublic(filepath.Join("testdata", "keys", "openssl_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Errorf("openssl public key %x, want %x", pub, priv.Public())
	}
	// Our encoding of the openssl key is openssl's, byte for byte.
	for _, f := range []struct {
		file string
		got  func() ([]byte, error)
	}{
		{"openssl_ed25519.pem", func() ([]byte, error) { return MarshalPrivate(priv) }},
		{"openssl_ed25519.pub", func() ([]byte, error) { return MarshalPublic(pub) }},
	} {
		want, err := os.ReadFile(filepath.Join("testdata", "keys", f.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.got()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: marshal = %q, %v, want %q", f.file, got, err, want)
		}
	}
	msg := []byte("omega v1 certificate\x00test")
	if !ed25519.Verify(pub, msg, ed25519.Sign(priv, msg)) {
		t.Error("signature of the openssl private key does not verify under its public key")
	}
}

func TestNonEd25519KeysRefused(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	privs := map[string][]byte{
		"ecdsa (Go)": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}),
	}
	pubs := map[string][]byte{
		"ecdsa (Go)": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER}),
	}
	for _, name := range []string{"openssl_ec_p256", "openssl_rsa2048"} {
		b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		privs[name] = b
		if b, err = os.ReadFile(filepath.Join("testdata", "keys", name+".pub")); err != nil {
			t.Fatal(err)
		}
		pubs[name] = b
	}
	for name, b := range privs {
		k, err := ParsePrivate(b)
		if !errors.Is(err, omega.ErrNotEd25519) || !errors.Is(err, omega.ErrBadKey) {
			t.Errorf("ParsePrivate(%s) = %x, %v, want omega.ErrNotEd25519 and omega.ErrBadKey", name, k, err)
		}
	}
	for name, b := range pubs {
		k, err := ParsePublic(b)
		if !errors.Is(err, omega.ErrNotEd25519) || !errors.Is(err, omega.ErrBadKey) {
			t.Errorf("ParsePublic(%s) = %x, %v, want omega.ErrNotEd25519 and omega.ErrBadKey", name, k, err)
		}
	}
}

func TestBadKeyPEMRefused(t *testing.T) {
	priv := testKey(3)
	privPEM, _ := MarshalPrivate(priv)
	pubPEM, _ := MarshalPublic(priv.Public().(ed25519.PublicKey))
	block, _ := pem.Decode(privPEM)
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: block.Bytes})
	badDER := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes[:len(block.Bytes)-1]})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key at all")},
		{"raw seed", bytes.Repeat([]byte{3}, 32)},
		{"text before", append([]byte("key:\n"), privPEM...)},
		{"text after", append(append([]byte(nil), privPEM...), "trailing"...)},
		{"two blocks", append(append([]byte(nil), privPEM...), privPEM...)},
		{"public key", pubPEM},
		{"headers", withHeader},
		{"truncated DER", badDER},
		{"truncated PEM", privPEM[:len(privPEM)-10]},
		{"EC PRIVATE KEY type", bytes.ReplaceAll(privPEM, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"))},
	} {
		if k, err := ParsePrivate(tc.b); !errors.Is(err, omega.ErrBadKey) {
			t.Errorf("ParsePrivate(%s) = %x, %v, want omega.ErrBadKey", tc.name, k, err)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"garbage", []byte("-----BEGIN PUBLIC KEY-----\nzzzz\n-----END PUBLIC KEY-----\n")},
		{"private key", privPEM},
		{"two blocks", append(append([]byte(nil), pubPEM...), pubPEM...)},
		{"text after", append(append([]byte(nil), pubPEM...), 0)},
	} {
		if k, err := ParsePublic(tc.b); !errors.Is(err, omega.ErrBadKey) {
			t.Errorf("ParsePublic(%s) = %x, %v, want omega.ErrBadKey", tc.name, k, err)
		}
	}
}

func TestSaveLoadKeyPair(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "cert.key"), filepath.Join(dir, "cert.pub")
	priv := testKey(5)
	if err := Save(privPath, pubPath, priv); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{privPath: 0o600, pubPath: 0o644} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("mode of %s = %v, want %v", filepath.Base(path), got, want)
			}
		}
	}
	gotPriv, err := LoadPrivate(privPath)
	if err != nil || !gotPriv.Equal(priv) {
		t.Errorf("LoadPrivate = %x, %v, want %x", gotPriv, err, priv)
	}
	gotPub, err := LoadPublic(pubPath)
	if err != nil || !gotPub.Equal(priv.Public()) {
		t.Errorf("LoadPublic = %x, %v, want %x", gotPub, err, priv.Public())
	}
	// An existing key is never overwritten.
	if err := Save(privPath, filepath.Join(dir, "other.pub"), testKey(6)); err == nil {
		t.Error("Save over an existing private key succeeded")
	}
	if k, _ := LoadPrivate(privPath); !k.Equal(priv) {
		t.Error("Save changed an existing private key")
	}
	// A failed public key write leaves no private key behind.
	p2 := filepath.Join(dir, "second.key")
	if err := Save(p2, pubPath, testKey(6)); err == nil {
		t.Error("Save over an existing public key succeeded")
	}
	if _, err := os.Stat(p2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private key left behind after a failed Save: %v", err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, maxKeyFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivate(big); !errors.Is(err, omega.ErrBadKey) {
		t.Errorf("LoadPrivate(oversized) error = %v, want omega.ErrBadKey", err)
	}
	if _, err := LoadPublic(filepath.Join(dir, "missing.pub")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPublic(missing) error = %v, want os.ErrNotExist", err)
	}
}

// testKey returns a fixed key made from a seed of n repeated.
func testKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}
