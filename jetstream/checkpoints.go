package jetstream

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The reconciler keeps its checkpoints (see package engine for their
// format) in checkpoints/<batch id, 16 hex digits>.ckpt beside its
// certificate store.
const ckptDir = "checkpoints"

// checkpointPath returns the path of the checkpoint after batch id.
func checkpointPath(dir string, batch uint64) string {
	return filepath.Join(dir, ckptDir, fmt.Sprintf("%016x.ckpt", batch))
}

// checkpointBatches lists the batches of the checkpoints in dir, newest
// first.
func checkpointBatches(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Join(dir, ckptDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".ckpt")
		if !ok || len(name) != 16 {
			continue
		}
		if n, err := strconv.ParseUint(name, 16, 64); err == nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b uint64) int { return cmp.Compare(b, a) })
	return out, nil
}

// writeFileAtomic writes data to path durably: a temporary file, synced,
// renamed into place, and the directory synced.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
