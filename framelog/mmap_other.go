//go:build !linux

package framelog

import (
	"errors"
	"os"
)

// mapping is a file mapped read-only; only Linux maps files here.
type mapping struct{ b []byte }

func mapFile(*os.File, int64) (*mapping, error) {
	return nil, errors.New("omega: mapping files is not supported on this platform")
}

func (m *mapping) drop(lo, hi int) {}

func (m *mapping) unmap() {}
