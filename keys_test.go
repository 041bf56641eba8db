package omega

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
)

func TestKeyPEMRoundTrip(t *testing.T) {
	priv := testKey(9)
	pub := priv.Public().(ed25519.PublicKey)
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("private PEM = %q", privPEM)
	}
	if !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Errorf("public PEM = %q", pubPEM)
	}
	gotPriv, err := ParsePrivateKeyPEM(privPEM)
	if err != nil || !gotPriv.Equal(priv) {
		t.Errorf("ParsePrivateKeyPEM(Marshal(k)) = %x, %v, want %x", gotPriv, err, priv)
	}
	gotPub, err := ParsePublicKeyPEM(pubPEM)
	if err != nil || !gotPub.Equal(pub) {
		t.Errorf("ParsePublicKeyPEM(Marshal(k)) = %x, %v, want %x", gotPub, err, pub)
	}
	// The standard library's encoding, byte for byte.
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if want := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}); !bytes.Equal(privPEM, want) {
		t.Errorf("MarshalPrivateKeyPEM = %q, want %q", privPEM, want)
	}
	// Whitespace around the block is allowed.
	if _, err := ParsePublicKeyPEM(append(append([]byte("\n\n"), pubPEM...), "\r\n \n"...)); err != nil {
		t.Errorf("ParsePublicKeyPEM(with whitespace) = %v", err)
	}
	// Another block before the key, even one pem.Decode skips as
	// malformed, is not.
	for _, before := range []string{
		"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
		"-----BEGIN NOTHING\n",
	} {
		if _, err := ParsePublicKeyPEM(append([]byte(before), pubPEM...)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKeyPEM(%q before the key) = %v, want ErrBadKey", before, err)
		}
		if _, err := ParsePrivateKeyPEM(append([]byte(before), privPEM...)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePrivateKeyPEM(%q before the key) = %v, want ErrBadKey", before, err)
		}
	}
}

func TestMarshalKeyPEMBadLength(t *testing.T) {
	if _, err := MarshalPrivateKeyPEM(make([]byte, 32)); !errors.Is(err, ErrBadKey) {
		t.Errorf("MarshalPrivateKeyPEM(32 bytes) error = %v, want ErrBadKey", err)
	}
	// A key whose public half is not its seed's would read back as
	// another key: refused, and so is saving it.
	mixed := append(bytes.Clone(testKey(1)[:32]), testKey(2)[32:]...)
	if _, err := MarshalPrivateKeyPEM(mixed); !errors.Is(err, ErrBadKey) {
		t.Errorf("MarshalPrivateKeyPEM(halves of two keys) error = %v, want ErrBadKey", err)
	}
	dir := t.TempDir()
	if err := SaveKeyPair(filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub"), mixed); !errors.Is(err, ErrBadKey) {
		t.Errorf("SaveKeyPair(halves of two keys) error = %v, want ErrBadKey", err)
	}
	if _, err := MarshalPublicKeyPEM(make([]byte, 31)); !errors.Is(err, ErrBadKey) {
		t.Errorf("MarshalPublicKeyPEM(31 bytes) error = %v, want ErrBadKey", err)
	}
}

// TestOpenSSLKeys loads the keys testdata/keys/README.txt says openssl made.
func TestOpenSSLKeys(t *testing.T) {
	priv, err := LoadPrivateKey(filepath.Join("testdata", "keys", "openssl_ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join("testdata", "keys", "openssl_ed25519.pub"))
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
		{"openssl_ed25519.pem", func() ([]byte, error) { return MarshalPrivateKeyPEM(priv) }},
		{"openssl_ed25519.pub", func() ([]byte, error) { return MarshalPublicKeyPEM(pub) }},
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
		k, err := ParsePrivateKeyPEM(b)
		if !errors.Is(err, ErrNotEd25519) || !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePrivateKeyPEM(%s) = %x, %v, want ErrNotEd25519 and ErrBadKey", name, k, err)
		}
	}
	for name, b := range pubs {
		k, err := ParsePublicKeyPEM(b)
		if !errors.Is(err, ErrNotEd25519) || !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKeyPEM(%s) = %x, %v, want ErrNotEd25519 and ErrBadKey", name, k, err)
		}
	}
}

func TestBadKeyPEMRefused(t *testing.T) {
	priv := testKey(3)
	privPEM, _ := MarshalPrivateKeyPEM(priv)
	pubPEM, _ := MarshalPublicKeyPEM(priv.Public().(ed25519.PublicKey))
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
		if k, err := ParsePrivateKeyPEM(tc.b); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePrivateKeyPEM(%s) = %x, %v, want ErrBadKey", tc.name, k, err)
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
		if k, err := ParsePublicKeyPEM(tc.b); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKeyPEM(%s) = %x, %v, want ErrBadKey", tc.name, k, err)
		}
	}
}

func TestSaveLoadKeyPair(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "cert.key"), filepath.Join(dir, "cert.pub")
	priv := testKey(5)
	if err := SaveKeyPair(privPath, pubPath, priv); err != nil {
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
	gotPriv, err := LoadPrivateKey(privPath)
	if err != nil || !gotPriv.Equal(priv) {
		t.Errorf("LoadPrivateKey = %x, %v, want %x", gotPriv, err, priv)
	}
	gotPub, err := LoadPublicKey(pubPath)
	if err != nil || !gotPub.Equal(priv.Public()) {
		t.Errorf("LoadPublicKey = %x, %v, want %x", gotPub, err, priv.Public())
	}
	// An existing key is never overwritten.
	if err := SaveKeyPair(privPath, filepath.Join(dir, "other.pub"), testKey(6)); err == nil {
		t.Error("SaveKeyPair over an existing private key succeeded")
	}
	if k, _ := LoadPrivateKey(privPath); !k.Equal(priv) {
		t.Error("SaveKeyPair changed an existing private key")
	}
	// A failed public key write leaves no private key behind.
	p2 := filepath.Join(dir, "second.key")
	if err := SaveKeyPair(p2, pubPath, testKey(6)); err == nil {
		t.Error("SaveKeyPair over an existing public key succeeded")
	}
	if _, err := os.Stat(p2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private key left behind after a failed SaveKeyPair: %v", err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, maxKeyFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(big); !errors.Is(err, ErrBadKey) {
		t.Errorf("LoadPrivateKey(oversized) error = %v, want ErrBadKey", err)
	}
	if _, err := LoadPublicKey(filepath.Join(dir, "missing.pub")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPublicKey(missing) error = %v, want os.ErrNotExist", err)
	}
}
