package main

import (
	"path/filepath"
	"testing"
)

// TestDemo runs the demo twice on one directory: the second run's
// reconcilers derive the first run's chains again from the stream, check
// them and go on, and both runs end with byte-identical chains that the
// verifier checked.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for range 2 {
		if err := run([]string{"--quiet", "--events", "40", "--dir", dir}); err != nil {
			t.Fatal(err)
		}
	}
}
