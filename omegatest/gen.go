package omegatest

import (
	"cmp"
	"math"
	"slices"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/internal/digest"
)

// Sizes of generated values. They keep a property test's cases small, so
// that rapid's default number of checks runs in well under a second.
const (
	maxBatchEvents = 12 // events of a ValidBatch
	maxHistory     = 4  // batches of a History
	maxPayload     = 16 // bytes of a payload
	maxDeps        = 3  // dependencies drawn for one event
	maxLamport     = 1 << 62
)

// EventID returns a generator of event ids: small values, which collide
// often, and arbitrary 128-bit values, edges included.
func EventID() *rapid.Generator[omega.EventID] {
	return rapid.OneOf(
		rapid.Map(rapid.Uint64Range(0, 64), omega.ID64),
		rapid.Custom(func(t *rapid.T) omega.EventID {
			return omega.EventID{Hi: rapid.Uint64().Draw(t, "hi"), Lo: rapid.Uint64().Draw(t, "lo")}
		}),
	)
}

// Hash returns a generator of hashes: zero or arbitrary.
func Hash() *rapid.Generator[omega.Hash] {
	return rapid.OneOf(
		rapid.Just(omega.Hash{}),
		rapid.Map(rapid.SliceOfN(rapid.Byte(), 32, 32), func(b []byte) omega.Hash { return omega.Hash(b) }),
	)
}

// Payload returns a generator of short payloads, the empty one included.
func Payload() *rapid.Generator[[]byte] {
	return rapid.SliceOfN(rapid.Byte(), 0, maxPayload)
}

// Event returns a generator of structurally valid events with arbitrary
// fields. About half of them carry a wrong payload hash.
func Event() *rapid.Generator[omega.Event] {
	return rapid.Custom(func(t *rapid.T) omega.Event {
		e := omega.Event{
			ID:       EventID().Draw(t, "id"),
			NodeID:   rapid.Uint32().Draw(t, "node"),
			StreamID: rapid.Uint16().Draw(t, "stream"),
			Lamport:  rapid.Uint64().Draw(t, "lamport"),
			MonoTSNs: rapid.Uint64().Draw(t, "mono_ts_ns"),
			Kind:     rapid.Uint16().Draw(t, "kind"),
			Flags:    rapid.Uint16().Draw(t, "flags"),
			Deps:     rapid.SliceOfN(EventID(), 0, maxDeps).Draw(t, "deps"),
			Payload:  Payload().Draw(t, "payload"),
		}
		if rapid.Bool().Draw(t, "hash ok") {
			e.PayloadHash = digest.Plain(e.Payload)
		} else {
			e.PayloadHash = Hash().Draw(t, "payload hash")
		}
		return e
	})
}

// State returns a generator of prior States built with [omega.NewState]: up
// to eight known ids, each with a small or an arbitrary lamport, some of them
// heads of streams among nodes 0-2 and streams 0-1, and arbitrary merged
// state hash and frontier digest.
func State() *rapid.Generator[*omega.State] {
	return rapid.Custom(func(t *rapid.T) *omega.State {
		ids := rapid.SliceOfNDistinct(EventID(), 0, 8, rapid.ID).Draw(t, "known")
		known := make([]omega.KnownID, len(ids))
		var heads []omega.StreamHead
		taken := map[stream]bool{}
		for i, id := range ids {
			known[i] = omega.KnownID{ID: id, Lamport: lamport().Draw(t, "lamport")}
			if !rapid.Bool().Draw(t, "is head") {
				continue
			}
			s := stream{rapid.Uint32Range(0, 2).Draw(t, "node"), rapid.Uint16Range(0, 1).Draw(t, "stream")}
			if taken[s] {
				continue
			}
			taken[s] = true
			heads = append(heads, omega.StreamHead{NodeID: s.node, StreamID: s.id, Lamport: known[i].Lamport, ID: id})
		}
		st, err := omega.NewState(known, heads, Hash().Draw(t, "merged"), Hash().Draw(t, "frontier"))
		if err != nil {
			t.Fatalf("NewState(%v, %v) = %v, want a state", known, heads, err)
		}
		return st
	})
}

// lamport draws small lamports, which collide, and arbitrary ones.
func lamport() *rapid.Generator[uint64] {
	return rapid.OneOf(rapid.Uint64Range(0, 8), rapid.Uint64())
}

// ValidBatch returns a generator of batches that merge against prior (nil
// means genesis): up to a dozen events over several nodes and streams, with
// correct payload hashes, lamports strictly increasing per stream above the
// prior's heads, dependencies (duplicates included) only on events of lower
// lamport drawn earlier in the batch or known to prior, and ids neither known
// to prior nor repeated. Streams whose head lamport is 2^62 or more are not
// extended, and prior ids with such lamports are not depended on. The events
// come in the order they were drawn, which is a causal order; see [Redeliver]
// for others.
func ValidBatch(prior *omega.State) *rapid.Generator[[]omega.Event] {
	return rapid.Custom(func(t *rapid.T) []omega.Event {
		return ledgerOf(prior).validBatch(t)
	})
}

// History returns a generator of one to four batches that merge in order from
// genesis: each is a [ValidBatch] against the State the batches before it
// yield.
func History() *rapid.Generator[[][]omega.Event] {
	return rapid.Custom(func(t *rapid.T) [][]omega.Event {
		l := newLedger()
		n := rapid.IntRange(1, maxHistory).Draw(t, "batches")
		out := make([][]omega.Event, n)
		for i := range out {
			out[i] = l.validBatch(t)
			l.apply(out[i])
		}
		return out
	})
}

// Batch returns a generator of arbitrary batches against prior (nil means
// genesis), shaped to reach every predicate: ids drawn afresh, reused within
// the batch or taken from prior's known ids; streams among nodes 0-2 and
// streams 0-1 and prior's head streams; lamports near prior's heads;
// dependencies on batch ids, known ids, the event itself and unknown ids;
// wrong payload hashes; identical copies; different contents under one id;
// and events sharing a stream and a lamport.
func Batch(prior *omega.State) *rapid.Generator[[]omega.Event] {
	return rapid.Custom(func(t *rapid.T) []omega.Event {
		l := ledgerOf(prior)
		var used []omega.EventID // ids of the batch so far
		pickID := func(label string) omega.EventID {
			switch k := rapid.IntRange(0, 9).Draw(t, label+" source"); {
			case k < 2 && len(l.ids) > 0:
				return l.ids[rapid.IntRange(0, len(l.ids)-1).Draw(t, label+" prior index")]
			case k < 4 && len(used) > 0:
				return used[rapid.IntRange(0, len(used)-1).Draw(t, label+" batch index")]
			default:
				id := EventID().Draw(t, label)
				for slices.Contains(used, id) {
					id.Lo++
				}
				return id
			}
		}
		heads := l.sortedHeads()
		n := rapid.IntRange(0, 10).Draw(t, "events")
		events := make([]omega.Event, 0, n+4)
		for range n {
			e := omega.Event{
				ID:       pickID("id"),
				NodeID:   rapid.Uint32Range(0, 2).Draw(t, "node"),
				StreamID: rapid.Uint16Range(0, 1).Draw(t, "stream"),
				Lamport:  lamport().Draw(t, "lamport"),
				MonoTSNs: rapid.Uint64Range(0, 3).Draw(t, "mono_ts_ns"),
				Kind:     rapid.Uint16Range(0, 3).Draw(t, "kind"),
				Flags:    rapid.Uint16Range(0, 3).Draw(t, "flags"),
				Payload:  rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "payload"),
			}
			used = append(used, e.ID)
			if len(heads) > 0 && rapid.Bool().Draw(t, "near a head") {
				h := heads[rapid.IntRange(0, len(heads)-1).Draw(t, "head")]
				e.NodeID, e.StreamID = h.NodeID, h.StreamID
				switch d := rapid.IntRange(-1, 1).Draw(t, "offset"); {
				case d < 0 && h.Lamport > 0:
					e.Lamport = h.Lamport - 1
				case d > 0 && h.Lamport < math.MaxUint64:
					e.Lamport = h.Lamport + 1
				default:
					e.Lamport = h.Lamport
				}
			}
			for range rapid.IntRange(0, maxDeps).Draw(t, "deps") {
				var d omega.EventID
				switch rapid.IntRange(0, 4).Draw(t, "dep kind") {
				case 0:
					d = e.ID
				case 1:
					d = EventID().Draw(t, "dep")
				default:
					d = pickID("dep")
				}
				e.Deps = append(e.Deps, d)
			}
			e.PayloadHash = digest.Plain(e.Payload)
			if rapid.IntRange(0, 7).Draw(t, "hash wrong") == 0 {
				e.PayloadHash[rapid.IntRange(0, 31).Draw(t, "hash byte")] ^= 1
			}
			events = append(events, e)
		}
		if len(events) == 0 {
			return events
		}
		if rapid.IntRange(0, 2).Draw(t, "variant") == 0 {
			v := clone(&events[rapid.IntRange(0, len(events)-1).Draw(t, "variant of")])
			switch rapid.IntRange(0, 4).Draw(t, "variant field") {
			case 0:
				v.Payload = append(v.Payload, rapid.Byte().Draw(t, "extra byte"))
				v.PayloadHash = digest.Plain(v.Payload)
			case 1:
				v.Lamport++
			case 2:
				v.Deps = append(v.Deps, pickID("extra dep"))
			case 3:
				v.Flags ^= 0x8000
			default:
				// Another id at the same place in the same stream.
				v.ID.Lo ^= 1 + rapid.Uint64Range(0, 6).Draw(t, "variant id")
			}
			events = append(events, v)
		}
		for range rapid.IntRange(0, 3).Draw(t, "copies") {
			events = append(events, clone(&events[rapid.IntRange(0, len(events)-1).Draw(t, "copy of")]))
		}
		return rapid.Permutation(events).Draw(t, "order")
	})
}

// Redeliver returns batch in another order with identical copies of some of
// its events added, as several nodes delivering the same events would. The
// result of Reconcile must not change. Every event of the returned slice owns
// its slices.
func Redeliver(t *rapid.T, batch []omega.Event) []omega.Event {
	out := make([]omega.Event, 0, len(batch)+3)
	for i := range batch {
		out = append(out, clone(&batch[i]))
	}
	if len(batch) > 0 {
		for range rapid.IntRange(0, 3).Draw(t, "copies") {
			out = append(out, clone(&batch[rapid.IntRange(0, len(batch)-1).Draw(t, "copy of")]))
		}
	}
	return rapid.Permutation(out).Draw(t, "order")
}

// clone returns a deep copy of e.
func clone(e *omega.Event) omega.Event {
	c := *e
	c.Deps = slices.Clone(e.Deps)
	c.Payload = slices.Clone(e.Payload)
	return c
}

// stream names a stream: a node and a stream id.
type stream struct {
	node uint32
	id   uint16
}

func compareStreams(a, b stream) int {
	return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.id, b.id))
}

// ledger is a plain model of a State's contents, which the generators extend
// without calling the checker under test.
type ledger struct {
	known map[omega.EventID]uint64
	ids   []omega.EventID // the keys of known in a deterministic order
	heads map[stream]omega.StreamHead
}

func newLedger() *ledger {
	return &ledger{known: map[omega.EventID]uint64{}, heads: map[stream]omega.StreamHead{}}
}

func ledgerOf(s *omega.State) *ledger {
	l := newLedger()
	for _, k := range s.KnownIDs() {
		l.known[k.ID] = k.Lamport
		l.ids = append(l.ids, k.ID)
	}
	for _, h := range s.Heads() {
		l.heads[stream{h.NodeID, h.StreamID}] = h
	}
	return l
}

// sortedHeads returns the heads ascending by stream.
func (l *ledger) sortedHeads() []omega.StreamHead {
	out := make([]omega.StreamHead, 0, len(l.heads))
	for _, h := range l.heads {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b omega.StreamHead) int {
		return compareStreams(stream{a.NodeID, a.StreamID}, stream{b.NodeID, b.StreamID})
	})
	return out
}

// apply records a merged batch, which must be valid against l.
func (l *ledger) apply(batch []omega.Event) {
	for _, e := range batch {
		if _, ok := l.known[e.ID]; !ok {
			l.ids = append(l.ids, e.ID)
		}
		l.known[e.ID] = e.Lamport
		s := stream{e.NodeID, e.StreamID}
		if h, ok := l.heads[s]; !ok || e.Lamport > h.Lamport {
			l.heads[s] = omega.StreamHead{NodeID: e.NodeID, StreamID: e.StreamID, Lamport: e.Lamport, ID: e.ID}
		}
	}
}

// batchDraft tracks a batch being drawn against a ledger: its events, the
// ids it uses and the last lamport of each stream.
type batchDraft struct {
	l      *ledger
	events []omega.Event
	used   map[omega.EventID]bool // ids of events and dependencies
	last   map[stream]uint64      // last lamport per stream, prior heads included
	inUse  map[stream]bool        // streams of the batch and of prior heads
}

func (l *ledger) draft(batch []omega.Event) *batchDraft {
	d := &batchDraft{l: l, used: map[omega.EventID]bool{}, last: map[stream]uint64{}, inUse: map[stream]bool{}}
	for s, h := range l.heads {
		d.last[s] = h.Lamport
		d.inUse[s] = true
	}
	for _, e := range batch {
		d.add(clone(&e))
	}
	return d
}

func (d *batchDraft) add(e omega.Event) {
	d.events = append(d.events, e)
	d.used[e.ID] = true
	for _, dep := range e.Deps {
		d.used[dep] = true
	}
	s := stream{e.NodeID, e.StreamID}
	d.inUse[s] = true
	if last, ok := d.last[s]; !ok || e.Lamport > last {
		d.last[s] = e.Lamport
	}
}

// freshID draws an id that is neither known to the prior nor used by the
// batch.
func (d *batchDraft) freshID(t *rapid.T, label string) omega.EventID {
	id := EventID().Draw(t, label)
	for d.used[id] || d.known(id) {
		id.Lo++
		if id.Lo == 0 {
			id.Hi++
		}
	}
	d.used[id] = true
	return id
}

func (d *batchDraft) known(id omega.EventID) bool {
	_, ok := d.l.known[id]
	return ok
}

// freshStream draws a stream with no prior head and no event in the batch.
func (d *batchDraft) freshStream(t *rapid.T) stream {
	s := stream{rapid.Uint32().Draw(t, "fresh node"), rapid.Uint16().Draw(t, "fresh stream")}
	for d.inUse[s] {
		s.node++
	}
	d.inUse[s] = true
	return s
}

// lamportOf returns the lamport of an id of the batch or of the prior.
func (d *batchDraft) lamportOf(id omega.EventID) (uint64, bool) {
	for _, e := range d.events {
		if e.ID == id {
			return e.Lamport, true
		}
	}
	lam, ok := d.l.known[id]
	return lam, ok
}

// validDeps draws up to maxDeps dependencies, duplicates allowed, on batch
// events and prior ids whose lamports are below limit.
func (d *batchDraft) validDeps(t *rapid.T, limit uint64) []omega.EventID {
	var deps []omega.EventID
	for range rapid.IntRange(0, maxDeps).Draw(t, "valid deps") {
		if id, ok := d.depBelow(t, limit); ok {
			deps = append(deps, id)
		}
	}
	return deps
}

// depBelow draws a batch event or prior id with lamport below limit.
func (d *batchDraft) depBelow(t *rapid.T, limit uint64) (omega.EventID, bool) {
	var id omega.EventID
	var lam uint64
	switch {
	case len(d.events) > 0 && (len(d.l.ids) == 0 || rapid.Bool().Draw(t, "dep in batch")):
		e := d.events[rapid.IntRange(0, len(d.events)-1).Draw(t, "dep index")]
		id, lam = e.ID, e.Lamport
	case len(d.l.ids) > 0:
		id = d.l.ids[rapid.IntRange(0, len(d.l.ids)-1).Draw(t, "prior dep index")]
		lam = d.l.known[id]
	default:
		return id, false
	}
	return id, lam < limit
}

// newEvent returns an event with id, stream, lamport and deps and a drawn
// payload with its correct hash.
func newEvent(t *rapid.T, id omega.EventID, s stream, lam uint64, deps []omega.EventID) omega.Event {
	e := omega.Event{
		ID:       id,
		NodeID:   s.node,
		StreamID: s.id,
		Lamport:  lam,
		MonoTSNs: rapid.Uint64().Draw(t, "mono_ts_ns"),
		Kind:     rapid.Uint16().Draw(t, "kind"),
		Flags:    rapid.Uint16().Draw(t, "flags"),
		Deps:     deps,
		Payload:  Payload().Draw(t, "payload"),
	}
	e.PayloadHash = digest.Plain(e.Payload)
	return e
}

func (l *ledger) validBatch(t *rapid.T) []omega.Event {
	d := l.draft(nil)
	var streams []stream
	if heads := l.sortedHeads(); len(heads) > 0 {
		for range rapid.IntRange(0, min(3, len(heads))).Draw(t, "prior streams") {
			h := heads[rapid.IntRange(0, len(heads)-1).Draw(t, "prior stream")]
			if h.Lamport < maxLamport {
				streams = append(streams, stream{h.NodeID, h.StreamID})
			}
		}
	}
	for range rapid.IntRange(1, 3).Draw(t, "new streams") {
		s := stream{
			rapid.OneOf(rapid.Uint32Range(0, 3), rapid.Uint32()).Draw(t, "node"),
			rapid.OneOf(rapid.Uint16Range(0, 2), rapid.Uint16()).Draw(t, "stream"),
		}
		if last, ok := d.last[s]; !ok || last < maxLamport {
			streams = append(streams, s)
		}
	}
	slices.SortFunc(streams, compareStreams)
	streams = slices.Compact(streams)
	if len(streams) == 0 {
		// Every stream drawn is at its lamport limit.
		streams = append(streams, d.freshStream(t))
	}

	for range rapid.IntRange(0, maxBatchEvents).Draw(t, "events") {
		s := streams[rapid.IntRange(0, len(streams)-1).Draw(t, "stream index")]
		var lo uint64
		if last, ok := d.last[s]; ok {
			lo = last + 1
		}
		var deps []omega.EventID
		for range rapid.IntRange(0, maxDeps).Draw(t, "deps") {
			id, ok := d.depBelow(t, maxLamport)
			if !ok {
				continue
			}
			lam, _ := d.lamportOf(id)
			deps = append(deps, id)
			lo = max(lo, lam+1)
		}
		gap := rapid.OneOf(rapid.Uint64Range(0, 2), rapid.Uint64Range(0, 1<<20)).Draw(t, "lamport gap")
		d.add(newEvent(t, d.freshID(t, "id"), s, lo+gap, deps))
	}
	return d.events
}
