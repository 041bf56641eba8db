package omega

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/filelock"
)

// fsOp is one operation a recFS saw.
type fsOp struct {
	kind string // "create", "write", "truncate", "sync", "rename", "remove", "syncdir"
	path string // the file's path; for a rename, the old one
	to   string // for a rename, the new path
	off  int64  // for a write, where; for a truncate, the size
	data []byte // for a write, a copy of the bytes
}

// recFS is a fileSystem over the real one that records every write,
// truncate, sync, rename, remove and directory sync in order, counts the
// bytes read from each file, and fails an operation when fail says so,
// before it happens. A write that fails may be cut: when cut is set, the
// first cut bytes are written (and recorded) before the error.
type recFS struct {
	osFS
	mu   sync.Mutex
	ops  []fsOp
	read map[string]int64
	fail func(op fsOp) (cut int, err error)
}

func newRecFS() *recFS { return &recFS{read: map[string]int64{}} }

// do records op, or fails it. It returns how many bytes of a write to make.
func (r *recFS) do(op fsOp) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(op.data)
	var err error
	if r.fail != nil {
		var cut int
		if cut, err = r.fail(op); err != nil {
			n = min(cut, n)
			op.data = op.data[:n]
			if op.kind != "write" || n == 0 {
				return 0, err
			}
		}
	}
	op.data = bytes.Clone(op.data)
	r.ops = append(r.ops, op)
	return n, err
}

// Len returns how many operations r has recorded.
func (r *recFS) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

func (r *recFS) Ops() []fsOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

func (r *recFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	if flag&os.O_CREATE != 0 {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			// A new directory entry, durable once its directory is synced.
			if _, err := r.do(fsOp{kind: "create", path: name}); err != nil {
				return nil, err
			}
		}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &recFile{File: f, fs: r}, nil
}

func (r *recFS) Rename(oldpath, newpath string) error {
	if _, err := r.do(fsOp{kind: "rename", path: oldpath, to: newpath}); err != nil {
		return err
	}
	return os.Rename(oldpath, newpath)
}

func (r *recFS) Remove(name string) error {
	if _, err := r.do(fsOp{kind: "remove", path: name}); err != nil {
		return err
	}
	return os.Remove(name)
}

func (r *recFS) SyncDir(dir string) error {
	if _, err := r.do(fsOp{kind: "syncdir", path: dir}); err != nil {
		return err
	}
	return r.osFS.SyncDir(dir)
}

// recFile is a file of a recFS.
type recFile struct {
	*os.File
	fs *recFS
}

func (f *recFile) Write(p []byte) (int, error) {
	off, err := f.File.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	n, ferr := f.fs.do(fsOp{kind: "write", path: f.Name(), off: off, data: p})
	if n > 0 {
		if _, err := f.File.Write(p[:n]); err != nil {
			return 0, err
		}
	}
	return n, ferr
}

func (f *recFile) WriteAt(p []byte, off int64) (int, error) {
	n, ferr := f.fs.do(fsOp{kind: "write", path: f.Name(), off: off, data: p})
	if n > 0 {
		if _, err := f.File.WriteAt(p[:n], off); err != nil {
			return 0, err
		}
	}
	return n, ferr
}

func (f *recFile) Truncate(size int64) error {
	if _, err := f.fs.do(fsOp{kind: "truncate", path: f.Name(), off: size}); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *recFile) Sync() error {
	if _, err := f.fs.do(fsOp{kind: "sync", path: f.Name()}); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *recFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.fs.mu.Lock()
	f.fs.read[f.Name()] += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

func (f *recFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.mu.Lock()
	f.fs.read[f.Name()] += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

// fsModel replays recorded operations on file contents: what each file
// holds (content) and what of it a crash keeps for sure (durable: the
// content at the file's last sync). Files the operations do not create
// start as start says.
//
// It also keeps what a crash does to directory entries not yet synced
// (a file created, renamed or removed since its directory's last sync):
// entries holds, for each such path, what its durable entry names, the
// content it had when the entry changed, or nothing (nil: no file), for
// durableFiles.
type fsModel struct {
	content, durable map[string][]byte
	entries          map[string][]byte
}

func newFSModel(start map[string][]byte) *fsModel {
	m := &fsModel{content: map[string][]byte{}, durable: map[string][]byte{}, entries: map[string][]byte{}}
	for p, b := range start {
		m.content[p], m.durable[p] = bytes.Clone(b), bytes.Clone(b)
	}
	return m
}

// entryChanges records, before path's directory entry changes, what its
// durable entry holds, unless an earlier change since the directory's
// last sync recorded it.
func (m *fsModel) entryChanges(path string) {
	if _, ok := m.entries[path]; ok {
		return
	}
	if b, ok := m.durable[path]; ok {
		m.entries[path] = bytes.Clone(b)
		if m.entries[path] == nil {
			m.entries[path] = []byte{}
		}
		return
	}
	if _, ok := m.content[path]; ok {
		m.entries[path] = []byte{} // there, never synced: empty after a crash
		return
	}
	m.entries[path] = nil
}

// durableFiles returns what a crash that keeps only what was synced,
// directory entries included, leaves: each file's durable content, under
// the names its directory last synced.
func (m *fsModel) durableFiles() map[string][]byte {
	out := map[string][]byte{}
	for p, b := range m.durable {
		out[p] = b
	}
	for p := range m.content {
		if _, ok := out[p]; !ok {
			out[p] = nil
		}
	}
	for p, b := range m.entries {
		if b == nil {
			delete(out, p)
		} else {
			out[p] = b
		}
	}
	return out
}

func (m *fsModel) apply(ops ...fsOp) {
	for _, op := range ops {
		switch op.kind {
		case "create":
			m.entryChanges(op.path)
		case "syncdir":
			for p := range m.entries {
				if filepath.Dir(p) == filepath.Clean(op.path) {
					delete(m.entries, p)
				}
			}
		case "write":
			b := m.content[op.path]
			if end := op.off + int64(len(op.data)); end > int64(len(b)) {
				b = append(b, make([]byte, end-int64(len(b)))...)
			}
			copy(b[op.off:], op.data)
			m.content[op.path] = b
		case "truncate":
			b := m.content[op.path]
			if op.off <= int64(len(b)) {
				b = b[:op.off]
			} else {
				b = append(b, make([]byte, op.off-int64(len(b)))...)
			}
			m.content[op.path] = b
		case "sync":
			m.durable[op.path] = bytes.Clone(m.content[op.path])
		case "rename":
			m.entryChanges(op.path)
			m.entryChanges(op.to)
			m.content[op.to], m.durable[op.to] = m.content[op.path], m.durable[op.path]
			delete(m.content, op.path)
			delete(m.durable, op.path)
		case "remove":
			m.entryChanges(op.path)
			delete(m.content, op.path)
			delete(m.durable, op.path)
		}
	}
}

func TestTempNames(t *testing.T) {
	for _, name := range []string{"cert.idx", "snap.omega", "a-b", "-", ".omega-tmp-0123456789abcdef-x"} {
		if tn := tempName(name); !isTempName(tn) || !strings.HasSuffix(tn, "-"+name) || isTempName(name) && name != ".omega-tmp-0123456789abcdef-x" {
			t.Errorf("tempName(%q) = %q, isTempName = %v", name, tn, isTempName(tn))
		}
	}
	for name, want := range map[string]bool{
		".omega-tmp-0123456789abcdef-cert.idx":  true,
		".omega-tmp-0123456789abcdef--":         true,
		".omega-tmp-0123456789abcdef-":          false, // no target
		".omega-tmp-0123456789ABCDEF-cert.idx":  false,
		".omega-tmp-0123456789abcde-cert.idx":   false,
		".omega-tmp-0123456789abcdefa-cert.idx": false,
		".omega-tmp-0123456789abcdeg-cert.idx":  false,
		"omega-tmp-0123456789abcdef-cert.idx":   false,
		"cert.idx.tmp12345":                     false,
		"cert.idx":                              false,
		"":                                      false,
	} {
		if got := isTempName(name); got != want {
			t.Errorf("isTempName(%q) = %v, want %v", name, got, want)
		}
	}
	legacy := []string{"cert.idx", "cert.hash"}
	for name, want := range map[string]bool{
		"cert.idx.tmp12345":  true,
		"cert.hash.tmp0":     true,
		"cert.idx.tmp":       false,
		"cert.idx.tmp12a":    false,
		"cert.log.tmp12345":  false,
		"xcert.idx.tmp12345": false,
	} {
		if got := isLegacyTempName(name, legacy); got != want {
			t.Errorf("isLegacyTempName(%q) = %v, want %v", name, got, want)
		}
	}
}

// tempDirFiles fills dir with files omega must remove as stale and files it
// must leave, and returns the names that must remain. One temporary file is
// held by a live writer: its lock is released by the returned function.
func tempDirFiles(t *testing.T, dir string, legacy bool) (keep []string, release func()) {
	t.Helper()
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{
		".omega-tmp-0123456789abcdef-cert.idx",
		".omega-tmp-fedcba9876543210-snap.omega",
		".omega-tmp-00000000000000ff-anything else",
	} {
		write(name)
	}
	keep = []string{
		"notes.tmp", "snap.omega.tmp1234", "cert.log.tmp42", ".omega-tmp-xyz-cert.idx",
		".omega-tmp-0123456789abcdef-", "cert.idx.tmp", "cert.idx.tmpx1",
	}
	if legacy {
		write("cert.idx.tmp123456")
		write("cert.hash.tmp7")
	} else {
		keep = append(keep, "cert.idx.tmp123456")
	}
	for _, name := range keep {
		write(name)
	}
	// A directory of the pattern is not a file omega writes.
	sub := ".omega-tmp-1111111111111111-dir"
	if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
		t.Fatal(err)
	}
	// A temporary file being written now.
	live := ".omega-tmp-2222222222222222-snap.omega"
	write(live)
	f, err := os.OpenFile(filepath.Join(dir, live), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := filelock.Lock(f, f.Name()); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, sub, live)
	return keep, func() { filelock.Unlock(f); f.Close() }
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// OpenCertStore removes the temporary files a killed process left in its
// directory, and nothing else.
func TestCertStoreRemovesStaleTemps(t *testing.T) {
	certs := certLogChain(t, 2)
	dir := writeLog(t, certs)
	keep, release := tempDirFiles(t, dir, true)
	defer release()
	s := openStore(t, dir, framelog.SyncBatch)
	defer s.Close()
	want := append(slices.Clone(keep), "cert.log", "cert.idx", "cert.hash")
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after OpenCertStore the directory holds %q, want %q", got, want)
	}
	checkStore(t, "after the cleanup", s, dir, certs)
}

// Snapshot.WriteFile removes the temporary files a killed process left in
// the snapshot's directory, and nothing else.
func TestSnapshotWriteFileRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	keep, release := tempDirFiles(t, dir, false)
	defer release()
	path := filepath.Join(dir, "snap.omega")
	snap := &Snapshot{ID: 1, BaseOffset: framelog.HeaderSize}
	if err := snap.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(keep), "snap.omega")
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after Snapshot.WriteFile the directory holds %q, want %q", got, want)
	}
	if _, err := LoadSnapshotFile(path); err != nil {
		t.Fatal(err)
	}
}

// A temporary file that vanishes before its rename (taken for a stale one
// by a cleanup in another process) is written again.
func TestWriteTempRetries(t *testing.T) {
	dir := t.TempDir()
	r := newRecFS()
	renames := 0
	r.fail = func(op fsOp) (int, error) {
		if op.kind == "rename" {
			if renames++; renames == 1 {
				return 0, &os.LinkError{Op: "rename", Old: op.path, New: op.to, Err: fs.ErrNotExist}
			}
		}
		return 0, nil
	}
	if err := writeTempFS(r, dir, "target", []byte("data")); err != nil {
		t.Fatalf("writeTempFS = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "target")); string(got) != "data" || renames != 2 {
		t.Fatalf("target holds %q after %d renames, want \"data\" after 2", got, renames)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"target"}) {
		t.Fatalf("directory holds %q, want the target alone", got)
	}
	// Another error is returned, and the temporary file removed.
	boom := errors.New("boom")
	r.fail = func(op fsOp) (int, error) {
		if op.kind == "sync" {
			return 0, boom
		}
		return 0, nil
	}
	if err := writeTempFS(r, dir, "other", []byte("x")); !errors.Is(err, boom) {
		t.Fatalf("writeTempFS with a failing sync = %v", err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"target"}) {
		t.Fatalf("directory holds %q after a failed write, want the target alone", got)
	}
}

// lfHeader is the header of logs of the default binding.
func lfHeader(testing.TB) framelog.Header { return DefaultBinding().Header() }

// lfReadFile returns the content of the file at path.
func lfReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lfPayload returns n pseudo-random bytes drawn from seed.
func lfPayload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x6f6d656761))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// Offsets in the frozen layout of SPEC 5, for tests that damage logs field
// by field.
const (
	logOffSchemaVer  = 8
	logOffEndian     = 10
	logOffSchemaHash = 26
	frameOffCRC      = 4
	frameOffType     = 8
)

// appendFrame appends a frame of type t holding payload to b, unchecked:
// tests build frames of invalid types with it.
func appendFrame(b []byte, t framelog.FrameType, payload []byte) []byte {
	var h [framelog.FrameHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(framelog.FrameHeaderLen+len(payload)))
	binary.LittleEndian.PutUint16(h[frameOffType:], uint16(t))
	crc := crc32.Update(crc32.ChecksumIEEE(h[frameOffType:]), crc32.IEEETable, payload)
	binary.LittleEndian.PutUint32(h[frameOffCRC:], crc)
	return append(append(b, h[:]...), payload...)
}

// onlyFrameFS has the methods of a framelog.FS and no more.
type onlyFrameFS struct{ framelog.FS }

// OpenJournal and OpenCertStore reach the file system through the FS of
// their WriterOptions when it has every method they need, and refuse one
// that lacks some, naming it, before touching anything.
func TestStoresUseOptionsFS(t *testing.T) {
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lacking := &framelog.WriterOptions{FS: onlyFrameFS{newRecFS()}}
	if _, err := OpenJournal(t.Context(), filepath.Join(dir, "j.omega"), c, &JournalOptions{Writer: *lacking}); err == nil || !strings.Contains(err.Error(), "OpenJournal") {
		t.Fatalf("OpenJournal with a partial FS = %v, want an error naming it", err)
	}
	if _, err := OpenCertStore(filepath.Join(dir, "certs"), lfHeader(t), lacking); err == nil || !strings.Contains(err.Error(), "OpenCertStore") {
		t.Fatalf("OpenCertStore with a partial FS = %v, want an error naming it", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("refused opens left %q behind", names)
	}

	fsys := newRecFS()
	opts := &framelog.WriterOptions{FS: fsys}
	j, err := OpenJournal(t.Context(), filepath.Join(dir, "j.omega"), c, &JournalOptions{Writer: *opts})
	if err != nil {
		t.Fatal(err)
	}
	e := Event{ID: ID64(1), NodeID: 1, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(nil), Deps: []EventID{}}
	if _, err := j.LogEvents([]Event{e}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Decide([]Event{e}, BatchMeta{BatchID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenCertStore(filepath.Join(dir, "certs"), lfHeader(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var syncs, dirSyncs int
	for _, op := range fsys.Ops() {
		switch op.kind {
		case "sync":
			syncs++
		case "syncdir":
			dirSyncs++
		}
	}
	if syncs == 0 || dirSyncs == 0 {
		t.Fatalf("the journal and the store went around the options' FS: it saw %d syncs and %d directory syncs", syncs, dirSyncs)
	}
}

// TestWriteTempPaced checks that a paced write syncs each chunk before it
// writes the next, calls pace after each sync, and ends as writeTempFS
// does: the whole content under its name, synced, renamed.
func TestWriteTempPaced(t *testing.T) {
	dir := t.TempDir()
	r := newRecFS()
	data := make([]byte, 2*syncChunk+syncChunk/2)
	for i := range data {
		data[i] = byte(i * 7)
	}
	paces := 0
	if err := writeTempPaced(r, dir, "big", data, func() { paces++ }); err != nil {
		t.Fatalf("writeTempPaced = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "big")); !bytes.Equal(got, data) {
		t.Fatalf("big holds %d bytes, not the %d written", len(got), len(data))
	}
	var kinds []string
	for _, op := range r.ops {
		if op.kind == "write" && len(op.data) > syncChunk {
			t.Fatalf("a write of %d bytes, over the chunk of %d", len(op.data), syncChunk)
		}
		kinds = append(kinds, op.kind)
	}
	want := []string{"create", "write", "sync", "write", "sync", "write", "sync", "rename"}
	if !slices.Equal(kinds, want) || paces != 2 {
		t.Fatalf("operations %q and %d paces, want %q and 2", kinds, paces, want)
	}
}
