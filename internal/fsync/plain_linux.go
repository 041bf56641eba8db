//go:build linux && omega_plainsync

package fsync

import "syscall"

// fdatasync is fdatasync(2) on fd as an ordinary system call: the
// goroutine's P waits for the runtime's monitor to hand it on
// (block_linux.go says why that is not the default).
func fdatasync(fd uintptr) syscall.Errno {
	_, _, errno := syscall.Syscall(syscall.SYS_FDATASYNC, fd, 0, 0)
	return errno
}
