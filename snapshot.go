// Snapshots (SPEC 7).
//
// A snapshot is a .omega file: the 64-byte header of SPEC 5, one SNAPSHOT
// frame holding the manifest, then the STATE frames, and nothing else.
//
//	+--------+-------------------+-------------+-----+-------------+
//	| header | SNAPSHOT manifest | STATE frame | ... | STATE frame |
//	+--------+-------------------+-------------+-----+-------------+
//	0        64                  308
//
// The manifest, 232 bytes, all integers little-endian:
//
//	offset  size  field
//	     0     8  snapshot_id            u64
//	     8     8  created_at_ns          u64
//	    16     8  base_checkpoint_offset u64, at least 64
//	    24     8  last_batch_id          u64
//	    32    32  frontier_digest
//	    64    32  merged_state_hash
//	    96    32  stream_heads_digest    the heads digest over every head
//	   128     6  checker_version        3 x u16
//	   134     2  schema_version         u16, equal to the header's
//	   136    32  schema_hash            equal to the header's
//	   168    32  catalog_hash
//	   200    32  state_digest           D("snapshot state", STATE payloads)
//
// A STATE payload is section u8 | 3 zero bytes | record_count u32 |
// records, with sections in this order:
//
//	1  known ids     event_id u128 | lamport u64                           24 bytes, ascending id
//	2  stream heads  node u32 | stream u16 | lamport u64 | event_id u128   30 bytes, ascending (node, stream)
//	3  pending       one event's canonical encoding, record_count 1        canonical order
//
// Sections 1 and 2 are cut into frames of 65,536 records, every frame of a
// section full except its last; a section with no records has no frame.
// These constants are frozen wire format.

package omega

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
)

// Frozen wire format: the manifest and STATE payload layouts (SPEC 7).
const (
	manOffCreatedAt   = 8
	manOffBaseOffset  = 16
	manOffLastBatch   = 24
	manOffFrontier    = 32
	manOffMerged      = 64
	manOffHeadsDigest = 96
	manOffBinding     = 128 // checker_version, schema_version, schema_hash, catalog_hash
	manOffSchemaVer   = 134
	manOffSchemaHash  = 136
	manOffCatalogHash = 168
	manOffStateDigest = 200
	manifestLen       = 232

	stateHeaderLen  = 8 // section u8 | 3 zero bytes | record_count u32
	knownRecordLen  = 16 + 8
	headRecordLen   = 4 + 2 + 8 + 16
	stateChunk      = 65536 // records per full STATE frame of sections 1 and 2
	sectionKnown    = 1
	sectionHeads    = 2
	sectionPending  = 3
	snapshotMinBase = framelog.HeaderSize // the least base_checkpoint_offset
)

// maxSnapshotFile caps the size of a file LoadSnapshotFile reads: 4 GiB,
// about 170 million known ids.
const maxSnapshotFile int64 = 4 << 30

// SnapshotError reports why a snapshot was refused, and where. It unwraps
// to [ErrMalformedSnapshot] and to Err, when Err is set.
type SnapshotError struct {
	// Offset is the file offset of the frame or field at fault (a frame's
	// offset is that of its frame_len), or -1 when the fault is not at
	// a place in a file, as for a snapshot AppendBinary refuses.
	Offset int64
	Reason string
	// Err is the error that found the fault, when another part of omega
	// did: a [*framelog.HeaderError], a [*framelog.FrameError], an [*EventError], or an
	// error wrapping [ErrInvalidState]. Otherwise nil.
	Err error
}

func (e *SnapshotError) Error() string {
	var b strings.Builder
	b.WriteString("omega: malformed snapshot")
	if e.Offset >= 0 {
		b.WriteString(" at offset ")
		b.WriteString(strconv.FormatInt(e.Offset, 10))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "omega: "))
	}
	return b.String()
}

// Unwrap returns [ErrMalformedSnapshot] and Err, when set.
func (e *SnapshotError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformedSnapshot}
	}
	return []error{ErrMalformedSnapshot, e.Err}
}

func snapErr(off int64, format string, args ...any) *SnapshotError {
	return &SnapshotError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Snapshot is a SPEC 7 snapshot: the State a history reached, the manifest
// fields that place it, and the events logged but not yet decided.
//
// The manifest's frontier_digest, merged_state_hash and stream_heads_digest
// are the State's; its checker_version, schema_version, schema_hash and
// catalog_hash are Binding's; its state_digest is [Snapshot.StateDigest].
// The file's header carries Binding.SchemaVersion and Binding.SchemaHash.
// The same Snapshot always gives the same bytes, and [DecodeSnapshot]
// accepts only those bytes: decoding then encoding gives the input back.
//
// Decisions where SPEC 7 is silent:
//
//   - A snapshot file is written whole and renamed into place
//     ([Snapshot.WriteFile]), so no crash leaves a prefix of one: a torn
//     header, a torn tail and every other damage SPEC 5's recovery would
//     tolerate in a log is malformed here.
//   - A genesis State (nil, [State], or any State with no known id and
//     both hashes zero) has no section 1 or 2 frame, and decodes to a nil
//     State. Its stream_heads_digest is D("heads", "") as for every State,
//     not zero.
//   - BaseOffset is an int64, as file offsets are in Go: a
//     base_checkpoint_offset over 2^63-1 is malformed.
//   - Pending events must pass [Event.Validate] and decode with the default
//     [Limits] ([DecodeEvent]), so that every file AppendBinary writes
//     decodes. Nothing relates them to the State: one may reuse a known id
//     (it meets predicate 1002 when batched).
//   - Decoding judges neither the binding (it is returned for the caller,
//     SPEC 7: replay reports a difference as field 7, the Kernel refuses
//     it) nor the merged_state_hash and frontier_digest, which nothing in
//     the file covers: a snapshot is trusted as far as they match a
//     verified certificate.
//
// A Snapshot is a plain value; its methods only read it.
type Snapshot struct {
	ID          uint64  // snapshot_id
	CreatedAtNs uint64  // created_at_ns
	BaseOffset  int64   // base_checkpoint_offset: >= HeaderSize (64); 64 when taken from no log
	LastBatchID uint64  // last_batch_id: the last batch, of either kind, the state reflects; 0 if none
	Binding     Binding // the binding of the checker whose decisions the state reflects
	State       *State  // nil means genesis
	Pending     []Event // canonical order, no two identical copies
}

// check refuses what AppendBinary cannot encode.
func (s *Snapshot) check() error {
	if s.BaseOffset < snapshotMinBase {
		return snapErr(-1, "base_checkpoint_offset %d is below %d", s.BaseOffset, snapshotMinBase)
	}
	for i := range s.Pending {
		e := &s.Pending[i]
		if err := e.Validate(Limits{}); err != nil {
			return &SnapshotError{Offset: -1, Reason: fmt.Sprintf("pending event %d", i), Err: err}
		}
		if i > 0 {
			switch c := (&s.Pending[i-1]).Compare(e); {
			case c == 0:
				return snapErr(-1, "pending events %d and %d are identical copies", i-1, i)
			case c > 0:
				return snapErr(-1, "pending event %d (id %v) comes before event %d (id %v) in canonical order", i, e.ID, i-1, s.Pending[i-1].ID)
			}
		}
	}
	return nil
}

// stateWriter produces the STATE payloads of a snapshot in order, each
// built in one reused buffer.
type stateWriter struct {
	known []KnownID
	// sorted, when not nil, stands for known: the kernel's snapshotter has
	// the ids sorted with their positions, and copying them out would take
	// another 24 bytes an id.
	sorted []knownAt
	heads  []StreamHead
	buf    []byte
	pace   func() // when not nil, called every paceSpan records
}

func newStateWriter(st *State) *stateWriter {
	return &stateWriter{known: st.KnownIDs(), heads: st.Heads()}
}

// framesLen returns the bytes the STATE frames of w and pending take,
// frame headers included.
func (w *stateWriter) framesLen(pending []Event) int {
	n := 0
	for _, c := range [2]int{w.knownLen(), len(w.heads)} {
		n += (c + stateChunk - 1) / stateChunk * (framelog.FrameHeaderLen + stateHeaderLen)
	}
	n += w.knownLen()*knownRecordLen + len(w.heads)*headRecordLen
	for i := range pending {
		n += framelog.FrameHeaderLen + stateHeaderLen + pending[i].EncodedLen()
	}
	return n
}

func (w *stateWriter) knownLen() int {
	if w.sorted != nil {
		return len(w.sorted)
	}
	return len(w.known)
}

func (w *stateWriter) knownAt(i int) *KnownID {
	if w.sorted != nil {
		return &w.sorted[i].KnownID
	}
	return &w.known[i]
}

func appendStateHeader(b []byte, section byte, count int) []byte {
	b = append(b, section, 0, 0, 0)
	return binary.LittleEndian.AppendUint32(b, uint32(count))
}

// each calls fn with every STATE payload in order. The payload is valid
// until fn returns. An event of pending too long to encode, which check
// refuses, gets a payload without its encoding.
func (w *stateWriter) each(pending []Event, fn func(payload []byte)) {
	for i, n := 0, w.knownLen(); i < n; i += stateChunk {
		end := min(i+stateChunk, n)
		b := appendStateHeader(slices.Grow(w.buf[:0], stateHeaderLen+(end-i)*knownRecordLen), sectionKnown, end-i)
		for j := i; j < end; j++ {
			k := w.knownAt(j)
			b = appendID(b, k.ID)
			b = binary.LittleEndian.AppendUint64(b, k.Lamport)
			if w.pace != nil && (j-i+1)%paceSpan == 0 {
				w.pace()
			}
		}
		fn(b)
		w.buf = b
		if w.pace != nil {
			w.pace()
		}
	}
	for i := 0; i < len(w.heads); i += stateChunk {
		chunk := w.heads[i:min(i+stateChunk, len(w.heads))]
		b := appendStateHeader(slices.Grow(w.buf[:0], stateHeaderLen+len(chunk)*headRecordLen), sectionHeads, len(chunk))
		for _, h := range chunk {
			b = binary.LittleEndian.AppendUint32(b, h.NodeID)
			b = binary.LittleEndian.AppendUint16(b, h.StreamID)
			b = binary.LittleEndian.AppendUint64(b, h.Lamport)
			b = appendID(b, h.ID)
		}
		fn(b)
		w.buf = b
	}
	for i := range pending {
		b := appendStateHeader(w.buf[:0], sectionPending, 1)
		b, _ = pending[i].AppendBinary(b)
		fn(b)
		w.buf = b
	}
}

// StateDigest returns the manifest's state_digest: D("snapshot state", the
// STATE payloads concatenated in order) (SPEC 7). It does not check s: for
// a snapshot AppendBinary refuses, the value describes no file.
func (s *Snapshot) StateDigest() Hash {
	h := digest.New(digest.SnapshotState)
	if s != nil {
		newStateWriter(s.State).each(s.Pending, func(p []byte) { h.Write(p) })
	}
	return h.Sum()
}

// AppendBinary appends the snapshot file (header, SNAPSHOT frame, STATE
// frames, SPEC 7) to b. The header carries Binding.SchemaVersion and
// Binding.SchemaHash.
//
// It refuses, with a [*SnapshotError] and b unchanged, a snapshot it cannot
// encode: a nil s, a BaseOffset below 64, pending events not in strictly
// increasing canonical order (two identical copies included), and a pending
// event that fails [Event.Validate] with the default [Limits].
func (s *Snapshot) AppendBinary(b []byte) ([]byte, error) {
	if s == nil {
		return b, snapErr(-1, "nil snapshot")
	}
	return s.appendBinary(b, newStateWriter(s.State))
}

// appendBinary is AppendBinary with the State's records from w.
func (s *Snapshot) appendBinary(b []byte, w *stateWriter) ([]byte, error) {
	if err := s.check(); err != nil {
		return b, err
	}
	start := len(b)
	b = slices.Grow(b, framelog.HeaderSize+framelog.FrameHeaderLen+manifestLen+w.framesLen(s.Pending))
	err := s.stream(w, func(p []byte, _ bool) error {
		b = append(b, p...)
		return nil
	}, func(p []byte, off int64) error {
		copy(b[start+int(off):], p)
		return nil
	})
	return b, err
}

// streamChunk is about how many bytes stream hands put at a time.
const streamChunk = 1 << 20

// stream produces the snapshot file of s, its STATE payloads from w, in
// pieces of about streamChunk bytes handed to put in order (more is false
// for the last), so that a large file is never whole in memory. The
// manifest holds the digest of the STATE payloads that follow it: stream
// leaves its frame's room, zeros, after the header, and hands the frame to
// patch, with its offset, once the rest is out. It does not check s.
func (s *Snapshot) stream(w *stateWriter, put func(p []byte, more bool) error, patch func(p []byte, off int64) error) error {
	// Room for a piece and the frame that ends it, or for a smaller file.
	total := framelog.HeaderSize + framelog.FrameHeaderLen + manifestLen + w.framesLen(s.Pending)
	b := make([]byte, 0, min(total, streamChunk+framelog.FrameHeaderLen+stateHeaderLen+stateChunk*knownRecordLen))
	b, _ = framelog.Header{SchemaVersion: s.Binding.SchemaVersion, SchemaHash: s.Binding.SchemaHash}.AppendBinary(b)
	man := len(b)
	b = append(b, make([]byte, framelog.FrameHeaderLen+manifestLen)...)
	h := digest.New(digest.SnapshotState)
	var err error
	w.each(s.Pending, func(p []byte) {
		if err != nil {
			return
		}
		h.Write(p)
		b, _ = framelog.AppendFrame(b, framelog.FrameState, p) // STATE payloads are small
		if len(b) >= streamChunk {
			err = put(b, true)
			b = b[:0]
		}
	})
	if err == nil {
		err = put(b, false)
	}
	if err != nil {
		return err
	}
	var mb [manifestLen]byte
	m := s.appendManifest(mb[:0], headsDigest(digest.New(digest.Heads), w.heads), h.Sum())
	frame, _ := framelog.AppendFrame(make([]byte, 0, framelog.FrameHeaderLen+manifestLen), framelog.FrameSnapshot, m)
	return patch(frame, int64(man))
}

// appendManifest appends the manifest of s with the given digests.
func (s *Snapshot) appendManifest(b []byte, headsDigest, stateDigest Hash) []byte {
	b = binary.LittleEndian.AppendUint64(b, s.ID)
	b = binary.LittleEndian.AppendUint64(b, s.CreatedAtNs)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.BaseOffset))
	b = binary.LittleEndian.AppendUint64(b, s.LastBatchID)
	frontier, merged := s.State.FrontierDigest(), s.State.MergedStateHash()
	b = append(b, frontier[:]...)
	b = append(b, merged[:]...)
	b = append(b, headsDigest[:]...)
	b = s.Binding.appendBinary(b)
	return append(b, stateDigest[:]...)
}

// stateFrame is a STATE frame of section 1 or 2, kept between the passes
// of DecodeSnapshot.
type stateFrame struct {
	off     int64
	records []byte
}

// DecodeSnapshot reads a whole snapshot file, strictly (SPEC 7), and
// checks it. It refuses, with a [*SnapshotError] that says what is wrong
// and where:
//
//   - a bad or torn header, a bad frame (SPEC 5: a torn tail or corruption,
//     so no bytes after the last frame), a first frame other than SNAPSHOT,
//     and any later frame other than STATE;
//   - a manifest not of 232 bytes, a base_checkpoint_offset below 64 (or
//     over 2^63-1), a header whose schema version or hash differs from the
//     manifest's;
//   - a STATE payload shorter than its 8-byte header, an unknown section,
//     sections out of order, non-zero pad bytes, a zero record count, a
//     record count that disagrees with the payload length, a frame of
//     sections 1 or 2 over 65,536 records or following a frame of its
//     section that is not full, ids or streams not strictly ascending, a
//     pending-event frame whose record count is not 1 or whose event does
//     not decode ([DecodeEvent], default [Limits]), pending events not in
//     strictly increasing canonical order;
//   - then, in that order, a state_digest or a stream_heads_digest that the
//     contents do not give, and a head whose event is not a known id with
//     the head's lamport ([NewState]).
//
// It does not judge the binding: Snapshot.Binding is the manifest's, for
// the caller to compare with its own. The merged state hash and frontier
// digest are the manifest's, on trust. The Snapshot does not retain b, and
// decoding allocates in proportion to b's length, never to a count read
// from it.
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	hdr, err := framelog.DecodeHeader(b)
	if err != nil {
		var off int64
		if he, ok := errors.AsType[*framelog.HeaderError](err); ok {
			off = int64(he.Offset)
		}
		return nil, &SnapshotError{Offset: off, Reason: "bad header", Err: err}
	}
	sc := framelog.NewScanner(b, nil)
	next := func() (framelog.Frame, bool, error) {
		f, err := sc.Next()
		if err == io.EOF {
			return f, false, nil
		}
		if err != nil {
			off := sc.Offset()
			if fe, ok := errors.AsType[*framelog.FrameError](err); ok {
				off = fe.Offset
			}
			return f, false, &SnapshotError{Offset: off, Reason: "bad frame", Err: err}
		}
		return f, true, nil
	}

	f, ok, err := next()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, snapErr(framelog.HeaderSize, "no SNAPSHOT frame: the file ends after its header")
	}
	if f.Type != framelog.FrameSnapshot {
		return nil, snapErr(f.Offset, "first frame is %v, want SNAPSHOT", f.Type)
	}
	m := f.Payload
	manOff := f.Offset + framelog.FrameHeaderLen
	if len(m) != manifestLen {
		return nil, snapErr(f.Offset, "manifest of %d bytes, want %d", len(m), manifestLen)
	}
	base := binary.LittleEndian.Uint64(m[manOffBaseOffset:])
	if base < snapshotMinBase || base > math.MaxInt64 {
		return nil, snapErr(manOff+manOffBaseOffset, "base_checkpoint_offset %d is not in [64, 2^63-1]", base)
	}
	snap := &Snapshot{
		ID:          binary.LittleEndian.Uint64(m),
		CreatedAtNs: binary.LittleEndian.Uint64(m[manOffCreatedAt:]),
		BaseOffset:  int64(base),
		LastBatchID: binary.LittleEndian.Uint64(m[manOffLastBatch:]),
	}
	for i := range snap.Binding.CheckerVersion {
		snap.Binding.CheckerVersion[i] = binary.LittleEndian.Uint16(m[manOffBinding+2*i:])
	}
	snap.Binding.SchemaVersion = binary.LittleEndian.Uint16(m[manOffSchemaVer:])
	snap.Binding.SchemaHash = Hash(m[manOffSchemaHash:])
	snap.Binding.CatalogHash = Hash(m[manOffCatalogHash:])
	if hdr.SchemaVersion != snap.Binding.SchemaVersion {
		return nil, snapErr(manOff+manOffSchemaVer, "manifest schema_version %d differs from the header's %d", snap.Binding.SchemaVersion, hdr.SchemaVersion)
	}
	if hdr.SchemaHash != snap.Binding.SchemaHash {
		return nil, snapErr(manOff+manOffSchemaHash, "manifest schema_hash %v differs from the header's %v", snap.Binding.SchemaHash, hdr.SchemaHash)
	}

	// First pass: the frames' structure, the pending events, the state
	// digest. Records of sections 1 and 2 are decoded in the second pass,
	// into slices of the exact size.
	h := digest.New(digest.SnapshotState)
	h.Reset()
	var (
		known, heads   []stateFrame
		nKnown, nHeads int
		section        byte // of the previous STATE frame
		count          int  // records of the previous STATE frame
	)
	for {
		f, ok, err := next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if f.Type != framelog.FrameState {
			return nil, snapErr(f.Offset, "%v frame after the manifest, want STATE", f.Type)
		}
		p := f.Payload
		if len(p) < stateHeaderLen {
			return nil, snapErr(f.Offset, "STATE payload of %d bytes, shorter than its 8-byte header", len(p))
		}
		sec, n := p[0], binary.LittleEndian.Uint32(p[4:])
		switch {
		case sec < sectionKnown || sec > sectionPending:
			return nil, snapErr(f.Offset, "unknown STATE section %d", sec)
		case sec < section:
			return nil, snapErr(f.Offset, "STATE section %d after section %d", sec, section)
		case p[1]|p[2]|p[3] != 0:
			return nil, snapErr(f.Offset, "STATE pad bytes % x, want zero", p[1:4])
		case n == 0:
			return nil, snapErr(f.Offset, "STATE frame of section %d with no record", sec)
		case sec == section && sec != sectionPending && count != stateChunk:
			return nil, snapErr(f.Offset, "second STATE frame of section %d after a frame of %d records, not %d", sec, count, stateChunk)
		}
		recs := p[stateHeaderLen:]
		switch sec {
		case sectionKnown, sectionHeads:
			size, list, total := knownRecordLen, &known, &nKnown
			if sec == sectionHeads {
				size, list, total = headRecordLen, &heads, &nHeads
			}
			if n > stateChunk {
				return nil, snapErr(f.Offset, "STATE frame of section %d with %d records, over %d", sec, n, stateChunk)
			}
			if uint64(len(recs)) != uint64(n)*uint64(size) {
				return nil, snapErr(f.Offset, "record_count %d of section %d needs %d bytes of records, payload has %d", n, sec, uint64(n)*uint64(size), len(recs))
			}
			*list = append(*list, stateFrame{off: f.Offset, records: recs})
			*total += int(n)
		case sectionPending:
			if n != 1 {
				return nil, snapErr(f.Offset, "pending-event frame with record_count %d, want 1", n)
			}
			e, err := DecodeEvent(recs, Limits{})
			if err != nil {
				return nil, &SnapshotError{Offset: f.Offset, Reason: "pending event " + strconv.Itoa(len(snap.Pending)), Err: err}
			}
			if k := len(snap.Pending); k > 0 {
				switch c := (&snap.Pending[k-1]).Compare(&e); {
				case c == 0:
					return nil, snapErr(f.Offset, "pending event %d is an identical copy of event %d", k, k-1)
				case c > 0:
					return nil, snapErr(f.Offset, "pending event %d (id %v) comes before event %d (id %v) in canonical order", k, e.ID, k-1, snap.Pending[k-1].ID)
				}
			}
			snap.Pending = append(snap.Pending, e)
		}
		section, count = sec, int(n)
		h.Write(p)
	}

	// Second pass: the records, strictly ascending.
	ks := make([]KnownID, 0, nKnown)
	for _, fr := range known {
		for i := 0; i < len(fr.records); i += knownRecordLen {
			r := fr.records[i:]
			k := KnownID{ID: readID(r), Lamport: binary.LittleEndian.Uint64(r[16:])}
			if len(ks) > 0 && k.ID.Compare(ks[len(ks)-1].ID) <= 0 {
				return nil, snapErr(fr.off+framelog.FrameHeaderLen+stateHeaderLen+int64(i), "known id %v does not follow %v in ascending order", k.ID, ks[len(ks)-1].ID)
			}
			ks = append(ks, k)
		}
	}
	hs := make([]StreamHead, 0, nHeads)
	for _, fr := range heads {
		for i := 0; i < len(fr.records); i += headRecordLen {
			r := fr.records[i:]
			hd := StreamHead{
				NodeID:   binary.LittleEndian.Uint32(r),
				StreamID: binary.LittleEndian.Uint16(r[4:]),
				Lamport:  binary.LittleEndian.Uint64(r[6:]),
				ID:       readID(r[14:]),
			}
			if len(hs) > 0 && compareHeads(hd, hs[len(hs)-1]) <= 0 {
				prev := hs[len(hs)-1]
				return nil, snapErr(fr.off+framelog.FrameHeaderLen+stateHeaderLen+int64(i), "stream (%d, %d) does not follow (%d, %d) in ascending order", hd.NodeID, hd.StreamID, prev.NodeID, prev.StreamID)
			}
			hs = append(hs, hd)
		}
	}

	// Internal consistency.
	if got, want := Hash(h.Sum()), Hash(m[manOffStateDigest:]); got != want {
		return nil, snapErr(manOff+manOffStateDigest, "state_digest %v, the STATE payloads give %v", want, got)
	}
	if got, want := headsDigest(digest.New(digest.Heads), hs), Hash(m[manOffHeadsDigest:]); got != want {
		return nil, snapErr(manOff+manOffHeadsDigest, "stream_heads_digest %v, the heads give %v", want, got)
	}
	merged, frontier := Hash(m[manOffMerged:]), Hash(m[manOffFrontier:])
	if len(ks) > 0 || len(hs) > 0 || !merged.IsZero() || !frontier.IsZero() {
		st, err := NewState(ks, hs, merged, frontier)
		if err != nil {
			off := manOff + manOffHeadsDigest
			if len(heads) > 0 {
				off = heads[0].off
			}
			return nil, &SnapshotError{Offset: off, Reason: "inconsistent state", Err: err}
		}
		snap.State = st
	}
	return snap, nil
}

// WriteFile writes s to path atomically: it encodes s, writes a
// temporary file in path's directory, syncs it, renames it to path and
// syncs the directory. When it returns nil the snapshot is durable; on
// failure path is untouched (an old file there survives) and the temporary
// file is removed. The file is created with mode 0600. It refuses what
// [Snapshot.AppendBinary] refuses.
//
// The temporary file is named ".omega-tmp-<16 hex digits>-<base of path>"
// and held locked while it is written. A process killed while writing
// leaves it behind; WriteFile first removes from the directory
// every file of that pattern that no live writer holds (see
// [framelog.Open] for where the lock reaches other processes), and no
// other file.
func (s *Snapshot) WriteFile(path string) error {
	b, err := s.AppendBinary(nil)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	removeStaleTemps(osFS{}, dir)
	if err := writeTemp(dir, filepath.Base(path), b); err != nil {
		return err
	}
	return syncDir(dir)
}

// LoadSnapshotFile reads the snapshot file at path and decodes it with
// [DecodeSnapshot]. It refuses, before reading, a file over 4 GiB (about 170
// million known ids), and a file whose size changes while it is read, with
// a [*SnapshotError] at offset -1; it allocates only what the file's size
// justifies. Errors of the file system are returned as they are; decoding
// errors are DecodeSnapshot's.
func LoadSnapshotFile(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size > maxSnapshotFile || size > math.MaxInt {
		return nil, snapErr(-1, "%s holds %d bytes, over the %d-byte limit", path, size, maxSnapshotFile)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, snapErr(-1, "%s shrank while being read", path)
		}
		return nil, err
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return nil, snapErr(-1, "%s grew while being read", path)
	}
	return DecodeSnapshot(b)
}
