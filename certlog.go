package omega

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Names of the files of a certificate log directory (SPEC 6).
const (
	certLogName  = "cert.log"
	certIdxName  = "cert.idx"
	certHashName = "cert.hash"
)

// CertStoreOptions configures a [CertStore]. A nil *CertStoreOptions and zero
// fields mean the defaults.
type CertStoreOptions struct {
	// Sync says when appended certificates become durable: SyncBatch (the
	// default) when the caller calls [CertStore.Sync], SyncAlways at every
	// Append, SyncNever never.
	Sync SyncPolicy
	// MaxFrameLen caps frame_len in cert.log, as in [WriterOptions].
	MaxFrameLen int
}

// CertLogError reports a frame of cert.log that does not hold a certificate.
// It unwraps to ErrCorrupt for a frame of another type than CERT, and to the
// decoding error (wrapping ErrMalformedCertificate) for an envelope that does
// not decode.
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
// The store holds every certificate in memory, decoded. Append refuses a
// certificate that does not extend the chain; full verification (signatures,
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
// may not be in cert.log after a reopen.
//
// A CertStore is safe for concurrent use. It holds the appender's lock on
// cert.log (see [OpenFrameLog]) from OpenCertStore to Close, so a second
// store of the same directory, in this process or another, is refused with
// an error wrapping [ErrLocked] before it reads or writes any file.
type CertStore struct {
	dir    string
	policy SyncPolicy

	mu    sync.RWMutex
	w     *FrameWriter
	idx   *os.File
	hashf *os.File
	// Side-file lines appended to cert.log but not yet written out.
	pendIdx  []byte
	pendHash []byte
	certs    []*Certificate
	hashes   []Hash
	offsets  []int64
	byID     map[CertID]int
	head     ChainAnchor
	torn     int64
	err      error // sticky failure
	closed   bool
}

// OpenCertStore opens the certificate log in directory dir, creating the
// directory and cert.log (with header hdr: the checker's schema version and
// SchemaHash) when they do not exist.
//
// cert.log is opened with [OpenFrameLog]: a torn tail, the normal trace of a
// crash, is truncated (see [CertStore.TornTail]); corruption, a bad header
// and a header other than hdr are refused, leaving the file untouched. Every
// frame must be a CERT frame holding an envelope that decodes, else the error
// is a [*CertLogError] naming its offset. Then cert.idx and cert.hash are
// compared with what cert.log says and, when missing or different in any
// byte, rewritten atomically (a temporary file, fsync, rename, directory
// fsync).
func OpenCertStore(dir string, hdr Header, opts *CertStoreOptions) (*CertStore, error) {
	var o CertStoreOptions
	if opts != nil {
		o = *opts
	}
	if o.Sync > SyncNever {
		return nil, errUnknownPolicy(o.Sync)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, certLogName)
	var before int64
	if fi, err := os.Stat(path); err == nil {
		before = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	w, err := OpenFrameLog(path, hdr, &WriterOptions{Sync: o.Sync, MaxFrameLen: o.MaxFrameLen})
	if err != nil {
		return nil, err
	}
	s := &CertStore{dir: dir, policy: o.Sync, w: w, byID: make(map[CertID]int), torn: max(0, before-w.Size())}
	if err := s.load(path, o.MaxFrameLen); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.openSideFiles(); err != nil {
		w.Close()
		return nil, err
	}
	return s, nil
}

// load reads the certificates of cert.log, whose valid prefix the writer has
// just established.
func (s *CertStore) load(path string, maxLen int) error {
	if s.w.Size() == HeaderSize {
		return nil // new, empty, or a creation cut short and written anew
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if int64(len(b)) != s.w.Size() {
		return fmt.Errorf("omega: cert.log changed while opening: %d bytes, want %d", len(b), s.w.Size())
	}
	sc := NewFrameScanner(b, &ReadOptions{MaxFrameLen: maxLen})
	for {
		f, err := sc.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if f.Type != FrameCert {
			return &CertLogError{Offset: f.Offset, Err: fmt.Errorf("%w: %v frame in a certificate log", ErrCorrupt, f.Type)}
		}
		c, err := DecodeCertificate(f.Payload)
		if err != nil {
			return &CertLogError{Offset: f.Offset, Err: err}
		}
		s.add(c, c.Hash(), f.Offset)
	}
}

// add records c, whose cert_hash is h, at offset off, and moves the head
// past it.
func (s *CertStore) add(c *Certificate, h Hash, off int64) {
	id := c.ID()
	if _, dup := s.byID[id]; !dup {
		s.byID[id] = len(s.certs) // the first of repeated ids wins; VerifyAll reports the repeat
	}
	s.certs = append(s.certs, c)
	s.hashes = append(s.hashes, h)
	s.offsets = append(s.offsets, off)
	s.head.CertHash = h
	s.head.BatchID = c.BatchID
	if m := c.Merge; m != nil {
		s.head.MergedStateHash = m.MergedStateHash
		s.head.FrontierDigest = m.FrontierDigest
	}
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
	for i, c := range s.certs {
		idx = appendIdxLine(idx, c.ID(), s.offsets[i])
		hashes = appendHashLine(hashes, i, s.hashes[i])
	}
	rewrote := false
	for _, f := range []struct {
		name string
		want []byte
	}{{certIdxName, idx}, {certHashName, hashes}} {
		path := filepath.Join(s.dir, f.name)
		got, err := os.ReadFile(path)
		if err == nil && bytes.Equal(got, f.want) {
			continue
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := writeTemp(s.dir, f.name, f.want); err != nil {
			return err
		}
		rewrote = true
	}
	if rewrote {
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	var err error
	if s.idx, err = os.OpenFile(filepath.Join(s.dir, certIdxName), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return err
	}
	if s.hashf, err = os.OpenFile(filepath.Join(s.dir, certHashName), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		s.idx.Close()
		return err
	}
	return nil
}

// writeTemp replaces dir/name with data through a synced temporary file and a
// rename. The caller syncs the directory.
func writeTemp(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, name+".tmp*")
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
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
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
// under SyncBatch it is after the next successful Sync. The store keeps its
// own decoded copy of c's envelope.
func (s *CertStore) Append(c *Certificate) error {
	if c == nil {
		return malformed(0, "nil certificate")
	}
	d, err := DecodeCertificate(c.Bytes())
	if err != nil {
		return err
	}
	h := d.Hash()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	next := s.head
	if err := next.next(d, h); err != nil {
		return err
	}
	off, err := s.w.Append(FrameCert, d.Bytes())
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			return err
		}
		s.err = err
		return err
	}
	s.pendIdx = appendIdxLine(s.pendIdx, d.ID(), off)
	s.pendHash = appendHashLine(s.pendHash, len(s.certs), h)
	s.add(d, h, off)
	if s.policy == SyncAlways {
		return s.flushSide()
	}
	return nil
}

func (s *CertStore) usable() error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return ErrWriterClosed
	}
	return nil
}

// flushSide writes the pending side-file lines. The CERT frames they
// describe have been handed to the operating system.
func (s *CertStore) flushSide() error {
	if len(s.pendIdx) > 0 {
		if _, err := s.idx.Write(s.pendIdx); err != nil {
			s.err = fmt.Errorf("%w: %w", ErrWriterFailed, err)
			return s.err
		}
		s.pendIdx = s.pendIdx[:0]
	}
	if len(s.pendHash) > 0 {
		if _, err := s.hashf.Write(s.pendHash); err != nil {
			s.err = fmt.Errorf("%w: %w", ErrWriterFailed, err)
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
	return s.flushSide()
}

// Close syncs as Sync does and closes the files. A failed store still closes
// its files and returns its error. Closing twice returns ErrWriterClosed.
func (s *CertStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrWriterClosed
	}
	s.closed = true
	err := s.w.Close()
	if err == nil && s.err == nil {
		err = s.flushSide()
	}
	for _, f := range []*os.File{s.idx, s.hashf} {
		if cerr := f.Close(); err == nil && s.err == nil {
			err = cerr
		}
	}
	if s.err != nil {
		return s.err
	}
	return err
}

// Len returns the number of certificates in the store.
func (s *CertStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.certs)
}

// Lookup returns the certificate with cert_id id. The certificate is shared:
// the caller must not modify it.
func (s *CertStore) Lookup(id CertID) (*Certificate, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return s.certs[i], true
}

// All returns the certificates in log order with their positions, from 0.
// It yields those present when iteration starts; the certificates are
// shared, and the caller must not modify them.
func (s *CertStore) All() iter.Seq2[int, *Certificate] {
	return func(yield func(int, *Certificate) bool) {
		for i, c := range s.snapshot() {
			if !yield(i, c) {
				return
			}
		}
	}
}

// snapshot returns the certificates appended so far. Entries are never
// changed once appended, so the slice stays valid after the lock is released.
func (s *CertStore) snapshot() []*Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.certs[:len(s.certs):len(s.certs)]
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
// cert.log in recovering it (a torn tail, or whatever followed a torn
// header), 0 when it ended cleanly. A torn tail is the normal trace of a
// crash during an append (SPEC 6); the complete certificates before it are
// all in the store.
func (s *CertStore) TornTail() int64 { return s.torn }

// VerifyAll verifies every certificate of the store as a chain from genesis
// with [VerifyChain], against ring and the expected binding, and returns
// its result: the anchor after the last certificate that passed and the
// first failure, a [*ChainError] naming its position.
func (s *CertStore) VerifyAll(ring KeyRing, want Binding) (ChainAnchor, error) {
	return VerifyChain(s.snapshot(), ring, want, nil)
}
