// Command omega-tlog runs the transparency flows over an omega certificate
// log: it prints a log's note verifier key, signs checkpoints, writes and
// verifies offline inclusion bundles, and plays a witness.
//
//	omega-tlog vkey       --origin O --key log.pem
//	omega-tlog checkpoint --certs DIR --origin O --key log.pem [--every N] [--interval D]
//	omega-tlog prove      --certs DIR --origin O --key log.pem --cert-id ID --out FILE
//	omega-tlog verify     --bundle FILE --origin O --log-vkey VKEY [--issuer pub.pem]...
//	omega-tlog cosign     --listen ADDR --name NAME --key witness.pem --origin O --log-vkey VKEY --state DIR
//
// Keys are the PEM files `omega keygen` writes (PKCS#8 private, PKIX
// public). Each command prints one JSON object on a line: "status":"ok"
// and the command's fields, or "status":"error" with "error" and
// "message". The exit code is 0, 20 when a bundle, a checkpoint or a
// certificate does not verify, and 50 for anything else. cosign prints
// its line once it listens, then serves until interrupted.
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/keyfile"
	"github.com/omega-sheaf/omega/transparency"
)

const (
	exitOK       = 0
	exitVerify   = 20
	exitOther    = 50
	errVerifyTag = "verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout))
}

// verifyError marks a failure to verify: exit code 20.
type verifyError struct{ err error }

func (e *verifyError) Error() string { return e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

// run executes args and writes the command's JSON line to stdout. It
// returns the exit code.
func run(ctx context.Context, args []string, stdout io.Writer) int {
	cmds := map[string]func(context.Context, []string, io.Writer) (map[string]any, error){
		"vkey":       runVkey,
		"checkpoint": runCheckpoint,
		"prove":      runProve,
		"verify":     runVerify,
		"cosign":     runCosign,
	}
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	c, ok := cmds[name]
	var out map[string]any
	var err error
	if ok {
		out, err = c(ctx, args[1:], stdout)
	} else {
		err = fmt.Errorf("unknown command %q; available: vkey, checkpoint, prove, verify, cosign", name)
	}
	if err != nil {
		code, kind := exitOther, "usage_or_io"
		var ve *verifyError
		if errors.As(err, &ve) {
			code, kind = exitVerify, errVerifyTag
		}
		writeJSON(stdout, map[string]any{"status": "error", "command": name, "error": kind, "message": err.Error()})
		return code
	}
	if out != nil {
		out["status"], out["command"] = "ok", name
		writeJSON(stdout, out)
	}
	return exitOK
}

func writeJSON(w io.Writer, v map[string]any) {
	b, _ := json.Marshal(v) // maps print sorted by key: a stable line
	w.Write(append(b, '\n'))
}

// flags parses args with the flags declare adds, refusing positional
// arguments.
func flags(name string, args []string, declare func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	declare(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	return nil
}

func runVkey(_ context.Context, args []string, _ io.Writer) (map[string]any, error) {
	var origin, keyPath string
	if err := flags("vkey", args, func(fs *flag.FlagSet) {
		fs.StringVar(&origin, "origin", "", "the log's origin: the key's name")
		fs.StringVar(&keyPath, "key", "", "the log's private key (PEM)")
	}); err != nil {
		return nil, err
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		return nil, err
	}
	vkey, err := transparency.VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return map[string]any{"vkey": vkey}, nil
}

// logFlags are the flags that open a certificate store's transparency log.
type logFlags struct {
	certs, origin, key string
	policy             transparency.Policy
}

func (f *logFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.certs, "certs", "", "the certificate store's directory (its cert.log)")
	fs.StringVar(&f.origin, "origin", "", "the log's origin, as checkpoints name it")
	fs.StringVar(&f.key, "key", "", "the log's private key (PEM)")
	fs.IntVar(&f.policy.Every, "every", 1, "sign a checkpoint once this many certificates were added")
	fs.DurationVar(&f.policy.Interval, "interval", 0, "or once this long passed since the last checkpoint")
}

// open opens the store (the default checker's, as the kernel writes it)
// and its log; close closes both.
func (f *logFlags) open() (l *transparency.Log, closeAll func(), err error) {
	if f.certs == "" || f.origin == "" || f.key == "" {
		return nil, nil, errors.New("--certs, --origin and --key are required")
	}
	key, err := keyfile.LoadPrivate(f.key)
	if err != nil {
		return nil, nil, err
	}
	s, err := omega.OpenCertStore(f.certs, omega.DefaultBinding().Header(), nil)
	if err != nil {
		return nil, nil, err
	}
	l, err = transparency.OpenLog(f.certs, f.origin, s, key, f.policy)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return l, func() { l.Close(); s.Close() }, nil
}

func runCheckpoint(_ context.Context, args []string, _ io.Writer) (map[string]any, error) {
	var f logFlags
	if err := flags("checkpoint", args, f.declare); err != nil {
		return nil, err
	}
	l, closeAll, err := f.open()
	if err != nil {
		return nil, err
	}
	defer closeAll()
	signed, err := l.Update(time.Now())
	if err != nil {
		return nil, err
	}
	cp, note := l.Latest()
	return map[string]any{
		"size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Root[:]),
		"signed_now": signed, "checkpoint": string(note),
	}, nil
}

func runProve(_ context.Context, args []string, _ io.Writer) (map[string]any, error) {
	var f logFlags
	var certID, out string
	if err := flags("prove", args, func(fs *flag.FlagSet) {
		f.declare(fs)
		fs.StringVar(&certID, "cert-id", "", "the certificate's cert_id, in decimal")
		fs.StringVar(&out, "out", "", "where to write the bundle (a c2sp.org/tlog-proof file)")
	}); err != nil {
		return nil, err
	}
	id, err := omega.ParseEventID(certID)
	if err != nil {
		return nil, fmt.Errorf("--cert-id: %w", err)
	}
	if out == "" {
		return nil, errors.New("--out is required")
	}
	l, closeAll, err := f.open()
	if err != nil {
		return nil, err
	}
	defer closeAll()
	if _, err := l.Update(time.Now()); err != nil {
		return nil, err
	}
	index, err := l.IndexOf(omega.CertID(id))
	if err != nil {
		return nil, err
	}
	b, err := l.Prove(index)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return nil, err
	}
	cp, _ := l.Latest()
	return map[string]any{"bundle": out, "index": index, "size": cp.Size}, nil
}

// repeated is a flag given any number of times.
type repeated []string

func (r *repeated) String() string     { return fmt.Sprint(*r) }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func runVerify(_ context.Context, args []string, _ io.Writer) (map[string]any, error) {
	var bundle, origin, logVkey string
	var issuers repeated
	if err := flags("verify", args, func(fs *flag.FlagSet) {
		fs.StringVar(&bundle, "bundle", "", "the bundle (a c2sp.org/tlog-proof file)")
		fs.StringVar(&origin, "origin", "", "the log's origin")
		fs.StringVar(&logVkey, "log-vkey", "", "the log's note verifier key, as vkey prints it")
		fs.Var(&issuers, "issuer", "a trusted certificate issuer's public key (PEM); repeat for a key ring")
	}); err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(logVkey)
	if err != nil {
		return nil, fmt.Errorf("--log-vkey: %w", err)
	}
	b, err := os.ReadFile(bundle)
	if err != nil {
		return nil, err
	}
	got, err := transparency.VerifyBundle(b, origin, v)
	if err != nil {
		return nil, &verifyError{err}
	}
	out := map[string]any{"index": got.Index, "size": got.Checkpoint.Size, "root": base64.StdEncoding.EncodeToString(got.Checkpoint.Root[:])}
	cert, err := omega.DecodeCertificate(got.Certificate)
	if err != nil {
		return nil, &verifyError{err}
	}
	out["cert_id"], out["batch_id"] = cert.ID().String(), cert.BatchID
	if len(issuers) > 0 {
		var keys []ed25519.PublicKey
		for _, p := range issuers {
			k, err := keyfile.LoadPublic(p)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		ring, err := omega.NewKeyRing(keys...)
		if err != nil {
			return nil, err
		}
		if _, err := omega.Verify(got.Certificate, ring, omega.DefaultBinding()); err != nil {
			return nil, &verifyError{err}
		}
		out["certificate_verified"] = true
	}
	return out, nil
}

func runCosign(ctx context.Context, args []string, stdout io.Writer) (map[string]any, error) {
	var listen, name, keyPath, origin, logVkey, state string
	if err := flags("cosign", args, func(fs *flag.FlagSet) {
		fs.StringVar(&listen, "listen", "127.0.0.1:0", "the address to serve the witness on")
		fs.StringVar(&state, "state", "", "the directory that keeps the last checkpoint cosigned (required)")
		fs.StringVar(&name, "name", "", "the witness's name, as its cosignatures carry it")
		fs.StringVar(&keyPath, "key", "", "the witness's private key (PEM)")
		fs.StringVar(&origin, "origin", "", "the log to witness")
		fs.StringVar(&logVkey, "log-vkey", "", "the log's note verifier key")
	}); err != nil {
		return nil, err
	}
	key, err := keyfile.LoadPrivate(keyPath)
	if err != nil {
		return nil, err
	}
	signer, err := transparency.CosignatureSigner(name, key, time.Now)
	if err != nil {
		return nil, fmt.Errorf("--name: %w", err)
	}
	lv, err := note.NewVerifier(logVkey)
	if err != nil {
		return nil, fmt.Errorf("--log-vkey: %w", err)
	}
	vkey, err := transparency.CosignatureVerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if state == "" {
		return nil, errors.New("--state is required: a witness that forgets what it cosigned would cosign a fork")
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, err
	}
	w := transparency.NewWitness(signer, state)
	if err := w.AddLog(origin, lv); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: w, ReadHeaderTimeout: 10 * time.Second}
	writeJSON(stdout, map[string]any{"status": "ok", "command": "cosign", "listening": "http://" + ln.Addr().String(), "vkey": vkey})
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return nil, err
	}
	return nil, nil // the line was printed when it started listening
}
