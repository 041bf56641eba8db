package transparency

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/omega-sheaf/omega"
)

// TreeFile is the name of the file, beside cert.log, that holds the tree's
// stored hashes: 32 bytes each, in tlog's storage order, nothing else.
const TreeFile = "cert.tlog"

// Tree is the Merkle tree over a certificate store's certificates. Its
// methods are not safe for concurrent use.
type Tree struct {
	path   string
	f      *os.File
	hashes []tlog.Hash // every stored hash, by storage index
	n      int64       // leaves
}

// OpenTree opens the tree of the certificate store in dir (the directory
// of its cert.log), covering every durable certificate certs holds. It recomputes
// the tree from the certificates and rewrites TreeFile when that file is
// missing or holds anything else than the hashes it recomputed.
func OpenTree(dir string, certs *omega.CertStore) (*Tree, error) {
	removeTemps(dir, TreeFile)
	t := &Tree{path: filepath.Join(dir, TreeFile)}
	if err := t.extend(certs); err != nil {
		return nil, err
	}
	want := t.encode(0)
	old, err := os.ReadFile(t.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("omega: transparency: reading %s: %w", t.path, err)
	}
	if !bytes.Equal(old, want) {
		// Missing, torn, stale or damaged: rebuilt from cert.log.
		if err := writeFile(t.path, want); err != nil {
			return nil, err
		}
	}
	t.f, err = os.OpenFile(t.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	return t, nil
}

// Update adds to the tree the durable certificates certs holds beyond its
// size (see omega.CertStore.Synced: a certificate a crash could still
// lose never enters the tree, nor a checkpoint), and appends their hashes
// to TreeFile. The file is not synced: it can always be rebuilt from
// cert.log.
func (t *Tree) Update(certs *omega.CertStore) error {
	from := len(t.hashes)
	if err := t.extend(certs); err != nil {
		return err
	}
	if len(t.hashes) == from {
		return nil
	}
	if _, err := t.f.Write(t.encode(from)); err != nil {
		return fmt.Errorf("omega: transparency: appending to %s: %w", t.path, err)
	}
	return nil
}

// extend hashes the durable certificates of certs from t.n on into the
// tree.
func (t *Tree) extend(certs *omega.CertStore) error {
	n := int64(certs.Synced())
	for i, c := range certs.From(int(t.n)) {
		if t.n >= n {
			break
		}
		if int64(i) != t.n {
			return fmt.Errorf("omega: transparency: certificate %d read where %d was due", i, t.n)
		}
		hs, err := tlog.StoredHashes(t.n, c.Bytes(), t)
		if err != nil {
			return fmt.Errorf("omega: transparency: hashing certificate %d: %w", i, err)
		}
		t.hashes = append(t.hashes, hs...)
		t.n++
	}
	if t.n < n {
		if err := certs.Err(); err != nil {
			return fmt.Errorf("omega: transparency: reading the certificates: %w", err)
		}
		return fmt.Errorf("omega: transparency: read %d of %d certificates", t.n, n)
	}
	return nil
}

// encode returns the stored hashes from storage index from on, as
// TreeFile holds them.
func (t *Tree) encode(from int) []byte {
	b := make([]byte, 0, tlog.HashSize*(len(t.hashes)-from))
	for _, h := range t.hashes[from:] {
		b = append(b, h[:]...)
	}
	return b
}

// ReadHashes returns the stored hashes at indexes: t is the
// tlog.HashReader of its own tree.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("omega: transparency: stored hash %d of %d", x, len(t.hashes))
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// Size returns how many certificates the tree holds.
func (t *Tree) Size() int64 { return t.n }

// Root returns the tree hash over the first size certificates.
func (t *Tree) Root(size int64) (tlog.Hash, error) {
	if size < 0 || size > t.n {
		return tlog.Hash{}, fmt.Errorf("omega: transparency: no tree of size %d in a log of %d", size, t.n)
	}
	return tlog.TreeHash(size, t)
}

// ProveInclusion returns the proof that certificate index is in the tree
// of the first size certificates.
func (t *Tree) ProveInclusion(index, size int64) (tlog.RecordProof, error) {
	if index < 0 || index >= size || size > t.n {
		return nil, fmt.Errorf("omega: transparency: no certificate %d in a tree of size %d (log of %d)", index, size, t.n)
	}
	return tlog.ProveRecord(size, index, t)
}

// ProveConsistency returns the proof that the tree of the first old
// certificates is a prefix of the tree of the first size.
func (t *Tree) ProveConsistency(old, size int64) (tlog.TreeProof, error) {
	if old < 1 || old > size || size > t.n {
		return nil, fmt.Errorf("omega: transparency: no consistency proof from size %d to %d (log of %d)", old, size, t.n)
	}
	return tlog.ProveTree(size, old, t)
}

// Close closes TreeFile. Closing again does nothing.
func (t *Tree) Close() error {
	if t.f == nil {
		return nil
	}
	f := t.f
	t.f = nil
	return f.Close()
}

// writeFile replaces path with b: a temporary file, synced, renamed over
// it, and the directory synced.
func writeFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("omega: transparency: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("omega: transparency: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("omega: transparency: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("omega: transparency: writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("omega: transparency: %w", err)
	}
	return syncDir(dir)
}

// removeTemps removes the temporary files writeFile left beside name in
// dir when it stopped before its rename: the caller is the only writer of
// name (the certificate store's lock on cert.log says so for its files).
func removeTemps(dir, name string) {
	tmps, _ := filepath.Glob(filepath.Join(dir, name+".tmp*"))
	for _, p := range tmps {
		os.Remove(p)
	}
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("omega: transparency: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("omega: transparency: syncing %s: %w", dir, err)
	}
	return nil
}
