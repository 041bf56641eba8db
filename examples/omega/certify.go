package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/keyfile"
)

type certifyOpts struct {
	result        string
	batchID       uint64
	replaySeed    uint64
	schemaVersion uint
	output        string
	certLog       string
	key           string
	createdAtNs   uint64
}

func (o *certifyOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.result, "result", "", "the checker output, as reconcile --output writes it (required)")
	fs.Uint64Var(&o.batchID, "batch-id", 0, "the batch id; must be the result's (required)")
	fs.Uint64Var(&o.replaySeed, "replay-seed", 0, "the replay seed; must be the result's (required)")
	fs.UintVar(&o.schemaVersion, "schema-version", 0, "the event schema version; must be the result binding's (required)")
	fs.StringVar(&o.output, "output", "", "the file to write the certificate to: its JSON view when the name ends in .json, else its binary envelope (required)")
	fs.StringVar(&o.certLog, "cert-log", "", "a certificate log to append the certificate to, after its last certificate: a directory holding cert.log (created when missing), or the path of its cert.log")
	fs.StringVar(&o.key, "key", "", "the signing key: a PKCS#8 PEM Ed25519 private key, as keygen writes it (required; make one with: omega keygen --out NAME.pem)")
	fs.Uint64Var(&o.createdAtNs, "created-at-ns", 0, "the certificate's created_at_ns (default: the one reconcile recorded in the result, else the current time)")
}

func certifyFlags(fs *flag.FlagSet) { new(certifyOpts).declare(fs) }

type certifyOutput struct {
	Status      string          `json:"status"`
	Command     string          `json:"command"`
	CertID      json.Number     `json:"cert_id"`
	CertHash    omega.Hash      `json:"cert_hash"`
	BatchID     uint64          `json:"batch_id"`
	Kind        string          `json:"kind"`
	CreatedAtNs uint64          `json:"created_at_ns"`
	CreatedFrom string          `json:"created_at_from"` // "flag", "result" (what reconcile recorded) or "clock"
	Output      string          `json:"output"`
	Format      string          `json:"format"` // of the output file: "envelope" or "json"
	CertLog     string          `json:"cert_log,omitempty"`
	Seq         *int            `json:"seq,omitempty"`
	Certificate json.RawMessage `json:"certificate"`
}

// logHeader is the header of every frame log the command writes: this
// checker's schema version and schema hash.
func logHeader() framelog.Header {
	return omega.DefaultBinding().Header()
}

func runCertify(args []string) ([]byte, error) {
	var o certifyOpts
	fs := newFlagSet("certify")
	o.declare(fs)
	if err := parseFlags(fs, args, "result", "batch-id", "replay-seed", "schema-version", "output"); err != nil {
		return nil, err
	}
	if o.key == "" {
		return nil, usageErrorf("certify: missing --key, the Ed25519 key to sign with: make one with `omega keygen --out NAME.pem` (it writes NAME.pem and NAME.pub) and pass --key NAME.pem")
	}
	if o.certLog != "" {
		dir, err := certLogDir(o.certLog)
		if err != nil {
			return nil, err
		}
		o.certLog = dir
	}
	data, err := os.ReadFile(o.result)
	if err != nil {
		return nil, err
	}
	rf, err := readResultFile(data)
	if err != nil {
		return nil, fmt.Errorf("certify: %s: %w", o.result, err)
	}
	if rf.batchID != o.batchID {
		return nil, inputErrorf("certify: --batch-id %d, but %s is the result of batch %d", o.batchID, o.result, rf.batchID)
	}
	if rf.replaySeed != o.replaySeed {
		return nil, inputErrorf("certify: --replay-seed %d, but %s was made with replay seed %d", o.replaySeed, o.result, rf.replaySeed)
	}
	if got := rf.out.Binding.SchemaVersion; uint(got) != o.schemaVersion {
		return nil, fmt.Errorf("certify: %w: --schema-version %d, but %s was made under schema version %d", omega.ErrBindingMismatch, o.schemaVersion, o.result, got)
	}
	// created_at_ns: the flag's, else the one reconcile recorded in the
	// BATCH frame and the result file, so that a certificate made later
	// agrees with the log on replay, else the clock's.
	createdFrom := "flag"
	switch {
	case flagSet(fs, "created-at-ns"):
	case rf.createdAtNs != nil:
		o.createdAtNs, createdFrom = *rf.createdAtNs, "result"
	default:
		o.createdAtNs, createdFrom = uint64(time.Now().UnixNano()), "clock"
	}
	priv, err := keyfile.LoadPrivate(o.key)
	if err != nil {
		return nil, err
	}

	var (
		store *omega.CertStore
		prev  omega.Hash
	)
	if o.certLog != "" {
		// A certificate log that cannot be opened for its content (a bad
		// or foreign header, corruption, a frame holding no certificate,
		// a broken chain) is a certificate problem: exit 20 with the check
		// named, as verify reports the same log (SPEC section 9).
		if store, err = omega.OpenCertStore(o.certLog, logHeader(), &framelog.WriterOptions{Sync: framelog.SyncAlways}); err != nil {
			return nil, failed(fmt.Errorf("certify: %s: %w", o.certLog, err))
		}
		defer func() {
			if store != nil {
				store.Close()
			}
		}()
		prev = store.Head().CertHash
	}
	meta := omega.BatchMeta{BatchID: o.batchID, ReplaySeed: o.replaySeed, CreatedAtNs: o.createdAtNs}
	// Certify refuses a result made under another binding than this
	// checker's (ErrBindingMismatch, exit 10).
	c, err := omega.Certify(rf.out, omega.DefaultBinding(), meta, prev, priv)
	if err != nil {
		return nil, err
	}

	out := certifyOutput{
		Status:      "ok",
		Command:     "certify",
		CertID:      json.Number(c.ID().String()),
		CertHash:    c.Hash(),
		BatchID:     c.BatchID,
		Kind:        c.Kind.String(),
		CreatedAtNs: c.CreatedAtNs,
		CreatedFrom: createdFrom,
		Output:      o.output,
		Format:      "envelope",
	}
	// The certificate log is written last, so that a command that fails
	// leaves it as it was, to be run again: the chain checks come before
	// the certificate file is written, the append after.
	if store != nil {
		// A certificate that does not continue the chain, a batch id not
		// after the last one (ErrBatchOrder) or a prior state other than
		// the last Merge's merged state (ErrChainState), is refused with
		// exit 20.
		head := store.Head()
		ring, err := omega.NewKeyRing(priv.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		if _, err := omega.VerifyChain(context.Background(), []*omega.Certificate{c}, ring, omega.DefaultBinding(), &omega.ChainOptions{Anchor: head}); err != nil {
			return nil, fmt.Errorf("certify: the result does not continue the chain of %s: %w", o.certLog, err)
		}
	}
	file := c.Bytes()
	if strings.HasSuffix(o.output, ".json") {
		j, err := c.MarshalJSON()
		if err != nil {
			return nil, err
		}
		file, out.Format = append(j, '\n'), "json"
	}
	if err := os.WriteFile(o.output, file, 0o644); err != nil {
		return nil, err
	}
	if store != nil {
		if err := store.Append(c); err != nil {
			return nil, fmt.Errorf("certify: appending to %s: %w", o.certLog, err)
		}
		seq := store.Len() - 1
		err := store.Close()
		store = nil
		if err != nil {
			return nil, err
		}
		out.CertLog, out.Seq = o.certLog, &seq
	}
	if out.Certificate, err = c.MarshalJSON(); err != nil {
		return nil, err
	}
	return marshal(out), nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// resultFile is what reconcile --output writes:
// {"batch_id":B,"replay_seed":S,"result":{...},"binding":{...}}.
type resultFile struct {
	batchID     uint64
	replaySeed  uint64
	createdAtNs *uint64 // what reconcile recorded; nil in a file written before it did
	out         omega.Output
}

// resultFileFields are the members of a result file; resultFileFieldsV0 of
// one written before reconcile recorded created_at_ns there.
var (
	resultFileFields   = []string{"batch_id", "replay_seed", "created_at_ns", "result", "binding"}
	resultFileFieldsV0 = []string{"batch_id", "replay_seed", "result", "binding"}
)

// readResultFile decodes a result file. The result and binding are decoded
// by omega's strict decoder (errors wrapping omega.ErrMalformedResult); the
// file must hold exactly the five members (or the four of an older file,
// without created_at_ns), each once.
func readResultFile(data []byte) (resultFile, error) {
	keys, err := topLevelKeys(data)
	if err != nil {
		return resultFile{}, inputErrorf("not a checker output as reconcile --output writes it: %v", err)
	}
	if !sameKeys(keys, resultFileFields) && !sameKeys(keys, resultFileFieldsV0) {
		return resultFile{}, inputErrorf("members %q, want %q, each once", keys, resultFileFields)
	}
	var f struct {
		BatchID     uint64        `json:"batch_id"`
		ReplaySeed  uint64        `json:"replay_seed"`
		CreatedAtNs *uint64       `json:"created_at_ns"`
		Result      *omega.Result `json:"result"`
		Binding     omega.Binding `json:"binding"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, omega.ErrMalformedResult) {
			return resultFile{}, err
		}
		return resultFile{}, inputErrorf("not a checker output as reconcile --output writes it: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return resultFile{}, inputErrorf("data after the checker output")
	}
	if f.Result == nil {
		return resultFile{}, inputErrorf("the result is null")
	}
	return resultFile{f.BatchID, f.ReplaySeed, f.CreatedAtNs, omega.Output{Result: f.Result, Binding: f.Binding}}, nil
}

// topLevelKeys returns the member names of the JSON object that data starts
// with, in order, repeats included. It reads only the first value.
func topLevelKeys(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return keys, nil
}

// sameKeys reports whether keys holds each of want exactly once, and
// nothing else.
// certLogDir returns the certificate log directory path names: a directory
// (created when missing) holds cert.log beside its index files; a path
// named cert.log that is not a directory, there or to be made, as the
// original system's tools took it, means the directory it is in. Any other
// file is refused: omega's certificate log is a directory.
func certLogDir(path string) (string, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return path, nil
	case filepath.Base(path) == "cert.log":
		return filepath.Dir(path), nil
	case err != nil:
		return path, nil
	}
	return "", usageErrorf("--cert-log %s is a file: omega keeps a certificate log as a directory holding cert.log (and its index files); pass the directory, or the path of its cert.log", path)
}

func sameKeys(keys, want []string) bool {
	if len(keys) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}
