package fsync

import (
	"os"
	"syscall"
)

func data(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync()
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		for {
			if errno = fdatasync(fd); errno != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errno != 0 {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: errno}
	}
	return nil
}
