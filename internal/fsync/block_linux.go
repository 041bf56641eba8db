//go:build linux && !omega_plainsync

package fsync

import (
	"syscall"
	_ "unsafe" // for go:linkname
)

// A goroutine in a system call keeps its P (its share of GOMAXPROCS) until
// the runtime's monitor thread notices and hands the P on: 20 µs to 10 ms
// later, two of its ticks. An fdatasync takes a millisecond or more, so on
// a two-core machine every log sync idled half the machine while
// goroutines waited to run: a runtime trace of BenchmarkKernel showed one
// of the two Ps held by a sync with work waiting about a quarter of the
// time. fdatasync here enters the system call as the runtime enters its
// own blocking ones, handing the P on at once; BenchmarkKernel measured
// 10% more events/s and 8% less CPU per event than with syscall.Syscall.
//
// entersyscallblock and exitsyscall are the runtime's, reached by
// go:linkname; the runtime keeps both for packages that do (go.dev/issue/67401).
// Should a Go release refuse them, building with -tags omega_plainsync
// makes fdatasync an ordinary syscall.Syscall (plain_linux.go).
//
// The price: a sync that handed its P on needs one back to return, and
// when every P runs goroutines that never block, it waits for the
// runtime to preempt one, up to 10 ms. BenchmarkDataBesideWork is that
// case: the counting goroutines count 40% faster, and each sync takes
// 10-20 ms instead of 0.7 ms. A kernel's goroutines block all the time.

//go:linkname entersyscallblock runtime.entersyscallblock
func entersyscallblock()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// fdatasync is fdatasync(2) on fd as a blocking system call. Like
// syscall.Syscall, it must not grow its stack between entering and leaving
// the call, hence nosplit and RawSyscall, which is nosplit too.
//
//go:nosplit
func fdatasync(fd uintptr) syscall.Errno {
	entersyscallblock()
	_, _, errno := syscall.RawSyscall(syscall.SYS_FDATASYNC, fd, 0, 0)
	exitsyscall()
	return errno
}
