package fsync

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type countSync struct{ n int }

func (c *countSync) Sync() error { c.n++; return nil }

func TestData(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := Data(f); err != nil {
		t.Fatalf("Data(*os.File) = %v", err)
	}
	f.Close()
	if err := Data(f); !errors.Is(err, os.ErrClosed) && err == nil {
		t.Errorf("Data(closed file) = nil, want an error")
	}
	var c countSync
	if err := Data(&c); err != nil || c.n != 1 {
		t.Errorf("Data(other) = %v after %d Sync calls, want its own Sync called once", err, c.n)
	}
}

func TestDataFails(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	err = Data(w) // fdatasync(2) refuses a pipe with EINVAL; fsync(2) elsewhere too
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != w.Name() {
		t.Errorf("Data(pipe) = %v, want an *os.PathError naming %s", err, w.Name())
	}
}

// BenchmarkDataBesideWork measures what syncs cost the rest of a program:
// one goroutine per P counts while syncs of 64 KiB appends run one after
// another, and count_M/s is how fast they counted together. A sync that
// keeps its P while it waits for the disk leaves them one P short; compare
// with -tags omega_plainsync.
func BenchmarkDataBesideWork(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var stop atomic.Bool
	var count atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for !stop.Load() {
				n := 0
				for range 1 << 16 {
					n++
				}
				count.Add(int64(n))
			}
		})
	}
	buf := make([]byte, 64<<10)
	start := time.Now()
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := Data(f); err != nil {
			b.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(count.Load())/time.Since(start).Seconds()/1e6, "count_M/s")
}
