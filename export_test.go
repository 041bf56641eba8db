package omega

import (
	"os"
	"testing"
)

// RaceEnabled is raceEnabled, for the tests of package omega_test.
const RaceEnabled = raceEnabled

// skipExhaustiveUnderRace skips, in -short runs under the race detector,
// a test that tries every case of something on one goroutine: it finds no
// race, takes half a minute or more under the detector's instrumentation,
// and runs in full in every run without it.
func skipExhaustiveUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled && testing.Short() {
		t.Skip("exhaustive on one goroutine: run in full without the race detector")
	}
}

// scratchDir returns a new directory, removed when the test ends, for a
// test that writes thousands of small crash images and reopens them: in
// /dev/shm when the machine has it, where an fsync costs nothing, and
// under t.TempDir otherwise. The durability those tests check is the
// recording file system's model, not the disk's: the real disk's is
// checked by the tests that kill processes.
func scratchDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "omega-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// longTest marks one of the few tests that take from several seconds to a
// minute each, with or without the race detector (they enumerate crash
// points, explore models, or build large inputs): they run in parallel
// with one another, after the package's other tests, so that both cores
// of a small machine are busy. None of them counts anything process-wide (goroutines,
// allocations) that another test running beside it would disturb.
func longTest(t *testing.T) {
	t.Parallel()
}
