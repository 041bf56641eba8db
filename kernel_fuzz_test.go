package omega

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/framelog"
)

// kernelDataDir runs a small workload (several segments, snapshots,
// redeliveries, late dependencies, an equivocation) on a kernel and returns
// every file of its data directory, by path relative to it, and the head
// of its chain.
func kernelDataDir(tb testing.TB) (map[string][]byte, ChainAnchor) {
	tb.Helper()
	dir := tb.TempDir()
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
	// Close decided what was waiting: the head is the one it leaves.
	if k, err = OpenKernel(ctx, dir, crashConfig(nil, &d, framelog.SyncBatch)); err != nil {
		tb.Fatal(err)
	}
	head := k.Head()
	if err := k.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = b
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files, head
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
// a kernel reads (cert.log, or a log segment from latest on) and that has
// a bad header or a corrupt frame (SPEC 5): the kernel must not open it
// but in safe mode.
func readCorrupt(name string, b []byte, latest string) bool {
	if name != filepath.Join("certs", certLogName) && (filepath.Dir(name) != "log" || name < latest) {
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
	base, head := kernelDataDir(f)
	names := slices.Sorted(maps.Keys(base))
	for i, name := range names {
		n := uint32(len(base[name]))
		f.Add(uint8(i), n/2, []byte{0xff}, uint8(damageOverwrite))
		f.Add(uint8(i), n-n/4, []byte{}, uint8(damageCut))
		f.Add(uint8(i), n, []byte("garbage after the end"), uint8(damageCut))
		f.Add(uint8(i), n/3, []byte{0, 0, 0, 0}, uint8(damageInsert))
		f.Add(uint8(i), uint32(0), []byte{}, uint8(damageRemove))
		f.Add(uint8(i), uint32(i), []byte{}, uint8(damageCopy))
	}
	ring, _ := NewKeyRing(kernelKey.Public().(ed25519.PublicKey))
	f.Fuzz(func(t *testing.T, file uint8, off uint32, data []byte, kind uint8) {
		dir := t.TempDir()
		hit := names[int(file)%len(names)]
		written, hit := damagedDir(base, hit, kind, off, data)
		// The latest snapshot's segment: the kernel reads it and those
		// after it whichever snapshot loads.
		var latest string
		for name, b := range written {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if d, f := filepath.Split(name); d == "snapshots/" && filepath.Ext(f) == ".omega" {
				latest = max(latest, filepath.Join("log", f))
			}
		}
		what := hit + " damaged"
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
			if !st.SafeMode && readCorrupt(name, b, latest) {
				t.Errorf("%s: opened outside safe mode over %s, which is corrupt", what, name)
			}
		}
		if !st.SafeMode {
			if _, err := k.Certificates().VerifyAll(ring, k.Binding()); err != nil {
				t.Errorf("%s: opened outside safe mode with a chain that does not verify: %v", what, err)
			}
			// Every batch was certified before the damage: outside safe
			// mode the chain is the run's, rebuilt when cert.log lost
			// some (certified again, the same bytes).
			if got := k.Head(); got != head {
				t.Errorf("%s: opened outside safe mode at head %+v, the run's was %+v", what, got, head)
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
