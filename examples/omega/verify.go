package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/keyfile"
)

// keyRingFlag collects the files given with --pub, once per trusted key.
type keyRingFlag []string

func (k *keyRingFlag) String() string { return strings.Join(*k, ",") }

func (k *keyRingFlag) Set(path string) error {
	*k = append(*k, path)
	return nil
}

// load reads every public key file into one ring.
func (k keyRingFlag) load() (omega.KeyRing, error) {
	keys := make([]ed25519.PublicKey, 0, len(k))
	for _, path := range k {
		pub, err := keyfile.LoadPublic(path)
		if err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	return omega.NewKeyRing(keys...)
}

type verifyOpts struct {
	cert    string
	certLog string
	pubs    keyRingFlag
}

func (o *verifyOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.cert, "cert", "", "a certificate: its binary envelope, or its JSON view (this or --cert-log)")
	fs.StringVar(&o.certLog, "cert-log", "", "a certificate log directory, verified as a chain from genesis (this or --cert)")
	fs.Var(&o.pubs, "pub", "a trusted public key, PKIX PEM as keygen writes it; repeat for a key ring (at least one)")
}

func verifyFlags(fs *flag.FlagSet) { new(verifyOpts).declare(fs) }

type verifyCertOutput struct {
	Status       string      `json:"status"`
	Command      string      `json:"command"`
	Cert         string      `json:"cert"`
	Verified     int         `json:"verified"`
	Kind         string      `json:"kind"`
	BatchID      uint64      `json:"batch_id"`
	CertID       json.Number `json:"cert_id"`
	CertHash     omega.Hash  `json:"cert_hash"`
	PrevCertHash omega.Hash  `json:"prev_cert_hash"`
	IssuerKeyID  string      `json:"issuer_key_id"`
}

type verifyLogOutput struct {
	Status        string     `json:"status"`
	Command       string     `json:"command"`
	CertLog       string     `json:"cert_log"`
	Verified      int        `json:"verified"`
	Head          headOutput `json:"head"`
	TornTailBytes int64      `json:"torn_tail_bytes"`
}

// headOutput is a chain's position after its last certificate.
type headOutput struct {
	CertHash        omega.Hash `json:"cert_hash"`
	BatchID         uint64     `json:"batch_id"`
	MergedStateHash omega.Hash `json:"merged_state_hash"`
	FrontierDigest  omega.Hash `json:"frontier_digest"`
}

func runVerify(args []string) ([]byte, error) {
	var o verifyOpts
	fs := newFlagSet("verify")
	o.declare(fs)
	if err := parseFlags(fs, args, "pub"); err != nil {
		return nil, err
	}
	if (o.cert == "") == (o.certLog == "") {
		return nil, usageErrorf("verify: give exactly one of --cert and --cert-log")
	}
	ring, err := o.pubs.load()
	if err != nil {
		return nil, err
	}
	if o.cert != "" {
		return verifyCert(o.cert, ring)
	}
	dir, err := certLogDir(o.certLog)
	if err != nil {
		return nil, err
	}
	return verifyLog(dir, ring)
}

// failed returns err as a failed check (exit 20) when it names one, and
// unchanged otherwise (a file that cannot be read, for one).
func failed(err error) error {
	if checkName(err) == "" {
		return err
	}
	return &checkFailure{err}
}

func verifyCert(path string, ring omega.KeyRing) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := data
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		// The JSON view decodes to the envelope it describes, which is
		// what is verified.
		c, err := omega.DecodeCertificateJSON(data)
		if err != nil {
			return nil, failed(fmt.Errorf("verify: %s: %w", path, err))
		}
		env = c.Bytes()
	}
	c, err := omega.Verify(env, ring, omega.DefaultBinding())
	if err != nil {
		return nil, failed(fmt.Errorf("verify: %s: %w", path, err))
	}
	return marshal(verifyCertOutput{
		Status:       "ok",
		Command:      "verify",
		Cert:         path,
		Verified:     1,
		Kind:         c.Kind.String(),
		BatchID:      c.BatchID,
		CertID:       json.Number(c.ID().String()),
		CertHash:     c.Hash(),
		PrevCertHash: c.PrevCertHash,
		IssuerKeyID:  hex.EncodeToString(c.IssuerKeyID[:]),
	}), nil
}

// verifyLog verifies dir/cert.log as a chain from genesis. It reads the log
// and changes nothing: unlike omega.OpenCertStore, which opens a log for
// appending, it neither truncates a torn tail nor rewrites cert.idx and
// cert.hash (caches of cert.log, which it does not read).
func verifyLog(dir string, ring omega.KeyRing) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cert.log"))
	if err != nil {
		return nil, err
	}
	certs, torn, err := readCertLog(b)
	if err != nil {
		return nil, failed(fmt.Errorf("verify: %s: %w", dir, err))
	}
	head, err := omega.VerifyChain(context.Background(), certs, ring, omega.DefaultBinding(), nil)
	if err != nil {
		return nil, failed(fmt.Errorf("verify: %s: %w", dir, err))
	}
	return marshal(verifyLogOutput{
		Status:   "ok",
		Command:  "verify",
		CertLog:  dir,
		Verified: len(certs),
		Head: headOutput{
			CertHash:        head.CertHash,
			BatchID:         head.BatchID,
			MergedStateHash: head.MergedStateHash,
			FrontierDigest:  head.FrontierDigest,
		},
		TornTailBytes: torn,
	}), nil
}

// readCertLog decodes the certificates of a cert.log held in b, as
// omega.OpenCertStore reads them: a header bound to this schema, then CERT
// frames each holding an envelope that decodes. A torn tail (or a torn
// header) ends the log: its length is returned, not an error. Corruption is
// an error wrapping framelog.ErrCorrupt; a frame that holds no certificate is an
// *omega.CertLogError naming its offset.
func readCertLog(b []byte) (certs []*omega.Certificate, torn int64, err error) {
	s := framelog.NewScanner(b, nil)
	hdr, err := s.Header()
	if err != nil {
		return nil, 0, err
	}
	if s.TornHeader() {
		return nil, int64(len(b)), nil
	}
	if err := omega.DefaultBinding().CheckHeader(hdr); err != nil {
		return nil, 0, fmt.Errorf("cert.log: %w", err)
	}
	for {
		f, err := s.Next()
		switch {
		case err == io.EOF:
			return certs, 0, nil
		case errors.Is(err, framelog.ErrTornTail):
			return certs, int64(len(b)) - s.Offset(), nil
		case err != nil:
			return nil, 0, err
		}
		if f.Type != framelog.FrameCert {
			return nil, 0, &omega.CertLogError{Offset: f.Offset, Err: fmt.Errorf("%w: %v frame in a certificate log", framelog.ErrCorrupt, f.Type)}
		}
		c, err := omega.DecodeCertificate(f.Payload)
		if err != nil {
			return nil, 0, &omega.CertLogError{Offset: f.Offset, Err: err}
		}
		certs = append(certs, c)
	}
}
