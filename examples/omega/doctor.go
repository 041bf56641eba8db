package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/filelock"
	"github.com/omega-sheaf/omega/keyfile"
)

type doctorOpts struct {
	root string
	dir  string
}

func (o *doctorOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.root, "root", "", "a checkout of the omega module to check: its layout, the formal model, schemas, examples, the Go toolchain and optional tools (this or --dir)")
	fs.StringVar(&o.dir, "dir", "", "a kernel data directory to check, without changing it: lock, key, log segments, certificate chain, snapshots, incidents (this or --root)")
}

func doctorFlags(fs *flag.FlagSet) { new(doctorOpts).declare(fs) }

// check is one thing doctor looked at.
type check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "ok", "warn" (worth knowing, nothing broken) or "fail"
	Detail string `json:"detail"`
}

type doctorOutput struct {
	Status  string  `json:"status"`
	Command string  `json:"command"`
	Root    string  `json:"root,omitempty"`
	Dir     string  `json:"dir,omitempty"`
	Healthy bool    `json:"healthy"`
	Checks  []check `json:"checks"`
}

func (d *doctorOutput) add(name, status, format string, args ...any) {
	d.Checks = append(d.Checks, check{name, status, fmt.Sprintf(format, args...)})
	if status == "fail" {
		d.Healthy = false
	}
}

func runDoctor(args []string) ([]byte, error) {
	var o doctorOpts
	fs := newFlagSet("doctor")
	o.declare(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if (o.root == "") == (o.dir == "") {
		return nil, usageErrorf("doctor: give --root (a checkout of the module) or --dir (a kernel data directory)")
	}
	out := doctorOutput{Status: "ok", Command: "doctor", Root: o.root, Dir: o.dir, Healthy: true}
	if o.root != "" {
		if err := doctorRoot(&out, o.root); err != nil {
			return nil, err
		}
	} else if err := doctorDir(&out, o.dir); err != nil {
		return nil, err
	}
	return marshal(out), nil
}

// doctorRoot checks a checkout of the module.
func doctorRoot(out *doctorOutput, root string) error {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return fmt.Errorf("doctor: %s is not a checkout of the module: %w", root, err)
	}
	path, goVer := "", ""
	sc := bufio.NewScanner(bytes.NewReader(mod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "module":
			path = f[1]
		case len(f) == 2 && f[0] == "go":
			goVer = f[1]
		}
	}
	if path == "github.com/omega-sheaf/omega" {
		out.add("module", "ok", "%s, go %s", path, goVer)
	} else {
		out.add("module", "fail", "go.mod names %q, not github.com/omega-sheaf/omega", path)
	}
	for _, p := range []struct{ name, path, why string }{
		{"package omega", "doc.go", "the library"},
		{"formal model", "formal/OMEGA.tla", "the TLA+ spec"},
		{"formal model config", "formal/OMEGA.cfg", "its TLC instance"},
		{"formal README", "formal/README.md", "the spec beside its Go mirrors"},
		{"schemas", "testdata/schemas", "the JSON Schemas of the formats"},
		{"vectors", "testdata/spec_vectors.json", "the normative vectors"},
		{"quickstart", "examples/quickstart/main.go", "the first command"},
		{"runtime demo", "examples/kernel/main.go", "the kernel demo"},
		{"omega command", "examples/omega/main.go", "this command"},
		{"CI", ".ci/run", "the checks every change runs"},
	} {
		switch _, err := os.Stat(filepath.Join(root, p.path)); {
		case err != nil:
			out.add(p.name, "fail", "%s missing: %s", p.path, p.why)
		default:
			out.add(p.name, "ok", "%s", p.path)
		}
	}
	out.add("go (this binary)", "ok", "built with %s for %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if v, err := exec.Command("go", "env", "GOVERSION").Output(); err != nil {
		out.add("go (toolchain)", "fail", "no go command on PATH: install Go %s or later", goVer)
	} else {
		out.add("go (toolchain)", "ok", "%s on PATH", strings.TrimSpace(string(v)))
	}
	// Optional: Java runs TLC on the formal model (not in CI).
	if p, err := exec.LookPath("java"); err != nil {
		out.add("java (optional)", "warn", "not found: only needed to run TLC on formal/OMEGA.tla, see formal/README.md")
	} else {
		v, _ := exec.Command(p, "-version").CombinedOutput()
		first, _, _ := strings.Cut(string(v), "\n")
		out.add("java (optional)", "ok", "%s: %s; TLC runs the formal model, see formal/README.md", p, strings.TrimSpace(first))
	}
	return nil
}

// doctorDir checks a kernel data directory without changing anything in
// it: it reads the files as a restart would, but recovers nothing.
func doctorDir(out *doctorOutput, dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("doctor: %s is not a directory: %w", dir, errors.Join(err, fs.ErrNotExist))
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err != nil {
		out.add("layout", "fail", "no log/ directory: not a kernel data directory, or one never opened")
		return nil
	}
	out.add("layout", "ok", "log/, certs/, snapshots/ as a kernel keeps them")
	doctorLock(out, filepath.Join(dir, "LOCK"))

	// The key, for the chain's signatures.
	var ring omega.KeyRing
	if priv, err := keyfile.LoadPrivate(filepath.Join(dir, "kernel.key")); err == nil {
		pub := priv.Public().(ed25519.PublicKey)
		ring, _ = omega.NewKeyRing(pub)
		out.add("key", "ok", "kernel.key: Ed25519, key id %x", omega.KeyID(pub))
	} else if errors.Is(err, fs.ErrNotExist) {
		out.add("key", "warn", "no kernel.key: the kernel signs with a key its program gives; the chain's signatures are not checked here")
	} else {
		out.add("key", "fail", "kernel.key: %v", err)
	}

	// The log segments, as recovery reads them.
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "*.omega"))
	slices.Sort(segs)
	if len(segs) == 0 {
		out.add("log", "fail", "no log segment")
	}
	events, batches := 0, 0
	for i, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			out.add("log", "fail", "%s: %v", filepath.Base(s), err)
			continue
		}
		rec, err := framelog.Recover(b, nil)
		if err != nil {
			out.add("log", "fail", "%s: %v", filepath.Base(s), err)
			continue
		}
		if !rec.TornHeader {
			if err := omega.DefaultBinding().CheckHeader(rec.Header); err != nil {
				out.add("log", "fail", "%s: %v", filepath.Base(s), err)
				continue
			}
		}
		events += rec.FramesByType[framelog.FrameEvent]
		batches += rec.FramesByType[framelog.FrameBatch]
		last := i == len(segs)-1
		switch {
		case rec.Tail == framelog.TailCorrupt:
			out.add("log", "fail", "%s: corruption at offset %d (%v): a kernel opens in safe mode, leaves the segment as it is and goes on in a new one", filepath.Base(s), rec.TailOffset, rec.Err)
		case rec.Tail == framelog.TailTorn && last:
			out.add("log", "warn", "%s: a torn tail of %d bytes at offset %d, the trace of a crash: the next open cuts it off", filepath.Base(s), rec.TailBytes, rec.TailOffset)
		case rec.Tail == framelog.TailTorn:
			out.add("log", "fail", "%s: %d bytes at offset %d do not read, in a segment that is not the last", filepath.Base(s), rec.TailBytes, rec.TailOffset)
		}
	}
	out.add("log segments", "ok", "%d segments, %d EVENT and %d BATCH frames readable", len(segs), events, batches)

	// The certificate chain, verified as a restart verifies it.
	b, err := os.ReadFile(filepath.Join(dir, "certs", "cert.log"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out.add("certificates", "warn", "no certs/cert.log: nothing certified yet")
	case err != nil:
		out.add("certificates", "fail", "certs/cert.log: %v", err)
	default:
		certs, torn, err := readCertLog(b)
		switch {
		case err != nil:
			out.add("certificates", "fail", "certs/cert.log: %v: a kernel opens in safe mode and continues the chain in a new store", err)
		case ring == nil:
			out.add("certificates", "warn", "%d certificates; signatures not checked (no kernel.key)", len(certs))
		default:
			a, err := omega.VerifyChain(context.Background(), certs, ring, omega.DefaultBinding(), nil)
			if err != nil {
				out.add("certificates", "fail", "the chain does not verify: %v", err)
			} else {
				out.add("certificates", "ok", "%d certificates verify as a chain; head batch %d, merged state %s", len(certs), a.BatchID, a.MergedStateHash)
			}
		}
		if torn > 0 {
			out.add("certificates", "warn", "cert.log ends in a torn tail of %d bytes: the next open cuts it off and certifies the batch again", torn)
		}
	}
	if gens, _ := filepath.Glob(filepath.Join(dir, "certs", "gen-*")); len(gens) > 0 {
		out.add("certificate generations", "warn", "%d later generations (%s): the store was damaged once; the chain goes on there", len(gens), filepath.Base(gens[len(gens)-1]))
	}

	// Snapshots.
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.omega"))
	slices.Sort(snaps)
	for _, s := range snaps {
		snap, err := omega.LoadSnapshotFile(s)
		if err != nil {
			out.add("snapshot", "fail", "%s: %v: a restart falls back to an older snapshot or to genesis", filepath.Base(s), err)
			continue
		}
		fp := strings.TrimSuffix(s, ".omega") + ".fp"
		note := ""
		if _, err := os.Stat(fp); err != nil {
			note = "; no fingerprint file beside it: redeliveries of the events it knows reach the checker (1002)"
		}
		out.add("snapshot", "ok", "%s: after batch %d, %d known ids, merged state %s%s", filepath.Base(s), snap.LastBatchID, snap.State.KnownCount(), snap.State.MergedStateHash(), note)
	}
	if len(snaps) == 0 {
		out.add("snapshot", "ok", "none yet: a restart replays the whole log")
	}

	if incs, _ := filepath.Glob(filepath.Join(dir, "incidents", "*.json")); len(incs) > 0 {
		out.add("incidents", "warn", "%d replay incidents in incidents/: a kernel that found one is in safe mode until resumed; explain --input shows one", len(incs))
	}
	return nil
}

// doctorLock reports whether a process holds the data directory's lock.
func doctorLock(out *doctorOutput, path string) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		out.add("lock", "ok", "no LOCK file: no kernel has run here, or it was removed")
		return
	}
	if err != nil {
		out.add("lock", "fail", "LOCK: %v", err)
		return
	}
	defer f.Close()
	switch err := filelock.Lock(f, path); {
	case errors.Is(err, filelock.ErrLocked):
		out.add("lock", "ok", "held: a kernel runs on this directory now (what doctor reads may change as it does)")
	case err != nil:
		out.add("lock", "warn", "LOCK could not be probed: %v", err)
	default:
		filelock.Unlock(f)
		if filelock.AcrossProcesses {
			out.add("lock", "ok", "free: no kernel runs on this directory")
		} else {
			out.add("lock", "warn", "free in this process; this platform's lock does not reach other processes")
		}
	}
}
