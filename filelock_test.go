package omega

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/filelock"
)

// TestFileLockSameProcess opens each kind of appender twice in one process:
// the second is refused with ErrLocked naming the file, changes nothing,
// and succeeds once the first is closed.
func TestFileLockSameProcess(t *testing.T) {
	hdr := lfHeader(t)
	t.Run("framelog.Open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.omega")
		w, err := framelog.Open(path, hdr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(framelog.FrameEvent, []byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		before := lfReadFile(t, path)
		w2, err := framelog.Open(path, hdr, nil)
		if w2 != nil || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
			t.Fatalf("second framelog.Open = %v, %v; want ErrLocked naming %s", w2, err, path)
		}
		if got := lfReadFile(t, path); !bytes.Equal(got, before) {
			t.Fatalf("a refused framelog.Open changed the log")
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := framelog.NewWriter(f, hdr, nil); !errors.Is(err, ErrLocked) {
			t.Fatalf("framelog.NewWriter on the locked file = %v, want ErrLocked", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w2, err = framelog.Open(path, hdr, nil)
		if err != nil {
			t.Fatalf("framelog.Open after Close = %v", err)
		}
		if off, err := w2.Append(framelog.FrameEvent, []byte("two")); err != nil || off != framelog.HeaderSize+15 {
			t.Fatalf("Append after reopening = %d, %v", off, err)
		}
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("framelog.NewWriter", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.omega")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w, err := framelog.NewWriter(f, hdr, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The same *os.File, which flock alone would let through.
		if _, err := framelog.NewWriter(f, hdr, nil); !errors.Is(err, ErrLocked) {
			t.Fatalf("second framelog.NewWriter on one file = %v, want ErrLocked", err)
		}
		if _, err := framelog.Open(path, hdr, nil); !errors.Is(err, ErrLocked) {
			t.Fatalf("framelog.Open of a file a writer holds = %v, want ErrLocked", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w2, err := framelog.Open(path, hdr, nil); err != nil {
			t.Fatalf("framelog.Open after Close = %v", err)
		} else {
			w2.Close()
		}
		// A writer to something other than a regular file takes no lock.
		var buf bytes.Buffer
		if _, err := framelog.NewWriter(&buf, hdr, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OpenCertStore", func(t *testing.T) {
		certs := certLogChain(t, 3)
		dir := t.TempDir()
		s := openStore(t, dir, framelog.SyncBatch)
		appendAll(t, s, certs[:2])
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		s2, err := OpenCertStore(dir, certLogHeader(), nil)
		if s2 != nil || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "cert.log") {
			t.Fatalf("second OpenCertStore = %v, %v; want ErrLocked naming cert.log", s2, err)
		}
		if _, err := framelog.Open(filepath.Join(dir, "cert.log"), certLogHeader(), nil); !errors.Is(err, ErrLocked) {
			t.Fatalf("framelog.Open of a store's cert.log = %v, want ErrLocked", err)
		}
		// The first store is unaffected.
		appendAll(t, s, certs[2:])
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 = openStore(t, dir, framelog.SyncBatch)
		defer s2.Close()
		checkStore(t, "reopened", s2, dir, certs)
	})
}

// The helper process of TestFileLockOtherProcess: it opens the appender
// named by the environment and reports what happened on stdout.
func TestFileLockHelperProcess(t *testing.T) {
	path, kind := os.Getenv("OMEGA_TEST_LOCK_PATH"), os.Getenv("OMEGA_TEST_LOCK_KIND")
	if path == "" {
		t.Skip("run by TestFileLockOtherProcess")
	}
	var err error
	switch kind {
	case "frame":
		var w *framelog.Writer
		if w, err = framelog.Open(path, lfHeader(t), nil); err == nil {
			err = w.Close()
		}
	case "certs":
		var s *CertStore
		if s, err = OpenCertStore(path, certLogHeader(), nil); err == nil {
			err = s.Close()
		}
	}
	switch {
	case err == nil:
		fmt.Println("helper: opened")
	case errors.Is(err, ErrLocked):
		fmt.Println("helper: locked:", err)
	default:
		fmt.Println("helper: failed:", err)
	}
}

// TestFileLockOtherProcess runs a second process while this one holds a
// log: it is refused, and gets the log once this one has closed it.
func TestFileLockOtherProcess(t *testing.T) {
	if !filelock.AcrossProcesses {
		t.Skip("no flock(2) on this platform: only appenders of one process are kept apart")
	}
	helper := func(t *testing.T, kind, path string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileLockHelperProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "OMEGA_TEST_LOCK_PATH="+path, "OMEGA_TEST_LOCK_KIND="+kind)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper process: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "helper: ") {
				return line
			}
		}
		t.Fatalf("helper process said nothing:\n%s", out)
		return ""
	}
	t.Run("framelog.Open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.omega")
		w, err := framelog.Open(path, lfHeader(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append(framelog.FrameEvent, []byte("held")); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		before := lfReadFile(t, path)
		if got := helper(t, "frame", path); !strings.HasPrefix(got, "helper: locked: ") || !strings.Contains(got, path) {
			t.Fatalf("another process opening a held log: %q, want refused with ErrLocked naming the file", got)
		}
		if got := lfReadFile(t, path); !bytes.Equal(got, before) {
			t.Fatalf("a refused process changed the log")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := helper(t, "frame", path); got != "helper: opened" {
			t.Fatalf("another process opening a released log: %q", got)
		}
	})
	t.Run("OpenCertStore", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, framelog.SyncBatch)
		appendAll(t, s, certLogChain(t, 2))
		if got := helper(t, "certs", dir); !strings.HasPrefix(got, "helper: locked: ") {
			t.Fatalf("another process opening a held store: %q, want refused with ErrLocked", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := helper(t, "certs", dir); got != "helper: opened" {
			t.Fatalf("another process opening a released store: %q", got)
		}
	})
}
