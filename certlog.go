package omega

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/omega-sheaf/omega/framelog"
)

// Names of the files of a certificate log directory (SPEC 6).
const (
	certLogName  = "cert.log"
	certIdxName  = "cert.idx"
	certHashName = "cert.hash"
)

// CertLogError reports a frame of cert.log that does not hold a certificate,
// or holds one that does not continue the chain. It unwraps to ErrCorrupt
// for a frame of another type than CERT (or a certificate changed in the
// file since it was opened), to the decoding error (wrapping
// ErrMalformedCertificate) for an envelope that does not decode, and to a
// [*ChainError] for a certificate that breaks the chain.
type CertLogError struct {
	Offset int64 // file offset of the frame's first byte
	Err    error
}

func (e *CertLogError) Error() string {
	return fmt.Sprintf("omega: cert.log frame at offset %d: %v", e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *CertLogError) Unwrap() error { return e.Err }

// CertStore is a certificate log directory (SPEC 6): cert.log, a .omega frame
// log of CERT frames and the source of truth, and two text side files that
// are a cache of it, rebuilt from it on open when missing or inconsistent:
// cert.idx, one line "<decimal cert_id> <decimal offset>\n" per certificate,
// the offset of its CERT frame from the start of cert.log, and cert.hash, one
// line "<decimal seq> <64 lowercase hex cert_hash>\n" per certificate, seq
// counting from 0.
//
// The store is made to stay open for a long life: it keeps in memory, per
// certificate, only where its frame is, its cert_hash, cert_id and batch
// id, and the head of the chain; [CertStore.Lookup] and [CertStore.All]
// read and decode certificates from cert.log when asked (certificates
// appended but not yet written out are read from the writer's buffer).
// [CertStore.LookupBatch] finds a batch's certificate by binary search.
// Append refuses a certificate that does not extend the chain, and
// [CertStore.CertifyAppend] certifies a batch and appends its certificate
// after the head in one step, so goroutines sharing the store cannot race
// between reading the head and appending. Full verification (signatures,
// binding, digests) is [CertStore.VerifyAll]'s work.
//
// The side files are written after the CERT frames they describe reach the
// operating system (at Sync, or at every Append under SyncAlways), so after a
// crash they may lag behind cert.log, never run ahead of its durable part
// under SyncAlways and SyncBatch; OpenCertStore rewrites them whatever they
// hold when they differ from what cert.log says.
//
// The first failed write or fsync puts the store in a failed state: every
// later Append, Sync and Close returns that error, which wraps
// ErrWriterFailed. A certificate whose Append returned such an error may or
// may not be in cert.log after a reopen. A certificate that cannot be read
// back (an I/O error, or cert.log changed under the store) fails the store
// too: Lookup reports it missing, All stops before it, and [CertStore.Err]
// and every later Append, Sync and Close return the error.
//
// A CertStore is safe for concurrent use. It holds the appender's lock on
// cert.log (see [framelog.Open]) from OpenCertStore to Close, so a second
// store of the same directory, in this process or another, is refused with
// an error wrapping [ErrLocked] before it reads or writes any file.
type CertStore struct {
	dir    string
	policy framelog.SyncPolicy
	fsys   fileSystem

	mu    sync.RWMutex
	w     *framelog.Writer
	idx   file
	hashf file
	// Side-file lines appended to cert.log but not yet written out.
	pendIdx  []byte
	pendHash []byte
	certs    []certEntry
	byID     map[CertID]int
	head     ChainAnchor
	base     ChainAnchor // where the store's first certificate continues a chain from; genesis but in a kernel
	torn     int64
	synced   int   // the certificates, from the first, that are durable
	err      error // sticky failure of a write
	closed   bool

	rmu  sync.Mutex
	rerr error // sticky failure of a read, which readers meet under mu's read lock
}

// certEntry is what a CertStore keeps of one certificate: enough to find
// it in cert.log, to check what it reads there, and to answer Lookup and
// the side files.
type certEntry struct {
	off   int64  // offset of the CERT frame in cert.log
	size  uint32 // length of the envelope, the frame's payload
	batch uint64
	id    CertID
	hash  Hash // cert_hash
}

// OpenCertStore opens the certificate log in directory dir, creating the
// directory and cert.log (with header hdr: the checker's schema version and
// schema hash, [Binding.Header]) when they do not exist.
//
// opts configures the writer of cert.log; nil means the defaults. Its Sync
// says when appended certificates become durable: SyncBatch (the default)
// when the caller calls [CertStore.Sync], SyncAlways at every Append,
// SyncNever never. Its FS, when set, is the file system of every file the
// store touches, so it must also have the ReadFile, ReadDir, Stat, Rename,
// Remove and MkdirAll methods of package os, or the store is refused; its
// Visit is the store's own and ignored.
//
// cert.log is opened with [framelog.Open], so it is locked first (another
// appender holding it is refused with [ErrLocked]), then read once, each
// frame checked as recovery meets it: a torn tail, the normal trace of a
// crash, is truncated (see [CertStore.TornTail]); corruption, a bad header
// and a header other than hdr are refused, leaving the file untouched.
// Every frame must be a CERT frame holding an envelope that decodes, else
// the error is a [*CertLogError] naming its offset.
//
// Each certificate must also continue the chain, checked as [VerifyChain]
// checks it but without signatures, binding or body digests: its
// prev_cert_hash is the previous certificate's cert_hash, its batch id is
// greater than the previous one, its prior_state_hash is the
// merged_state_hash of the last Merge before it and a Merge's
// frontier_digest extends the last Merge's. A certificate repeated, moved
// or missing is refused before anything is truncated or appended, with a
// [*CertLogError] naming its offset around a [*ChainError] naming its
// position, which wraps [ErrChainLink], [ErrBatchOrder] or
// [ErrChainState]: appending after it would extend a chain that no longer
// verifies.
//
// Then cert.idx and cert.hash are compared with what cert.log says and,
// when missing or different in any byte, rewritten atomically (a temporary
// file, fsync, rename, directory fsync). Before that, the temporary files a
// killed process left in dir are removed: files named
// ".omega-tmp-<16 hex digits>-<name>" that no live writer holds locked,
// the pattern omega gives every temporary file it writes, and the
// "cert.idx.tmp<digits>" and "cert.hash.tmp<digits>" of earlier versions;
// no other file is touched.
func OpenCertStore(dir string, hdr framelog.Header, opts *framelog.WriterOptions) (*CertStore, error) {
	fsys, err := fileSystemOf(opts, "OpenCertStore")
	if err != nil {
		return nil, err
	}
	return openCertStore(fsys, dir, hdr, opts)
}

func openCertStore(fsys fileSystem, dir string, hdr framelog.Header, opts *framelog.WriterOptions) (*CertStore, error) {
	return openCertStoreAt(fsys, dir, hdr, opts, ChainAnchor{})
}

// openCertStoreAt opens a store whose first certificate continues the chain
// at base rather than genesis: a kernel's certificates after damage to an
// earlier store (see Kernel, Safe mode).
func openCertStoreAt(fsys fileSystem, dir string, hdr framelog.Header, opts *framelog.WriterOptions, base ChainAnchor) (*CertStore, error) {
	var o framelog.WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.Sync > framelog.SyncNever {
		return nil, fmt.Errorf("%w %d", framelog.ErrUnknownSyncPolicy, o.Sync)
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &CertStore{dir: dir, policy: o.Sync, fsys: fsys, byID: make(map[CertID]int), head: base, base: base}
	o.FS, o.Visit = fsys, s.load
	w, err := framelog.Open(filepath.Join(dir, certLogName), hdr, &o)
	if err != nil {
		return nil, err
	}
	s.w, s.torn = w, w.Cut()
	if len(s.certs) > 0 {
		// What the file holds may still be only in the operating
		// system's cache (a writer killed before its Sync): make it
		// durable before Synced counts it.
		if err := w.Sync(); err != nil {
			w.Close()
			return nil, err
		}
	}
	s.synced = len(s.certs)
	// Under the lock on cert.log, no other store of dir is writing a side
	// file: a temporary file of omega's that no one holds is stale.
	removeStaleTemps(fsys, dir, certIdxName, certHashName)
	if err := s.openSideFiles(); err != nil {
		w.Close()
		return nil, err
	}
	return s, nil
}

// load takes in the frame f of cert.log as recovery reads it: the
// certificate it holds must continue the chain (see OpenCertStore).
func (s *CertStore) load(f framelog.Frame) error {
	if f.Type != framelog.FrameCert {
		return &CertLogError{Offset: f.Offset, Err: fmt.Errorf("%w: %v frame in a certificate log", framelog.ErrCorrupt, f.Type)}
	}
	c, err := decodeCertificate(f.Payload) // aliases the reader's buffer: not kept
	if err != nil {
		return &CertLogError{Offset: f.Offset, Err: err}
	}
	h := c.Hash()
	if err := s.head.next(c, h); err != nil {
		return &CertLogError{Offset: f.Offset, Err: &ChainError{Index: len(s.certs), Err: err}}
	}
	s.add(c, h, f.Offset)
	return nil
}

// add records c, whose cert_hash is h, at offset off. It keeps nothing of c
// itself; the caller has moved the head past c.
func (s *CertStore) add(c *Certificate, h Hash, off int64) {
	id := c.ID()
	if _, dup := s.byID[id]; !dup {
		s.byID[id] = len(s.certs) // the first of repeated ids wins
	}
	s.certs = append(s.certs, certEntry{off: off, size: uint32(len(c.envelope)), batch: c.BatchID, id: id, hash: h})
}

func appendIdxLine(b []byte, id CertID, off int64) []byte {
	b = append(b, id.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, off, 10)
	return append(b, '\n')
}

func appendHashLine(b []byte, seq int, h Hash) []byte {
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = hex.AppendEncode(b, h[:])
	return append(b, '\n')
}

// openSideFiles rewrites the side files that differ from cert.log and opens
// both for appending.
func (s *CertStore) openSideFiles() error {
	var idx, hashes []byte
	for i, e := range s.certs {
		idx = appendIdxLine(idx, e.id, e.off)
		hashes = appendHashLine(hashes, i, e.hash)
	}
	rewrote := false
	for _, f := range []struct {
		name string
		want []byte
	}{{certIdxName, idx}, {certHashName, hashes}} {
		path := filepath.Join(s.dir, f.name)
		got, err := s.fsys.ReadFile(path)
		if err == nil && bytes.Equal(got, f.want) {
			continue
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := writeTempFS(s.fsys, s.dir, f.name, f.want); err != nil {
			return err
		}
		rewrote = true
	}
	if rewrote {
		if err := s.fsys.SyncDir(s.dir); err != nil {
			return err
		}
	}
	var err error
	if s.idx, err = s.fsys.OpenFile(filepath.Join(s.dir, certIdxName), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return err
	}
	if s.hashf, err = s.fsys.OpenFile(filepath.Join(s.dir, certHashName), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		s.idx.Close()
		return err
	}
	return nil
}

// Append appends c to the log after the head. It refuses, without failing
// the store, a certificate whose envelope does not decode
// (ErrMalformedCertificate) and one that does not extend the chain: a
// prev_cert_hash other than the head's cert_hash (ErrChainLink), a batch id
// not greater than the head's (ErrBatchOrder), or a prior_state_hash or
// frontier_digest that does not follow the last Merge (ErrChainState), as
// [VerifyChain] checks them. It does not check the signature or binding.
//
// Under SyncAlways the certificate is durable when Append returns nil;
// under SyncBatch it is after the next successful Sync. The store keeps
// nothing of c: Lookup and All read it back from cert.log.
func (s *CertStore) Append(c *Certificate) error {
	if c == nil {
		return malformed(0, "nil certificate")
	}
	// The envelope is decoded again, aliased: c's fields may have been
	// changed, its envelope may not.
	d, err := decodeCertificate(c.Bytes())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	return s.appendLocked(d, d.Hash())
}

// appendOwn appends c, a certificate made by [Certify] in this process and
// shared with no other goroutine, whose cert_hash is h, as Append does,
// without decoding its envelope or hashing it again.
func (s *CertStore) appendOwn(c *Certificate, h Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	return s.appendLocked(c, h)
}

// CertifyAppend certifies out as batch meta.BatchID with [Certify], linked
// to the store's head, and appends the certificate, all under the store's
// lock: no Append or CertifyAppend of another goroutine can come between
// reading the head and appending, so concurrent callers never fork the
// chain. It refuses what Certify refuses and, without failing the store,
// a certificate that does not continue the chain (a batch id not greater
// than the head's, ErrBatchOrder; a prior_state_hash or frontier_digest that
// does not follow the last Merge, ErrChainState), as Append does; nothing
// is appended then. It returns the certificate, which the caller owns.
// Durability is as for Append.
//
// The signer is called with the lock held: a slow one (an HSM, a KMS)
// holds up the store's other callers, readers included, for as long.
func (s *CertStore) CertifyAppend(out Output, want Binding, meta BatchMeta, signer crypto.Signer) (*Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	c, err := Certify(out, want, meta, s.head.CertHash, signer)
	if err != nil {
		return nil, err
	}
	if err := s.appendLocked(c, c.Hash()); err != nil {
		return nil, err
	}
	return c, nil
}

// appendLocked appends d, a decoded certificate whose cert_hash is h, after
// the head. The caller holds mu and has checked that the store is usable.
func (s *CertStore) appendLocked(d *Certificate, h Hash) error {
	next := s.head
	if err := next.next(d, h); err != nil {
		return err
	}
	off, err := s.w.Append(framelog.FrameCert, d.Bytes())
	if err != nil {
		if errors.Is(err, framelog.ErrFrameTooLarge) {
			return err
		}
		s.err = err
		return err
	}
	s.pendIdx = appendIdxLine(s.pendIdx, d.ID(), off)
	s.pendHash = appendHashLine(s.pendHash, len(s.certs), h)
	s.head = next
	s.add(d, h, off)
	if s.policy == framelog.SyncAlways {
		s.synced = len(s.certs)
		return s.flushSide()
	}
	return nil
}

func (s *CertStore) usable() error {
	if err := s.failure(); err != nil {
		return err
	}
	if s.closed {
		return framelog.ErrWriterClosed
	}
	return nil
}

// failure returns the error that failed the store, a write's or a read's,
// or nil. The caller holds mu, for reading at least.
func (s *CertStore) failure() error {
	if s.err != nil {
		return s.err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.rerr
}

// failRead fails the store with err, met reading a certificate back, unless
// it has failed already. The caller holds mu, for reading at least.
func (s *CertStore) failRead(err error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.rerr == nil {
		s.rerr = err
	}
}

// Err returns the error that failed the store (see [CertStore]), or nil
// while it works. It does not report an Append refused without failing the
// store, nor ErrWriterClosed.
func (s *CertStore) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.failure()
}

// flushSide writes the pending side-file lines. The CERT frames they
// describe have been handed to the operating system.
func (s *CertStore) flushSide() error {
	if len(s.pendIdx) > 0 {
		if _, err := s.idx.Write(s.pendIdx); err != nil {
			s.err = fmt.Errorf("%w: %w", framelog.ErrWriterFailed, err)
			return s.err
		}
		s.pendIdx = s.pendIdx[:0]
	}
	if len(s.pendHash) > 0 {
		if _, err := s.hashf.Write(s.pendHash); err != nil {
			s.err = fmt.Errorf("%w: %w", framelog.ErrWriterFailed, err)
			return s.err
		}
		s.pendHash = s.pendHash[:0]
	}
	return nil
}

// Sync makes every certificate appended so far durable (unless the policy is
// SyncNever), a group commit, then brings the side files up to date.
func (s *CertStore) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.w.Sync(); err != nil {
		s.err = err
		return err
	}
	s.synced = len(s.certs)
	return s.flushSide()
}

// Synced returns how many certificates, from the first, are durable as the
// store's sync policy makes them: those it opened with (synced at
// opening), and those appended before the last successful Sync (under
// SyncAlways, every one Append returned nil for). A transparency
// checkpoint covers no more: a crash could lose the others. Under
// SyncNever nothing is synced, and Synced counts what Sync was called for.
func (s *CertStore) Synced() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.synced
}

// Close syncs as Sync does, closes the files and releases the lock on
// cert.log. A failed store still closes its files and returns its error.
// Closing twice returns ErrWriterClosed. After Close, Len, Head and TornTail
// still answer, but certificates are no longer read: Lookup and LookupBatch
// report false, All yields nothing and VerifyAll returns ErrWriterClosed.
func (s *CertStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return framelog.ErrWriterClosed
	}
	err := s.failure()
	if err == nil {
		// Sync first: the side files are written after the frames
		// they describe reach the operating system.
		if err = s.w.Sync(); err == nil {
			err = s.flushSide()
		} else {
			s.err = err
		}
	}
	s.closed = true
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	for _, f := range []file{s.idx, s.hashf} {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if ferr := s.failure(); ferr != nil {
		return ferr
	}
	return err
}

// LookupBatch returns the certificate of batch batchID, read from cert.log
// and decoded anew: the caller owns it. Batch ids strictly increase along
// the chain, so there is one at most; it is found by binary search. It
// reports false for a batch the store holds no certificate of, and for a
// certificate that cannot be read back, which fails the store (see
// [CertStore.Err]).
func (s *CertStore) LookupBatch(batchID uint64) (*Certificate, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := slices.BinarySearchFunc(s.certs, batchID, func(e certEntry, b uint64) int { return cmp.Compare(e.batch, b) })
	if !ok || s.closed {
		return nil, false
	}
	c, err := s.read(i)
	if err != nil {
		s.failRead(err)
		return nil, false
	}
	return c, true
}

// Len returns the number of certificates in the store.
func (s *CertStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.certs)
}

// Lookup returns the certificate with cert_id id, read from cert.log and
// decoded anew: the caller owns it. It reports false for an id the store
// does not hold, and for a certificate that cannot be read back, which fails
// the store (see [CertStore.Err]).
func (s *CertStore) Lookup(id CertID) (*Certificate, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.byID[id]
	if !ok || s.closed {
		return nil, false
	}
	c, err := s.read(i)
	if err != nil {
		s.failRead(err)
		return nil, false
	}
	return c, true
}

// Position returns the position in log order, from 0, of the certificate
// with cert_id id; it reports false for an id the store does not hold.
func (s *CertStore) Position(id CertID) (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.byID[id]
	return i, ok
}

// read reads certificate i back from cert.log and checks that it is the
// one the store recorded. The caller holds mu, for reading at least.
func (s *CertStore) read(i int) (*Certificate, error) {
	e := s.certs[i]
	b := make([]byte, e.size)
	if _, err := s.w.ReadAt(b, e.off+framelog.FrameHeaderLen); err != nil {
		return nil, &CertLogError{Offset: e.off, Err: fmt.Errorf("reading certificate %d back: %w", i, err)}
	}
	return s.check(i, b)
}

// check decodes the envelope b of certificate i, read back from cert.log,
// and checks its cert_hash against the one recorded. The certificate
// keeps b.
func (s *CertStore) check(i int, b []byte) (*Certificate, error) {
	e := s.certs[i]
	c, err := decodeCertificate(b)
	if err == nil && c.Hash() != e.hash {
		err = fmt.Errorf("%w: certificate %d changed in cert.log since it was opened", framelog.ErrCorrupt, i)
	}
	if err != nil {
		return nil, &CertLogError{Offset: e.off, Err: err}
	}
	return c, nil
}

// readRun is how many bytes of cert.log All and VerifyAll read at once, at
// most (a run always holds one certificate at least).
const readRun = 1 << 20

// readFrom reads certificates from position i on, up to max of them and
// readRun bytes, with one read. On an error it returns the certificates
// before the one that failed. The caller holds mu, for reading at least.
func (s *CertStore) readFrom(i, max int) ([]*Certificate, error) {
	j := i + 1
	for j < len(s.certs) && j-i < max && s.certs[j].off+framelog.FrameHeaderLen+int64(s.certs[j].size)-s.certs[i].off <= readRun {
		j++
	}
	start := s.certs[i].off
	last := s.certs[j-1]
	b := make([]byte, last.off+framelog.FrameHeaderLen+int64(last.size)-start)
	if _, err := s.w.ReadAt(b, start); err != nil {
		return nil, &CertLogError{Offset: start, Err: fmt.Errorf("reading certificates %d to %d back: %w", i, j-1, err)}
	}
	certs := make([]*Certificate, 0, j-i)
	for k := i; k < j; k++ {
		e := s.certs[k]
		p := e.off + framelog.FrameHeaderLen - start
		c, err := s.check(k, b[p:p+int64(e.size):p+int64(e.size)])
		if err != nil {
			return certs, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// All returns the certificates in log order with their positions, from 0,
// read from cert.log in runs as the iteration goes and decoded anew: the
// caller owns them. It yields those present when iteration starts. A
// certificate that cannot be read back fails the store (see
// [CertStore.Err]) and ends the iteration before it.
func (s *CertStore) All() iter.Seq2[int, *Certificate] { return s.From(0) }

// From is All from position first on: it yields nothing when first is
// at or past the end.
func (s *CertStore) From(first int) iter.Seq2[int, *Certificate] {
	return func(yield func(int, *Certificate) bool) {
		n := s.Len()
		for i := max(first, 0); i < n; {
			certs, err := s.run(i, n-i)
			for _, c := range certs {
				if !yield(i, c) {
					return
				}
				i++
			}
			if err != nil {
				return
			}
		}
	}
}

// run reads up to max certificates from position i on, under the read lock,
// failing the store on an error; it then returns those before the one that
// failed.
func (s *CertStore) run(i, max int) ([]*Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, framelog.ErrWriterClosed
	}
	certs, err := s.readFrom(i, max)
	if err != nil {
		s.failRead(err)
	}
	return certs, err
}

// Head returns the chain position after the last certificate: its cert_hash
// and batch id, and the merged_state_hash and frontier_digest of the last
// Merge at or before it; the zero ChainAnchor (genesis) for an empty store.
// It is what the store holds, not what verification established: see
// VerifyAll.
func (s *CertStore) Head() ChainAnchor {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head
}

// TornTail returns the number of bytes OpenCertStore cut off the end of
// cert.log in recovering it (a torn tail, or all of a file whose header was
// torn), 0 when it ended cleanly. A torn tail is the normal trace of a
// crash during an append (SPEC 6); the complete certificates before it are
// all in the store.
func (s *CertStore) TornTail() int64 { return s.torn }

// verifyRun is how many certificates VerifyAll reads and verifies at once:
// a few of VerifyChain's windows.
const verifyRun = 8 * chainWindow

// VerifyAll verifies every certificate of the store, those present when it
// starts, as a chain from genesis with [VerifyChain] (a store a [Kernel]
// started after damage to its previous one continues that one's last sound
// certificate: from there), against ring and the
// expected binding, and returns its result: the anchor after the last
// certificate that passed and the first failure, a [*ChainError] naming its
// position. It reads cert.log in runs, so it holds a few thousand
// certificates in memory at most; a certificate that cannot be read back
// fails the store, and its error is returned after those before it
// verified.
func (s *CertStore) VerifyAll(ring KeyRing, want Binding) (ChainAnchor, error) {
	a := s.base
	n := s.Len()
	for i := 0; i < n; {
		certs, rerr := s.run(i, min(verifyRun, n-i))
		next, err := VerifyChain(context.Background(), certs, ring, want, &ChainOptions{Anchor: a})
		if ce, ok := err.(*ChainError); ok {
			ce.Index += i
		}
		if err != nil {
			return next, err
		}
		if rerr != nil {
			return next, rerr
		}
		a = next
		i += len(certs)
	}
	return a, nil
}

// since returns, in log order, the certificates of the batches after
// batchID, preceded by the last Merge certificate at or before batchID
// when there is one: what a replay from a snapshot whose last batch id is
// batchID checks the log against (see [ReplayOptions].Certificates).
func (s *CertStore) since(batchID uint64) ([]*Certificate, error) {
	s.mu.RLock()
	n := len(s.certs)
	i, _ := slices.BinarySearchFunc(s.certs, batchID+1, func(e certEntry, b uint64) int { return cmp.Compare(e.batch, b) })
	s.mu.RUnlock()
	start := i
	for k := i - 1; k >= 0; k-- {
		c, err := s.run(k, 1)
		if err != nil {
			return nil, err
		}
		if c[0].Kind == KindMerge {
			start = k
			break
		}
	}
	var certs []*Certificate
	for k := start; k < n; {
		run, err := s.run(k, n-k)
		certs = append(certs, run...)
		if err != nil {
			return nil, err
		}
		k += len(run)
	}
	return certs, nil
}
