package omega

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/filelock"
	"github.com/omega-sheaf/omega/internal/fsync"
)

// fileSystem is the seam through which the frame log, the certificate store
// and snapshot files reach the file system: the frame log's [framelog.FS],
// and what omega's whole-file writes need beside it. The real one, osFS, is
// package os; tests put one in between that records every write, sync and
// rename, and can fail or cut any of them.
type fileSystem interface {
	framelog.FS
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	MkdirAll(path string, perm fs.FileMode) error
}

// fileSystemOf returns the file system that opts name for omega's stores:
// package os when opts or its FS is nil, else its FS, which must have all
// the methods of a fileSystem.
func fileSystemOf(opts *framelog.WriterOptions, who string) (fileSystem, error) {
	if opts == nil || opts.FS == nil {
		return osFS{}, nil
	}
	if fsys, ok := opts.FS.(fileSystem); ok {
		return fsys, nil
	}
	return nil, fmt.Errorf("omega: %s: WriterOptions.FS %T has no ReadFile, ReadDir, Stat, Rename, Remove or MkdirAll method, which %s needs beside OpenFile and SyncDir", who, opts.FS, who)
}

// file is an open file of a fileSystem.
type file = framelog.File

// osFS is the file system of package os.
type osFS struct{ framelog.OS }

func (osFS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

func syncDir(dir string) error { return osFS{}.SyncDir(dir) }

// Temporary files. omega writes a file that must appear whole (a snapshot,
// cert.idx, cert.hash, an incident) as a temporary file in the same
// directory, synced, then renamed over the target. Their names follow one
// pattern that omega owns:
//
//	.omega-tmp-<16 lowercase hex digits>-<target name>
//
// and while being written such a file holds the appender's lock (see
// filelock.Lock). A process killed before the rename leaves it behind, unlocked:
// OpenCertStore and Snapshot.WriteFile remove these stale files from their
// directory (removeStaleTemps). Files of any other name are never touched,
// nor those of the pattern that a live writer holds locked. Where the lock
// does not reach other processes (see filelock), a writer in another process
// can lose its temporary file to this cleanup; its write then fails with an
// error and leaves the target as it was.
const (
	tempPrefix    = ".omega-tmp-"
	tempRandomLen = 16
)

// isTempName reports whether name is the name of one of omega's temporary
// files.
func isTempName(name string) bool {
	rest, ok := strings.CutPrefix(name, tempPrefix)
	if !ok || len(rest) < tempRandomLen+2 || rest[tempRandomLen] != '-' {
		return false
	}
	for _, c := range rest[:tempRandomLen] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isLegacyTempName reports whether name is that of a temporary file that
// os.CreateTemp(dir, target+".tmp*") made for one of targets: the target,
// ".tmp" and decimal digits.
func isLegacyTempName(name string, targets []string) bool {
	for _, t := range targets {
		digits, ok := strings.CutPrefix(name, t+".tmp")
		if ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

func tempName(target string) string {
	return fmt.Sprintf("%s%016x-%s", tempPrefix, rand.Uint64(), target)
}

// removeStaleTemps removes from dir the temporary files of omega that no
// writer holds: those a crash left behind; also those of the names in
// legacy, given with the pattern os.CreateTemp(dir, name+".tmp*") gave them
// before omega named its temporary files. It is best effort: a file it
// cannot open, lock or remove is left, and an error reading dir is ignored,
// for the write that follows to meet it.
func removeStaleTemps(fsys fileSystem, dir string, legacy ...string) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !isTempName(e.Name()) && !isLegacyTempName(e.Name(), legacy) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		stale := filelock.Lock(f, path) == nil
		if stale {
			filelock.Unlock(f)
		}
		f.Close()
		// Removed once closed: Windows removes no open file. No writer
		// opens a temporary file again by its name, so none can take it
		// back in between.
		if stale {
			fsys.Remove(path)
		}
	}
}

// writeTemp replaces dir/name with data through a synced temporary file and a
// rename. The caller syncs the directory.
func writeTemp(dir, name string, data []byte) error { return writeTempFS(osFS{}, dir, name, data) }

func writeTempFS(fsys fileSystem, dir, name string, data []byte) error {
	return writeTempPaced(fsys, dir, name, data, nil)
}

// syncChunk is how much of a paced write is synced at a time.
const syncChunk = 1 << 20

// writeTempPaced is writeTempFS for a large file written beside a busy
// log: when pace is not nil, it writes data a syncChunk at a time, makes
// each durable with a data sync, then calls pace. The operating system
// then never holds much of the file unwritten, which a sync of the log
// (on a journaling file system, a commit the whole file system shares)
// would wait for, and the writes are spread in time.
func writeTempPaced(fsys fileSystem, dir, name string, data []byte, pace func()) error {
	return writeTempWith(fsys, dir, name, func(f file) error { return writeChunks(f, data, pace) })
}

// writeTempWith is writeTempFS for a file whose content body writes to
// the temporary file, from its start. body is called again, on a new
// temporary file, when a cleanup took the first (see below).
func writeTempWith(fsys fileSystem, dir, name string, body func(f file) error) error {
	var err error
	// A cleanup in another process may take the temporary file for a stale
	// one between its creation and its lock, or between its close and the
	// rename: the rename then finds it gone, and the write starts again.
	for range 3 {
		if err = writeTempOnce(fsys, dir, name, body); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// writeChunks writes data to f: whole, or, when pace is not nil, a
// syncChunk at a time with writePiece.
func writeChunks(f file, data []byte, pace func()) error {
	if pace == nil {
		_, err := f.Write(data)
		return err
	}
	for rest := data; ; {
		n := min(len(rest), syncChunk)
		if err := writePiece(f, rest[:n], n < len(rest), pace); err != nil || n == len(rest) {
			return err
		}
		rest = rest[n:]
	}
}

// writePiece writes p to f and, when more is to come, makes it durable
// with a data sync and calls pace.
func writePiece(f file, p []byte, more bool, pace func()) error {
	if _, err := f.Write(p); err != nil || !more {
		return err
	}
	if err := fsync.Data(f); err != nil {
		return err
	}
	pace()
	return nil
}

func writeTempOnce(fsys fileSystem, dir, name string, body func(f file) error) error {
	tmp := filepath.Join(dir, tempName(name))
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err = filelock.Lock(f, tmp); err == nil {
		if err = body(f); err == nil {
			err = f.Sync()
		}
		filelock.Unlock(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Renamed after the close: Windows renames no open file.
		err = fsys.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		fsys.Remove(tmp)
	}
	return err
}
