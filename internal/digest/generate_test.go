package digest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFiles checks that the committed generated files are what
// their generators write (go generate ./internal/digest remakes them).
func TestGeneratedFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs both generators; run without -short")
	}
	for gen, file := range map[string]string{
		"gen_hash8.go":    "hash8_amd64.s",
		"gen_compress.go": "compress_gen.go",
	} {
		out := filepath.Join(t.TempDir(), file)
		cmd := exec.Command("go", "run", gen, "-o", out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go run %s: %v\n%s", gen, err, msg)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what %s writes: run go generate ./internal/digest", file, gen)
		}
	}
}
