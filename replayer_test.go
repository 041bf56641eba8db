package omega

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
)

// plainReader hides every method of a reader but Read: a segment the
// replayer cannot read again at an offset.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// segmentsOf cuts log at the offsets cuts into segments: the first holds
// the header and the frames up to the first cut, each later one its own
// copy of the header and the frames up to the next cut.
func segmentsOf(log []byte, cuts ...int64) [][]byte {
	segs := [][]byte{log[:cuts[0]]}
	for i, c := range cuts {
		end := int64(len(log))
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		segs = append(segs, slices.Concat(log[:framelog.HeaderSize], log[c:end]))
	}
	return segs
}

// readers returns a reader over each segment; with plain set, readers that
// are no io.ReaderAt.
func readers(segs [][]byte, plain bool) []io.Reader {
	rs := make([]io.Reader, len(segs))
	for i, s := range segs {
		rs[i] = bytes.NewReader(s)
		if plain {
			rs[i] = plainReader{rs[i]}
		}
	}
	return rs
}

// replaySegments replays the log in segs with a Replayer, collecting the
// batches Next yields into the report's Batches as Replay does.
func replaySegments(t testing.TB, snap *Snapshot, segs [][]byte, plain bool, expected Hash, seed uint64, c *Checker, opts *ReplayOptions) (*ReplayReport, []*ReplayedBatch, error) {
	t.Helper()
	rp := NewReplayer(snap, readers(segs, plain), seed, c, opts)
	ctx := context.Background()
	var yielded []*ReplayedBatch
	var batches []ReplayedBatch
	for {
		b, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if b.Record == nil || b.Output.Result == nil {
			t.Fatalf("Next yielded batch %d without its record or output", b.BatchID)
		}
		yielded = append(yielded, b)
		s := *b
		s.Record, s.Output = nil, Output{}
		batches = append(batches, s)
	}
	r, err := rp.Finish(ctx, expected)
	if err != nil {
		return nil, nil, err
	}
	if r.Batches != nil {
		t.Fatalf("Finish's report holds %d batches, want none", len(r.Batches))
	}
	r.Batches = batches
	return r, yielded, nil
}

// reportView is everything a report says, for comparing two of them.
func reportView(r *ReplayReport, err error) string {
	if err != nil {
		return fmt.Sprintf("error, format %v", errors.Is(err, ErrReplayFormat))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v state %v last %d merges %d obstructions %d uncertified %v end %d torn %d\n",
		r.Outcome, r.State.MergedStateHash(), r.LastBatchID, r.Merges, r.Obstructions, r.Uncertified, r.LogEnd, r.TornTail)
	if r.Incident != nil {
		p, _ := r.Incident.AppendBinary(nil)
		fmt.Fprintf(&b, "incident %x\n", p)
	}
	for _, x := range r.Batches {
		fmt.Fprintf(&b, "batch %+v\n", x)
	}
	for i := range r.Pending {
		fmt.Fprintf(&b, "pending %v\n", r.Pending[i].Digest())
	}
	return b.String()
}

// frameStarts returns the offsets of the frames of log's valid prefix,
// and the offset where it ends.
func frameStarts(log []byte) []int64 {
	var at []int64
	s := framelog.NewScanner(log, nil)
	for {
		f, err := s.Next()
		if err != nil {
			return append(at, s.Offset())
		}
		at = append(at, f.Offset)
	}
}

// A log read in segments replays as the one log of its frames does:
// batches, state, pending events, offsets and incidents with their ids,
// wherever the cuts fall between frames, an event logged in one segment
// being a member of a batch in the next; from readers that are
// io.ReaderAt and from readers that are not.
func TestReplayerSegmentsEqualOneLog(t *testing.T) {
	h := buildHistory(t, 6, 4, 2)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	altered := bytes.Clone(h.log)
	d := h.members[2][1].Digest()
	altered[h.eventAt[d]+framelog.FrameHeaderLen+49] ^= 1 // its payload hash
	fixCRC(altered, h.eventAt[d])
	cases := []struct {
		name     string
		log      []byte
		expected Hash
		seed     uint64
		opts     *ReplayOptions
	}{
		{"deterministic", h.log, h.final, testSeed, nil},
		{"with the chain", h.log, h.final, testSeed, &ReplayOptions{Certificates: certs}},
		{"another seed", h.log, h.final, testSeed + 1, nil},
		{"an altered event", altered, h.final, testSeed, nil},
		{"another final hash", h.log, Hash{1}, testSeed, nil},
		{"a torn tail", h.log[:len(h.log)-9], h.final, testSeed, nil},
	}
	starts := frameStarts(h.log)
	starts = starts[:len(starts)-1] // the frames, not the end
	splitsBatch := 0
	for _, tc := range cases {
		want := reportView(Replay(nil, tc.log, tc.expected, tc.seed, c, tc.opts))
		for i, cut := range starts[1:] {
			cuts := []int64{cut}
			if i%3 == 0 && i+4 < len(starts)-1 {
				cuts = append(cuts, starts[i+4]) // three segments
			}
			if tc.name == "deterministic" && framelog.FrameType(binary.LittleEndian.Uint16(h.log[cut+frameOffType:])) == framelog.FrameBatch &&
				framelog.FrameType(binary.LittleEndian.Uint16(h.log[starts[i]+frameOffType:])) == framelog.FrameEvent {
				splitsBatch++
			}
			segs := segmentsOf(tc.log, cuts...)
			for _, plain := range []bool{false, true} {
				r, _, err := replaySegments(t, nil, segs, plain, tc.expected, tc.seed, c, tc.opts)
				if got := reportView(r, err); got != want {
					t.Fatalf("%s, cut at %v (plain readers %v):\n got %s\nwant %s", tc.name, cuts, plain, got, want)
				}
			}
		}
	}
	if splitsBatch == 0 {
		t.Fatal("no cut falls between a batch's events and its BATCH frame")
	}
	// From a snapshot taken in the middle, its base offset in the second
	// segment.
	full := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	mid := h.batchAt[3]
	pre := mustReplay(t, nil, h.log[:mid], stateAt(h, full, mid), testSeed, c, nil)
	snap := pre.Snapshot(1, 1)
	want := reportView(Replay(snap, h.log, h.final, testSeed, c, nil))
	r, _, err := replaySegments(t, snap, segmentsOf(h.log, h.batchAt[1]), false, h.final, testSeed, c, nil)
	if got := reportView(r, err); got != want {
		t.Fatalf("from a snapshot:\n got %s\nwant %s", got, want)
	}
}

// Next yields each batch with its BATCH record and recomputed output:
// certifying them again gives the chain's certificates byte for byte.
func TestReplayerYieldsWhatCertifies(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	_, got, err := replaySegments(t, nil, [][]byte{h.log}, false, h.final, testSeed, c, nil)
	if err != nil || len(got) != len(certs) {
		t.Fatalf("replay = %d batches, %v; want %d", len(got), err, len(certs))
	}
	var prev Hash
	for i, b := range got {
		cert, err := Certify(b.Output, DefaultBinding(), b.Meta(), prev, vectorKey())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cert.Bytes(), certs[i].Bytes()) {
			t.Fatalf("batch %d certified again differs from its certificate", b.BatchID)
		}
		if b.Meta() != h.metas[i] {
			t.Errorf("batch %d meta %+v, want %+v", b.BatchID, b.Meta(), h.metas[i])
		}
		prev = cert.Hash()
	}
}

// With UncertifiedSuffix, the BATCH frames after the chain's last
// certificate are replayed and reported as uncertified; their outputs
// certify to the certificates they would have had. A certificate missing
// before a later one is still field 11.
func TestReplayerUncertifiedSuffix(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	for _, k := range []int{0, 2, len(certs) - 1} {
		chain := certs[:k]
		opts := &ReplayOptions{Certificates: chain, UncertifiedSuffix: true}
		r, got, err := replaySegments(t, nil, [][]byte{h.log}, false, h.final, testSeed, c, opts)
		if err != nil || r.Outcome != Deterministic {
			t.Fatalf("chain of %d: replay = %v, %v %+v; want deterministic", k, err, r.Outcome, r.Incident)
		}
		var want []uint64
		for _, m := range h.metas[k:] {
			want = append(want, m.BatchID)
		}
		if !slices.Equal(r.Uncertified, want) {
			t.Fatalf("chain of %d: uncertified %v, want %v", k, r.Uncertified, want)
		}
		var prev Hash
		if k > 0 {
			prev = chain[k-1].Hash()
		}
		for i, b := range got {
			if b.Uncertified != (i >= k) {
				t.Errorf("chain of %d: batch %d uncertified %v", k, b.BatchID, b.Uncertified)
			}
			if i < k {
				continue
			}
			cert, err := Certify(b.Output, b.Output.Binding, b.Meta(), prev, vectorKey())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cert.Bytes(), certs[i].Bytes()) {
				t.Fatalf("chain of %d: uncertified batch %d certifies to other bytes than certifying it then gave", k, b.BatchID)
			}
			prev = cert.Hash()
		}
		// Without the option, the first uncertified batch is field 11.
		wantIncident(t, mustReplay(t, nil, h.log, h.final, testSeed, c, &ReplayOptions{Certificates: chain}),
			FieldCertificate, h.metas[k].BatchID, EventID{})
	}
	// A certificate missing in the middle, and one without its BATCH.
	missing := slices.Concat(certs[:2], certs[3:])
	wantIncident(t, mustReplay(t, nil, h.log, h.final, testSeed, c, &ReplayOptions{Certificates: missing, UncertifiedSuffix: true}),
		FieldCertificate, h.metas[2].BatchID, EventID{})
	cut := h.log[:h.batchAt[3]]
	r := mustReplay(t, nil, cut, stateAt(h, mustReplay(t, nil, h.log, h.final, testSeed, c, nil), h.batchAt[3]), testSeed, c,
		&ReplayOptions{Certificates: certs, UncertifiedSuffix: true})
	wantIncident(t, r, FieldCertificate, h.metas[3].BatchID, EventID{})
}

// Next and Finish return the context's error when it is done, and the
// replay goes on from there with another context.
func TestReplayerContext(t *testing.T) {
	h := buildHistory(t, 5, 4, 1)
	c := defaultChecker(t)
	want := reportView(Replay(nil, h.log, h.final, testSeed, c, nil))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	rp := NewReplayer(nil, readers([][]byte{h.log}, false), testSeed, c, nil)
	if _, err := rp.Next(canceled); err != canceled.Err() {
		t.Fatalf("Next(canceled) = %v, want %v", err, canceled.Err())
	}
	var batches []ReplayedBatch
	for i := 0; ; i++ {
		if i == 2 {
			if _, err := rp.Finish(canceled, h.final); !errors.Is(err, context.Canceled) {
				t.Fatalf("Finish(canceled) = %v, want context.Canceled", err)
			}
		}
		b, err := rp.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Record, b.Output = nil, Output{}
		batches = append(batches, *b)
	}
	r, err := rp.Finish(context.Background(), h.final)
	if err != nil {
		t.Fatal(err)
	}
	r.Batches = batches
	if got := reportView(r, nil); got != want {
		t.Fatalf("replay interrupted by its context:\n got %s\nwant %s", got, want)
	}
	// A deadline met while reading many EVENT frames between two batches.
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	for i := range 2 * ctxFrames {
		if _, err := j.LogEvents([]Event{historyEvent(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	rp = NewReplayer(nil, []io.Reader{&cancelAfter{r: bytes.NewReader(buf.Bytes()), n: int64(buf.Len()) / 4, cancel: stop}}, testSeed, c, nil)
	if _, err := rp.Next(ctx); err != context.Canceled {
		t.Fatalf("Next with its context canceled among EVENT frames = %v, want context.Canceled", err)
	}
	if r, err := rp.Finish(context.Background(), Hash{}); err != nil || r.Outcome != Deterministic || len(r.Pending) != 2*ctxFrames {
		t.Fatalf("Finish after = %v, %v, want deterministic with %d pending", r, err, 2*ctxFrames)
	}
}

// cancelAfter calls cancel once n bytes have been read from r.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// The crash windows of SPEC 8: a log cut after EVENT frames were synced
// (the events pending), after a BATCH frame was synced but before its
// certificate (the batch replayed, uncertified), and in the middle of a
// frame (a torn tail).
func TestReplayerCrashWindows(t *testing.T) {
	h := buildHistory(t, 6, 4, 0)
	c := defaultChecker(t)
	certs := certifyHistory(t, h)
	full := mustReplay(t, nil, h.log, h.final, testSeed, c, nil)
	const k = 5 // a batch of events logged after the previous BATCH frame
	before := stateAt(h, full, h.batchAt[k])
	opts := &ReplayOptions{Certificates: certs[:k], UncertifiedSuffix: true}

	// Events logged, their BATCH frame not: pending, with the chain clean.
	r, _, err := replaySegments(t, nil, [][]byte{h.log[:h.batchAt[k]]}, false, before, testSeed, c, opts)
	if err != nil || r.Outcome != Deterministic || r.LastBatchID != h.metas[k-1].BatchID || len(r.Uncertified) != 0 {
		t.Fatalf("cut before BATCH %d: %v, %+v", k, err, r)
	}
	var logged []Hash
	for _, e := range h.members[k] {
		if at, ok := h.eventAt[e.Digest()]; ok && at > h.batchAt[k-1] {
			logged = append(logged, e.Digest())
		}
	}
	var pending []Hash
	for i := range r.Pending {
		pending = append(pending, r.Pending[i].Digest())
	}
	slices.SortFunc(logged, Hash.Compare)
	slices.SortFunc(pending, Hash.Compare)
	if len(logged) == 0 || !slices.Equal(pending, logged) {
		t.Fatalf("cut before BATCH %d: %d pending, want the %d events logged for it", k, len(pending), len(logged))
	}

	// The BATCH frame synced, its certificate not appended.
	end := h.batchAt[k] + frameLen(h.log, h.batchAt[k])
	after := h.outs[k].Result.PriorStateHash
	if h.outs[k].Result.Kind == KindMerge {
		after = h.outs[k].Result.Merge.MergedStateHash
	}
	r, got, err := replaySegments(t, nil, [][]byte{h.log[:end]}, false, after, testSeed, c, opts)
	if err != nil || r.Outcome != Deterministic || !slices.Equal(r.Uncertified, []uint64{h.metas[k].BatchID}) || len(r.Pending) != 0 {
		t.Fatalf("cut after BATCH %d: %v, %+v", k, err, r)
	}
	cert, err := Certify(got[k].Output, DefaultBinding(), got[k].Meta(), certs[k-1].Hash(), vectorKey())
	if err != nil || !bytes.Equal(cert.Bytes(), certs[k].Bytes()) {
		t.Fatalf("the uncertified batch certifies to other bytes (%v)", err)
	}

	// Cut in the middle of the BATCH frame, and of an EVENT frame: a torn
	// tail, at the frame's offset, in the last of two segments.
	for _, at := range []int64{h.batchAt[k], h.eventAt[logged[0]]} {
		cut := at + 7
		segs := segmentsOf(h.log[:cut], h.batchAt[1])
		r, _, err := replaySegments(t, nil, segs, false, before, testSeed, c, opts)
		if err != nil || r.Outcome != Deterministic || r.LogEnd != at || r.TornTail != 7 {
			t.Fatalf("cut inside the frame at %d: %v, %+v; want deterministic, a torn tail of 7 bytes at %d", at, err, r, at)
		}
	}
}

// Each segment must continue the log: only the last may end torn or have a
// torn header, and each header must equal the first one's. A segment that
// cannot be read is an error of its own, not a format error.
func TestReplayerSegmentErrors(t *testing.T) {
	h := buildHistory(t, 3, 4, 0)
	c := defaultChecker(t)
	cut := h.batchAt[1]
	otherHeader := segmentsOf(h.log, cut)
	otherHeader[1] = bytes.Clone(otherHeader[1])
	otherHeader[1][logOffSchemaVer]++
	zeroed := make([]byte, framelog.HeaderSize+10)
	tests := []struct {
		name string
		segs [][]byte
	}{
		{"no segment", nil},
		{"a torn tail before the last segment", [][]byte{h.log[:cut-3], slices.Concat(h.log[:framelog.HeaderSize], h.log[cut:])}},
		{"another header", otherHeader},
		{"a torn header before the last segment", [][]byte{h.log[:cut], h.log[:20], slices.Concat(h.log[:framelog.HeaderSize], h.log[cut:])}},
		{"a bad header", [][]byte{h.log[:cut], append([]byte("X"), h.log[1:framelog.HeaderSize]...)}},
	}
	for _, tt := range tests {
		r, _, err := replaySegments(t, nil, tt.segs, false, h.final, testSeed, c, nil)
		if !errors.Is(err, ErrReplayFormat) {
			t.Errorf("%s: replay = %+v, %v; want ErrReplayFormat", tt.name, r, err)
		}
	}
	// A last segment whose creation was cut short holds no frame; the
	// bytes after its header are a torn tail.
	for _, last := range [][]byte{h.log[:20], zeroed} {
		r, _, err := replaySegments(t, nil, [][]byte{h.log, last}, false, h.final, testSeed, c, nil)
		if err != nil || r.Outcome != Deterministic || r.LogEnd != int64(len(h.log)) || r.TornTail != int64(max(0, len(last)-framelog.HeaderSize)) {
			t.Errorf("a last segment of %d bytes with a torn header: %v, %+v", len(last), err, r)
		}
	}
	boom := errors.New("boom")
	rp := NewReplayer(nil, []io.Reader{bytes.NewReader(h.log[:cut]), io.MultiReader(bytes.NewReader(h.log[:framelog.HeaderSize+5]), iotestErr{boom})}, testSeed, c, nil)
	if _, err := rp.Finish(context.Background(), h.final); !errors.Is(err, boom) || errors.Is(err, ErrReplayFormat) {
		t.Errorf("replay of an unreadable segment = %v, want its error, not a format error", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// A batch that names an event a batch before it decided, without its
// being logged again, finds it: read again from its segment when that is
// an io.ReaderAt (the replayer let its bytes go), kept otherwise. A segment
// whose bytes changed in between is refused.
func TestReplayerReadsDecidedEventsAgain(t *testing.T) {
	c := defaultChecker(t)
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	j := NewJournal(w, c, nil, 0)
	e, f := historyEvent(0), historyEvent(1)
	if _, err := j.LogEvents([]Event{e, f}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []Kind{KindMerge, KindObstruction} {
		if out, err := j.Decide([]Event{e, f}, BatchMeta{BatchID: uint64(i + 1), ReplaySeed: testSeed}); err != nil || out.Result.Kind != want {
			t.Fatalf("Decide %d = %v, %v; want %v", i, out.Result, err, want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	log := buf.Bytes()
	final := j.State().MergedStateHash()
	for _, plain := range []bool{false, true} {
		rp := NewReplayer(nil, readers([][]byte{log}, plain), testSeed, c, nil)
		r, err := rp.Finish(context.Background(), final)
		if err != nil || r.Outcome != Deterministic || r.Merges != 1 || r.Obstructions != 1 || len(r.Pending) != 0 {
			t.Fatalf("plain readers %v: replay = %v, %+v", plain, err, r)
		}
		// What the replayer holds: with io.ReaderAt, no decided event's
		// bytes; without, every event's.
		if want := map[bool]int{false: 0, true: 2}[plain]; len(rp.events.kept) != want {
			t.Errorf("plain readers %v: %d encodings kept, want %d", plain, len(rp.events.kept), want)
		}
	}
	// The segment read again gives other bytes than it streamed.
	other := bytes.Clone(log)
	other[framelog.HeaderSize+framelog.FrameHeaderLen+60] ^= 1
	seg := struct {
		io.Reader
		io.ReaderAt
	}{bytes.NewReader(log), bytes.NewReader(other)}
	if _, err := NewReplayer(nil, []io.Reader{seg}, testSeed, c, nil).Finish(context.Background(), final); !errors.Is(err, ErrReplayFormat) {
		t.Errorf("replay of a segment that changed = %v, want ErrReplayFormat", err)
	}
}

// The replayer holds the encodings of the events not yet decided, not of
// the whole log.
func TestReplayerHoldsUndecidedEventsOnly(t *testing.T) {
	h := buildHistory(t, 20, 8, 5)
	c := defaultChecker(t)
	rp := NewReplayer(nil, readers([][]byte{h.log}, false), testSeed, c, nil)
	r, err := rp.Finish(context.Background(), h.final)
	if err != nil || r.Outcome != Deterministic {
		t.Fatalf("replay = %v, %+v", err, r)
	}
	var held int
	for _, b := range rp.events.kept {
		held += len(b)
	}
	held += len(rp.events.win)
	var pending int
	for i := range r.Pending {
		b, _ := r.Pending[i].AppendBinary(nil)
		pending += len(b)
	}
	if held != pending {
		t.Errorf("the replayer holds %d bytes of encodings, want the %d of the pending events", held, pending)
	}
}

// FuzzReplayerSegments replays a log cut in two segments: when the cut
// falls between two frames of the log's valid prefix, the result is the
// one log's, and it never panics.
func FuzzReplayerSegments(f *testing.F) {
	h := buildHistory(f, 3, 3, 1)
	f.Add(h.log, uint16(h.batchAt[1]))
	f.Add(h.log[:len(h.log)-7], uint16(h.batchAt[2]))
	c := defaultChecker(f)
	f.Fuzz(func(t *testing.T, log []byte, at uint16) {
		cut := int64(at)
		if cut < framelog.HeaderSize || cut > int64(len(log)) || len(log) < framelog.HeaderSize {
			return
		}
		segs := segmentsOf(log, cut)
		r, _, err := replaySegments(t, nil, segs, at%2 == 1, h.final, testSeed, c, nil)
		if err != nil && !errors.Is(err, ErrReplayFormat) {
			t.Fatalf("replay = %v, want nil or ErrReplayFormat", err)
		}
		if !slices.Contains(frameStarts(log), cut) {
			return
		}
		want := reportView(Replay(nil, log, h.final, testSeed, c, nil))
		if got := reportView(r, err); got != want {
			t.Fatalf("cut at %d:\n got %s\nwant %s", cut, got, want)
		}
	})
}
