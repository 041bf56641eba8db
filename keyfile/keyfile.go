package keyfile

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/omega-sheaf/omega"
)

// PEM block types of the key files.
const (
	pemPrivateKey = "PRIVATE KEY"
	pemPublicKey  = "PUBLIC KEY"
)

// maxKeyFile caps what LoadPrivate and LoadPublic read: a PEM Ed25519
// key is about 120 bytes.
const maxKeyFile = 64 << 10

// MarshalPrivate returns priv as a PKCS#8 PEM block of type
// "PRIVATE KEY". A key that is not 64 bytes long, or whose second half is
// not the public key of its seed, is refused with [omega.ErrBadKey]: PKCS#8 keeps
// only the seed, so such a key would not read back as itself.
func MarshalPrivate(priv ed25519.PrivateKey) ([]byte, error) {
	if err := checkPrivateKey(priv); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", omega.ErrBadKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParsePrivate parses exactly one PKCS#8 PEM block of type
// "PRIVATE KEY" holding an Ed25519 key, with nothing but whitespace around
// it. Every failure wraps [omega.ErrBadKey]; a key of another algorithm also wraps
// [omega.ErrNotEd25519].
func ParsePrivate(b []byte) (ed25519.PrivateKey, error) {
	der, err := decodeKeyPEM(b, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: PKCS#8: %v", omega.ErrBadKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, notEd25519(k)
	}
	return priv, nil
}

// checkPrivateKey refuses, with [omega.ErrBadKey], an Ed25519 private key that is
// not 64 bytes long or whose second half is not its seed's public key: it
// signs for a public key that verifies none of its signatures.
func checkPrivateKey(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key of %d bytes", omega.ErrBadKey, len(priv))
	}
	if !ed25519.NewKeyFromSeed(priv.Seed()).Equal(priv) {
		return fmt.Errorf("%w: private key's public half is not its seed's", omega.ErrBadKey)
	}
	return nil
}

// MarshalPublic returns pub as a PKIX PEM block of type "PUBLIC KEY".
// A key that is not 32 bytes long is refused with [omega.ErrBadKey].
func MarshalPublic(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key of %d bytes", omega.ErrBadKey, len(pub))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", omega.ErrBadKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ParsePublic parses exactly one PKIX PEM block of type "PUBLIC KEY"
// holding an Ed25519 key, with nothing but whitespace around it. Every
// failure wraps [omega.ErrBadKey]; a key of another algorithm also wraps
// [omega.ErrNotEd25519].
func ParsePublic(b []byte) (ed25519.PublicKey, error) {
	der, err := decodeKeyPEM(b, pemPublicKey)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: PKIX: %v", omega.ErrBadKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, notEd25519(k)
	}
	return pub, nil
}

// pemSpace is the whitespace allowed around a key's PEM block.
const pemSpace = " \t\r\n"

// decodeKeyPEM returns the DER of the single PEM block of type typ that b
// holds. pem.Decode alone skips text before a block and returns the rest
// after it; a key file is refused for either, so that what is parsed is
// all that is there.
func decodeKeyPEM(b []byte, typ string) ([]byte, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(b, pemSpace), []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("%w: no PEM block at the start", omega.ErrBadKey)
	}
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", omega.ErrBadKey)
	}
	// pem.Decode skips what it cannot read, a malformed block included,
	// to the next block: the block read must be the first.
	if bytes.Count(b[:len(b)-len(rest)], []byte("-----BEGIN ")) != 1 {
		return nil, fmt.Errorf("%w: data before the PEM block", omega.ErrBadKey)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("%w: PEM type %q, want %q", omega.ErrBadKey, block.Type, typ)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: PEM headers (an encrypted key?)", omega.ErrBadKey)
	}
	if len(bytes.TrimLeft(rest, pemSpace)) != 0 {
		return nil, fmt.Errorf("%w: data after the PEM block", omega.ErrBadKey)
	}
	return block.Bytes, nil
}

func notEd25519(k any) error {
	return fmt.Errorf("%w: %T (%w)", omega.ErrBadKey, k, omega.ErrNotEd25519)
}

// Save writes priv to privPath (PKCS#8 PEM, mode 0600) and its public
// key to pubPath (PKIX PEM, mode 0644), each created anew (an existing file
// is never overwritten) and synced, together with its directory. On error a
// file it created is removed.
func Save(privPath, pubPath string, priv ed25519.PrivateKey) error {
	privPEM, err := MarshalPrivate(priv)
	if err != nil {
		return err
	}
	pubPEM, err := MarshalPublic(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	if err := writeKeyFile(privPath, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeKeyFile(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(privPath)
		return err
	}
	return nil
}

// writeKeyFile creates path exclusively with mode perm, writes b, and syncs
// the file and its directory.
func writeKeyFile(path string, b []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("keyfile: writing key: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
			err = fmt.Errorf("keyfile: writing key: %w", err)
		}
	}()
	// The mode given to OpenFile passes through the umask, which may only
	// narrow it; Chmod makes it exact.
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncKeyDir(filepath.Dir(path))
}

func syncKeyDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadPrivate reads and parses a private key file written by
// Save or by openssl (see ParsePrivate). A file over 64 KiB is
// refused with [omega.ErrBadKey].
func LoadPrivate(path string) (ed25519.PrivateKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivate(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadPublic reads and parses a public key file written by Save
// or by openssl (see ParsePublic). A file over 64 KiB is refused with
// [omega.ErrBadKey].
func LoadPublic(path string) (ed25519.PublicKey, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading key: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s: file over %d bytes", omega.ErrBadKey, path, maxKeyFile)
	}
	return b, nil
}
