package omega

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omega-sheaf/omega/trace"
)

// certify is the certifier goroutine: it certifies and appends the
// batches the syncer made durable, in order, syncs the certificate store once
// for all it took in at one time, then reports the decisions and passes on
// flushes and snapshots, which thereby follow every batch before them.
func (k *Kernel) certify() {
	defer k.done.Done()
	defer close(k.snapWork)
	var ws []certWork
	var dec []Decision
	for w := range k.certWork {
		ws = takeWaiting(k.certWork, ws[:0], w)
		dec = dec[:0]
		err := k.err()
		abandoned := false
		for _, w := range ws {
			for _, job := range w.jobs {
				if k.abandon.Load() {
					abandoned = true // left for the next open to certify
				}
				if err != nil || abandoned {
					break
				}
				<-job.sig.done
				cert := job.sig.cert
				if err = job.sig.err; errors.Is(err, ErrKernelClosed) && k.abandon.Load() {
					abandoned, err = true, nil // the presigner saw Close give up first
					break
				}
				if err == nil {
					if k.tracing() {
						// The step goes out before the certificate's
						// bytes are written, so that a crash never leaves
						// on disk a certificate the trace has not
						// reported.
						k.traceCert(cert)
					}
					// The certifier is the store's only appender, and
					// the presigner chained cert to the head it appended
					// last: the store checks it does continue the chain.
					err = k.certs.appendOwn(cert, job.sig.hash)
				}
				if err != nil {
					k.metric("cert.persist_fail", 1, nil)
					err = k.fail(fmt.Errorf("certifying batch %d: %w", job.meta.BatchID, err))
					break
				}
				dec = append(dec, Decision{Certificate: cert, Output: job.out})
			}
		}
		if err == nil && len(dec) > 0 {
			t := time.Now()
			err = k.certs.Sync()
			k.stats.certFsyncNanos.Add(int64(time.Since(t)))
			k.stats.certFsyncs.Add(1)
			if err != nil {
				k.metric("cert.persist_fail", 1, nil)
				err = k.fail(fmt.Errorf("syncing the certificate store: %w", err))
			} else if k.tracing() {
				k.trace(trace.Step{Action: trace.SyncCerts})
			}
		}
		if err == nil {
			now := time.Now()
			i := 0
		report:
			for _, w := range ws {
				for _, job := range w.jobs {
					if i == len(dec) {
						break report // the rest was abandoned
					}
					var first time.Time
					for _, at := range job.at {
						k.stats.certifiedLatency.add(now.Sub(at))
						if first.IsZero() || at.Before(first) {
							first = at
						}
					}
					if !first.IsZero() {
						if k.cfg.Metrics != nil {
							k.metric("latency.submit_to_certificate_us", float64(now.Sub(first).Microseconds()), map[string]string{
								"batch":      strconv.FormatUint(job.meta.BatchID, 10),
								"batch_size": strconv.Itoa(len(job.at)),
							})
						}
					}
					k.stats.certified.Add(1)
					k.metric("cert.persist", 1, nil)
					if k.cfg.OnDecision != nil {
						k.cfg.OnDecision(dec[i])
					}
					i++
				}
			}
		}
		if err == nil && abandoned {
			err = ErrKernelClosed
		}
		for _, w := range ws {
			if w.flush != nil {
				w.flush <- err
			}
			if w.snap != nil {
				if err != nil {
					if w.snap.done != nil {
						w.snap.done <- err
					}
					continue
				}
				k.snapWork <- *w.snap
			}
		}
		clear(ws)
		clear(dec)
	}
}

// presign is the presigner goroutine: it certifies the batches the core
// decided, in order, each linked to the one before it, starting from prev,
// the store's head at open. The certifier appends them once the syncer has
// made the batches durable, so that SPEC 8's order holds: a certificate is
// written after its BATCH frame is synced, and its signature was made
// while that sync ran. After a failure every later batch fails with it.
func (k *Kernel) presign(prev Hash) {
	defer k.done.Done()
	var err error
	for jobs := range k.signQ {
		for _, job := range jobs {
			s := job.sig
			if err == nil {
				err = k.err()
			}
			if err == nil && k.abandon.Load() {
				err = ErrKernelClosed
			}
			if err == nil {
				s.cert, err = certify(job.out, k.binding, job.meta, prev, k.signer, k.signKey)
				if err == nil {
					s.hash = s.cert.Hash()
					prev = s.hash
				}
			}
			s.err = err
			close(s.done)
		}
	}
}

// snapshots is the snapshotter goroutine: it writes each snapshot file
// (a temporary file, fsync, rename, directory fsync) and, when asked,
// prunes what the snapshot makes unnecessary. A failed periodic snapshot
// is reported by a metric and does not stop the kernel: the log still
// holds everything.
func (k *Kernel) snapshots() {
	defer k.done.Done()
	for {
		var job snapJob
		select {
		case seq := <-k.prepWork:
			// Failing here costs nothing: rotation creates the segment.
			k.prepareSegment(seq)
			continue
		case j, ok := <-k.snapWork:
			if !ok {
				return
			}
			job = j
		}
		err := ErrKernelClosed
		if !k.abandon.Load() {
			err = k.writeSnapshot(job)
		}
		if err != nil {
			k.metric("snapshot.fail", 1, nil)
		} else {
			k.metric("snapshot.write", 1, map[string]string{"segment": strconv.FormatUint(job.seq, 10)})
			if k.tracing() {
				k.trace(trace.Step{Action: trace.Snapshot, Through: job.through})
			}
		}
		if job.done != nil {
			job.done <- err
		}
	}
}

// prepareSegment creates log segment seq, whole and synced (createLog),
// unless it exists. The core calls it when it moves to seq; the
// snapshotter calls it ahead of time (prepareNext), so that moving to a new
// segment does not wait for the fsyncs of its creation. segMu keeps the two
// from creating it at once.
func (k *Kernel) prepareSegment(seq uint64) error {
	k.segMu.Lock()
	defer k.segMu.Unlock()
	return createLog(k.fsys, k.segmentPath(seq), k.binding.Header())
}

// prepareNext asks the snapshotter to create segment seq ahead of time; a
// request it has not taken yet is replaced.
func (k *Kernel) prepareNext(seq uint64) {
	select {
	case <-k.prepWork:
	default:
	}
	select {
	case k.prepWork <- seq:
	default:
	}
}

func (k *Kernel) writeSnapshot(job snapJob) error {
	// The known ids are sorted once, for the snapshot and the
	// fingerprints both.
	st := job.snap.State
	// Every step is paced: the snapshot takes at most half a core, so that
	// Submits and certificates keep their pace while it is written.
	pace := newPacer(k.closing).pace
	known, ok := st.knownSorted(pace)
	if !ok {
		return errors.New("omega: a snapshot of an uncommitted State")
	}
	if err := job.snap.check(); err != nil {
		return err
	}
	dir := k.cfg.SnapshotDir
	// The fingerprints first: a snapshot file is never without them.
	if err := k.writeFingerprints(job, known, pace); err != nil {
		return fmt.Errorf("omega: writing snapshot %d: %w", job.seq, err)
	}
	// Streamed to the file a piece at a time, each made durable before the
	// next (writePiece, as writeTempPaced does): at 10^7 ids a snapshot file is some
	// 250 MB, which need never be in memory whole.
	w := &stateWriter{sorted: known, heads: st.Heads(), pace: pace}
	if err := writeTempWith(k.fsys, dir, filepath.Base(k.snapshotPath(job.seq)), func(f file) error {
		return job.snap.stream(w, func(p []byte, more bool) error {
			return writePiece(f, p, more, pace)
		}, func(p []byte, off int64) error {
			_, err := f.WriteAt(p, off)
			return err
		})
	}); err != nil {
		return fmt.Errorf("omega: writing snapshot %d: %w", job.seq, err)
	}
	if err := k.fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("omega: writing snapshot %d: %w", job.seq, err)
	}
	return k.prune(job.seq)
}

// prune removes the snapshots older than the two newest and, under
// PruneSegments, the log segments before the newest snapshot's and every
// older snapshot. A segment before a snapshot holds only batches the
// certificate store has durably certified (the snapshot is written after
// them), so restart never needs it.
func (k *Kernel) prune(seq uint64) error {
	snaps, err := listSeqs(k.fsys, k.cfg.SnapshotDir)
	if err != nil {
		return err
	}
	keep := 2
	if k.cfg.PruneSegments {
		keep = 1
	}
	var errs []error
	for i, s := range snaps {
		if s < seq && len(snaps)-i > keep {
			errs = append(errs, k.fsys.Remove(k.snapshotPath(s)))
			if err := k.fsys.Remove(k.fingerprintPath(s)); err != nil && !errors.Is(err, errNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if k.cfg.PruneSegments {
		segs, err := listSeqs(k.fsys, filepath.Join(k.dir, "log"))
		if err != nil {
			return err
		}
		// Oldest first, and none after one that stays: the log never
		// has a gap before the snapshot, which opening reports.
		for _, s := range segs {
			if s >= seq {
				break
			}
			if err := k.fsys.Remove(k.segmentPath(s)); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("omega: pruning after snapshot %d: %w", seq, err)
	}
	return nil
}

// listSeqs returns, ascending, the sequence numbers of the files of dir
// named <16 lowercase hex digits>.omega; a missing dir holds none.
func listSeqs(fsys fileSystem, dir string) ([]uint64, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		if errors.Is(err, errNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".omega")
		if !ok || len(name) != 16 || e.IsDir() || strings.ToLower(name) != name {
			continue
		}
		if s, err := strconv.ParseUint(name, 16, 64); err == nil && s > 0 {
			seqs = append(seqs, s)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (k *Kernel) setBlocked(n int) {
	k.statusMu.Lock()
	k.status.Blocked = n
	k.statusMu.Unlock()
}

func (k *Kernel) resumed() {
	k.statusMu.Lock()
	k.status = KernelStatus{Offset: -1}
	k.damage = nil
	k.statusMu.Unlock()
}

// enterSafeMode records why the kernel is in safe mode. The first reason
// found is kept.
func (k *Kernel) enterSafeMode(reason, segment string, offset int64, inc *Incident) {
	k.metric("kernel.safe_mode", 1, map[string]string{"reason": reason})
	k.statusMu.Lock()
	defer k.statusMu.Unlock()
	if k.status.SafeMode {
		return
	}
	k.status = KernelStatus{SafeMode: true, Reason: reason, Segment: segment, Offset: offset, Incident: inc}
}

func (k *Kernel) setStale() {
	k.statusMu.Lock()
	k.status.Stale = true
	k.statusMu.Unlock()
}
