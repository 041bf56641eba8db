package omega

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/internal/filelock"
	"github.com/omega-sheaf/omega/internal/fsync"
)

var errNotExist = fs.ErrNotExist

const (
	kernelLockName = "LOCK"
	kernelKeyName  = "kernel.key"
)

// OpenKernel opens the kernel of data directory dir, creating the
// directory when it does not exist, recovers it (see [Kernel], Durability
// and restart) and starts it. cfg may be nil. ctx bounds the recovery.
//
// It refuses a directory another kernel holds, in this process or another,
// with an error wrapping [ErrLocked]; a log, snapshot or certificate chain
// bound to another binding than the checker's with an error wrapping
// [ErrBindingMismatch]; and a certificate store it cannot read (an I/O
// error, a held lock). Damage in the event log or in cert.log, and replay
// incidents, do not refuse it: they put it in safe mode (see [Kernel]).
func OpenKernel(ctx context.Context, dir string, cfg *KernelConfig) (*Kernel, error) {
	var c KernelConfig
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	fsys := fileSystem(osFS{})
	if c.FS != nil {
		var ok bool
		if fsys, ok = c.FS.(fileSystem); !ok {
			return nil, fmt.Errorf("omega: OpenKernel: KernelConfig.FS %T has no ReadFile, ReadDir, Stat, Rename, Remove or MkdirAll method", c.FS)
		}
	}
	if c.Checker == nil {
		if c.Checker, err = NewChecker(nil); err != nil {
			return nil, err
		}
	}
	if c.CertDir == "" {
		c.CertDir = filepath.Join(dir, "certs")
	}
	if c.SnapshotDir == "" {
		c.SnapshotDir = filepath.Join(dir, "snapshots")
	}
	if c.IncidentDir == "" {
		c.IncidentDir = filepath.Join(dir, "incidents")
	}
	for _, d := range []string{dir, filepath.Join(dir, "log"), c.SnapshotDir} {
		if err := fsys.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: %w", err)
		}
	}
	k := &Kernel{
		dir:     dir,
		cfg:     c,
		fsys:    fsys,
		c:       c.Checker,
		binding: c.Checker.Binding(),
		status:  KernelStatus{Offset: -1},
	}
	if k.lock, err = lockDir(fsys, dir); err != nil {
		return nil, err
	}
	// Under the lock, no other writer is at work here: temporary files
	// are what a killed process left.
	removeStaleTemps(fsys, dir) // of resumed-damage
	removeStaleTemps(fsys, filepath.Join(dir, "log"))
	removeStaleTemps(fsys, c.SnapshotDir)
	cor := newCore(k)
	opened := false
	defer func() {
		if !opened {
			if cor.j != nil {
				cor.j.w.Close()
			}
			if cor.syncFile != nil {
				cor.syncFile.Close()
			}
			if k.certs != nil {
				k.certs.Close()
			}
			if k.sinkFile != nil {
				k.sinkFile.Close()
			}
			unlockDir(k.lock)
		}
	}()
	if k.signer = c.Signer; k.signer == nil {
		if k.signer, err = loadOrMakeKey(fsys, filepath.Join(dir, kernelKeyName)); err != nil {
			return nil, err
		}
	}
	k.signKey = expandEd25519(k.signer)
	if c.Metrics == nil && c.MetricsFile != "" {
		if err := fsys.MkdirAll(filepath.Dir(c.MetricsFile), 0o755); err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: metrics file: %w", err)
		}
		f, sink, err := openMetricsFile(fsys, c.MetricsFile)
		if err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: metrics file: %w", err)
		}
		k.sinkFile = f
		k.cfg.Metrics = sink
	}
	if err := k.openCerts(); err != nil {
		return nil, err
	}
	var lastCert *Certificate
	if n := k.certs.Len(); n > 0 {
		last, err := k.certs.run(n-1, 1)
		if err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: certificate store: %w", err)
		}
		lastCert = last[0]
	} else if n := len(k.certPrefix); n > 0 {
		lastCert = k.certPrefix[n-1]
	}
	if lastCert != nil && lastCert.Binding != k.binding {
		return nil, fmt.Errorf("omega: OpenKernel: the certificate chain was made under another binding: %w", &BindingError{Want: k.binding, Got: lastCert.Binding})
	}
	head := k.certs.Head()
	recert, err := k.recover(ctx, cor)
	if err != nil {
		return nil, err
	}
	if k.tracing() {
		k.traceRestart(cor, head, recert)
		cor.tracing = true
	}
	k.hashers.New = func() any { return digest.New(digest.Event) }
	k.submits = make(chan *submitReq, c.QueueLen)
	k.ctl = make(chan ctlReq)
	k.certWork = make(chan certWork, 256)
	k.snapWork = make(chan snapJob, 1)
	k.prepWork = make(chan uint64, 1)
	k.closing = make(chan struct{})
	k.syncQ = make(chan commitGroup, syncQueueLen)
	k.signQ = make(chan []certJob, syncQueueLen)
	// The batches certified again come first, on this goroutine, before
	// the certifier can report any other: OnDecision sees the chain in
	// order, from one goroutine at a time.
	if k.cfg.OnDecision != nil {
		for _, d := range recert {
			k.cfg.OnDecision(d)
		}
	}
	opened = true
	k.done.Add(5)
	go k.presign(k.certs.Head().CertHash)
	go k.syncer()
	go cor.run()
	go k.certify()
	go k.snapshots()
	k.prepareNext(cor.seg + 1)
	return k, nil
}

// recover rebuilds the core from the data directory: segments, snapshot,
// replay, re-certification. It returns the decisions it certified again.
func (k *Kernel) recover(ctx context.Context, cor *core) ([]Decision, error) {
	fsys := k.fsys
	hdr := k.binding.Header()
	segs, err := listSeqs(fsys, filepath.Join(k.dir, "log"))
	if err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: %w", err)
	}
	head := k.certs.Head()
	snap, from, err := k.loadSnapshot(segs, head)
	if err != nil {
		return nil, err
	}
	if snap == nil && len(segs) > 0 && segs[0] != 1 {
		return nil, fmt.Errorf("omega: OpenKernel: log segments before %016x are gone and no snapshot that covers them loads", segs[0])
	}
	if snap == nil {
		from = 1
	}
	use, covered := segs, segs[:0]
	if snap != nil {
		use, covered = segs[slices.Index(segs, from):], segs[:slices.Index(segs, from)]
	}
	// Segments created ahead of time (see prepareSegment) and never
	// written to hold no frame: the log ends before them, and the one
	// before them is the one to go on appending to. That is a segment
	// holding its header and nothing else, or a torn header; any other
	// short file is a damaged header, for recovery to judge (safe mode,
	// and appending goes on after it). Not so for a segment
	// a snapshot starts, loaded or not (one the chain does not cover yet,
	// after damage to the certificate store): events appended before it
	// would be behind the snapshot, which a later open loads and replays
	// from that segment on.
	snaps, err := listSeqs(fsys, k.cfg.SnapshotDir)
	if err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: %w", err)
	}
	hb, _ := hdr.MarshalBinary()
	for len(use) > 1 {
		if len(snaps) > 0 && snaps[len(snaps)-1] >= use[len(use)-1] {
			break
		}
		path := k.segmentPath(use[len(use)-1])
		if fi, err := fsys.Stat(path); err != nil || fi.Size() > framelog.HeaderSize {
			break
		}
		b, err := fsys.ReadFile(path)
		if err != nil || !bytes.Equal(b, hb) && !tornHeader(b) {
			break // frames, or a damaged header: recovery judges it
		}
		use = use[:len(use)-1]
	}
	// The segments the snapshot covers are not replayed, but their frames
	// are checked: damage anywhere in the log is found at open. Restart
	// does not need them, so damage in them that safe mode was resumed
	// from is not reported again (see resumedDamage).
	if err := k.readResumedDamage(); err != nil {
		return nil, err
	}
	for _, s := range covered {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := k.segmentPath(s)
		f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			k.logDamage(true, fmt.Sprintf("log segment %s cannot be read: %v", filepath.Base(path), err), path, -1)
			continue
		}
		_, _, err = k.checkSegment(f, path, true)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	// No segment is missing but before the first (pruned, or gone with the
	// snapshot that covers them: see loadSnapshot).
	all := segs[:len(covered)+len(use)]
	for i := 1; i < len(all); i++ {
		// Each segment missing, as damage of its own: one resumed from
		// hides no other.
		for m := all[i-1] + 1; m < all[i]; m++ {
			k.logDamage(m < from && snap != nil, fmt.Sprintf("log segment %016x is missing", m), k.segmentPath(m), -1)
		}
	}
	// Under SyncBatch the core syncs the log itself, on another goroutine
	// (see core.commit): its writer only writes.
	cor.wopts = framelog.WriterOptions{Sync: k.cfg.Sync, FS: fsys}
	if k.cfg.Sync == framelog.SyncBatch {
		cor.wopts.Sync = framelog.SyncNever
	}

	var readers []io.Reader
	var sections []section // what each reader reads, to read it again
	var files []file
	// readSegment has replay read the first size bytes of the segment at
	// path, which a writer holds open for appending.
	readSegment := func(path string, size int64) error {
		f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("omega: OpenKernel: %w", err)
		}
		files = append(files, f)
		readers = append(readers, io.NewSectionReader(f, 0, size))
		sections = append(sections, section{f, size})
		return nil
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var w *framelog.Writer
	for i, s := range use {
		path := k.segmentPath(s)
		last := i == len(use)-1
		if last {
			w, err = framelog.Open(path, hdr, &cor.wopts)
			if err == nil {
				cor.seg = s
				cor.j = NewJournal(w, k.c, nil, 0) // closed by OpenKernel on failure
				if w.Cut() > 0 {
					k.metric("log.torn_tail", float64(w.Cut()), map[string]string{"segment": filepath.Base(path)})
				}
				if err := readSegment(path, w.Size()); err != nil {
					return nil, err
				}
				break
			}
			if !errors.Is(err, framelog.ErrCorrupt) && !errors.Is(err, framelog.ErrBadHeader) {
				return nil, fmt.Errorf("omega: OpenKernel: %w", err)
			}
			// Damaged: read what is valid, and go on in a new segment.
		}
		if last {
			// Damaged: appending goes on in a new segment after it.
			cor.seg = s + 1
		}
		f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: %w", err)
		}
		files = append(files, f)
		rec, ok, err := k.checkSegment(f, path, false)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		readers = append(readers, io.NewSectionReader(f, 0, rec.TailOffset))
		sections = append(sections, section{f, rec.TailOffset})
	}
	if w == nil {
		if cor.seg == 0 {
			cor.seg = from
		}
		path := k.segmentPath(cor.seg)
		if err := createLog(fsys, path, hdr); err != nil {
			return nil, err
		}
		if w, err = framelog.Open(path, hdr, &cor.wopts); err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: %w", err)
		}
		cor.j = NewJournal(w, k.c, nil, 0)
		if len(readers) == 0 {
			if err := readSegment(path, w.Size()); err != nil {
				return nil, err
			}
		}
	}
	cor.j.trusted = true
	if cor.syncFile, err = fsys.OpenFile(k.segmentPath(cor.seg), os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: %w", err)
	}
	// What the last process wrote may still be only in the operating
	// system's cache: make it durable before anything is certified from
	// it or acknowledged again (SPEC 8's order holds across a restart).
	if k.cfg.Sync != framelog.SyncNever {
		if err := fsync.Data(cor.syncFile); err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: syncing the log: %w", err)
		}
		if err := fsys.SyncDir(filepath.Join(k.dir, "log")); err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: syncing the log: %w", err)
		}
	}

	var base uint64
	if snap != nil {
		base = snap.LastBatchID
	}
	certs, err := k.certsSince(base)
	if err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: reading certificates: %w", err)
	}
	if certs == nil {
		certs = []*Certificate{}
	}
	rp := NewReplayer(snap, readers, k.cfg.ReplaySeed, k.c, &ReplayOptions{Certificates: certs, UncertifiedSuffix: true})
	state, last := (*State)(nil), uint64(0)
	if snap != nil {
		state, last = snap.State, snap.LastBatchID
		cor.fps = k.loadFingerprints(from, snap)
	}
	var recert []Decision
	var pending []Event
	replayed := true
	stopAt := int64(-1) // where replay stopped short of the log's end
	for {
		b, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, ErrReplayFormat) {
				return nil, fmt.Errorf("omega: OpenKernel: replaying the log: %w", err)
			}
			k.enterSafeMode(fmt.Sprintf("the log does not replay: %v", err), "", -1, nil)
			replayed = false
			rp.pending()
			pending, stopAt = rp.report.Pending, rp.report.LogEnd
			break
		}
		if b.Kind == KindMerge {
			state = b.Output.Result.Merge.Next.Commit()
			for _, m := range b.Output.Result.Members {
				if p, ok := state.position(m.ID); ok {
					cor.fps.set(p, m.Digest)
				}
			}
		}
		last = b.BatchID
		if b.Uncertified {
			cert, err := k.certs.CertifyAppend(b.Output, k.binding, b.Meta(), k.signer)
			if err != nil {
				return nil, fmt.Errorf("omega: OpenKernel: certifying batch %d again: %w", b.BatchID, err)
			}
			recert = append(recert, Decision{Certificate: cert, Output: b.Output, Recertified: true})
		}
	}
	if replayed {
		rep, err := rp.Finish(ctx, rp.report.State.MergedStateHash())
		if err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: replaying the log: %w", err)
		}
		if rep.Incident != nil {
			inc := rep.Incident
			k.enterSafeMode(fmt.Sprintf("replay incident: %v", inc), "", -1, inc)
			if err := inc.WriteFile(k.cfg.IncidentDir, hdr); err != nil {
				k.metric("incident.write_fail", 1, nil)
			}
		}
		state, last, pending = rep.State, rep.LastBatchID, rep.Pending
		if rep.Incident != nil {
			stopAt = rep.LogEnd
		}
	}
	maxBatch := last
	if stopAt >= 0 {
		// Replay stopped short: the events logged after that point are
		// pending too (none may be lost), and batch ids go on after every
		// BATCH frame of the log, replayed or not.
		after, mb, err := eventsAfter(sections, stopAt)
		if err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: reading the log after replay stopped: %w", err)
		}
		maxBatch = max(maxBatch, mb)
		seen := make(map[Hash]bool, len(pending))
		for i := range pending {
			seen[pending[i].Digest()] = true
		}
		for _, e := range after {
			if d := e.Digest(); !seen[d] {
				seen[d] = true
				pending = append(pending, e)
			}
		}
	}
	if len(recert) > 0 {
		if err := k.certs.Sync(); err != nil {
			return nil, fmt.Errorf("omega: OpenKernel: %w", err)
		}
		k.stats.certFsyncs.Add(1)
		k.stats.certified.Add(uint64(len(recert)))
	}

	cor.j.state, cor.j.last = state.Commit(), last
	head = k.certs.Head()
	cor.next = max(maxBatch, head.BatchID) + 1
	if state.MergedStateHash() != head.MergedStateHash || state.FrontierDigest() != head.FrontierDigest {
		// The log reaches another state than the chain: nothing the
		// kernel decides from it could extend the chain.
		cor.stale = true
		defer k.setStale()
		k.enterSafeMode(fmt.Sprintf("the log's state (merged state %s) is not the certificate chain's (%s, batch %d)",
			state.MergedStateHash(), head.MergedStateHash, head.BatchID), "", -1, nil)
	}
	if k.Status().SafeMode {
		cor.safe = true
	}
	cor.now = time.Now()
	for i := range pending {
		q := &queued{ev: pending[i], d: pending[i].Digest(), pok: pending[i].PayloadHashOK(), at: cor.now}
		cor.j.pending.Put(q.d, &q.ev)
		cor.admit(q, false)
	}
	return recert, nil
}

// Certificate store generations. A kernel's certificates are in the
// CertStore of CertDir, generation 1. When a store does not open because
// cert.log is damaged (corruption, a bad header, a frame that is not a
// certificate, a broken link), the kernel leaves it untouched, enters safe
// mode, and continues the chain from the last certificate of its sound
// prefix in a new store, CertDir/gen-<16 hex digits>: its first
// certificate links to that one. The batches certified after the damage
// are certified again there, byte for byte, from their BATCH frames.

const certGenPrefix = "gen-"

func (k *Kernel) certGenDir(g uint64) string {
	if g == 1 {
		return k.cfg.CertDir
	}
	return filepath.Join(k.cfg.CertDir, fmt.Sprintf("%s%016x", certGenPrefix, g))
}

// openCerts opens the newest certificate store generation, anchored where
// the sound prefixes of the damaged ones before it end; it starts a new
// generation when the newest is damaged too.
func (k *Kernel) openCerts() error {
	fsys := k.fsys
	hdr := k.binding.Header()
	gens := []uint64{1}
	if ents, err := fsys.ReadDir(k.cfg.CertDir); err == nil {
		for _, e := range ents {
			name, ok := strings.CutPrefix(e.Name(), certGenPrefix)
			if !ok || !e.IsDir() || len(name) != 16 || strings.ToLower(name) != name {
				continue
			}
			if g, err := strconv.ParseUint(name, 16, 64); err == nil && g > 1 {
				gens = append(gens, g)
			}
		}
	}
	slices.Sort(gens)
	opts := &framelog.WriterOptions{Sync: k.cfg.Sync, FS: fsys}
	var anchor ChainAnchor
	for i, g := range gens {
		dir := k.certGenDir(g)
		last := i == len(gens)-1
		if last {
			if err := createLog(fsys, filepath.Join(dir, certLogName), hdr); err != nil {
				return err
			}
			s, err := openCertStoreAt(fsys, dir, hdr, opts, anchor)
			if err == nil {
				k.certs = s
				return nil
			}
			if !certDamage(err) {
				return fmt.Errorf("omega: OpenKernel: certificate store: %w", err)
			}
		}
		certs, next, off, why := certPrefix(fsys, filepath.Join(dir, certLogName), hdr, anchor)
		k.certPrefix = append(k.certPrefix, certs...)
		anchor = next
		k.enterSafeMode(fmt.Sprintf("certificate log %s is damaged at offset %d (%v); the chain continues after its certificate %d",
			filepath.Join(dir, certLogName), off, why, len(certs)), filepath.Join(dir, certLogName), off, nil)
		if last {
			next := k.certGenDir(g + 1)
			if err := createLog(fsys, filepath.Join(next, certLogName), hdr); err != nil {
				return err
			}
			s, err := openCertStoreAt(fsys, next, hdr, opts, anchor)
			if err != nil {
				return fmt.Errorf("omega: OpenKernel: certificate store: %w", err)
			}
			k.certs = s
		}
	}
	return nil
}

// certDamage reports whether err, from opening a certificate store, says
// its cert.log is damaged, rather than held, bound elsewhere or unreadable.
func certDamage(err error) bool {
	var cle *CertLogError
	return errors.Is(err, framelog.ErrCorrupt) || errors.Is(err, framelog.ErrBadHeader) || errors.As(err, &cle)
}

// certPrefix reads the cert.log at path as far as it holds certificates
// that continue the chain from a, and returns them, the anchor after them,
// and where and why it stopped.
func certPrefix(fsys fileSystem, path string, hdr framelog.Header, a ChainAnchor) ([]*Certificate, ChainAnchor, int64, error) {
	b, err := fsys.ReadFile(path)
	if err != nil {
		return nil, a, 0, err
	}
	sc := framelog.NewScanner(b, nil)
	if h, err := sc.Header(); err != nil {
		return nil, a, 0, err
	} else if h != hdr {
		return nil, a, 0, framelog.ErrSchemaMismatch
	}
	var certs []*Certificate
	for {
		f, err := sc.Next()
		if err == io.EOF {
			return certs, a, sc.Offset(), errors.New("no damage found on reading it again")
		}
		if err != nil {
			return certs, a, sc.Offset(), err
		}
		if f.Type != framelog.FrameCert {
			return certs, a, f.Offset, fmt.Errorf("a %v frame", f.Type)
		}
		c, err := DecodeCertificate(f.Payload)
		if err != nil {
			return certs, a, f.Offset, err
		}
		if err := a.next(c, c.Hash()); err != nil {
			return certs, a, f.Offset, err
		}
		certs = append(certs, c)
	}
}

// certsSince is CertStore.since over the whole chain: the sound prefixes
// of damaged generations, then the open store.
func (k *Kernel) certsSince(batchID uint64) ([]*Certificate, error) {
	if len(k.certPrefix) == 0 {
		return k.certs.since(batchID)
	}
	all := slices.Clone(k.certPrefix)
	for _, c := range k.certs.All() {
		all = append(all, c)
	}
	if err := k.certs.Err(); err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(all, batchID+1, func(c *Certificate, b uint64) int { return cmp.Compare(c.BatchID, b) })
	start := i
	for j := i - 1; j >= 0; j-- {
		if all[j].Kind == KindMerge {
			start = j
			break
		}
	}
	return all[start:], nil
}

// section is the valid part of a log segment, as replay reads it.
type section struct {
	f    file
	size int64
}

// checkSegment checks the frames of a log segment a later one follows,
// from f, and reports any damage (logDamage): a bad or torn header (ok is
// then false: no frame of it can be read), corruption, or a torn tail,
// which only the last segment may have. It returns what is valid of it.
// covered says a snapshot covers the segment: restart does not read it,
// so that an error reading it is damage too, not a failure to open.
func (k *Kernel) checkSegment(f io.Reader, path string, covered bool) (rec framelog.Recovery, ok bool, err error) {
	name := filepath.Base(path)
	rec, err = framelog.RecoverFrom(f, nil)
	switch {
	case err != nil:
		var he *framelog.HeaderError
		if errors.As(err, &he) {
			k.logDamage(covered, fmt.Sprintf("log segment %s has a bad header: %v", name, err), path, 0)
			return rec, false, nil
		}
		if covered {
			k.logDamage(covered, fmt.Sprintf("log segment %s cannot be read: %v", name, err), path, -1)
			return rec, false, nil
		}
		return rec, false, fmt.Errorf("omega: OpenKernel: log segment %s: %w", path, err)
	case rec.TornHeader:
		// A creation cut short holds no frame; one a later segment
		// follows should not exist.
		k.logDamage(covered, fmt.Sprintf("log segment %s has a torn header and a later segment follows it", name), path, 0)
		return rec, false, nil
	case rec.Header != k.binding.Header():
		return rec, false, fmt.Errorf("omega: OpenKernel: log segment %s: %w", path, framelog.ErrSchemaMismatch)
	case rec.Tail == framelog.TailCorrupt:
		k.logDamage(covered, fmt.Sprintf("log segment %s is corrupt at offset %d: %v", name, rec.TailOffset, rec.Err), path, rec.TailOffset)
	case rec.Tail == framelog.TailTorn:
		k.logDamage(covered, fmt.Sprintf("log segment %s ends in a torn tail at offset %d and a later segment follows it", name, rec.TailOffset), path, rec.TailOffset)
	}
	return rec, true, nil
}

// logDamage enters safe mode for damage to the log at path and offset,
// unless a snapshot covers it and safe mode was resumed from it before:
// then it only counts it (metric log.resumed_damage).
func (k *Kernel) logDamage(covered bool, reason, path string, offset int64) {
	d := logDamage{filepath.Base(path), offset}
	if covered && k.resumedDamage[d] {
		k.metric("log.resumed_damage", 1, map[string]string{"segment": d.segment, "offset": strconv.FormatInt(offset, 10)})
		return
	}
	k.statusMu.Lock()
	k.damage = append(k.damage, d)
	k.statusMu.Unlock()
	k.enterSafeMode(reason, path, offset, nil)
}

// logDamage is damage found in the log: a segment's file name and the
// offset of the damage in it, or -1 for a segment missing or unreadable.
type logDamage struct {
	segment string
	offset  int64
}

// resumedDamageName is the file of the data directory listing the damage
// to the log safe mode was resumed from, one "<segment> <offset>" a line.
const resumedDamageName = "resumed-damage"

// readResumedDamage reads the damage to the log safe mode was resumed
// from. A missing file is none; a garbled one is none too, so that damage
// is reported again rather than passed over (the next Resume writes the
// list again); an error reading it fails the open.
func (k *Kernel) readResumedDamage() error {
	b, err := k.fsys.ReadFile(filepath.Join(k.dir, resumedDamageName))
	if errors.Is(err, errNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("omega: OpenKernel: %w", err)
	}
	k.resumedDamage = map[logDamage]bool{}
	for line := range strings.Lines(string(b)) {
		name, off, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		o, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil || o < -1 || !strings.HasSuffix(name, ".omega") {
			k.resumedDamage = nil
			return nil
		}
		k.resumedDamage[logDamage{name, o}] = true
	}
	return nil
}

// recordResumedDamage adds the damage to the log of the safe mode being
// resumed from to the data directory's list, durably, before Resume
// returns.
func (k *Kernel) recordResumedDamage() error {
	k.statusMu.Lock()
	found := k.damage
	k.statusMu.Unlock()
	if len(found) == 0 {
		return nil
	}
	if k.resumedDamage == nil {
		k.resumedDamage = map[logDamage]bool{}
	}
	for _, d := range found {
		k.resumedDamage[d] = true
	}
	all := slices.SortedFunc(maps.Keys(k.resumedDamage), func(a, b logDamage) int {
		return cmp.Or(cmp.Compare(a.segment, b.segment), cmp.Compare(a.offset, b.offset))
	})
	var b []byte
	for _, d := range all {
		b = fmt.Appendf(b, "%s %d\n", d.segment, d.offset)
	}
	if err := writeTempFS(k.fsys, k.dir, resumedDamageName, b); err != nil {
		return fmt.Errorf("omega: Resume: %w", err)
	}
	if err := k.fsys.SyncDir(k.dir); err != nil {
		return fmt.Errorf("omega: Resume: %w", err)
	}
	return nil
}

// eventsAfter reads the segments of a log again and returns the events of
// the EVENT frames at offsets from stopAt on (offsets of the one log the
// segments make, as the Replayer counts them), and the highest batch id of
// every BATCH frame. A frame that does not decode is skipped: replay has
// reported the damage.
func eventsAfter(sections []section, stopAt int64) ([]Event, uint64, error) {
	var events []Event
	var maxBatch uint64
	var base int64 // what earlier segments add to a segment's own offsets
	for _, sec := range sections {
		r := framelog.NewReader(io.NewSectionReader(sec.f, 0, sec.size), nil)
		for {
			f, err := r.Next()
			if err != nil {
				if err == io.EOF || errors.Is(err, framelog.ErrTornTail) || errors.Is(err, framelog.ErrCorrupt) || errors.Is(err, framelog.ErrBadHeader) {
					break
				}
				return nil, 0, err
			}
			switch f.Type {
			case framelog.FrameBatch:
				if len(f.Payload) >= 8 {
					maxBatch = max(maxBatch, binary.LittleEndian.Uint64(f.Payload))
				}
			case framelog.FrameEvent:
				if base+f.Offset >= stopAt {
					if e, err := DecodeEvent(f.Payload, Limits{}); err == nil {
						events = append(events, e)
					}
				}
			}
		}
		base += sec.size - framelog.HeaderSize
	}
	return events, maxBatch, nil
}

// loadSnapshot returns the newest snapshot that loads, whose segment
// exists and whose batches the certificate chain covers, and its segment;
// nil when there is none.
func (k *Kernel) loadSnapshot(segs []uint64, head ChainAnchor) (*Snapshot, uint64, error) {
	snaps, err := listSeqs(k.fsys, k.cfg.SnapshotDir)
	if err != nil {
		return nil, 0, fmt.Errorf("omega: OpenKernel: %w", err)
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		s := snaps[i]
		if _, ok := slices.BinarySearch(segs, s); !ok {
			continue
		}
		b, err := k.fsys.ReadFile(k.snapshotPath(s))
		if err != nil {
			k.metric("snapshot.unreadable", 1, map[string]string{"segment": fmt.Sprint(s)})
			continue
		}
		snap, err := DecodeSnapshot(b)
		if err != nil || snap.BaseOffset != framelog.HeaderSize {
			k.metric("snapshot.unreadable", 1, map[string]string{"segment": fmt.Sprint(s)})
			continue
		}
		if snap.Binding != k.binding {
			return nil, 0, fmt.Errorf("omega: OpenKernel: snapshot %s: %w", k.snapshotPath(s),
				&BindingError{Want: k.binding, Got: snap.Binding})
		}
		if snap.LastBatchID > head.BatchID {
			// Its batches are not all certified: start from an older
			// base, whose log re-certifies them.
			continue
		}
		return snap, s, nil
	}
	return nil, 0, nil
}

// tornHeader reports whether b, the whole of a log, is what a creation cut
// short leaves: a torn header (SPEC 5), as framelog reads it.
func tornHeader(b []byte) bool {
	rec, err := framelog.Recover(b, nil)
	return err == nil && rec.TornHeader
}

// createLog creates the frame log at path with header hdr, when it does not
// exist, whole: a synced temporary file renamed into place. So a crash
// never leaves a log whose header was never synced, which could read back
// as garbage, a damaged header that recovery must refuse (SPEC 5).
func createLog(fsys fileSystem, path string, hdr framelog.Header) error {
	if _, err := fsys.Stat(path); !errors.Is(err, errNotExist) {
		return nil // there, or for framelog.Open to report
	}
	dir := filepath.Dir(path)
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("omega: OpenKernel: %w", err)
	}
	b, _ := hdr.MarshalBinary()
	if err := writeTempFS(fsys, dir, filepath.Base(path), b); err != nil {
		return fmt.Errorf("omega: creating %s: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("omega: creating %s: %w", path, err)
	}
	return nil
}

// lockDir takes the data directory's lock.
func lockDir(fsys fileSystem, dir string) (file, error) {
	path := filepath.Join(dir, kernelLockName)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: %w", err)
	}
	if err := filelock.Lock(f, path); err != nil {
		f.Close()
		return nil, fmt.Errorf("omega: data directory %s is held by another kernel: %w", dir, err)
	}
	return f, nil
}

func unlockDir(f file) {
	if f != nil {
		filelock.Unlock(f)
		f.Close()
	}
}

// loadOrMakeKey reads the Ed25519 key at path (PKCS#8 PEM), or makes one
// with crypto/rand and writes it there (mode 0600) when there is none.
func loadOrMakeKey(fsys fileSystem, path string) (ed25519.PrivateKey, error) {
	b, err := fsys.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%w: %s holds no PEM PRIVATE KEY block", ErrBadKey, path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s: %T", ErrNotEd25519, path, k)
		}
		return priv, nil
	}
	if !errors.Is(err, errNotExist) {
		return nil, fmt.Errorf("omega: OpenKernel: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := writeTempFS(fsys, dir, filepath.Base(path), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: writing %s: %w", path, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("omega: OpenKernel: writing %s: %w", path, err)
	}
	return priv, nil
}
