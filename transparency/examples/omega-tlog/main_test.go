package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/mod/sumdb/note"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/keyfile"
	"github.com/omega-sheaf/omega/transparency"
)

const origin = "example.com/omega/certs"

// tlog runs the command and decodes its line.
func tlog(t *testing.T, want int, args ...string) map[string]any {
	t.Helper()
	var out bytes.Buffer
	if code := run(context.Background(), args, &out); code != want {
		t.Fatalf("%v: exit %d, want %d: %s", args, code, want, out.Bytes())
	}
	var obj map[string]any
	if err := json.Unmarshal(out.Bytes(), &obj); err != nil || bytes.Count(out.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("%v: not one JSON line: %q", args, out.Bytes())
	}
	return obj
}

// setup writes a certificate store of n certificates and the PEM key
// files of the issuer, the log and a witness into a new directory.
func setup(t *testing.T, n int) (dir string, certs []*omega.Certificate) {
	t.Helper()
	dir = t.TempDir()
	for i, name := range []string{"issuer", "log", "witness", "stranger"} {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
		if err := keyfile.Save(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem"), k); err != nil {
			t.Fatal(err)
		}
	}
	issuer, err := keyfile.LoadPrivate(filepath.Join(dir, "issuer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := omega.NewChecker(nil)
	s, err := omega.OpenCertStore(filepath.Join(dir, "certs"), c.Binding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var st *omega.State
	for i := range n {
		p := []byte(fmt.Sprint("payload ", i))
		e := omega.Event{ID: omega.ID64(uint64(i + 1)), NodeID: 1, Lamport: uint64(i + 1), PayloadHash: blake3.Sum256(p), Deps: []omega.EventID{}, Payload: p}
		out, err := c.Reconcile(st, []omega.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		st = out.Result.Merge.Next.Commit()
		cert, err := s.CertifyAppend(out, c.Binding(), omega.BatchMeta{BatchID: uint64(i + 1)}, issuer)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, cert)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	return dir, certs
}

func TestFlow(t *testing.T) {
	dir, certs := setup(t, 7)
	p := func(name string) string { return filepath.Join(dir, name) }
	vkey := tlog(t, exitOK, "vkey", "--origin", origin, "--key", p("log.pem"))["vkey"].(string)
	logArgs := []string{"--certs", p("certs"), "--origin", origin, "--key", p("log.pem")}

	cp := tlog(t, exitOK, append([]string{"checkpoint"}, logArgs...)...)
	if cp["size"] != float64(7) || cp["signed_now"] != true {
		t.Fatalf("checkpoint: %v", cp)
	}
	again := tlog(t, exitOK, append([]string{"checkpoint"}, logArgs...)...)
	if again["signed_now"] != false || again["checkpoint"] != cp["checkpoint"] {
		t.Fatalf("a second checkpoint of the same size: %v", again)
	}

	bundle := p("cert.tlog-proof")
	pr := tlog(t, exitOK, append([]string{"prove", "--cert-id", certs[4].ID().String(), "--out", bundle}, logArgs...)...)
	if pr["index"] != float64(4) || pr["size"] != float64(7) {
		t.Fatalf("prove: %v", pr)
	}
	v := tlog(t, exitOK, "verify", "--bundle", bundle, "--origin", origin, "--log-vkey", vkey, "--issuer", p("issuer.pub.pem"))
	if v["index"] != float64(4) || v["cert_id"] != certs[4].ID().String() || v["certificate_verified"] != true {
		t.Fatalf("verify: %v", v)
	}
	// Another issuer's key ring, another log key, a changed bundle.
	tlog(t, exitVerify, "verify", "--bundle", bundle, "--origin", origin, "--log-vkey", vkey, "--issuer", p("stranger.pub.pem"))
	strangerVkey := tlog(t, exitOK, "vkey", "--origin", origin, "--key", p("stranger.pem"))["vkey"].(string)
	tlog(t, exitVerify, "verify", "--bundle", bundle, "--origin", origin, "--log-vkey", strangerVkey)
	b, _ := os.ReadFile(bundle)
	b[len("c2sp.org/tlog-proof@v1\nextra ")+10] ^= 1
	os.WriteFile(p("bad.tlog-proof"), b, 0o644)
	tlog(t, exitVerify, "verify", "--bundle", p("bad.tlog-proof"), "--origin", origin, "--log-vkey", vkey)
	tlog(t, exitOther, "prove", "--cert-id", "12345", "--out", bundle, "--certs", p("certs"), "--origin", origin, "--key", p("log.pem"))
	tlog(t, exitOther, "nonsense")
}

// TestCosign runs the witness role and has it cosign the log's checkpoint.
func TestCosign(t *testing.T) {
	dir, _ := setup(t, 3)
	p := func(name string) string { return filepath.Join(dir, name) }
	vkey := tlog(t, exitOK, "vkey", "--origin", origin, "--key", p("log.pem"))["vkey"].(string)
	signed := []byte(tlog(t, exitOK, "checkpoint", "--certs", p("certs"), "--origin", origin, "--key", p("log.pem"))["checkpoint"].(string))

	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"cosign", "--name", "witness.example", "--key", p("witness.pem"), "--origin", origin, "--log-vkey", vkey, "--state", p("witness-state")}, w)
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, r)
	var started map[string]any
	if err := json.Unmarshal(line, &started); err != nil || started["status"] != "ok" {
		t.Fatalf("cosign: %q", line)
	}
	sigs, err := transparency.AddCheckpoint(ctx, http.DefaultClient, started["listening"].(string), 0, nil, signed)
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := note.NewVerifier(vkey)
	wv, err := transparency.CosignatureVerifier(started["vkey"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transparency.VerifyWitnessed(transparency.WithSignatures(signed, sigs), origin, logV, []note.Verifier{wv}, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("cosign exited %d", code)
	}
}
