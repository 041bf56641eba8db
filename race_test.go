//go:build race

package omega

// raceEnabled reports a build under the race detector, whose
// instrumentation makes allocation counts slow to take and meaningless.
const raceEnabled = true
