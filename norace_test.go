//go:build !race

package omega

const raceEnabled = false
