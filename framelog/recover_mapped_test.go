package framelog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// RecoverFrom over a file it maps agrees with Recover, for clean, torn and
// corrupt logs, reports the pages it read as dropped in order, leaves the
// file's offset at its end and no goroutine behind.
func TestRecoverFileMapped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("files are mapped on Linux only")
	}
	big := lfStdLog(t).b
	for i := range 3000 {
		big = appendFrame(big, FrameEvent, lfPayload(uint64(i), i%300))
	}
	flipped := bytes.Clone(big)
	flipped[len(flipped)/2] ^= 0x08
	logs := map[string][]byte{
		"clean":   big,
		"torn":    big[:len(big)-7],
		"corrupt": flipped,
		"header":  big[:40],
	}
	before := runtime.NumGoroutine()
	for name, b := range logs {
		path := filepath.Join(t.TempDir(), name+".omega")
		// A prefix the caller has read already: the log starts at the
		// file's offset.
		if err := os.WriteFile(path, append([]byte("prefix"), b...), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(6, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		want, werr := Recover(b, nil)
		got, ok, gerr := recoverFile(f, nil, 0)
		if !ok {
			t.Fatalf("%s: recoverFile did not map the file", name)
		}
		if (werr == nil) != (gerr == nil) || !cmp.Equal(want, got, lfSameFrameError) {
			t.Fatalf("%s: recoverFile = %+v, %v; Recover = %+v, %v", name, got, gerr, want, werr)
		}
		if off, _ := f.Seek(0, io.SeekCurrent); off != int64(6+len(b)) {
			t.Fatalf("%s: the file's offset is %d after recoverFile, want its end %d", name, off, 6+len(b))
		}
		f.Close()
	}
	// Blocks are reported good in order, without gaps.
	var next int = HeaderSize
	if _, err := recoverBytes(big, nil, 1000, func(lo, hi int) {
		if lo != next || hi <= lo {
			t.Fatalf("done(%d, %d) after blocks up to %d", lo, hi, next)
		}
		next = hi
	}); err != nil {
		t.Fatal(err)
	}
	if next != len(big) {
		t.Fatalf("blocks reported good up to %d, want %d", next, len(big))
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after mapped recoveries, %d before", n, before)
	}
}

// A file truncated under its mapping is an error, not a crash.
func TestRecoverFileTruncatedWhileMapped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("files are mapped on Linux only")
	}
	b := lfStdLog(t).b
	for i := range 2000 {
		b = appendFrame(b, FrameEvent, lfPayload(uint64(i), 200))
	}
	path := filepath.Join(t.TempDir(), "t.omega")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mapFile(f, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.unmap()
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	rec, err := recoverBytes(m.b, nil, 4096, nil)
	if err != errMapFault || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("recoverBytes over a truncated mapping = %v, want errMapFault", err)
	}
	if rec.Frames != 0 || rec.FramesByType != nil {
		t.Fatalf("recoverBytes over a truncated mapping reported %+v beside its error", rec)
	}
}
