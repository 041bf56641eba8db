package framelog

import (
	"os"
	"syscall"
)

// mapping is a file mapped read-only.
type mapping struct{ b []byte }

// mapFile maps the first size bytes of f read-only, for reading once
// from start to end.
func mapFile(f *os.File, size int64) (*mapping, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var b []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		b, merr = syscall.Mmap(int(fd), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	}); err != nil {
		return nil, err
	}
	if merr != nil {
		return nil, merr
	}
	syscall.Madvise(b, syscall.MADV_SEQUENTIAL) // a hint; its failure changes nothing
	return &mapping{b: b}, nil
}

// drop lets the pages wholly inside b[lo:hi] go from the process's memory
// (the page cache keeps them), so that reading a large file through the
// mapping holds only the part being read.
func (m *mapping) drop(lo, hi int) {
	page := os.Getpagesize()
	lo = (lo + page - 1) / page * page
	hi = hi / page * page
	if lo < hi {
		syscall.Madvise(m.b[lo:hi], syscall.MADV_DONTNEED) // a hint too
	}
}

func (m *mapping) unmap() { syscall.Munmap(m.b) }
