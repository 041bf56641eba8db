package omega

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
)

// certLogKey is the fixed signing key of the certificate log tests.
func certLogKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5c}, ed25519.SeedSize))
}

func certLogRing() KeyRing { return ringOf(certLogKey().Public().(ed25519.PublicKey)) }

func certLogHeader() framelog.Header {
	return DefaultBinding().Header()
}

// certLogChain certifies n batches from genesis, each linked to the one
// before: even batches merge two fresh events, odd ones re-send an event
// the previous merge accepted and are obstructed. Batch ids leave gaps.
func certLogChain(tb testing.TB, n int) []*Certificate {
	tb.Helper()
	return certLogChainSigned(tb, n, func(int) ed25519.PrivateKey { return certLogKey() })
}

// certLogChainSigned is certLogChain with certificate i signed by key(i).
func certLogChainSigned(tb testing.TB, n int, key func(i int) ed25519.PrivateKey) []*Certificate {
	tb.Helper()
	ch, err := NewChecker(&CheckerOptions{Workers: 1})
	if err != nil {
		tb.Fatal(err)
	}
	state := &State{}
	var prev Hash
	var last Event
	var batch uint64
	certs := make([]*Certificate, n)
	for i := range n {
		var events []Event
		if i%2 == 1 {
			events = []Event{last}
		} else {
			for k := range 2 {
				p := []byte(fmt.Sprintf("certlog payload %d/%d", i, k))
				events = append(events, Event{ID: ID64(uint64(2*i + k + 1)), NodeID: uint32(k + 1), StreamID: 1,
					Lamport: uint64(i + 1), PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p})
			}
			last = events[1]
		}
		out, err := ch.Reconcile(state, events)
		if err != nil {
			tb.Fatal(err)
		}
		if want := map[bool]Kind{false: KindMerge, true: KindObstruction}[i%2 == 1]; out.Result.Kind != want {
			tb.Fatalf("batch %d: kind %v, want %v", i, out.Result.Kind, want)
		}
		batch += 1 + uint64(i%3)
		c, err := Certify(out, DefaultBinding(), BatchMeta{BatchID: batch, ReplaySeed: uint64(i) * 31, CreatedAtNs: 1e9 + uint64(i)}, prev, key(i))
		if err != nil {
			tb.Fatal(err)
		}
		if out.Result.Kind == KindMerge {
			state = out.Result.Merge.Next
		}
		prev = c.Hash()
		certs[i] = c
	}
	return certs
}

// sideFiles returns the cert.idx and cert.hash a log of certs holds,
// written out independently of the store.
func sideFiles(certs []*Certificate) (idx, hashes string) {
	var bi, bh strings.Builder
	off := int64(framelog.HeaderSize)
	for i, c := range certs {
		fmt.Fprintf(&bi, "%s %d\n", c.ID(), off)
		h := c.Hash()
		fmt.Fprintf(&bh, "%d %x\n", i, h[:])
		off += 12 + int64(len(c.Bytes()))
	}
	return bi.String(), bh.String()
}

func openStore(tb testing.TB, dir string, policy framelog.SyncPolicy) *CertStore {
	tb.Helper()
	s, err := OpenCertStore(dir, certLogHeader(), &framelog.WriterOptions{Sync: policy})
	if err != nil {
		tb.Fatalf("OpenCertStore(%s) = %v", dir, err)
	}
	return s
}

func appendAll(tb testing.TB, s *CertStore, certs []*Certificate) {
	tb.Helper()
	for i, c := range certs {
		if err := s.Append(c); err != nil {
			tb.Fatalf("Append(cert %d) = %v", i, err)
		}
	}
}

// wantAnchor is the chain position after certs, computed from their fields.
func wantAnchor(certs []*Certificate) ChainAnchor {
	var a ChainAnchor
	for _, c := range certs {
		a.CertHash, a.BatchID = c.Hash(), c.BatchID
		if c.Merge != nil {
			a.MergedStateHash, a.FrontierDigest = c.Merge.MergedStateHash, c.Merge.FrontierDigest
		}
	}
	return a
}

// checkStore checks that the store in dir holds exactly certs, with side
// files to match, and that it verifies.
func checkStore(t *testing.T, what string, s *CertStore, dir string, certs []*Certificate) {
	t.Helper()
	if s.Len() != len(certs) {
		t.Fatalf("%s: Len() = %d, want %d", what, s.Len(), len(certs))
	}
	n := 0
	for i, c := range s.All() {
		if i != n || !bytes.Equal(c.Bytes(), certs[i].Bytes()) {
			t.Fatalf("%s: All() yields cert %d at %d, or different bytes", what, i, n)
		}
		n++
	}
	if n != len(certs) {
		t.Fatalf("%s: All() yields %d certificates, want %d", what, n, len(certs))
	}
	for _, first := range []int{-1, len(certs) / 2, len(certs) - 1, len(certs), len(certs) + 1} {
		want := max(first, 0)
		for i, c := range s.From(first) {
			if i != want || !bytes.Equal(c.Bytes(), certs[i].Bytes()) {
				t.Fatalf("%s: From(%d) yields cert %d where %d was due, or different bytes", what, first, i, want)
			}
			want++
		}
		if want < len(certs) {
			t.Fatalf("%s: From(%d) stops at %d of %d", what, first, want, len(certs))
		}
	}
	for i, c := range certs {
		got, ok := s.Lookup(c.ID())
		if !ok || !bytes.Equal(got.Bytes(), c.Bytes()) {
			t.Fatalf("%s: Lookup(cert %d) = %v, %v", what, i, got, ok)
		}
		if p, ok := s.Position(c.ID()); !ok || p != i {
			t.Fatalf("%s: Position(cert %d) = %d, %v", what, i, p, ok)
		}
	}
	if p, ok := s.Position(CertID{Lo: 12345, Hi: 1}); ok {
		t.Fatalf("%s: Position of an unknown id = %d", what, p)
	}
	var last uint64
	for i, c := range certs {
		got, ok := s.LookupBatch(c.BatchID)
		if !ok || !bytes.Equal(got.Bytes(), c.Bytes()) {
			t.Fatalf("%s: LookupBatch(%d), cert %d = %v, %v", what, c.BatchID, i, got, ok)
		}
		for b := last + 1; b < c.BatchID; b++ {
			if got, ok := s.LookupBatch(b); ok {
				t.Fatalf("%s: LookupBatch(%d), a gap in the batch ids, = %v", what, b, got)
			}
		}
		last = c.BatchID
	}
	for _, b := range []uint64{0, last + 1, 1<<64 - 1} {
		if got, ok := s.LookupBatch(b); ok {
			t.Fatalf("%s: LookupBatch(%d) = %v, want not found", what, b, got)
		}
	}
	if got, want := s.Head(), wantAnchor(certs); got != want {
		t.Fatalf("%s: Head() = %+v, want %+v", what, got, want)
	}
	a, err := s.VerifyAll(certLogRing(), DefaultBinding())
	if err != nil || a != wantAnchor(certs) {
		t.Fatalf("%s: VerifyAll = %+v, %v, want %+v", what, a, err, wantAnchor(certs))
	}
	checkSideFiles(t, what, dir, certs)
}

func checkSideFiles(t *testing.T, what, dir string, certs []*Certificate) {
	t.Helper()
	idx, hashes := sideFiles(certs)
	for name, want := range map[string]string{"cert.idx": idx, "cert.hash": hashes} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Fatalf("%s: %s = %q, %v, want %q", what, name, got, err, want)
		}
	}
}

func TestCertStoreRoundTrip(t *testing.T) {
	certs := certLogChain(t, 20)
	for _, policy := range []framelog.SyncPolicy{framelog.SyncBatch, framelog.SyncAlways, framelog.SyncNever} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs") // created by OpenCertStore
			s := openStore(t, dir, policy)
			if s.Len() != 0 || s.Head() != (ChainAnchor{}) {
				t.Fatalf("new store: Len() = %d, Head() = %+v, want 0, genesis", s.Len(), s.Head())
			}
			appendAll(t, s, certs[:12])
			wantSynced := 0
			if policy == framelog.SyncAlways {
				wantSynced = 12
			}
			if got := s.Synced(); got != wantSynced {
				t.Fatalf("Synced() = %d before Sync, want %d", got, wantSynced)
			}
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync() = %v", err)
			}
			if got := s.Synced(); got != 12 {
				t.Fatalf("Synced() = %d after Sync, want 12", got)
			}
			checkStore(t, "after Sync", s, dir, certs[:12])
			appendAll(t, s, certs[12:])
			if err := s.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			if err := s.Close(); !errors.Is(err, framelog.ErrWriterClosed) {
				t.Errorf("second Close() = %v, want framelog.ErrWriterClosed", err)
			}
			if err := s.Append(certs[0]); !errors.Is(err, framelog.ErrWriterClosed) {
				t.Errorf("Append after Close = %v, want framelog.ErrWriterClosed", err)
			}
			// A closed store reads no certificate, and is not failed by
			// being asked.
			if c, ok := s.Lookup(certs[0].ID()); ok {
				t.Errorf("Lookup after Close = %v", c)
			}
			if c, ok := s.LookupBatch(certs[0].BatchID); ok {
				t.Errorf("LookupBatch after Close = %v", c)
			}
			for i := range s.All() {
				t.Errorf("All after Close yields %d", i)
			}
			if _, err := s.VerifyAll(certLogRing(), DefaultBinding()); !errors.Is(err, framelog.ErrWriterClosed) {
				t.Errorf("VerifyAll after Close = %v, want framelog.ErrWriterClosed", err)
			}
			if s.Len() != len(certs) || s.Head() != wantAnchor(certs) || s.Err() != nil {
				t.Errorf("after Close: Len() = %d, Head() = %+v, Err() = %v", s.Len(), s.Head(), s.Err())
			}
			s = openStore(t, dir, policy)
			defer s.Close()
			if s.TornTail() != 0 {
				t.Errorf("TornTail() = %d, want 0", s.TornTail())
			}
			if got := s.Synced(); got != len(certs) {
				t.Errorf("Synced() = %d after reopening, want all %d", got, len(certs))
			}
			checkStore(t, "reopened", s, dir, certs)
			if _, ok := s.Lookup(CertID{Hi: 1, Lo: 2}); ok {
				t.Errorf("Lookup(unknown id) found a certificate")
			}
		})
	}
}

// writeLog makes a store in a new directory holding certs and returns the
// directory.
func writeLog(t *testing.T, certs []*Certificate) string {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir, framelog.SyncNever)
	appendAll(t, s, certs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCertStoreCrashCuts cuts cert.log at every offset and checks that
// reopening keeps exactly the certificates written in full, rebuilds the
// side files and lets the chain continue. In -short mode offsets before
// the last two frames are sampled.
func TestCertStoreCrashCuts(t *testing.T) {
	longTest(t)
	skipExhaustiveUnderRace(t)
	const n = 8
	certs := certLogChain(t, n+1)
	src := writeLog(t, certs[:n])
	log, err := os.ReadFile(filepath.Join(src, "cert.log"))
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := os.ReadFile(filepath.Join(src, "cert.idx"))
	hashes, _ := os.ReadFile(filepath.Join(src, "cert.hash"))
	full, _ := os.ReadFile(filepath.Join(writeLog(t, certs), "cert.log"))
	// ends[k] is the size of a log holding the first k certificates.
	ends := []int{framelog.HeaderSize}
	for _, c := range certs {
		ends = append(ends, ends[len(ends)-1]+12+len(c.Bytes()))
	}
	if ends[n] != len(log) || ends[n+1] != len(full) || !bytes.HasPrefix(full, log) {
		t.Fatalf("logs of %d and %d bytes, want %d and %d, one a prefix of the other", len(log), len(full), ends[n], ends[n+1])
	}
	stride := 1
	if testing.Short() {
		stride = 41
	}
	work := scratchDir(t)
	for cut := 0; cut <= len(log); cut++ {
		if stride > 1 && cut < ends[n-2] && cut%stride != 0 && !isEnd(ends, cut) {
			continue
		}
		k := 0
		for k < n && ends[k+1] <= cut {
			k++
		}
		dir := filepath.Join(work, fmt.Sprint(cut))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"cert.log": log[:cut], "cert.idx": idx, "cert.hash": hashes} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		what := fmt.Sprintf("cut at %d", cut)
		s, err := OpenCertStore(dir, certLogHeader(), &framelog.WriterOptions{Sync: framelog.SyncNever})
		if err != nil {
			t.Fatalf("%s: OpenCertStore = %v", what, err)
		}
		if want := int64(max(0, cut-ends[k])); cut >= framelog.HeaderSize && s.TornTail() != want {
			t.Errorf("%s: TornTail() = %d, want %d", what, s.TornTail(), want)
		}
		checkStore(t, what, s, dir, certs[:k])
		if k+1 < n {
			if err := s.Append(certs[k+1]); !errors.Is(err, ErrChainLink) {
				t.Fatalf("%s: Append(cert %d) after %d = %v, want ErrChainLink", what, k+1, k, err)
			}
		}
		if err := s.Append(certs[k]); err != nil {
			t.Fatalf("%s: Append(cert %d) = %v", what, k, err)
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("%s: Sync() = %v", what, err)
		}
		checkStore(t, what+", appended", s, dir, certs[:k+1])
		if err := s.Close(); err != nil {
			t.Fatalf("%s: Close() = %v", what, err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "cert.log")); !bytes.Equal(got, full[:ends[k+1]]) {
			t.Fatalf("%s: cert.log after append differs from the original prefix of %d certificates", what, k+1)
		}
		os.RemoveAll(dir)
	}
}

func isEnd(ends []int, off int) bool {
	for _, e := range ends {
		if off >= e-1 && off <= e+1 {
			return true
		}
	}
	return false
}

func TestCertStoreSideFilesRebuilt(t *testing.T) {
	certs := certLogChain(t, 20)
	src := writeLog(t, certs)
	checkSideFiles(t, "original", src, certs)
	origIdx, _ := os.ReadFile(filepath.Join(src, "cert.idx"))
	origHash, _ := os.ReadFile(filepath.Join(src, "cert.hash"))
	log, _ := os.ReadFile(filepath.Join(src, "cert.log"))
	damage := []struct {
		name string
		file string
		f    func(b []byte) ([]byte, bool) // new content; false to delete
	}{
		{"deleted", "cert.idx", func(b []byte) ([]byte, bool) { return nil, false }},
		{"deleted", "cert.hash", func(b []byte) ([]byte, bool) { return nil, false }},
		{"empty", "cert.idx", func(b []byte) ([]byte, bool) { return []byte{}, true }},
		{"last line missing", "cert.hash", func(b []byte) ([]byte, bool) {
			return b[:bytes.LastIndexByte(b[:len(b)-1], '\n')+1], true
		}},
		{"cut mid line", "cert.idx", func(b []byte) ([]byte, bool) { return b[:len(b)-5], true }},
		{"extra line", "cert.idx", func(b []byte) ([]byte, bool) { return append(bytes.Clone(b), "1 2\n"...), true }},
		{"extra line", "cert.hash", func(b []byte) ([]byte, bool) {
			return fmt.Appendf(bytes.Clone(b), "20 %x\n", make([]byte, 32)), true
		}},
		{"offset altered", "cert.idx", func(b []byte) ([]byte, bool) {
			return bytes.Replace(b, []byte(" 64\n"), []byte(" 65\n"), 1), true
		}},
		{"hash altered", "cert.hash", func(b []byte) ([]byte, bool) {
			b = bytes.Clone(b)
			i := bytes.Index(b, []byte("\n7 ")) + 5
			b[i] ^= 1
			return b, true
		}},
		{"upper case", "cert.hash", func(b []byte) ([]byte, bool) { return bytes.ToUpper(b), true }},
		{"lines swapped", "cert.idx", func(b []byte) ([]byte, bool) {
			lines := bytes.SplitAfter(b, []byte("\n"))
			lines[3], lines[4] = lines[4], lines[3]
			return bytes.Join(lines, nil), true
		}},
	}
	for _, d := range damage {
		t.Run(d.file+" "+d.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string][]byte{"cert.log": log, "cert.idx": origIdx, "cert.hash": origHash}
			nb, keep := d.f(files[d.file])
			if bytes.Equal(nb, files[d.file]) {
				t.Fatalf("damage %q changed nothing", d.name)
			}
			files[d.file] = nb
			for name, b := range files {
				if name == d.file && !keep {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := openStore(t, dir, framelog.SyncBatch)
			defer s.Close()
			checkStore(t, d.name, s, dir, certs)
			for name, want := range map[string][]byte{"cert.idx": origIdx, "cert.hash": origHash} {
				if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
					t.Errorf("%s rebuilt differs from the original", name)
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 3 {
				t.Errorf("directory holds %d files, want 3 (no temporary file left)", len(ents))
			}
		})
	}
}

func TestCertStoreCorruption(t *testing.T) {
	certs := certLogChain(t, 6)
	src := writeLog(t, certs)
	log, _ := os.ReadFile(filepath.Join(src, "cert.log"))
	second := framelog.HeaderSize + 12 + len(certs[0].Bytes())
	for _, off := range []int{
		framelog.HeaderSize + 4,       // first frame's CRC
		framelog.HeaderSize + 12 + 40, // first frame's payload
		second + 100,                  // second frame's payload
		second,                        // second frame's length
	} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			dir := t.TempDir()
			bad := bytes.Clone(log)
			bad[off] ^= 0x10
			path := filepath.Join(dir, "cert.log")
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := OpenCertStore(dir, certLogHeader(), nil)
			if !errors.Is(err, framelog.ErrCorrupt) || s != nil {
				t.Fatalf("OpenCertStore(byte %d flipped) = %v, %v, want framelog.ErrCorrupt", off, s, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
				t.Errorf("cert.log changed by a refused open")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("directory holds %d files after a refused open, want 1", len(ents))
			}
		})
	}
}

func TestCertStoreRefusesLog(t *testing.T) {
	certs := certLogChain(t, 3)
	mk := func(t *testing.T, hdr framelog.Header, frames ...func(w *framelog.Writer)) string {
		dir := t.TempDir()
		w, err := framelog.Open(filepath.Join(dir, "cert.log"), hdr, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			f(w)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	frame := func(ty framelog.FrameType, p []byte) func(w *framelog.Writer) {
		return func(w *framelog.Writer) {
			if _, err := w.Append(ty, p); err != nil {
				panic(err)
			}
		}
	}
	second := int64(framelog.HeaderSize + 12 + len(certs[0].Bytes()))
	for _, tc := range []struct {
		name   string
		dir    string
		err    error
		offset int64 // of a *CertLogError, or -1
	}{
		{"batch frame", mk(t, certLogHeader(), frame(framelog.FrameCert, certs[0].Bytes()), frame(framelog.FrameBatch, []byte("x"))), framelog.ErrCorrupt, second},
		{"app frame", mk(t, certLogHeader(), frame(framelog.FrameAppMin, certs[0].Bytes())), framelog.ErrCorrupt, framelog.HeaderSize},
		{"short envelope", mk(t, certLogHeader(), frame(framelog.FrameCert, certs[0].Bytes()), frame(framelog.FrameCert, certs[1].Bytes()[:100])), ErrMalformedCertificate, second},
		{"trailing byte", mk(t, certLogHeader(), frame(framelog.FrameCert, append(bytes.Clone(certs[0].Bytes()), 0))), ErrMalformedCertificate, framelog.HeaderSize},
		{"other schema", mk(t, framelog.Header{SchemaVersion: 2, SchemaHash: schemaHash()}), ErrSchemaMismatch, -1},
	} {
		s, err := OpenCertStore(tc.dir, certLogHeader(), nil)
		var le *CertLogError
		if s != nil || !errors.Is(err, tc.err) || (tc.offset >= 0) != errors.As(err, &le) || (le != nil && le.Offset != tc.offset) {
			t.Errorf("%s: OpenCertStore = %v, %v, want %v at offset %d", tc.name, s, err, tc.err, tc.offset)
		}
	}
	if _, err := OpenCertStore(t.TempDir(), certLogHeader(), &framelog.WriterOptions{Sync: 9}); !errors.Is(err, framelog.ErrUnknownSyncPolicy) {
		t.Errorf("OpenCertStore(sync 9) = %v, want framelog.ErrUnknownSyncPolicy", err)
	}
}

func TestCertStoreAppendRefusals(t *testing.T) {
	certs := certLogChain(t, 6)
	dir := t.TempDir()
	s := openStore(t, dir, framelog.SyncBatch)
	defer s.Close()
	appendAll(t, s, certs[:3])

	// Certificates correctly signed but placed wrongly in the chain.
	ch, _ := NewChecker(nil)
	p := []byte("refusal")
	out, err := ch.Reconcile(&State{}, []Event{{ID: ID64(999), NodeID: 9, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(batch uint64, prev Hash) *Certificate {
		c, err := Certify(out, DefaultBinding(), BatchMeta{BatchID: batch}, prev, certLogKey())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	head := s.Head()
	for _, tc := range []struct {
		name string
		c    *Certificate
		err  error
	}{
		{"wrong prev", mk(head.BatchID+1, certs[1].Hash()), ErrChainLink},
		{"zero prev", mk(head.BatchID+1, Hash{}), ErrChainLink},
		{"repeated", certs[2], ErrChainLink},
		{"skipped", certs[4], ErrChainLink},
		{"same batch id", mk(head.BatchID, head.CertHash), ErrBatchOrder},
		{"lower batch id", mk(1, head.CertHash), ErrBatchOrder},
		{"prior state", mk(head.BatchID+1, head.CertHash), ErrChainState},
		{"nil", nil, ErrMalformedCertificate},
		{"zero certificate", &Certificate{}, ErrMalformedCertificate},
	} {
		if err := s.Append(tc.c); !errors.Is(err, tc.err) {
			t.Errorf("Append(%s) = %v, want %v", tc.name, err, tc.err)
		}
	}
	// Refusals leave the store usable and unchanged.
	appendAll(t, s, certs[3:])
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkStore(t, "after refusals", s, dir, certs)
}

func TestCertStoreFailedIsSticky(t *testing.T) {
	certs := certLogChain(t, 3)
	dir := t.TempDir()
	s := openStore(t, dir, framelog.SyncAlways)
	appendAll(t, s, certs[:1])
	s.idx.Close() // the next side-file write fails
	err := s.Append(certs[1])
	if !errors.Is(err, framelog.ErrWriterFailed) {
		t.Fatalf("Append with a failing side file = %v, want framelog.ErrWriterFailed", err)
	}
	for _, f := range []struct {
		name string
		f    func() error
	}{
		{"Append", func() error { return s.Append(certs[2]) }},
		{"Sync", s.Sync},
		{"Close", s.Close},
	} {
		if got := f.f(); got != err {
			t.Errorf("%s after failure = %v, want %v", f.name, got, err)
		}
	}
	// The frame reached cert.log; reopening rebuilds the side files.
	s = openStore(t, dir, framelog.SyncAlways)
	defer s.Close()
	checkStore(t, "reopened", s, dir, certs[:2])
}

func TestCertStoreTornHeader(t *testing.T) {
	certs := certLogChain(t, 2)
	for _, b := range [][]byte{nil, make([]byte, 20), make([]byte, 200)} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "cert.log"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir, framelog.SyncBatch)
		checkStore(t, fmt.Sprintf("%d zero bytes", len(b)), s, dir, nil)
		appendAll(t, s, certs)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, dir, framelog.SyncBatch)
		checkStore(t, "reopened", s, dir, certs)
		s.Close()
	}
}

// A cert.log whose header was zeroed but whose frames are intact is a
// damaged header, not a creation cut short (SPEC 5): opening the store
// refuses it and leaves every byte as it was, so no certificate is lost.
func TestCertStoreZeroedHeader(t *testing.T) {
	certs := certLogChain(t, 5)
	dir := writeLog(t, certs)
	path := filepath.Join(dir, "cert.log")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[:framelog.HeaderSize])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenCertStore(dir, certLogHeader(), nil)
	var he *framelog.HeaderError
	if s != nil || !errors.Is(err, framelog.ErrBadHeader) || !errors.As(err, &he) || he.Field != "zeroed" {
		t.Fatalf("OpenCertStore(zeroed header) = %v, %v; want a zeroed *framelog.HeaderError", s, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
		t.Fatalf("a refused OpenCertStore changed cert.log")
	}
	checkSideFiles(t, "after a refused open", dir, certs)
}

// The store reads certificates back from cert.log when asked, from the
// writer's buffer for those not yet written out, and hands out copies of
// its own: changing one changes nothing, and bytes changed in cert.log
// under the store are caught, failing it.
func TestCertStoreReadsOnDemand(t *testing.T) {
	certs := certLogChain(t, 6)
	dir := t.TempDir()
	s := openStore(t, dir, framelog.SyncBatch)
	appendAll(t, s, certs[:3])
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, certs[3:]) // buffered: not in cert.log yet
	if fi, _ := os.Stat(filepath.Join(dir, "cert.log")); fi.Size() >= s.w.Size() {
		t.Fatalf("cert.log holds %d bytes, the buffered certificates are written out already", fi.Size())
	}
	for i, c := range s.All() {
		if !bytes.Equal(c.Bytes(), certs[i].Bytes()) {
			t.Fatalf("All() before Sync yields other bytes at %d", i)
		}
	}
	c, ok := s.Lookup(certs[4].ID())
	if !ok || !bytes.Equal(c.Bytes(), certs[4].Bytes()) {
		t.Fatalf("Lookup of a buffered certificate = %v, %v", c, ok)
	}
	c.Bytes()[0] ^= 1
	c.BatchID = 999
	if c, ok := s.Lookup(certs[4].ID()); !ok || !bytes.Equal(c.Bytes(), certs[4].Bytes()) || c.BatchID != certs[4].BatchID {
		t.Fatalf("a changed copy changed the store's certificate")
	}

	// Flip a byte of the second certificate's envelope behind the store.
	path := filepath.Join(dir, "cert.log")
	off := int64(framelog.HeaderSize+12+len(certs[0].Bytes())) + 12 + 300
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	f.ReadAt(b[:], off)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if c, ok := s.Lookup(certs[0].ID()); !ok || !bytes.Equal(c.Bytes(), certs[0].Bytes()) {
		t.Fatalf("Lookup of an untouched certificate = %v, %v", c, ok)
	}
	if c, ok := s.Lookup(certs[1].ID()); ok {
		t.Fatalf("Lookup of a changed certificate = %v, want not found", c)
	}
	err = s.Err()
	var le *CertLogError
	if !errors.Is(err, framelog.ErrCorrupt) || !errors.As(err, &le) || le.Offset != int64(framelog.HeaderSize+12+len(certs[0].Bytes())) {
		t.Fatalf("Err() after reading a changed certificate = %v, want framelog.ErrCorrupt at its frame", err)
	}
	n := 0
	for range s.All() {
		n++
	}
	if n != 1 {
		t.Errorf("All() yields %d certificates, want the 1 before the changed one", n)
	}
	if _, err := s.VerifyAll(certLogRing(), DefaultBinding()); !errors.Is(err, framelog.ErrCorrupt) {
		t.Errorf("VerifyAll = %v, want framelog.ErrCorrupt", err)
	}
	for name, f := range map[string]func() error{"Append": func() error { return s.Append(certs[5]) }, "Sync": s.Sync, "Close": s.Close} {
		if got := f(); got != err {
			t.Errorf("%s on a failed store = %v, want %v", name, got, err)
		}
	}
}

// VerifyAll reads the log in runs and still names the failing
// certificate's position in the whole log.
func TestCertStoreVerifyAllRuns(t *testing.T) {
	longTest(t)
	n := verifyRun + 3
	bad := verifyRun + 1
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	certs := certLogChainSigned(t, n, func(i int) ed25519.PrivateKey {
		if i == bad {
			return other
		}
		return certLogKey()
	})
	dir := writeLog(t, certs)
	s := openStore(t, dir, framelog.SyncNever)
	defer s.Close()
	a, err := s.VerifyAll(certLogRing(), DefaultBinding())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Index != bad || !errors.Is(err, ErrUnknownKey) || a != wantAnchor(certs[:bad]) {
		t.Fatalf("VerifyAll = %+v, %v; want ErrUnknownKey at %d after the anchor of the certificates before it", a, err, bad)
	}
	ring := ringOf(certLogKey().Public().(ed25519.PublicKey), other.Public().(ed25519.PublicKey))
	if a, err := s.VerifyAll(ring, DefaultBinding()); err != nil || a != wantAnchor(certs) {
		t.Fatalf("VerifyAll(both keys) = %+v, %v", a, err)
	}
}

// writeCertLog writes a cert.log holding the envelopes given, in order, and
// then tail, into a new directory, and returns the directory and the file's
// bytes.
func writeCertLog(t *testing.T, certs []*Certificate, tail []byte) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "cert.log")
	w, err := framelog.Open(path, certLogHeader(), &framelog.WriterOptions{Sync: framelog.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if _, err := w.Append(framelog.FrameCert, c.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := append(lfReadFile(t, path), tail...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// A cert.log whose certificates no longer form a chain is refused on open,
// before anything is truncated or appended: appending would extend a chain
// that does not verify (SPEC 6).
func TestCertStoreRefusesBrokenChain(t *testing.T) {
	certs := certLogChain(t, 6)
	// Certificates that link to the head but break the batch order or the
	// state, and a Merge whose frontier does not extend the last Merge's.
	ch, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := []byte("chain")
	out, err := ch.Reconcile(&State{}, []Event{{ID: ID64(777), NodeID: 7, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}})
	if err != nil {
		t.Fatal(err)
	}
	head := wantAnchor(certs)
	mk := func(batch uint64, prior Hash, frontier *Hash) *Certificate {
		o := out
		r := *o.Result
		m := *r.Merge
		r.Merge, o.Result = &m, &r
		r.PriorStateHash = prior
		if frontier != nil {
			m.FrontierDigest = *frontier
		}
		c, err := Certify(o, DefaultBinding(), BatchMeta{BatchID: batch}, head.CertHash, certLogKey())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wrongFrontier := Hash{1}
	garbage := lfPayload(3, 50)
	tests := []struct {
		name  string
		log   []*Certificate
		index int
		err   error
	}{
		{"last duplicated", append(slices.Clone(certs), certs[5]), 6, ErrChainLink},
		{"two swapped", []*Certificate{certs[0], certs[1], certs[3], certs[2], certs[4], certs[5]}, 2, ErrChainLink},
		{"one dropped", []*Certificate{certs[0], certs[1], certs[3], certs[4], certs[5]}, 2, ErrChainLink},
		{"first dropped", certs[1:], 0, ErrChainLink},
		{"batch id repeated", append(slices.Clone(certs), mk(head.BatchID, head.MergedStateHash, nil)), 6, ErrBatchOrder},
		{"prior state", append(slices.Clone(certs), mk(head.BatchID+1, Hash{}, nil)), 6, ErrChainState},
		{"frontier", append(slices.Clone(certs), mk(head.BatchID+1, head.MergedStateHash, &wrongFrontier)), 6, ErrChainState},
	}
	for _, tc := range tests {
		for _, tail := range [][]byte{nil, garbage} {
			dir, b := writeCertLog(t, tc.log, tail)
			s, err := OpenCertStore(dir, certLogHeader(), nil)
			var ce *ChainError
			var le *CertLogError
			if s != nil || !errors.Is(err, tc.err) || !errors.As(err, &ce) || ce.Index != tc.index || !errors.As(err, &le) {
				t.Fatalf("%s, %d-byte tail: OpenCertStore = %v, %v; want %v at certificate %d", tc.name, len(tail), s, err, tc.err, tc.index)
			}
			if want := int64(framelog.HeaderSize); tc.index > 0 {
				for _, c := range tc.log[:tc.index] {
					want += 12 + int64(len(c.Bytes()))
				}
				if le.Offset != want {
					t.Errorf("%s: error at offset %d, want %d", tc.name, le.Offset, want)
				}
			}
			if got := lfReadFile(t, filepath.Join(dir, "cert.log")); !bytes.Equal(got, b) {
				t.Fatalf("%s, %d-byte tail: a refused OpenCertStore changed cert.log", tc.name, len(tail))
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("%s: directory holds %d files after a refused open, want cert.log alone", tc.name, len(ents))
			}
		}
	}
	// The same chain whole opens, and a torn tail after it is cut.
	dir, _ := writeCertLog(t, certs, garbage)
	s := openStore(t, dir, framelog.SyncBatch)
	defer s.Close()
	if s.TornTail() != int64(len(garbage)) {
		t.Errorf("TornTail() = %d, want %d", s.TornTail(), len(garbage))
	}
	checkStore(t, "whole chain", s, dir, certs)
}

// obstructionOutputs returns n obstructions decided from genesis, each over
// an event of its own whose payload hash is wrong (2001): any of them
// continues any chain of obstructions.
func obstructionOutputs(tb testing.TB, n int) []Output {
	tb.Helper()
	ch, err := NewChecker(&CheckerOptions{Workers: 1})
	if err != nil {
		tb.Fatal(err)
	}
	outs := make([]Output, n)
	for i := range outs {
		p := []byte(fmt.Sprintf("obstruction %d", i))
		out, err := ch.Reconcile(&State{}, []Event{{ID: ID64(uint64(i + 1)), NodeID: 1, StreamID: 1, Lamport: 1, Deps: []EventID{}, Payload: p}})
		if err != nil || out.Result.Kind != KindObstruction {
			tb.Fatalf("Reconcile = %v, %v; want an obstruction", out.Result, err)
		}
		outs[i] = out
	}
	return outs
}

// Goroutines certifying into one store at once each get their certificate
// appended exactly once, on a chain that verifies: CertifyAppend takes the
// head, certifies and appends under one lock. A goroutine that lost the
// race for a batch id retries with the next one. Run it with -race.
func TestCertStoreCertifyAppendConcurrent(t *testing.T) {
	const workers, each = 4, 8
	outs := obstructionOutputs(t, workers*each)
	dir := t.TempDir()
	s := openStore(t, dir, framelog.SyncBatch)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for k := range each {
				out := outs[w*each+k]
				for {
					meta := BatchMeta{BatchID: s.Head().BatchID + 1, ReplaySeed: uint64(w), CreatedAtNs: uint64(k)}
					c, err := s.CertifyAppend(out, DefaultBinding(), meta, certLogKey())
					if errors.Is(err, ErrBatchOrder) {
						continue // another goroutine took that batch id
					}
					if err != nil {
						errs <- err
						return
					}
					if c.WitnessHash != out.Result.WitnessHash || c.BatchID != meta.BatchID {
						errs <- fmt.Errorf("CertifyAppend returned a certificate of another batch")
						return
					}
					break
				}
				// Readers run beside the appends.
				s.Lookup(CertID{})
				s.LookupBatch(uint64(k))
				s.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("CertifyAppend = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, framelog.SyncBatch)
	defer s.Close()
	if a, err := s.VerifyAll(certLogRing(), DefaultBinding()); err != nil || s.Len() != workers*each {
		t.Fatalf("after concurrent appends: %d certificates, VerifyAll = %+v, %v", s.Len(), a, err)
	}
	seen := map[Hash]int{}
	for i, c := range s.All() {
		if c.BatchID != uint64(i+1) {
			t.Errorf("certificate %d has batch id %d, want %d", i, c.BatchID, i+1)
		}
		seen[c.WitnessHash]++
	}
	for i, out := range outs {
		if seen[out.Result.WitnessHash] != 1 {
			t.Errorf("obstruction %d certified %d times, want once", i, seen[out.Result.WitnessHash])
		}
	}
}

// CertifyAppend refuses, appending nothing and leaving the store usable,
// what Certify refuses and a certificate that would not continue the chain.
func TestCertStoreCertifyAppendRefusals(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, framelog.SyncBatch)
	defer s.Close()
	ch, _ := NewChecker(nil)
	p := []byte("merge")
	merge, err := ch.Reconcile(&State{}, []Event{{ID: ID64(500), NodeID: 5, StreamID: 1, Lamport: 1, PayloadHash: PayloadHash(p), Deps: []EventID{}, Payload: p}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.CertifyAppend(merge, DefaultBinding(), BatchMeta{BatchID: 1}, certLogKey())
	if err != nil || first.PrevCertHash != (Hash{}) {
		t.Fatalf("CertifyAppend(first) = %v, %v", first, err)
	}
	head := s.Head()
	// An obstruction after the merge, and one from genesis, whose prior
	// state is not the head's.
	next, err := ch.Reconcile(merge.Result.Merge.Next, []Event{{ID: ID64(501), NodeID: 5, StreamID: 1, Lamport: 2, Deps: []EventID{}, Payload: p}})
	if err != nil || next.Result.Kind != KindObstruction {
		t.Fatalf("Reconcile = %v, %v", next.Result, err)
	}
	stale := obstructionOutputs(t, 1)[0]
	other := DefaultBinding()
	other.SchemaVersion++
	for _, tc := range []struct {
		name   string
		out    Output
		want   Binding
		meta   BatchMeta
		signer crypto.Signer
		err    error
	}{
		{"batch id repeated", next, DefaultBinding(), BatchMeta{BatchID: head.BatchID}, certLogKey(), ErrBatchOrder},
		{"batch id 0", next, DefaultBinding(), BatchMeta{}, certLogKey(), ErrCannotCertify},
		{"prior state", stale, DefaultBinding(), BatchMeta{BatchID: head.BatchID + 1}, certLogKey(), ErrChainState},
		{"binding", next, other, BatchMeta{BatchID: head.BatchID + 1}, certLogKey(), ErrBindingMismatch},
		{"no signer", next, DefaultBinding(), BatchMeta{BatchID: head.BatchID + 1}, nil, ErrNotEd25519},
	} {
		if c, err := s.CertifyAppend(tc.out, tc.want, tc.meta, tc.signer); c != nil || !errors.Is(err, tc.err) {
			t.Errorf("CertifyAppend(%s) = %v, %v; want %v", tc.name, c, err, tc.err)
		}
	}
	if s.Head() != head || s.Len() != 1 || s.Err() != nil {
		t.Fatalf("refusals changed the store: Head() = %+v, Len() = %d, Err() = %v", s.Head(), s.Len(), s.Err())
	}
	// Then the next batch goes in, linked to the head.
	c, err := s.CertifyAppend(next, DefaultBinding(), BatchMeta{BatchID: head.BatchID + 5}, certLogKey())
	if err != nil || c.PrevCertHash != head.CertHash {
		t.Fatalf("CertifyAppend = %v, %v; want a certificate linked to the head", c, err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkStore(t, "after CertifyAppend", s, dir, []*Certificate{first, c})
}

// crashLog builds the bytes of a cert.log holding certs, as the store writes
// it.
func crashLog(certs []*Certificate) []byte {
	b, _ := certLogHeader().AppendBinary(nil)
	for _, c := range certs {
		b = appendFrame(b, framelog.FrameCert, c.Bytes())
	}
	return b
}

// crashImage writes a directory as a crash may leave it: cert.log holding
// log, and the side files as given (nil: missing).
func crashImage(t *testing.T, log, idx, hashes []byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range map[string][]byte{"cert.log": log, "cert.idx": idx, "cert.hash": hashes} {
		if b == nil && name != "cert.log" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// reopenAndContinue opens the store in dir, checks that it holds exactly
// certs[:n] and cut off torn bytes, then appends the rest of certs, and
// checks the whole chain after another reopen.
func reopenAndContinue(t *testing.T, what, dir string, certs []*Certificate, n int, torn int64) {
	t.Helper()
	s := openStore(t, dir, framelog.SyncBatch)
	if s.TornTail() != torn {
		t.Errorf("%s: TornTail() = %d, want %d", what, s.TornTail(), torn)
	}
	checkStore(t, what, s, dir, certs[:n])
	appendAll(t, s, certs[n:])
	if err := s.Close(); err != nil {
		t.Fatalf("%s: Close() = %v", what, err)
	}
	s = openStore(t, dir, framelog.SyncBatch)
	defer s.Close()
	checkStore(t, what+", continued", s, dir, certs)
}

// TestCertStoreCrashDuringAppend records, through the file-system seam,
// what the store writes and syncs while it appends one certificate after k
// synced ones, and crashes it at every byte of that append: the new frame
// cut after each of its bytes, then followed by garbage or by zeros (a write
// that came back as such). Every crash reopens to exactly the synced
// certificates, or those and the new one when its frame is whole, and the
// chain continues. In -short mode the cuts inside the payload are sampled.
func TestCertStoreCrashDuringAppend(t *testing.T) {
	longTest(t)
	const k = 4
	certs := certLogChain(t, k+2)
	for name, policy := range map[string]framelog.SyncPolicy{"framelog.SyncBatch": framelog.SyncBatch, "framelog.SyncAlways": framelog.SyncAlways} {
		t.Run(name, func(t *testing.T) {
			dir := scratchDir(t)
			rec := newRecFS()
			s, err := openCertStore(rec, dir, certLogHeader(), &framelog.WriterOptions{Sync: policy})
			if err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(dir, "cert.log")
			appendAll(t, s, certs[:k])
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			before := rec.Ops()
			m := newFSModel(nil)
			m.apply(before...)
			// What Sync reported durable is durable: the header and the
			// k frames, and cert.log's directory entry, synced after the
			// file was created and before any frame was written.
			durable := m.durable[logPath]
			if !bytes.Equal(durable, crashLog(certs[:k])) {
				t.Fatalf("after Sync the durable cert.log holds %d bytes, want the %d of %d certificates", len(durable), len(crashLog(certs[:k])), k)
			}
			dirSynced := false
			for _, op := range before {
				if op.kind == "syncdir" && op.path == dir {
					dirSynced = true
				}
				if op.kind == "write" && op.path == logPath && op.off >= framelog.HeaderSize && !dirSynced {
					t.Fatalf("a frame was written before the directory holding the new cert.log was synced")
				}
			}
			idx, hashes := m.content[filepath.Join(dir, "cert.idx")], m.content[filepath.Join(dir, "cert.hash")]

			if err := s.Append(certs[k]); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			// The append wrote exactly the new frame after the durable
			// bytes, then synced it.
			var frame []byte
			synced := false
			for _, op := range rec.Ops()[len(before):] {
				if op.path != logPath {
					continue
				}
				if op.kind == "sync" {
					synced = true
					break
				}
				if op.kind != "write" || op.off != int64(len(durable)+len(frame)) {
					t.Fatalf("append: %s of cert.log at %d, want writes after byte %d", op.kind, op.off, len(durable)+len(frame))
				}
				frame = append(frame, op.data...)
			}
			if want := appendFrame(nil, framelog.FrameCert, certs[k].Bytes()); !synced || !bytes.Equal(frame, want) {
				t.Fatalf("append wrote %d bytes (synced %v), want the %d-byte frame, synced", len(frame), synced, len(want))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			garbage := lfPayload(11, 300)
			zeros := make([]byte, 512)
			for cut := 0; cut <= len(frame); cut++ {
				if testing.Short() && cut > framelog.FrameHeaderLen+2 && cut < len(frame)-3 && cut%29 != 0 {
					continue
				}
				for name, tail := range map[string][]byte{"": nil, "garbage": garbage, "zeros": zeros} {
					what := fmt.Sprintf("frame cut at %d of %d, %s tail", cut, len(frame), name)
					image := append(append(bytes.Clone(durable), frame[:cut]...), tail...)
					n, torn := k, int64(cut+len(tail))
					if cut == len(frame) {
						n, torn = k+1, int64(len(tail))
					}
					reopenAndContinue(t, what, crashImage(t, image, idx, hashes), certs, n, torn)
				}
			}
		})
	}
}

// A write or fsync that fails in the middle of an append fails the store;
// whatever it left in cert.log, a reopen holds exactly the certificates
// synced before, or the new one too when its frame reached the file whole,
// and the chain continues.
func TestCertStoreFailedAppend(t *testing.T) {
	const k = 3
	certs := certLogChain(t, k+2)
	frameLen := framelog.FrameHeaderLen + len(certs[k].Bytes())
	eio := errors.New("input/output error")
	for _, tc := range []struct {
		name  string
		kind  string // the operation on cert.log that fails
		cut   int    // bytes of a failing write that reach the file
		whole bool   // the new frame reaches the file whole
	}{
		{"write fails", "write", 0, false},
		{"write cut in the frame header", "write", 5, false},
		{"write cut in the payload", "write", frameLen / 2, false},
		{"write cut before the last byte", "write", frameLen - 1, false},
		{"fsync fails", "sync", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, policy := range []framelog.SyncPolicy{framelog.SyncBatch, framelog.SyncAlways} {
				dir := scratchDir(t)
				rec := newRecFS()
				s, err := openCertStore(rec, dir, certLogHeader(), &framelog.WriterOptions{Sync: policy})
				if err != nil {
					t.Fatal(err)
				}
				logPath := filepath.Join(dir, "cert.log")
				appendAll(t, s, certs[:k])
				if err := s.Sync(); err != nil {
					t.Fatal(err)
				}
				armed := true
				rec.fail = func(op fsOp) (int, error) {
					if armed && op.path == logPath && op.kind == tc.kind {
						armed = false
						return tc.cut, eio
					}
					return 0, nil
				}
				err = s.Append(certs[k])
				if err == nil {
					err = s.Sync()
				}
				if !errors.Is(err, framelog.ErrWriterFailed) || !errors.Is(err, eio) {
					t.Fatalf("%v: append with a failing %s = %v, want framelog.ErrWriterFailed", policy, tc.kind, err)
				}
				if got := s.Close(); got != err {
					t.Fatalf("%v: Close() = %v, want %v", policy, got, err)
				}
				m := newFSModel(nil)
				m.apply(rec.Ops()...)
				image := m.content[logPath]
				n, torn := k, int64(tc.cut)
				if tc.whole {
					n, torn = k+1, 0
				}
				if !bytes.HasPrefix(image, crashLog(certs[:k])) {
					t.Fatalf("%v: cert.log lost synced certificates", policy)
				}
				reopenAndContinue(t, fmt.Sprintf("%v, %s", policy, tc.name), crashImage(t, image, nil, nil), certs, n, torn)
			}
		})
	}
}

// OpenCertStore reads cert.log once, as it recovers it, and syncs it.
func TestCertStoreOpenReadsOnce(t *testing.T) {
	certs := certLogChain(t, 40)
	dir := writeLog(t, certs)
	path := filepath.Join(dir, "cert.log")
	size := int64(len(lfReadFile(t, path)))
	rec := newRecFS()
	s, err := openCertStore(rec, dir, certLogHeader(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := rec.read[path]; got != size {
		t.Errorf("OpenCertStore read %d bytes of cert.log, want its %d", got, size)
	}
	// It changes nothing; it syncs cert.log once, so that Synced counts
	// only durable certificates even after a writer died unsynced.
	syncs := 0
	for _, op := range rec.Ops() {
		if op.kind == "sync" && op.path == path {
			syncs++
			continue
		}
		t.Errorf("OpenCertStore of a sound log did %s %s", op.kind, op.path)
	}
	if syncs != 1 {
		t.Errorf("OpenCertStore synced cert.log %d times, want once", syncs)
	}
}
