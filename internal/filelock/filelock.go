// Package filelock is the appender's lock of SPEC 8, shared by the frame
// log's writer and omega's temporary files: an exclusive flock(2) where the
// platform has one, and a list of the files this process holds, which keeps a
// second appender of the same process out on every platform.
package filelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// File is a file that can hold an appender's lock: an *os.File.
type File interface {
	Stat() (fs.FileInfo, error)
	SyscallConn() (syscall.RawConn, error)
}

// ErrLocked reports a file that another appender holds.
var ErrLocked = errors.New("omega: file locked by another appender")

// heldLocks lists the files whose appender's lock this process holds. The
// operating system's lock (flock(2) where there is one, see lockOS) keeps
// other processes out; this list keeps a second appender of this process
// out on every platform, even one that shares the first's open file, which
// flock would let through. It is the package's one piece of mutable state,
// and holds only what open appenders own: each entry goes with its
// appender's Close.
var heldLocks struct {
	mu    sync.Mutex
	files []fs.FileInfo
}

// Lock takes the exclusive appender's lock on f, whose name is path,
// without waiting: a file already locked is refused with an error wrapping
// ErrLocked. The lock is released by Unlock, or when the process ends;
// under flock also when every descriptor of f's open file is closed.
func Lock(f File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	heldLocks.mu.Lock()
	defer heldLocks.mu.Unlock()
	for _, h := range heldLocks.files {
		if os.SameFile(h, fi) {
			return fmt.Errorf("%w: %s is open for appending in this process", ErrLocked, path)
		}
	}
	if err := lockOS(f); err != nil {
		if errors.Is(err, ErrLocked) {
			return fmt.Errorf("%w: %s is open for appending in another process", ErrLocked, path)
		}
		return fmt.Errorf("omega: locking %s: %w", path, err)
	}
	heldLocks.files = append(heldLocks.files, fi)
	return nil
}

// Unlock releases the lock Lock took on f. It is called before f is
// closed.
func Unlock(f File) {
	fi, err := f.Stat()
	heldLocks.mu.Lock()
	defer heldLocks.mu.Unlock()
	for i, h := range heldLocks.files {
		if err == nil && os.SameFile(h, fi) {
			heldLocks.files = append(heldLocks.files[:i], heldLocks.files[i+1:]...)
			break
		}
	}
	unlockOS(f)
}
