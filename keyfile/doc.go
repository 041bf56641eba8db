// Package keyfile reads and writes the Ed25519 key files omega's
// certificates are signed and verified with (SPEC 6): a private key as
// PKCS#8 PEM (block type "PRIVATE KEY") and a public key as PKIX PEM
// (block type "PUBLIC KEY"), as the standard library and openssl write
// them.
//
// A key that is not an Ed25519 key, or not a well-formed one, is refused
// with an error that wraps [omega.ErrBadKey] (and [omega.ErrNotEd25519] for
// another algorithm's key). Nothing here makes a key: a program makes one
// with ed25519.GenerateKey from crypto/rand, never from replay seeds, batch
// ids or other public data, and [Save] writes it.
package keyfile
