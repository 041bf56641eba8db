package transparency

import (
	"bytes"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// treeOf returns a tree, with no file, over n leaves, leaf i record(i).
func treeOf(t testing.TB, n int64, record func(int64) []byte) *Tree {
	t.Helper()
	tr := &Tree{}
	for i := range n {
		hs, err := tlog.StoredHashes(i, record(i), tr)
		if err != nil {
			t.Fatal(err)
		}
		tr.hashes = append(tr.hashes, hs...)
		tr.n++
	}
	return tr
}

// TestVectors checks the tree against the RFC 6962 test vectors the
// transparency-dev/merkle module publishes (those of Certificate
// Transparency), and its proofs against that module's verifier, an
// implementation independent of x/mod's.
func TestVectors(t *testing.T) {
	leaves := testonly.LeafInputs()
	roots := testonly.RootHashes()
	tr := treeOf(t, int64(len(leaves)), func(i int64) []byte { return leaves[i] })
	empty, err := tr.Root(0)
	if err != nil || !bytes.Equal(empty[:], testonly.EmptyRootHash()) {
		t.Fatalf("empty root %x (%v), want %x", empty[:], err, testonly.EmptyRootHash())
	}
	for size := int64(1); size <= int64(len(leaves)); size++ {
		root, err := tr.Root(size)
		if err != nil || !bytes.Equal(root[:], roots[size]) {
			t.Fatalf("root of %d = %x (%v), want %x", size, root[:], err, roots[size])
		}
		for i := range size {
			p, err := tr.ProveInclusion(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(size), rfc6962.DefaultHasher.HashLeaf(leaves[i]), hashes(p), root[:]); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, size, err)
			}
		}
		for old := int64(1); old <= size; old++ {
			p, err := tr.ProveConsistency(old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), uint64(size), hashes(p), roots[old], root[:]); err != nil {
				t.Fatalf("consistency of %d and %d: %v", old, size, err)
			}
		}
	}
}

// hashes returns a proof's hashes as the merkle module takes them.
func hashes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
