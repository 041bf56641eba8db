package omega

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
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
// every file of its data directory, by path relative to it.
func kernelDataDir(tb testing.TB) map[string][]byte {
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
	return files
}

// Ways FuzzOpenKernel damages a file.
const (
	damageOverwrite = iota // data over the bytes at the offset
	damageCut              // cut at the offset, data appended
	damageInsert           // data inserted at the offset
	damageRemove           // the file removed
	damageKinds
)

// damage returns b damaged at off by kind, with data.
func damage(b []byte, kind uint8, off uint32, data []byte) []byte {
	at := int(off % uint32(len(b)+1))
	switch kind % damageKinds {
	case damageOverwrite:
		b = slices.Clone(b)
		copy(b[at:], data)
		return b
	case damageCut:
		return append(slices.Clone(b[:at]), data...)
	case damageInsert:
		return slices.Concat(b[:at], data, b[at:])
	default:
		return nil
	}
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
// and in any way (bytes overwritten, cut off, inserted, or the file
// removed), and reopens it. OpenKernel must refuse with an error or open,
// in safe mode or with a certificate chain that verifies under the
// kernel's key; it must neither panic nor hang, and a kernel it opens
// must take a Submit, flush and close.
func FuzzOpenKernel(f *testing.F) {
	base := kernelDataDir(f)
	names := slices.Sorted(maps.Keys(base))
	for i, name := range names {
		n := uint32(len(base[name]))
		f.Add(uint8(i), n/2, []byte{0xff}, uint8(damageOverwrite))
		f.Add(uint8(i), n-n/4, []byte{}, uint8(damageCut))
		f.Add(uint8(i), n, []byte("garbage after the end"), uint8(damageCut))
		f.Add(uint8(i), n/3, []byte{0, 0, 0, 0}, uint8(damageInsert))
		f.Add(uint8(i), uint32(0), []byte{}, uint8(damageRemove))
	}
	// The latest snapshot's segment: the kernel reads it and those after
	// it whichever snapshot loads.
	var latest string
	for _, name := range names {
		if dir, base := filepath.Split(name); dir == "snapshots/" && filepath.Ext(base) == ".omega" {
			latest = filepath.Join("log", base)
		}
	}
	ring, _ := NewKeyRing(kernelKey.Public().(ed25519.PublicKey))
	f.Fuzz(func(t *testing.T, file uint8, off uint32, data []byte, kind uint8) {
		dir := t.TempDir()
		hit := names[int(file)%len(names)]
		written := map[string][]byte{} // what each file held at opening
		for _, name := range names {
			b := base[name]
			if name == hit {
				if kind%damageKinds == damageRemove {
					continue
				}
				b = damage(b, kind, off, data)
			}
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			written[name] = b
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
		if b, ok := written[hit]; ok && !st.SafeMode && readCorrupt(hit, b, latest) {
			t.Errorf("%s: opened outside safe mode over a corrupt file", what)
		}
		if !st.SafeMode {
			if _, err := k.Certificates().VerifyAll(ring, k.Binding()); err != nil {
				t.Errorf("%s: opened outside safe mode with a chain that does not verify: %v", what, err)
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
