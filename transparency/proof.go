package transparency

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/omega-sheaf/omega"
)

// Bundle is what a bundle proves: that Certificate (an envelope, SPEC 6)
// is leaf Index of the log whose signed checkpoint is Checkpoint.
//
// A bundle travels as one C2SP tlog-proof (c2sp.org/tlog-proof@v1): its
// extra data is the certificate's envelope, then come the index, the
// inclusion proof and the signed checkpoint. Anyone holding the log's
// public key checks it offline, with VerifyBundle or any tlog-proof
// verifier.
type Bundle struct {
	Certificate []byte
	Index       int64
	Checkpoint  Checkpoint
}

// maxExtraLine bounds the base64 of a bundle's certificate: readers of
// c2sp.org/tlog-proof (formats' among them) read it as one line with a
// 64 KiB line buffer. A certificate of up to 48 KiB fits: every Merge
// certificate, and an Obstruction's with up to about 1,400 evidence
// digests.
const maxExtraLine = 64<<10 - 64

// Prove returns the bundle of certificate index under the signed
// checkpoint signed, which must be of a size t holds. It refuses a
// certificate too large for a bundle (see maxExtraLine).
func (t *Tree) Prove(certs *omega.CertStore, index int64, signed []byte, origin string, logKey note.Verifier) ([]byte, error) {
	cp, _, err := OpenCheckpoint(signed, origin, logKey)
	if err != nil {
		return nil, err
	}
	if root, err := t.Root(cp.Size); err != nil || root != cp.Root {
		return nil, fmt.Errorf("omega: transparency: the checkpoint of size %d is not of this log (%v)", cp.Size, err)
	}
	p, err := t.ProveInclusion(index, cp.Size)
	if err != nil {
		return nil, err
	}
	var cert *omega.Certificate
	for _, c := range certs.From(int(index)) {
		cert = c
		break
	}
	if cert == nil {
		return nil, fmt.Errorf("omega: transparency: certificate %d could not be read: %v", index, certs.Err())
	}
	if n := base64.StdEncoding.EncodedLen(len(cert.Bytes())); n > maxExtraLine {
		return nil, fmt.Errorf("omega: transparency: certificate %d (%d bytes) is too large for a tlog-proof bundle: its extra line would hold %d bytes, over the %d readers take", index, len(cert.Bytes()), n, maxExtraLine)
	}
	tp := proof.TLogProof{Index: uint64(index), Checkpoint: signed, ExtraData: bytes.Clone(cert.Bytes())}
	for _, h := range p {
		tp.Hashes = append(tp.Hashes, h)
	}
	return tp.Marshal(), nil
}

// VerifyBundle checks the bundle b offline: its checkpoint is signed by
// logKey for origin, and its certificate is the leaf its proof says, in
// the tree the checkpoint commits to. It checks nothing of the
// certificate itself: verify that with omega.Verify and the issuer's key
// ring.
func VerifyBundle(b []byte, origin string, logKey note.Verifier) (Bundle, error) {
	var tp proof.TLogProof
	if err := tp.Unmarshal(b); err != nil {
		return Bundle{}, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if len(tp.ExtraData) == 0 {
		return Bundle{}, fmt.Errorf("%w: no certificate (the proof's extra data)", ErrBadProof)
	}
	cp, _, err := OpenCheckpoint(tp.Checkpoint, origin, logKey)
	if err != nil {
		return Bundle{}, err
	}
	if tp.Index >= uint64(cp.Size) {
		return Bundle{}, fmt.Errorf("%w: index %d in a tree of size %d", ErrBadProof, tp.Index, cp.Size)
	}
	p := make(tlog.RecordProof, len(tp.Hashes))
	for i, h := range tp.Hashes {
		p[i] = h
	}
	if err := tlog.CheckRecord(p, cp.Size, cp.Root, int64(tp.Index), tlog.RecordHash(tp.ExtraData)); err != nil {
		return Bundle{}, fmt.Errorf("%w: the certificate is not leaf %d of the checkpoint's tree: %v", ErrBadProof, tp.Index, err)
	}
	return Bundle{Certificate: tp.ExtraData, Index: int64(tp.Index), Checkpoint: cp}, nil
}

// VerifyConsistency checks that the tree of checkpoint old is a prefix of
// the tree of checkpoint cur, by p (from Tree.ProveConsistency). Two
// checkpoints of one size must have one root: otherwise the log has shown
// two histories, and the error says so.
func VerifyConsistency(old, cur Checkpoint, p tlog.TreeProof) error {
	switch {
	case old.Origin != cur.Origin:
		return fmt.Errorf("%w: checkpoints of two logs, %q and %q", ErrBadCheckpoint, old.Origin, cur.Origin)
	case old.Size > cur.Size:
		return fmt.Errorf("%w: checkpoint of size %d after one of size %d", ErrNotConsistent, cur.Size, old.Size)
	case old.Size == cur.Size:
		if old.Root != cur.Root {
			return fmt.Errorf("%w: two roots at size %d", ErrFork, cur.Size)
		}
		return nil
	case old.Size == 0:
		return nil
	}
	if err := tlog.CheckTree(p, cur.Size, cur.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("%w: from size %d to %d: %v", ErrNotConsistent, old.Size, cur.Size, err)
	}
	return nil
}
