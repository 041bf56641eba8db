package main

import (
	"path/filepath"
	"testing"
)

// TestDemo runs the demo twice on one directory: the second run recovers
// the first one's kernel and goes on, and both verify their chain.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for range 2 {
		if err := run([]string{"--quiet", "--events", "20", "--dir", dir}); err != nil {
			t.Fatal(err)
		}
	}
}
