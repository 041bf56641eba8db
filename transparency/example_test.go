package transparency_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/transparency"
)

// A certificate store's transparency log: sign a checkpoint of its
// certificates, prove one of them in it, and check the proof offline with
// the log's public key alone.
func ExampleLog() {
	dir, _ := os.MkdirTemp("", "certs")
	defer os.RemoveAll(dir)
	issuer := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	logKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	const origin = "example.com/omega/certs"

	// Three batches decided and certified, as a kernel would.
	c, _ := omega.NewChecker(nil)
	certs, _ := omega.OpenCertStore(dir, c.Binding().Header(), nil)
	defer certs.Close()
	var st *omega.State
	for i := range uint64(3) {
		p := []byte(fmt.Sprint("event ", i))
		out, _ := c.Reconcile(st, []omega.Event{{ID: omega.ID64(i + 1), NodeID: 1, Lamport: i + 1, PayloadHash: omega.PayloadHash(p), Deps: []omega.EventID{}, Payload: p}})
		st = out.Result.Merge.Next.Commit()
		certs.CertifyAppend(out, c.Binding(), omega.BatchMeta{BatchID: i + 1}, issuer)
	}
	certs.Sync() // a checkpoint covers durable certificates only

	l, err := transparency.OpenLog(dir, origin, certs, logKey, transparency.Policy{})
	if err != nil {
		panic(err)
	}
	defer l.Close()
	l.Update(time.Now())
	cp, _ := l.Latest()
	fmt.Println("checkpoint of", cp.Size, "certificates")

	bundle, _ := l.Prove(1) // a c2sp.org/tlog-proof file, the certificate inside
	vkey, _ := transparency.VerifierKey(origin, logKey.Public().(ed25519.PublicKey))
	verifier, _ := note.NewVerifier(vkey)
	got, err := transparency.VerifyBundle(bundle, origin, verifier)
	fmt.Println("certificate", got.Index, "proven:", err == nil)
	// Output:
	// checkpoint of 3 certificates
	// certificate 1 proven: true
}
