package framelog

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// FS is the file system [Open] reaches files through: package os unless
// [WriterOptions] name another. It is a seam for tests: one that records
// every write, sync and truncation, or fails or cuts any of them, lets a
// test reopen a log after every prefix of what a crash could leave, without
// a real crash. omega's journals and certificate stores take an FS in their
// WriterOptions too, one that also has the ReadFile, ReadDir, Stat, Rename,
// Remove and MkdirAll methods of package os, for the files they write whole.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// SyncDir makes the entries of directory dir durable: files created,
	// renamed or removed in it.
	SyncDir(dir string) error
}

// File is an open file of an [FS]: the part of *os.File the frame log and
// omega use. SyscallConn gives the appender's lock (flock(2), where the
// platform has it) the file's descriptor.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Seeker
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Name() string
	SyscallConn() (syscall.RawConn, error)
}

// OS is the [FS] of package os, the one Open uses when the options name
// none. A test FS can embed it and wrap the calls it watches.
type OS struct{}

// OpenFile opens name with os.OpenFile.
func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a non-nil interface holding a nil *os.File
	}
	return f, nil
}

// SyncDir opens directory dir and syncs it.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
