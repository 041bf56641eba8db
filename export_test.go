package omega

import "testing"

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
