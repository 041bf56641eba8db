package main

import (
	"bufio"
	"errors"
	"flag"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

// Limits of generate-events' flags.
const (
	maxGenerateCount = 1 << 24
	maxNodes         = 1 << 20
	maxStreams       = 1 << 16 // stream ids are u16
	depWindow        = 64      // dependencies are drawn among this many recent events
	baseMonoTSNs     = 1_700_000_000_000_000_000
)

type generateOpts struct {
	output  string
	count   int
	nodes   int
	streams int
	seed    uint64
	startID uint64
	snap    string
	lamport uint64 // the clocks' start: the snapshot's highest head lamport
}

func (o *generateOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.output, "output", "", "the file to write: an .omega frame log when it ends in .omega, else a JSON array (required)")
	fs.IntVar(&o.count, "count", 0, "the number of events, 1.."+strconv.Itoa(maxGenerateCount)+" (required)")
	fs.IntVar(&o.nodes, "nodes", 4, "the number of nodes, 1.."+strconv.Itoa(maxNodes))
	fs.IntVar(&o.streams, "streams", 2, "the number of streams per node, 1.."+strconv.Itoa(maxStreams))
	fs.Uint64Var(&o.seed, "seed", 0, "the seed of the generator")
	fs.Uint64Var(&o.startID, "start-id", 1, "the first event id (with --snapshot: after the highest id it knows)")
	fs.StringVar(&o.snap, "snapshot", "", "a snapshot the events are to follow: ids after the highest it knows, lamports above its stream heads, so that the batch merges from its State")
}

func generateFlags(fs *flag.FlagSet) { new(generateOpts).declare(fs) }

type generateOutput struct {
	Status  string `json:"status"`
	Command string `json:"command"`
	Output  string `json:"output"`
	Count   int    `json:"count"`
	Nodes   int    `json:"nodes"`
	Streams int    `json:"streams"`
	Seed    uint64 `json:"seed"`
	StartID uint64 `json:"start_id"`
	Lamport uint64 `json:"lamport_base"`
	Format  string `json:"format"`
}

func runGenerate(args []string) ([]byte, error) {
	var o generateOpts
	fs := newFlagSet("generate-events")
	o.declare(fs)
	if err := parseFlags(fs, args, "output", "count"); err != nil {
		return nil, err
	}
	switch {
	case o.count < 1 || o.count > maxGenerateCount:
		return nil, usageErrorf("generate-events: --count %d out of range 1..%d", o.count, maxGenerateCount)
	case o.nodes < 1 || o.nodes > maxNodes:
		return nil, usageErrorf("generate-events: --nodes %d out of range 1..%d", o.nodes, maxNodes)
	case o.streams < 1 || o.streams > maxStreams:
		return nil, usageErrorf("generate-events: --streams %d out of range 1..%d", o.streams, maxStreams)
	case o.startID == 0:
		return nil, usageErrorf("generate-events: --start-id 0: event ids start at 1")
	}
	if o.snap != "" {
		snap, err := omega.LoadSnapshotFile(o.snap)
		if err != nil {
			return nil, err
		}
		var high uint64
		for _, k := range snap.State.KnownIDs() {
			if k.ID.Hi > 0 {
				return nil, inputErrorf("generate-events: %s knows id %v, beyond the 64-bit ids generate-events writes", o.snap, k.ID)
			}
			high = max(high, k.ID.Lo)
		}
		for _, h := range snap.State.Heads() {
			o.lamport = max(o.lamport, h.Lamport)
		}
		if !flagSet(fs, "start-id") {
			o.startID = high + 1
		} else if o.startID <= high {
			return nil, usageErrorf("generate-events: --start-id %d, but %s knows ids up to %d: the events would be obstructed by 1002", o.startID, o.snap, high)
		}
	}
	if o.startID > math.MaxUint64-uint64(o.count) {
		return nil, usageErrorf("generate-events: --start-id %d leaves no room for %d ids", o.startID, o.count)
	}
	format := "json"
	write := writeEventsJSON
	if strings.HasSuffix(o.output, ".omega") {
		format, write = "omega", writeEventsLog
	}
	if err := write(o.output, newGenerator(o)); err != nil {
		return nil, err
	}
	return marshal(generateOutput{"ok", "generate-events", o.output, o.count, o.nodes, o.streams, o.seed, o.startID, o.lamport, format}), nil
}

// generator draws a batch that merges from genesis. Each node keeps a Lamport
// clock: an event's lamport is one more than the larger of its node's clock
// and its dependencies' lamports, so dependencies are strictly lower and each
// stream, which belongs to one node, strictly increases.
type generator struct {
	rng     *rand.Rand
	count   int
	streams int
	startID uint64
	next    int      // index of the next event
	clock   []uint64 // per node: the Lamport clock
	mono    []uint64 // per node: the monotonic clock
	recent  [depWindow]omega.KnownID
	deps    []omega.EventID
}

func newGenerator(o generateOpts) *generator {
	g := &generator{
		// The second PCG word is fixed: the events depend on --seed alone.
		rng:     rand.New(rand.NewPCG(o.seed, 0x6f6d656761)),
		count:   o.count,
		streams: o.streams,
		startID: o.startID,
		clock:   make([]uint64, o.nodes),
		mono:    make([]uint64, o.nodes),
	}
	for n := range g.mono {
		g.mono[n] = baseMonoTSNs + uint64(n)*1000
		g.clock[n] = o.lamport
	}
	return g
}

// nextEvent returns the next event, or false after the last. The event's
// lists are reused by the following call.
func (g *generator) nextEvent() (omega.Event, bool) {
	if g.next == g.count {
		return omega.Event{}, false
	}
	i := g.next
	g.next++
	node := g.rng.IntN(len(g.clock))
	stream := g.rng.IntN(g.streams)
	lamport := g.clock[node]
	g.deps = g.deps[:0]
	if avail := min(i, depWindow); avail > 0 && g.rng.IntN(2) == 0 {
		// Up to three distinct dependencies among the recent events.
		want := 1 + g.rng.IntN(3)
	draw:
		for range want {
			d := g.recent[(i-1-g.rng.IntN(avail))%depWindow]
			for _, have := range g.deps {
				if have == d.ID {
					continue draw
				}
			}
			g.deps = append(g.deps, d.ID)
			lamport = max(lamport, d.Lamport)
		}
	}
	lamport++
	g.clock[node] = lamport
	g.mono[node] += 1 + g.rng.Uint64N(1_000_000)
	id := omega.ID64(g.startID + uint64(i))
	g.recent[i%depWindow] = omega.KnownID{ID: id, Lamport: lamport}
	payload := []byte("event-" + strconv.FormatUint(id.Lo, 10) + " node-" + strconv.Itoa(node+1) + " stream-" + strconv.Itoa(stream))
	return omega.Event{
		ID:       id,
		NodeID:   uint32(node + 1),
		StreamID: uint16(stream),
		Lamport:  lamport,
		MonoTSNs: g.mono[node],
		Kind:     uint16(1 + g.rng.IntN(4)),
		// The SPEC defines payload_hash as plain BLAKE3-256 of the payload.
		PayloadHash: omega.PayloadHash(payload),
		Deps:        g.deps,
		Payload:     payload,
	}, true
}

// writeEventsJSON writes a JSON array, one event per line, in the original
// system's form (see appendOriginalJSON).
func writeEventsJSON(path string, g *generator) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	w := bufio.NewWriterSize(f, 1<<16)
	buf := []byte("[\n")
	for first := true; ; first = false {
		e, ok := g.nextEvent()
		if !ok {
			break
		}
		if !first {
			buf = append(buf, ",\n"...)
		}
		buf = appendOriginalJSON(buf, &e)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	if _, err := w.WriteString("\n]\n"); err != nil {
		return err
	}
	return w.Flush()
}

// appendOriginalJSON appends e as one compact JSON object in the original
// system's form (SPEC section 3): all twelve fields in the table's order,
// event_id and each dependency as decimal strings, payload_hash and payload
// as arrays of integers 0..255, the other fields (deps_count and payload_len
// included) as JSON integers. omega.DecodeEventsJSON accepts this form;
// Event.AppendJSON writes the library's output form instead.
func appendOriginalJSON(b []byte, e *omega.Event) []byte {
	b = append(b, `{"event_id":`...)
	b = appendDecimalString(b, e.ID)
	b = append(b, `,"node_id":`...)
	b = strconv.AppendUint(b, uint64(e.NodeID), 10)
	b = append(b, `,"stream_id":`...)
	b = strconv.AppendUint(b, uint64(e.StreamID), 10)
	b = append(b, `,"lamport":`...)
	b = strconv.AppendUint(b, e.Lamport, 10)
	b = append(b, `,"mono_ts_ns":`...)
	b = strconv.AppendUint(b, e.MonoTSNs, 10)
	b = append(b, `,"event_kind":`...)
	b = strconv.AppendUint(b, uint64(e.Kind), 10)
	b = append(b, `,"flags":`...)
	b = strconv.AppendUint(b, uint64(e.Flags), 10)
	b = append(b, `,"deps_count":`...)
	b = strconv.AppendUint(b, uint64(len(e.Deps)), 10)
	b = append(b, `,"payload_len":`...)
	b = strconv.AppendUint(b, uint64(len(e.Payload)), 10)
	b = append(b, `,"payload_hash":`...)
	b = appendByteArray(b, e.PayloadHash[:])
	b = append(b, `,"deps":[`...)
	for i, d := range e.Deps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendDecimalString(b, d)
	}
	b = append(b, `],"payload":`...)
	b = appendByteArray(b, e.Payload)
	return append(b, '}')
}

// appendDecimalString appends id as a JSON string of its decimal digits.
func appendDecimalString(b []byte, id omega.EventID) []byte {
	b = append(b, '"')
	b = append(b, id.String()...)
	return append(b, '"')
}

// appendByteArray appends p as a JSON array of integers 0..255.
func appendByteArray(b, p []byte) []byte {
	b = append(b, '[')
	for i, c := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(c), 10)
	}
	return append(b, ']')
}

// removeForRewrite removes the file at path, if any, so that a new log is
// written there: OpenFrameLog would append to an existing one. A directory
// is left alone, for OpenFrameLog to refuse.
func removeForRewrite(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return nil
	}
	return os.Remove(path)
}

// writeEventsLog writes a new frame log of EVENT frames, replacing any file
// at path. The log is created with framelog.Open, which syncs the new
// file's header and its directory, and synced again after the last frame.
func writeEventsLog(path string, g *generator) error {
	if err := removeForRewrite(path); err != nil {
		return err
	}
	fw, err := framelog.Open(path, logHeader(), nil)
	if err != nil {
		return err
	}
	err = appendEvents(fw, g)
	if err == nil {
		err = fw.Sync()
	}
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	return err
}

// appendEvents appends the generator's events as EVENT frames.
func appendEvents(fw *framelog.Writer, g *generator) error {
	var buf []byte
	for {
		e, ok := g.nextEvent()
		if !ok {
			return nil
		}
		var err error
		if buf, err = e.AppendBinary(buf[:0]); err != nil {
			return err
		}
		if _, err := fw.Append(framelog.FrameEvent, buf); err != nil {
			return err
		}
	}
}
