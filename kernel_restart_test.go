package omega

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/framelog"
)

// kernelBatches submits n batches of 4 events on streams of their own and
// flushes after each, so that each is one merge.
func kernelBatches(t *testing.T, k *Kernel, from, n int) {
	t.Helper()
	for b := from; b < from+n; b++ {
		var es []Event
		for i := range 4 {
			id := uint64(b*4 + i + 1)
			es = append(es, kev(id, uint32(i+1), uint64(b+1), "p"))
		}
		if err := k.Submit(t.Context(), es...); err != nil {
			t.Fatal(err)
		}
		if err := k.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// fiveBatches runs a kernel in a new directory through five merged
// batches and closes it, returning the directory and the certificates.
func fiveBatches(t *testing.T) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	var got decisions
	k := openKernel(t, dir, kernelConfig(&got))
	kernelBatches(t, k, 0, 5)
	want := certEnvelopes(t, k)
	closeKernel(t, k)
	return dir, want
}

func certEnvelopes(t *testing.T, k *Kernel) [][]byte {
	t.Helper()
	var out [][]byte
	for _, c := range k.Certificates().All() {
		out = append(out, c.Bytes())
	}
	return out
}

// frameOffsets returns the offsets of the frames of the log at path.
func frameOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	s := framelog.NewScanner(b, nil)
	for {
		f, err := s.Next()
		if err != nil {
			break
		}
		offs = append(offs, f.Offset)
	}
	return offs
}

// TestKernelRecertifies cuts the last certificates off cert.log, as a crash
// between syncing their BATCH frames and appending them leaves it: opening
// certifies them again, byte for byte.
func TestKernelRecertifies(t *testing.T) {
	dir, want := fiveBatches(t)

	certLog := filepath.Join(dir, "certs", certLogName)
	offs := frameOffsets(t, certLog)
	untraced(dir, "it removes durable certificates, which no crash does")
	if err := os.Truncate(certLog, offs[3]); err != nil {
		t.Fatal(err)
	}
	var again decisions
	k := openKernel(t, dir, kernelConfig(&again))
	ds := again.all()
	if len(ds) != 2 || !ds[0].Recertified || !ds[1].Recertified {
		t.Fatalf("reopening reported %v, want batches 4 and 5 certified again", ds)
	}
	gotEnv := certEnvelopes(t, k)
	if len(gotEnv) != len(want) {
		t.Fatalf("%d certificates after reopening, want %d", len(gotEnv), len(want))
	}
	for i := range want {
		if !bytes.Equal(gotEnv[i], want[i]) {
			t.Errorf("certificate %d differs after re-certification", i)
		}
	}
	verifyKernelChain(t, k)
	kernelBatches(t, k, 5, 1)
	if a := verifyKernelChain(t, k); a.BatchID != 6 {
		t.Errorf("chain ends at batch %d, want 6", a.BatchID)
	}
	closeKernel(t, k)
}

func TestKernelSnapshotRestart(t *testing.T) {
	for _, c := range []struct {
		prune, dropFingerprints bool
	}{{false, false}, {true, false}, {false, true}} {
		t.Run(fmt.Sprintf("prune=%v/fingerprints=%v", c.prune, !c.dropFingerprints), func(t *testing.T) {
			dir := t.TempDir()
			var got decisions
			cfg := kernelConfig(&got)
			cfg.PruneSegments = c.prune
			cfg.SnapshotEvery = 3
			k := openKernel(t, dir, cfg)
			kernelBatches(t, k, 0, 7) // snapshots after batches 3 and 6
			if err := k.Snapshot(t.Context()); err != nil {
				t.Fatal(err)
			}
			// Submitted after the last snapshot and waiting for a
			// dependency: pending in the next open.
			if err := k.Submit(t.Context(), kev(1000, 9, 5, "late", 999)); err != nil {
				t.Fatal(err)
			}
			closeKernel(t, k)
			segs, _ := listSeqs(osFS{}, filepath.Join(dir, "log"))
			snaps, _ := listSeqs(osFS{}, filepath.Join(dir, "snapshots"))
			// The last segment was created ahead of time, and is empty.
			if fi, err := os.Stat(filepath.Join(dir, "log", fmt.Sprintf("%016x.omega", segs[len(segs)-1]))); err != nil || fi.Size() != framelog.HeaderSize {
				t.Errorf("the segment made ahead: %v, %v", fi, err)
			}
			if c.prune && (len(segs) != 2 || len(snaps) != 1) {
				t.Errorf("pruned: segments %v, snapshots %v; want the snapshot's, the next, and one snapshot", segs, snaps)
			}
			if !c.prune && (len(segs) != 5 || segs[0] != 1 || len(snaps) != 2) {
				t.Errorf("not pruned: segments %v, snapshots %v; want 5 and the 2 newest", segs, snaps)
			}
			// The snapshotter encodes from the ids it sorted for the
			// fingerprints: byte for byte what AppendBinary makes.
			for _, seq := range snaps {
				b, err := os.ReadFile(filepath.Join(dir, "snapshots", fmt.Sprintf("%016x.omega", seq)))
				if err != nil {
					t.Fatal(err)
				}
				sn, err := DecodeSnapshot(b)
				if err != nil {
					t.Fatalf("snapshot %d: %v", seq, err)
				}
				if again, err := sn.AppendBinary(nil); err != nil || !bytes.Equal(again, b) {
					t.Errorf("snapshot %d differs from AppendBinary of what it decodes to (%v)", seq, err)
				}
			}
			fps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.fp"))
			if len(fps) != len(snaps) {
				t.Errorf("fingerprint files %v beside snapshots %v", fps, snaps)
			}
			if c.dropFingerprints {
				untraced(dir, "it removes the fingerprint files, damage the model leaves out")
				for _, f := range fps {
					os.Remove(f)
				}
			}

			var more decisions
			cfg = kernelConfig(&more)
			cfg.PruneSegments = c.prune
			k = openKernel(t, dir, cfg)
			if err := k.Submit(t.Context(), kev(999, 9, 4, "dep"), kev(1, 1, 1, "p")); err != nil {
				t.Fatal(err)
			}
			if err := k.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			ds := more.all()
			acc := acceptedIDs(ds)
			if acc[ID64(999)] != 1 || acc[ID64(1000)] != 1 || acc[ID64(1)] != 0 {
				t.Errorf("after restart from a snapshot: accepted %v", acc)
			}
			// id 1 was accepted before the snapshot: its redelivery is
			// dropped by its fingerprint, or, without the file, reaches
			// the checker and is obstructed by 1002.
			obstructed := len(ds) > 0 && ds[0].Output.Result.Kind == KindObstruction && ds[0].Output.Result.Obstruction.Predicate == 1002
			if dropped := k.Stats().Dropped; c.dropFingerprints != obstructed || (dropped == 1) == c.dropFingerprints {
				t.Errorf("redelivery of an event accepted before the snapshot: dropped %d, obstructed %v", dropped, obstructed)
			}
			if a := verifyKernelChain(t, k); a.BatchID != ds[len(ds)-1].Certificate.BatchID || ds[0].Certificate.BatchID != 8 {
				t.Errorf("chain: %+v; first new batch %d, want 8", a, ds[0].Certificate.BatchID)
			}
			if k.Status().SafeMode {
				t.Errorf("safe mode after a clean restart: %+v", k.Status())
			}
			closeKernel(t, k)
		})
	}
}

// TestKernelSafeMode damages a frame in the middle of a closed segment:
// the kernel opens in safe mode, certifies obstructions but no merge,
// leaves the damaged file as it was, and certifies merges again after
// Resume.
func TestKernelSafeMode(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SnapshotEvery = -1
	k := openKernel(t, dir, cfg)
	kernelBatches(t, k, 0, 3)
	closeKernel(t, k)

	seg := filepath.Join(dir, "log", "0000000000000001.omega")
	offs := frameOffsets(t, seg)
	b, _ := os.ReadFile(seg)
	// Past the last BATCH frame's start: the last batch was not
	// replayed, the others were.
	last := offs[len(offs)-1]
	b[last+framelog.FrameHeaderLen+1] ^= 0xff
	b = append(b, b[offs[0]:offs[1]]...) // a valid frame after the damage: corruption, not a torn tail
	untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	var more decisions
	cfg = kernelConfig(&more)
	cfg.SnapshotEvery = -1
	k = openKernel(t, dir, cfg)
	st := k.Status()
	if !st.SafeMode || st.Offset != last || st.Segment != seg || !st.Stale {
		t.Fatalf("Status = %+v, want stale safe mode at %s offset %d", st, seg, last)
	}
	// The damaged batch's certificate exists, its BATCH frame does not:
	// the log's state is behind the chain. That is a different, stale
	// safe mode; check the plain one with a fresh directory below.
	if err := k.Resume(t.Context()); err == nil {
		t.Errorf("Resume with a log behind its chain succeeded")
	}
	closeKernel(t, k)
	after, _ := os.ReadFile(seg)
	if !bytes.Equal(after, b) {
		t.Errorf("the damaged segment was changed")
	}
}

// damagedLogDir leaves in a new directory a closed kernel's data whose
// first segment is damaged in the middle, so that the next open is in
// safe mode: it returns the directory, the segment's path and bytes, and
// the offset of the damaged frame.
func damagedLogDir(t *testing.T) (dir, seg string, b []byte, bad int64) {
	t.Helper()
	dir = t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SnapshotEvery = -1
	k := openKernel(t, dir, cfg)
	kernelBatches(t, k, 0, 2)
	// Two events wait for a dependency: their EVENT frames are the last.
	if err := k.Submit(t.Context(), kev(500, 7, 10, "w1", 499), kev(501, 7, 11, "w2", 499)); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)
	seg = filepath.Join(dir, "log", "0000000000000001.omega")
	offs := frameOffsets(t, seg)
	b, _ = os.ReadFile(seg)
	bad = offs[len(offs)-2]
	b[bad+framelog.FrameHeaderLen+3] ^= 0x01
	untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, seg, b, bad
}

// TestKernelSafeModeBlocksMerges damages an EVENT frame no batch decided:
// the state is the chain's, so obstructions are certified, merges wait for
// Resume.
func TestKernelSafeModeBlocksMerges(t *testing.T) {
	dir, seg, b, bad := damagedLogDir(t)
	var more decisions
	var metrics metricLog
	cfg := kernelConfig(&more)
	cfg.SnapshotEvery = -1
	cfg.Metrics = &metrics
	k := openKernel(t, dir, cfg)
	if st := k.Status(); !st.SafeMode || st.Offset != bad {
		t.Fatalf("Status = %+v, want safe mode at offset %d", st, bad)
	}
	ctx := t.Context()
	// An equivocation beside good events: the obstruction is certified,
	// the merge of the rest is not.
	if err := k.Submit(ctx, kev(600, 8, 1, "a"), kev(600, 8, 1, "b"), kev(601, 8, 2, "c")); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ds := more.all()
	if len(ds) != 1 || ds[0].Output.Result.Kind != KindObstruction {
		t.Fatalf("in safe mode: decisions %v, want only the obstruction", ds)
	}
	if st := k.Status(); st.Blocked != 1 || k.Stats().SafeModeBlocked != 1 {
		t.Errorf("Status %+v, Stats %+v: want one blocked event", st, k.Stats())
	}
	if got := metrics.sum("reconcile.safe_mode_merge_blocked"); got != 1 {
		t.Errorf("reconcile.safe_mode_merge_blocked sums to %v, want 1 (the merge's one event)", got)
	}
	if got := metrics.sum("kernel.safe_mode"); got < 1 {
		t.Errorf("no kernel.safe_mode metric")
	}
	if err := k.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ds = more.all()
	if len(ds) != 2 || ds[1].Output.Result.Kind != KindMerge || acceptedIDs(ds)[ID64(601)] != 1 {
		t.Fatalf("after Resume: decisions %v, want the blocked merge certified", ds)
	}
	if k.Status().SafeMode {
		t.Errorf("still in safe mode after Resume")
	}
	verifyKernelChain(t, k)
	closeKernel(t, k)
	// The kernel went on in a new segment and left the damaged one alone.
	after, _ := os.ReadFile(seg)
	if !bytes.Equal(after, b) {
		t.Errorf("the damaged segment was changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "log", "0000000000000002.omega")); err != nil {
		t.Errorf("no new segment: %v", err)
	}
}

func TestKernelRefusesOtherBinding(t *testing.T) {
	dir := t.TempDir()
	k := openKernel(t, dir, &KernelConfig{Signer: kernelKey})
	kernelBatches(t, k, 0, 1)
	closeKernel(t, k)
	c, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{oddLamport{}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenKernel(context.Background(), dir, &KernelConfig{Signer: kernelKey, Checker: c})
	if !errors.Is(err, ErrBindingMismatch) {
		t.Fatalf("OpenKernel with another binding = %v, want ErrBindingMismatch", err)
	}
}

// TestKernelCertLogDamaged damages a certificate in the middle of cert.log:
// the kernel opens in safe mode, leaves the file as it is, and continues
// the chain from the last sound certificate in a new store, certifying the
// later batches again byte for byte.
func TestKernelCertLogDamaged(t *testing.T) {
	for _, damage := range []string{"corrupt", "broken link"} {
		t.Run(damage, func(t *testing.T) {
			dir, want := fiveBatches(t)

			certLog := filepath.Join(dir, "certs", certLogName)
			offs := frameOffsets(t, certLog)
			b, _ := os.ReadFile(certLog)
			switch damage {
			case "corrupt":
				b[offs[2]+framelog.FrameHeaderLen+5] ^= 0x40
			case "broken link":
				// Certificate 2 removed: certificate 3 no longer links.
				b = append(b[:offs[2]:offs[2]], b[offs[3]:]...)
			}
			untraced(dir, "it damages the certificate store, which the model reads only as the cause of safe mode")
			if err := os.WriteFile(certLog, b, 0o644); err != nil {
				t.Fatal(err)
			}

			var more decisions
			k := openKernel(t, dir, kernelConfig(&more))
			st := k.Status()
			if !st.SafeMode || st.Segment != certLog || st.Offset != offs[2] {
				t.Fatalf("Status = %+v, want safe mode at %s offset %d", st, certLog, offs[2])
			}
			ds := more.all()
			if len(ds) != 3 {
				t.Fatalf("%d batches certified again, want 3", len(ds))
			}
			for i, d := range ds {
				if !d.Recertified || !bytes.Equal(d.Certificate.Bytes(), want[2+i]) {
					t.Errorf("batch %d: certified again as different bytes", d.Certificate.BatchID)
				}
			}
			// The whole chain verifies from genesis: the sound prefix, then
			// the new store.
			prefix, err := DecodeCertificate(want[0])
			if err != nil {
				t.Fatal(err)
			}
			second, _ := DecodeCertificate(want[1])
			chain := []*Certificate{prefix, second}
			for _, c := range k.Certificates().All() {
				chain = append(chain, c)
			}
			ring, _ := NewKeyRing(kernelKey.Public().(ed25519.PublicKey))
			if a, err := VerifyChain(t.Context(), chain, ring, k.Binding(), nil); err != nil || a.BatchID != 5 {
				t.Fatalf("VerifyChain over the generations = %+v, %v", a, err)
			}
			verifyKernelChain(t, k)
			// Merges wait for Resume.
			if err := k.Submit(t.Context(), kev(100, 9, 1, "m")); err != nil {
				t.Fatal(err)
			}
			if err := k.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := len(more.all()); n != 3 {
				t.Errorf("a merge was certified in safe mode")
			}
			if err := k.Resume(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := k.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ds := more.all(); len(ds) != 4 || ds[3].Certificate.BatchID != 6 {
				t.Fatalf("after Resume: %d decisions, want the merge as batch 6", len(ds))
			}
			closeKernel(t, k)
			if after, _ := os.ReadFile(certLog); !bytes.Equal(after, b) {
				t.Errorf("the damaged cert.log was changed")
			}
			// Reopened, the kernel finds the same damage, and the new
			// generation continues it.
			k = openKernel(t, dir, kernelConfig(&more))
			if !k.Status().SafeMode || k.Head().BatchID != 6 {
				t.Errorf("reopened: %+v at batch %d", k.Status(), k.Head().BatchID)
			}
			verifyKernelChain(t, k)
			closeKernel(t, k)
		})
	}
}

// TestKernelSnapshotAheadOfDamagedChain damages the certificate store
// behind the newest snapshot, so that the chain no longer covers it: the
// kernel opens from genesis, and must not append to a segment before the
// snapshot's, where a later open, the chain repaired, would load the
// snapshot and never replay them. (Found by TestKernelMirror: events so
// acknowledged were lost.)
func TestKernelSnapshotAheadOfDamagedChain(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SnapshotEvery = -1
	k := openKernel(t, dir, cfg)
	kernelBatches(t, k, 0, 3)
	if err := k.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)
	certLog := filepath.Join(dir, "certs", certLogName)
	offs := frameOffsets(t, certLog)
	b, _ := os.ReadFile(certLog)
	b[offs[1]+framelog.FrameHeaderLen+20] ^= 0x40
	untraced(dir, "it damages the certificate store, which the model reads only as the cause of safe mode")
	if err := os.WriteFile(certLog, b, 0o644); err != nil {
		t.Fatal(err)
	}

	k = openKernel(t, dir, cfg)
	if !k.Status().SafeMode {
		t.Fatalf("Status = %+v, want safe mode", k.Status())
	}
	late := kev(500, 9, 1, "acknowledged after the damage")
	if err := k.Submit(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)

	var more decisions
	cfg = kernelConfig(&more)
	cfg.SnapshotEvery = -1
	k = openKernel(t, dir, cfg)
	defer closeKernel(t, k)
	if err := k.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if acceptedIDs(more.all())[late.ID] != 1 {
		t.Fatalf("the event acknowledged after the damage was not decided on reopening: decisions %v", more.all())
	}
}

// TestKernelLastSegmentBadHeader damages the header of the segment the
// kernel appended to last, one holding only events still waiting for a
// dependency, or the empty one made ahead of time, whole or cut short
// (shorter than a header, and no prefix of one: not a creation cut short):
// the kernel opens in safe mode, goes on in a new segment, refuses
// snapshots until Resume, and never touches the damaged file.
func TestKernelLastSegmentBadHeader(t *testing.T) {
	for _, c := range []struct{ withFrames, short bool }{{true, false}, {false, false}, {false, true}} {
		withFrames := c.withFrames
		t.Run(fmt.Sprintf("frames=%v/short=%v", c.withFrames, c.short), func(t *testing.T) {
			dir := t.TempDir()
			var got decisions
			cfg := kernelConfig(&got)
			cfg.SnapshotEvery = -1
			k := openKernel(t, dir, cfg)
			kernelBatches(t, k, 0, 2)
			if err := k.Snapshot(t.Context()); err != nil { // on to segment 2
				t.Fatal(err)
			}
			seg := filepath.Join(dir, "log", "0000000000000003.omega") // made ahead
			if withFrames {
				if err := k.Submit(t.Context(), kev(50, 8, 5, "w", 49)); err != nil {
					t.Fatal(err)
				}
				seg = filepath.Join(dir, "log", "0000000000000002.omega")
			}
			closeKernel(t, k)
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			b[3] ^= 0xff // the magic
			if c.short {
				b = b[:10]
			}
			untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
			if err := os.WriteFile(seg, b, 0o644); err != nil {
				t.Fatal(err)
			}
			k = openKernel(t, dir, kernelConfig(&got))
			if st := k.Status(); !st.SafeMode || st.Segment != seg {
				t.Fatalf("Status = %+v, want safe mode for %s", st, seg)
			}
			if err := k.Submit(t.Context(), kev(100, 9, 1, "x")); err != nil {
				t.Fatal(err)
			}
			if err := k.Snapshot(t.Context()); err == nil {
				t.Errorf("a snapshot was taken in safe mode")
			}
			if err := k.Resume(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := k.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if acc := acceptedIDs(got.all()); acc[ID64(100)] != 1 {
				t.Errorf("the event submitted in safe mode was not accepted after Resume")
			}
			if err := k.Snapshot(t.Context()); err != nil {
				t.Fatalf("Snapshot after Resume: %v", err)
			}
			verifyKernelChain(t, k)
			closeKernel(t, k)
			k = openKernel(t, dir, kernelConfig(&got))
			verifyKernelChain(t, k)
			closeKernel(t, k)
			if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
				t.Fatalf("the damaged segment was changed")
			}
		})
	}
}

// TestKernelCloseContext closes a busy kernel with a context that has
// already ended: Close returns without certifying what was left, and the
// next open certifies it, so every decision is reported exactly once.
func TestKernelCloseContext(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.FlushInterval = time.Hour
	// The certifier signs nothing until Close has seen its context end.
	gate := make(chan struct{})
	cfg.Signer = gatedSigner{kernelKey, gate}
	k := openKernel(t, dir, cfg)
	for b := range uint64(200) {
		var es []Event
		for i := range uint64(32) {
			es = append(es, kev(b*32+i+1, uint32(i+1), b+1, "c"))
		}
		if err := k.Submit(t.Context(), es...); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	go func() {
		for !k.abandon.Load() {
			time.Sleep(time.Millisecond)
		}
		close(gate)
	}()
	if err := k.Close(ctx); err != nil {
		t.Fatalf("Close(ended context) = %v", err)
	}
	first := len(got.all())
	t.Logf("%d of 200 batches certified before Close returned", first)
	k = openKernel(t, dir, cfg)
	ds := got.all()
	seen := map[uint64]int{}
	for _, d := range ds {
		seen[d.Certificate.BatchID]++
	}
	if first == 200 {
		t.Errorf("every batch was certified before Close returned: nothing was left")
	}
	if len(seen) != 200 || len(ds) != 200 {
		t.Errorf("%d decisions for %d batches (%d before the reopening), want each of 200 once", len(ds), len(seen), first)
	}
	verifyKernelChain(t, k)
	closeKernel(t, k)
}

// gatedSigner signs as its key does, once gate is closed.
type gatedSigner struct {
	ed25519.PrivateKey
	gate <-chan struct{}
}

func (s gatedSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	<-s.gate
	return s.PrivateKey.Sign(r, d, o)
}

// TestKernelReplayIncident alters a recorded obstruction: opening meets a
// replay incident, enters safe mode with it, still knows the events logged
// after the altered batch, and numbers new batches after every logged one.
func TestKernelReplayIncident(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SnapshotEvery = -1
	k := openKernel(t, dir, cfg)
	kernelBatches(t, k, 0, 2)
	if err := k.Submit(t.Context(), kev(70, 7, 1, "a"), kev(70, 7, 1, "b")); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Logged after the obstruction, waiting for 71.
	if err := k.Submit(t.Context(), kev(72, 7, 3, "w", 71)); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)
	if n := len(got.all()); n != 3 || got.all()[2].Output.Result.Kind != KindObstruction {
		t.Fatalf("setup: %d decisions, want 2 merges and an obstruction", n)
	}

	seg := filepath.Join(dir, "log", "0000000000000001.omega")
	b, _ := os.ReadFile(seg)
	sc := framelog.NewScanner(b, nil)
	var batchOff int64 = -1
	for {
		f, err := sc.Next()
		if err != nil {
			break
		}
		if f.Type == framelog.FrameBatch {
			batchOff = f.Offset // the last: the obstruction
		}
	}
	frameLen := int64(binary.LittleEndian.Uint32(b[batchOff:]))
	b[batchOff+framelog.FrameHeaderLen+batchOffWitness] ^= 1
	binary.LittleEndian.PutUint32(b[batchOff+4:], crc32.ChecksumIEEE(b[batchOff+8:batchOff+frameLen]))
	untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}

	var more decisions
	k = openKernel(t, dir, kernelConfig(&more))
	st := k.Status()
	if !st.SafeMode || st.Incident == nil || st.Stale {
		t.Fatalf("Status = %+v, want safe mode with an incident, not stale", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "incidents")); err != nil {
		t.Errorf("no incident written: %v", err)
	}
	if err := k.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := k.Submit(t.Context(), kev(71, 7, 2, "dep")); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ds := more.all()
	if acc := acceptedIDs(ds); acc[ID64(71)] != 1 || acc[ID64(72)] != 1 {
		t.Fatalf("after the incident: accepted %v, want 71 and the event logged after the altered batch, 72", acc)
	}
	if ds[0].Certificate.BatchID != 4 {
		t.Errorf("the first new batch is %d, want 4", ds[0].Certificate.BatchID)
	}
	closeKernel(t, k)
}

// TestKernelSignerFails makes the signer fail at the fifth certificate: the
// kernel stops with the signer's error, appends no certificate from that
// batch on (signatures are made ahead of the log's fsync, so later
// batches were signed, or refused, already), and the next open, with a
// working signer, certifies every batch the log holds, once each, in a
// chain that verifies.
func TestKernelSignerFails(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	errSign := errors.New("the signing service is down")
	var signed atomic.Int32
	cfg.Signer = failingSigner{kernelKey, func() error {
		if signed.Add(1) >= 5 {
			return errSign
		}
		return nil
	}}
	var metrics metricLog
	cfg.Metrics = &metrics
	k := openKernel(t, dir, cfg)
	var err error
	for b := uint64(0); b < 20 && err == nil; b++ {
		var es []Event
		for i := range uint64(32) {
			es = append(es, kev(b*32+i+1, uint32(i+1), b+1, "s"))
		}
		err = k.Submit(t.Context(), es...)
		if err == nil {
			err = k.Flush(t.Context())
		}
	}
	if !errors.Is(err, errSign) {
		t.Fatalf("Submit/Flush = %v, want the signer's error", err)
	}
	if err := k.Close(context.Background()); !errors.Is(err, errSign) {
		t.Fatalf("Close = %v, want the signer's error", err)
	}
	if n := len(got.all()); n != 4 {
		t.Fatalf("%d decisions reported, want the 4 signed before the failure", n)
	}
	if n := k.Certificates().Len(); n != 4 {
		t.Fatalf("%d certificates appended, want 4", n)
	}
	if n, m := metrics.sum("cert.persist"), metrics.sum("cert.persist_fail"); n != 4 || m != 1 {
		t.Fatalf("metrics cert.persist %v, cert.persist_fail %v: want 4 and 1", n, m)
	}
	cfg.Metrics = nil

	cfg.Signer = kernelKey
	k = openKernel(t, dir, cfg)
	a := verifyKernelChain(t, k)
	ds := got.all()
	if len(ds) < 5 || uint64(len(ds)) != a.BatchID {
		t.Fatalf("%d decisions after reopening, chain through batch %d: want every logged batch once", len(ds), a.BatchID)
	}
	for i, d := range ds {
		if d.Certificate.BatchID != uint64(i+1) {
			t.Fatalf("decision %d is for batch %d", i, d.Certificate.BatchID)
		}
	}
	closeKernel(t, k)
}

// failingSigner signs as its key does while fail returns nil.
type failingSigner struct {
	ed25519.PrivateKey
	fail func() error
}

func (s failingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.PrivateKey.Sign(r, d, o)
}

// metricLog is a MetricsSink that keeps every metric.
type metricLog struct {
	mu sync.Mutex
	ms []Metric
}

func (l *metricLog) Record(m Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m.Metadata = nil // not to be kept past the call
	l.ms = append(l.ms, m)
}

// sum returns the sum of the values of the metrics named name.
func (l *metricLog) sum(name string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v float64
	for _, m := range l.ms {
		if m.Name == name {
			v += m.Value
		}
	}
	return v
}

// TestKernelSegmentRollover fills small segments: the log moves to a new
// segment right after the batch that takes the current one to
// SegmentSize, never before it and never a batch later, and the segments
// reopen to the same chain.
func TestKernelSegmentRollover(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SnapshotEvery = -1 // no rotation but the size limit's
	cfg.SegmentSize = 2 << 10
	k := openKernel(t, dir, cfg)
	const batches = 40
	kernelBatches(t, k, 0, batches)
	head := verifyKernelChain(t, k)
	closeKernel(t, k)

	logDir := filepath.Join(dir, "log")
	seqs, err := listSeqs(osFS{}, logDir)
	if err != nil {
		t.Fatal(err)
	}
	type segment struct {
		size        int64
		batchEnds   []int64 // where each BATCH frame ends
		lastIsBatch bool
	}
	var segs []segment
	for _, seq := range seqs {
		b, err := os.ReadFile(filepath.Join(logDir, fmt.Sprintf("%016x.omega", seq)))
		if err != nil {
			t.Fatal(err)
		}
		s := segment{size: int64(len(b))}
		sc := framelog.NewScanner(b, nil)
		for {
			f, err := sc.Next()
			if err != nil {
				break
			}
			s.lastIsBatch = f.Type == framelog.FrameBatch
			if s.lastIsBatch {
				s.batchEnds = append(s.batchEnds, sc.Offset())
			}
		}
		segs = append(segs, s)
	}
	// The segment after the current one is made ahead of time, empty.
	if n := len(segs); n < 2 || segs[n-1].size != framelog.HeaderSize {
		t.Fatalf("segments of %v bytes: want the last one made ahead, empty", segs)
	}
	written := segs[:len(segs)-1]
	if len(written) < 3 {
		t.Fatalf("%d segments written for %d batches of %d-byte segments, want several", len(written), batches, cfg.SegmentSize)
	}
	total := 0
	for i, s := range written {
		total += len(s.batchEnds)
		if i == len(written)-1 {
			if s.size >= cfg.SegmentSize {
				t.Errorf("the current segment holds %d bytes, at least the limit %d: it should have rotated", s.size, cfg.SegmentSize)
			}
			continue
		}
		if s.size < cfg.SegmentSize {
			t.Errorf("segment %d ended at %d bytes, under the limit %d", i, s.size, cfg.SegmentSize)
		}
		if !s.lastIsBatch || len(s.batchEnds) < 2 {
			t.Fatalf("segment %d does not end with a batch after another: %+v", i, s)
		}
		if prev := s.batchEnds[len(s.batchEnds)-2]; prev >= cfg.SegmentSize {
			t.Errorf("segment %d reached the limit at %d bytes, and went on with another batch", i, prev)
		}
	}
	if total != batches {
		t.Errorf("%d BATCH frames in the segments, want %d", total, batches)
	}

	k = openKernel(t, dir, cfg)
	if st := k.Status(); st.SafeMode || k.Head() != head {
		t.Errorf("reopened: %+v, head %+v, want %+v", st, k.Head(), head)
	}
	if n := len(acceptedIDs(got.all())); n != 4*batches {
		t.Errorf("%d ids accepted, want %d", n, 4*batches)
	}
	closeKernel(t, k)
}

// TestKernelSafeModeHeldDependent holds an event for one dependency while
// another, released, waits in the batch queue; safe mode then blocks the
// released one. When the first dependency arrives the event stays held,
// as an event received then would be, until Resume releases what safe
// mode blocked, and it is merged with them.
func TestKernelSafeModeHeldDependent(t *testing.T) {
	dir, _, _, _ := damagedLogDir(t)
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SnapshotEvery = -1
	cfg.FlushInterval = time.Hour
	cfg.MaxPendingAge = time.Hour
	k := openKernel(t, dir, cfg)
	if !k.Status().SafeMode {
		t.Fatal("not in safe mode")
	}
	ctx := t.Context()
	submit := func(es ...Event) {
		t.Helper()
		if err := k.Submit(ctx, es...); err != nil {
			t.Fatal(err)
		}
	}
	submit(kev(700, 9, 1, "a"))           // released, not yet decided
	submit(kev(702, 9, 3, "c", 700, 701)) // held for 701 alone
	if err := k.Flush(ctx); err != nil {  // 700's merge is blocked
		t.Fatal(err)
	}
	submit(kev(701, 10, 1, "b")) // 702 still lacks 700, blocked now
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := k.Status(); st.Blocked != 2 {
		t.Errorf("Status %+v: want 700 and 701 blocked, 702 held", st)
	}
	if err := k.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acc := acceptedIDs(got.all())
	for _, id := range []uint64{700, 701, 702} {
		if acc[ID64(id)] != 1 {
			t.Errorf("event %d accepted %d times after Resume, want once", id, acc[ID64(id)])
		}
	}
	closeKernel(t, k) // and the trace obeys the model
}

// snapshottedConfig is kernelConfig with small segments and frequent
// snapshots.
func snapshottedConfig(d *decisions) *KernelConfig {
	cfg := kernelConfig(d)
	cfg.SnapshotEvery = 2
	cfg.SegmentSize = 2 << 10
	return cfg
}

// snapshottedDir leaves in a new directory a closed kernel's data in many
// segments, whose newest snapshot covers segments 1 to covers at least.
func snapshottedDir(t *testing.T, covers uint64) string {
	t.Helper()
	dir := t.TempDir()
	var got decisions
	k := openKernel(t, dir, snapshottedConfig(&got))
	kernelBatches(t, k, 0, 20)
	closeKernel(t, k)
	snaps, err := listSeqs(osFS{}, filepath.Join(dir, "snapshots"))
	if err != nil || len(snaps) == 0 || snaps[len(snaps)-1] <= covers {
		t.Fatalf("snapshots %v (%v): want one that covers segments 1 to %d", snaps, err, covers)
	}
	return dir
}

// TestKernelCoveredSegmentDamaged damages a segment the newest snapshot
// covers: opening does not replay it, but checks its frames, and finds the
// damage in safe mode, which Resume ends (the State is the snapshot's,
// not stale).
func TestKernelCoveredSegmentDamaged(t *testing.T) {
	dir := snapshottedDir(t, 1)

	seg := filepath.Join(dir, "log", "0000000000000001.omega")
	offs := frameOffsets(t, seg)
	if len(offs) < 2 {
		t.Fatalf("segment 1 has %d frames", len(offs))
	}
	b, _ := os.ReadFile(seg)
	b[offs[0]+framelog.FrameHeaderLen] ^= 0x01
	untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var more decisions
	k := openKernel(t, dir, snapshottedConfig(&more))
	st := k.Status()
	if !st.SafeMode || st.Segment != seg || st.Offset != offs[0] || st.Stale {
		t.Fatalf("Status = %+v, want safe mode at %s offset %d, not stale", st, seg, offs[0])
	}
	if err := k.Resume(t.Context()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	kernelBatches(t, k, 20, 1)
	if ds := more.all(); len(ds) != 1 || ds[0].Output.Result.Kind != KindMerge {
		t.Errorf("after Resume: %d decisions, want one merge", len(ds))
	}
	verifyKernelChain(t, k)
	closeKernel(t, k)
	if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
		t.Errorf("the damaged segment was changed")
	}
}

// TestKernelResumedDamageStaysResumed resumes from damage to the log, which
// a snapshot then covers: later opens do not report it again (it is
// counted), but damage found anywhere else still enters safe mode.
func TestKernelResumedDamageStaysResumed(t *testing.T) {
	dir, seg, b, bad := damagedLogDir(t)
	var got decisions
	var metrics metricLog
	cfg := kernelConfig(&got)
	cfg.Metrics = &metrics
	k := openKernel(t, dir, cfg)
	if st := k.Status(); !st.SafeMode || st.Offset != bad {
		t.Fatalf("Status = %+v, want safe mode at offset %d", st, bad)
	}
	if err := k.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	kernelBatches(t, k, 10, 1)
	if err := k.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)
	for round := range 2 {
		k = openKernel(t, dir, cfg)
		if st := k.Status(); st.SafeMode {
			t.Fatalf("open %d after Resume and a snapshot: %+v", round+1, st)
		}
		closeKernel(t, k)
	}
	if n := metrics.sum("log.resumed_damage"); n != 2 {
		t.Errorf("log.resumed_damage counted %v times, want once an open", n)
	}
	if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
		t.Errorf("the damaged segment was changed")
	}

	// New damage, earlier in the same segment: safe mode again.
	offs := frameOffsets(t, seg)
	b[offs[0]+framelog.FrameHeaderLen] ^= 0x01
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k = openKernel(t, dir, cfg)
	if st := k.Status(); !st.SafeMode || st.Segment != seg || st.Offset != offs[0] {
		t.Errorf("Status = %+v, want safe mode at offset %d", st, offs[0])
	}
	closeKernel(t, k)
}

// TestKernelCoveredSegmentGone removes, then makes unreadable, a segment
// the newest snapshot covers: restart does not need it, so opening goes on,
// in safe mode, naming it.
func TestKernelCoveredSegmentGone(t *testing.T) {
	for _, how := range []string{"missing", "unreadable"} {
		t.Run(how, func(t *testing.T) {
			dir := snapshottedDir(t, 2)
			var got decisions
			cfg := snapshottedConfig(&got)
			seg := filepath.Join(dir, "log", "0000000000000002.omega")
			if err := os.Remove(seg); err != nil {
				t.Fatal(err)
			}
			if how == "unreadable" {
				// A link to itself: opening it fails, as for root too.
				if err := os.Symlink(filepath.Base(seg), seg); err != nil {
					t.Fatal(err)
				}
			}
			untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
			k := openKernel(t, dir, cfg)
			if st := k.Status(); !st.SafeMode || st.Segment != seg || st.Offset != -1 || st.Stale || !strings.Contains(st.Reason, how[:4]) {
				t.Errorf("Status = %+v, want safe mode for segment 2 %s", st, how)
			}
			closeKernel(t, k)
		})
	}
}

// TestKernelResumedGapStaysResumed resumes from a missing segment a
// snapshot covers; the segment after it going missing too is new damage,
// though the two now make one gap.
func TestKernelResumedGapStaysResumed(t *testing.T) {
	dir := snapshottedDir(t, 3)
	var got decisions
	cfg := snapshottedConfig(&got)
	untraced(dir, "it damages the log, which the model reads only as the cause of safe mode")
	seg := func(s int) string { return filepath.Join(dir, "log", fmt.Sprintf("%016x.omega", s)) }
	if err := os.Remove(seg(2)); err != nil {
		t.Fatal(err)
	}
	k := openKernel(t, dir, cfg)
	if st := k.Status(); !st.SafeMode || st.Segment != seg(2) {
		t.Fatalf("Status = %+v, want safe mode for segment 2", st)
	}
	if err := k.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)
	k = openKernel(t, dir, cfg)
	if st := k.Status(); st.SafeMode {
		t.Fatalf("after Resume: %+v", st)
	}
	closeKernel(t, k)
	if err := os.Remove(seg(3)); err != nil {
		t.Fatal(err)
	}
	k = openKernel(t, dir, cfg)
	if st := k.Status(); !st.SafeMode || st.Segment != seg(3) {
		t.Errorf("Status = %+v, want safe mode for segment 3", st)
	}
	closeKernel(t, k)
}
