//go:build unix && !aix && (!solaris || illumos)

package filelock

import "syscall"

// AcrossProcesses says whether lockOS keeps other processes out.
const AcrossProcesses = true

// lockOS takes an exclusive flock(2) on f without waiting. flock locks an
// open file, not a descriptor or a process: another process that opens the
// file is refused until every descriptor of this open file is closed or the
// lock is released, and a crash releases it. On network file systems its
// reach is the file system's.
func lockOS(f File) error {
	return flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
}

func unlockOS(f File) { flock(f, syscall.LOCK_UN) }

func flock(f File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if ferr == syscall.EWOULDBLOCK {
		return ErrLocked
	}
	return ferr
}
