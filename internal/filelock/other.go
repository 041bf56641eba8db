//go:build !unix || aix || (solaris && !illumos)

package filelock

// AcrossProcesses says whether lockOS keeps other processes out.
const AcrossProcesses = false

// lockOS does nothing where the standard library offers no flock(2)
// (Windows, Plan 9, WebAssembly, AIX and Solaris): there, an appender's
// lock keeps out a second appender of the same process only, through
// heldLocks, and two processes appending to one file must be kept apart by
// the caller.
func lockOS(File) error { return nil }

func unlockOS(File) {}
