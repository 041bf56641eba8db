package fsync

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
