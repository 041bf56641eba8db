package framelog

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// countFS is the file system of package os, counting what goes through it.
type countFS struct {
	opened, dirSyncs int
}

func (c *countFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	c.opened++
	return OS{}.OpenFile(name, flag, perm)
}

func (c *countFS) SyncDir(dir string) error {
	c.dirSyncs++
	return OS{}.SyncDir(dir)
}

// Open reaches the file through the options' FS, calls Visit with every
// valid frame of an existing log in order, and leaves the file untouched
// when Visit fails.
func TestOpenOptionsFSAndVisit(t *testing.T) {
	hdr := lfHeader(t)
	path := filepath.Join(t.TempDir(), "v.omega")
	var fsys countFS
	w, err := Open(path, hdr, &WriterOptions{FS: &fsys})
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	for _, p := range payloads {
		if _, err := w.Append(FrameEvent, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if fsys.opened != 1 || fsys.dirSyncs != 1 {
		t.Fatalf("creating a log through the FS: %d opens, %d directory syncs; want 1 and 1", fsys.opened, fsys.dirSyncs)
	}
	// Add a torn tail, which Visit must not see and Open cuts.
	whole := lfReadFile(t, path)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{40, 0, 0, 0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	stop := errors.New("stop")
	for _, fail := range []bool{true, false} {
		var seen [][]byte
		var offs []int64
		visit := func(f Frame) error {
			seen = append(seen, bytes.Clone(f.Payload))
			offs = append(offs, f.Offset)
			if fail && len(seen) == 2 {
				return stop
			}
			return nil
		}
		w, err := Open(path, hdr, &WriterOptions{FS: &fsys, Visit: visit})
		if fail {
			if err != stop {
				t.Fatalf("Open with a failing Visit = %v, want its error as it is", err)
			}
			if got := lfReadFile(t, path); len(got) != len(whole)+6 {
				t.Fatalf("Open with a failing Visit changed the file: %d bytes, want %d", len(got), len(whole)+6)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(seen, payloads, bytes.Equal) {
			t.Fatalf("Visit saw %q, want %q", seen, payloads)
		}
		if offs[0] != HeaderSize {
			t.Fatalf("first frame visited at offset %d, want %d", offs[0], HeaderSize)
		}
		if w.Cut() != 6 {
			t.Fatalf("Cut() = %d, want the 6 torn bytes", w.Cut())
		}
		// ReadAt reads frames in the file and in the buffer alike.
		if _, err := w.Append(FrameEvent, []byte("four")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 3)
		if n, err := w.ReadAt(got, offs[1]+FrameHeaderLen); err != nil || n != 3 || string(got) != "two" {
			t.Fatalf("ReadAt(frame 2) = %d, %v, %q; want 3, nil, two", n, err, got)
		}
		got = make([]byte, 4)
		if n, err := w.ReadAt(got, int64(len(whole))+FrameHeaderLen); err != nil || n != 4 || string(got) != "four" {
			t.Fatalf("ReadAt(buffered frame) = %d, %v, %q; want 4, nil, four", n, err, got)
		}
		if _, err := w.ReadAt(got, w.Size()-2); err == nil {
			t.Fatal("ReadAt past the end of the log = nil error")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Cut counts every byte of a file whose header was torn, and a clean log
// cuts nothing.
func TestOpenCutTornHeader(t *testing.T) {
	hdr := lfHeader(t)
	h, _ := hdr.AppendBinary(nil)
	path := filepath.Join(t.TempDir(), "h.omega")
	for _, tc := range []struct {
		content []byte
		cut     int64
	}{
		{h[:40], 40},
		{make([]byte, HeaderSize+100), HeaderSize + 100},
		{h, 0},
	} {
		if err := os.WriteFile(path, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(path, hdr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w.Cut() != tc.cut || w.Size() != HeaderSize {
			t.Errorf("Open of %d bytes: Cut() = %d, Size() = %d; want %d and %d", len(tc.content), w.Cut(), w.Size(), tc.cut, HeaderSize)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A Writer over an io.Writer reads back only what it still buffers.
func TestNewWriterReadAt(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, lfHeader(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(FrameEvent, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 3)
	if _, err := w.ReadAt(p, HeaderSize+FrameHeaderLen); err != nil || string(p) != "abc" {
		t.Fatalf("ReadAt of a buffered frame = %v, %q", err, p)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadAt(p, HeaderSize+FrameHeaderLen); err == nil {
		t.Fatal("ReadAt of bytes handed to an io.Writer = nil error, want one")
	}
	if w.Cut() != 0 {
		t.Fatalf("Cut() of a new writer = %d", w.Cut())
	}
}
