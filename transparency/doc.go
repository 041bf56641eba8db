// Package transparency makes an omega certificate log a transparency log
// that existing tooling understands: a Merkle tree over the certificates
// (RFC 6962 hashing, as golang.org/x/mod/sumdb/tlog computes it), signed
// checkpoints in the C2SP tlog-checkpoint format (C2SP signed notes with
// Ed25519 keys), and inclusion and consistency proofs, the former in the
// C2SP tlog-proof format, that anyone holding the log's public key can
// check offline.
//
// Leaf i of the tree is the i-th certificate's envelope, its CERT frame
// payload (SPEC 6), hashed as RFC 6962 leaf data: SHA-256(0x00 || envelope).
// The tree's stored hashes, in tlog's storage order, are kept in
// cert.tlog beside cert.log; cert.log stays the truth, and the file is
// rebuilt from it whenever it is missing or disagrees with it.
//
// A Log signs checkpoints on a policy, never covering a certificate a
// crash could still take back, and refuses to open beside a checkpoint of
// another history. Witnesses (C2SP tlog-witness, cosignature/v1) cosign
// checkpoints that extend what they saw; VerifyWitnessed applies a k-of-n
// witness policy, and a Follower keeps the last checkpoint it accepted,
// refuses one that forks from it, and follows the log's key rotations:
// signed statements kept in RotationsDir, each anchored at a checkpoint.
//
// The package lives in its own module: the core module depends on nothing
// but BLAKE3, and this one brings golang.org/x/mod and
// github.com/transparency-dev/formats.
package transparency
