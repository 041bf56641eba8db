package omega

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/framelog"
)

// kernelImages runs a small workload (several segments, snapshots,
// redeliveries, late dependencies, an equivocation) on a kernel and
// returns two data directories, each file by path relative to the
// directory, with what headsOf returns for each: the one the run left as
// it closed, and that one as a crash before its last two certificates were
// durable leaves it (batches logged and not certified). Both are the same
// bytes in every process, so that an input the fuzzer finds reproduces.
func kernelImages(tb testing.TB) (images [2]map[string][]byte, heads [2]imageHeads) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "data")
	var d decisions
	k, err := OpenKernel(context.Background(), dir, crashConfig(nil, &d, framelog.SyncBatch))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range kernelWorkload(1, 40) {
		if s.flush {
			err = k.Flush(ctx)
		} else {
			err = k.Submit(ctx, s.events...)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := k.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	images[0] = map[string][]byte{}
	for p, b := range readTree(tb, dir) {
		rel, _ := filepath.Rel(dir, p)
		images[0][rel] = b
	}
	delete(images[0], kernelLockName) // empty, and made again
	images[1] = maps.Clone(images[0])
	certs := filepath.Join("certs", certLogName)
	sc := framelog.NewScanner(images[0][certs], nil)
	if _, err := sc.Header(); err != nil {
		tb.Fatal(err)
	}
	var offs []int64
	for {
		fr, err := sc.Next()
		if err != nil {
			break
		}
		offs = append(offs, fr.Offset)
	}
	if len(offs) < 3 {
		tb.Fatalf("the run made %d certificates", len(offs))
	}
	images[1][certs] = images[0][certs][:offs[len(offs)-2]]
	// The side files are written after the frames they index: empty,
	// as a crash before the first sync of them leaves them.
	images[1][filepath.Join("certs", "cert.idx")] = nil
	images[1][filepath.Join("certs", "cert.hash")] = nil
	for i, files := range images {
		heads[i] = headsOf(tb, files)
	}
	return images, heads
}

// writeFiles writes files, by path relative to dir, under dir.
func writeFiles(tb testing.TB, dir string, files map[string][]byte) {
	tb.Helper()
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// imageHeads is what a data directory's chain holds and reaches: the head
// of the certificate chain on disk, and the head and certificates a kernel
// opened on it reaches (batches logged and not certified, certified).
type imageHeads struct {
	onDisk, reached ChainAnchor
	certs           [][]byte
}

func headsOf(tb testing.TB, files map[string][]byte) imageHeads {
	tb.Helper()
	var h imageHeads
	dir := tb.TempDir()
	writeFiles(tb, dir, files)
	c, err := OpenCertStore(filepath.Join(dir, "certs"), DefaultBinding().Header(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	h.onDisk = c.Head()
	if err := c.Close(); err != nil {
		tb.Fatal(err)
	}
	var d decisions
	k, err := OpenKernel(context.Background(), dir, crashConfig(nil, &d, framelog.SyncNever))
	if err != nil {
		tb.Fatal(err)
	}
	if st := k.Status(); st.SafeMode {
		tb.Fatalf("safe mode on an undamaged image: %+v", st)
	}
	h.reached = k.Head()
	for _, c := range k.Certificates().All() {
		h.certs = append(h.certs, c.Bytes())
	}
	if err := k.Close(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return h
}

// Ways FuzzOpenKernel damages a data directory.
const (
	damageOverwrite = iota // data over the file's bytes at the offset
	damageCut              // the file cut at the offset, data appended
	damageInsert           // data inserted at the offset
	damageRemove           // the file removed
	damageCopy             // the file, data over its bytes at the offset, copied under another sequence number
	damageKinds
)

// damage returns b damaged at off by kind, with data.
func damage(b []byte, kind uint8, off uint32, data []byte) []byte {
	at := int(off % uint32(len(b)+1))
	switch kind % damageKinds {
	case damageCut:
		return append(slices.Clone(b[:at]), data...)
	case damageInsert:
		return slices.Concat(b[:at], data, b[at:])
	case damageRemove:
		return nil
	default:
		b = slices.Clone(b)
		copy(b[at:], data)
		return b
	}
}

// damagedDir returns the files of base, by path relative to the data
// directory, with the one named hit damaged by kind, and the name of the
// file damaged: hit, or for damageCopy the copy, a log segment or
// snapshot file numbered 1 to 12 by off (an existing one replaced,
// or one past the end, or after a gap). A copy of another file is
// damageOverwrite.
func damagedDir(base map[string][]byte, hit string, kind uint8, off uint32, data []byte) (map[string][]byte, string) {
	files := maps.Clone(base)
	dir := filepath.Dir(hit)
	if kind%damageKinds == damageCopy && (dir == "log" || dir == "snapshots") {
		name := filepath.Join(dir, fmt.Sprintf("%016x%s", 1+off%12, filepath.Ext(hit)))
		files[name] = damage(base[hit], kind, off, data)
		return files, name
	}
	if kind%damageKinds == damageRemove {
		delete(files, hit)
	} else {
		files[hit] = damage(base[hit], kind, off, data)
	}
	return files, hit
}

// readCorrupt reports whether name, holding b, is a frame log that opening
// a kernel reads (cert.log, or any log segment: those a snapshot covers
// have their frames checked) and that has a bad header or a corrupt frame
// (SPEC 5): the kernel must not open it but in safe mode.
func readCorrupt(name string, b []byte) bool {
	if name != filepath.Join("certs", certLogName) && filepath.Dir(name) != "log" {
		return false
	}
	rec, err := framelog.Recover(b, nil)
	return err != nil || rec.Tail == framelog.TailCorrupt
}

// FuzzOpenKernel damages one file of a kernel's data directory, anywhere
// and in any way (bytes overwritten, cut off, inserted, the file removed,
// or copied under another sequence number), and reopens it. OpenKernel
// must refuse with an error or open; over a corrupt log segment or
// cert.log only in safe mode, leaving the file safe mode names untouched;
// outside safe mode with the run's chain, which verifies under the
// kernel's key. It must neither panic nor hang, and a kernel it opens must
// take a Submit, flush and close.
func FuzzOpenKernel(f *testing.F) {
	images, heads := kernelImages(f)
	var names [2][]string
	for i, files := range images {
		names[i] = slices.Sorted(maps.Keys(files))
		for j, name := range names[i] {
			n := uint32(len(files[name]))
			// kind picks the image too: kind/damageKinds%2.
			for _, c := range []struct {
				off  uint32
				data []byte
				kind int
			}{
				{n / 2, []byte{0xff}, damageOverwrite},
				{n - n/4, []byte{}, damageCut},
				{n, []byte("garbage after the end"), damageCut},
				{n / 3, []byte{0, 0, 0, 0}, damageInsert},
				{0, []byte{}, damageRemove},
				{uint32(j), []byte{}, damageCopy},
			} {
				f.Add(uint8(j), c.off, c.data, uint8(i*damageKinds+c.kind))
			}
		}
	}
	ring, _ := NewKeyRing(kernelKey.Public().(ed25519.PublicKey))
	f.Fuzz(func(t *testing.T, file uint8, off uint32, data []byte, kind uint8) {
		dir := t.TempDir()
		img := int(kind/damageKinds) % 2
		base, want := images[img], heads[img]
		hit := names[img][int(file)%len(names[img])]
		written, hit := damagedDir(base, hit, kind, off, data)
		writeFiles(t, dir, written)
		what := fmt.Sprintf("%s damaged (image %d)", hit, img)
		// Generous: a hang, not a slow machine, is what it catches.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var d decisions
		cfg := crashConfig(nil, &d, framelog.SyncNever)
		k, err := OpenKernel(ctx, dir, cfg)
		if err != nil {
			if err.Error() == "" || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: OpenKernel: %q", what, err)
			}
			return
		}
		st := k.Status()
		for name, b := range written {
			if !st.SafeMode && readCorrupt(name, b) {
				t.Errorf("%s: opened outside safe mode over %s, which is corrupt", what, name)
			}
		}
		if !st.SafeMode {
			if _, err := k.Certificates().VerifyAll(ring, k.Binding()); err != nil {
				t.Errorf("%s: opened outside safe mode with a chain that does not verify: %v", what, err)
			}
			// Outside safe mode the chain is the one the image reaches
			// undamaged, rebuilt when cert.log lost some (certified
			// again, the same bytes). Damage to the log may have taken
			// batches that were logged and not certified, as a crash
			// before they were synced would: then it is a prefix of
			// that chain, no shorter than the one on disk.
			got := k.Head()
			if filepath.Dir(hit) == "log" && got.BatchID >= want.onDisk.BatchID && got.BatchID < want.reached.BatchID {
				i := 0
				for _, c := range k.Certificates().All() {
					if i >= len(want.certs) || !bytes.Equal(c.Bytes(), want.certs[i]) {
						t.Errorf("%s: certificate %d differs from the undamaged image's", what, i)
						break
					}
					i++
				}
			} else if got != want.reached {
				t.Errorf("%s: opened outside safe mode at head %+v; undamaged, the image reaches %+v", what, got, want.reached)
			}
		} else if st.Reason == "" {
			t.Errorf("%s: safe mode without a reason", what)
		}
		if err := k.Submit(ctx, kev(1<<40, 99, 1<<30, "after")); err != nil {
			t.Errorf("%s: Submit after reopening: %v", what, err)
		}
		if err := k.Flush(ctx); err != nil {
			t.Errorf("%s: Flush after reopening: %v", what, err)
		}
		if !st.SafeMode {
			// What the kernel certified going on extends the chain.
			if _, err := k.Certificates().VerifyAll(ring, k.Binding()); err != nil {
				t.Errorf("%s: the chain after going on: %v", what, err)
			}
		}
		if err := k.Close(context.Background()); err != nil {
			t.Errorf("%s: Close: %v", what, err)
		}
		// A file found damaged is left as it was: never truncated, never
		// appended to (SPEC 8).
		if st.SafeMode && st.Segment != "" {
			rel, err := filepath.Rel(dir, st.Segment)
			if err != nil {
				t.Fatalf("%s: safe mode names %s, outside the data directory", what, st.Segment)
			}
			if want, ok := written[rel]; ok {
				if got, err := os.ReadFile(st.Segment); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: safe mode for %s, which the kernel then changed (%d bytes, %d before; %v)", what, rel, len(got), len(want), err)
				}
			}
		}
	})
}
