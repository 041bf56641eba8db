package omegatest

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// StateView is a State's contents as plain values, for comparing States
// with == or a diff.
type StateView struct {
	Known           []omega.KnownID    // ascending by id
	Heads           []omega.StreamHead // ascending by (node, stream)
	MergedStateHash omega.Hash
	FrontierDigest  omega.Hash
	HeadsDigest     omega.Hash
}

// View returns the contents of s (nil means genesis).
func View(s *omega.State) StateView {
	return StateView{
		Known:           s.KnownIDs(),
		Heads:           s.Heads(),
		MergedStateHash: s.MergedStateHash(),
		FrontierDigest:  s.FrontierDigest(),
		HeadsDigest:     s.HeadsDigest(),
	}
}

// Equal reports whether v and w hold the same contents.
func (v StateView) Equal(w StateView) bool {
	return slices.Equal(v.Known, w.Known) && slices.Equal(v.Heads, w.Heads) &&
		v.MergedStateHash == w.MergedStateHash && v.FrontierDigest == w.FrontierDigest &&
		v.HeadsDigest == w.HeadsDigest
}

// CheckResult fails t unless r is a consistent result of reconciling events
// against prior (nil means genesis) under SPEC section 4. It recomputes,
// from events and prior alone:
//
//   - the members (distinct contents in canonical order, with their event
//     digests), the trace root over them and prior_state_hash;
//   - for a Merge: batch_digest, merged_state_hash, accepted_ids_digest,
//     frontier_digest, heads_digest, the merge witness, the accepted ids,
//     that every built-in predicate holds, and the next State's contents;
//   - for an Obstruction: that the conflict set is ascending and names the
//     offending event, overlap_context_digest, that the evidence is distinct
//     contents of the batch in canonical order with their digests, the
//     obstruction witness, and that a built-in violation re-checks from the
//     evidence and prior alone.
//
// It does not decide which violation comes first: that is the checker's
// job, compared with a reference in omega's own tests.
func CheckResult(t rapid.TB, prior *omega.State, events []omega.Event, r *omega.Result) {
	t.Helper()
	if r == nil {
		t.Fatalf("Reconcile(%d events) = nil result", len(events))
		return
	}
	contents := canonical(events)
	want := make([]omega.Member, len(contents))
	leaves := make([]omega.Hash, len(contents))
	for i, c := range contents {
		want[i] = omega.Member{ID: c.ev.ID, Digest: c.digest}
		leaves[i] = c.digest
	}
	if !slices.Equal(r.Members, want) {
		t.Errorf("Reconcile(%d events).Members = %v, want %v", len(events), r.Members, want)
	}
	if got, want := r.TraceRoot, merkleRoot(leaves); got != want {
		t.Errorf("Reconcile(%d events).TraceRoot = %v, want %v", len(events), got, want)
	}
	if got, want := r.PriorStateHash, prior.MergedStateHash(); got != want {
		t.Errorf("Reconcile(%d events).PriorStateHash = %v, want %v", len(events), got, want)
	}
	switch r.Kind {
	case omega.KindMerge:
		if r.Merge == nil || r.Obstruction != nil {
			t.Fatalf("Reconcile(%d events) = merge with Merge %v, Obstruction %v; want only Merge", len(events), r.Merge != nil, r.Obstruction != nil)
			return
		}
		checkMerge(t, prior, contents, r)
	case omega.KindObstruction:
		if r.Obstruction == nil || r.Merge != nil {
			t.Fatalf("Reconcile(%d events) = obstruction with Merge %v, Obstruction %v; want only Obstruction", len(events), r.Merge != nil, r.Obstruction != nil)
			return
		}
		checkObstruction(t, prior, contents, r)
	default:
		t.Errorf("Reconcile(%d events).Kind = %d, want merge or obstruction", len(events), r.Kind)
	}
}

func checkMerge(t rapid.TB, prior *omega.State, contents []content, r *omega.Result) {
	t.Helper()
	m := r.Merge
	var batch, ids []byte
	for _, c := range contents {
		batch = append(batch, c.ev.PayloadHash[:]...)
		batch = appendID(batch, c.ev.ID)
		ids = appendID(ids, c.ev.ID)
	}
	prevMerged, prevFrontier := prior.MergedStateHash(), prior.FrontierDigest()
	bd := omega.Hash(digest.Of(digest.Batch, batch))
	merged := omega.Hash(digest.Of(digest.State, prevMerged[:], bd[:]))
	acc := omega.Hash(digest.Of(digest.IDs, ids))
	frontier := omega.Hash(digest.Of(digest.Frontier, prevFrontier[:], acc[:]))

	// The heads this batch moved: the last content of each stream in
	// canonical order, which in a merge has the stream's highest lamport.
	moved := map[stream]omega.StreamHead{}
	for _, c := range contents {
		moved[stream{c.ev.NodeID, c.ev.StreamID}] = omega.StreamHead{NodeID: c.ev.NodeID, StreamID: c.ev.StreamID, Lamport: c.ev.Lamport, ID: c.ev.ID}
	}
	movedList := sortedHeads(moved)
	heads := omega.Hash(digest.Of(digest.Heads, headsBytes(movedList)))
	witness := omega.Hash(digest.Of(digest.MergeWitness, merged[:], acc[:], r.TraceRoot[:]))

	for _, f := range []struct {
		name      string
		got, want omega.Hash
	}{
		{"BatchDigest", m.BatchDigest, bd},
		{"MergedStateHash", m.MergedStateHash, merged},
		{"AcceptedIDsDigest", m.AcceptedIDsDigest, acc},
		{"FrontierDigest", m.FrontierDigest, frontier},
		{"HeadsDigest", m.HeadsDigest, heads},
		{"WitnessHash", r.WitnessHash, witness},
	} {
		if f.got != f.want {
			t.Errorf("Reconcile(%d events).%s = %v, want %v", len(contents), f.name, f.got, f.want)
		}
	}
	wantIDs := make([]omega.EventID, len(contents))
	for i, c := range contents {
		wantIDs[i] = c.ev.ID
	}
	if got := r.AcceptedIDs(); !slices.Equal(got, wantIDs) {
		t.Errorf("Reconcile(%d events).AcceptedIDs() = %v, want %v", len(contents), got, wantIDs)
	}
	checkMergeValid(t, prior, contents)

	if m.Next == nil {
		t.Errorf("Reconcile(%d events).Merge.Next = nil, want a State", len(contents))
		return
	}
	before := View(prior)
	known := slices.Clone(before.Known)
	for _, c := range contents {
		known = append(known, omega.KnownID{ID: c.ev.ID, Lamport: c.ev.Lamport})
	}
	slices.SortFunc(known, func(a, b omega.KnownID) int { return a.ID.Compare(b.ID) })
	all := map[stream]omega.StreamHead{}
	for _, h := range before.Heads {
		all[stream{h.NodeID, h.StreamID}] = h
	}
	for s, h := range moved {
		all[s] = h
	}
	allList := sortedHeads(all)
	want := StateView{
		Known:           known,
		Heads:           allList,
		MergedStateHash: merged,
		FrontierDigest:  frontier,
		HeadsDigest:     digest.Of(digest.Heads, headsBytes(allList)),
	}
	if got := View(m.Next); !got.Equal(want) {
		t.Errorf("View(Reconcile(%d events).Merge.Next) = %+v, want %+v", len(contents), got, want)
	}
	for _, c := range contents {
		if lam, ok := m.Next.Lamport(c.ev.ID); !ok || lam != c.ev.Lamport {
			t.Errorf("Next.Lamport(%v) = %d, %v; want %d, true", c.ev.ID, lam, ok, c.ev.Lamport)
		}
	}
	for _, h := range movedList {
		if got, ok := m.Next.Head(h.NodeID, h.StreamID); !ok || got != h {
			t.Errorf("Next.Head(%d, %d) = %+v, %v; want %+v, true", h.NodeID, h.StreamID, got, ok, h)
		}
	}
}

// checkMergeValid fails t unless every built-in predicate holds over a
// merged batch.
func checkMergeValid(t rapid.TB, prior *omega.State, contents []content) {
	t.Helper()
	byID := map[omega.EventID]*omega.Event{}
	last := map[stream]uint64{}
	for _, c := range contents {
		e := c.ev
		if _, dup := byID[e.ID]; dup {
			t.Errorf("Reconcile merged two contents with id %v, want a 3001 obstruction", e.ID)
		}
		byID[e.ID] = e
		if !bytes.Equal(e.PayloadHash[:], plainHash(e.Payload)) {
			t.Errorf("Reconcile merged %v with a wrong payload hash, want a 2001 obstruction", e.ID)
		}
		if _, ok := prior.Lamport(e.ID); ok {
			t.Errorf("Reconcile merged %v, known to the prior, want a 1002 obstruction", e.ID)
		}
		s := stream{e.NodeID, e.StreamID}
		prev, ok := last[s]
		if !ok {
			if h, hok := prior.Head(e.NodeID, e.StreamID); hok {
				prev, ok = h.Lamport, true
			}
		}
		if ok && e.Lamport <= prev {
			t.Errorf("Reconcile merged %v at lamport %d after %d in its stream, want a 1001 obstruction", e.ID, e.Lamport, prev)
		}
		last[s] = e.Lamport
	}
	for _, c := range contents {
		e := c.ev
		for _, d := range e.Deps {
			lam, ok := uint64(0), false
			if de, in := byID[d]; in {
				lam, ok = de.Lamport, true
			} else {
				lam, ok = prior.Lamport(d)
			}
			switch {
			case !ok:
				t.Errorf("Reconcile merged %v depending on unknown %v, want a 2002 obstruction", e.ID, d)
			case lam >= e.Lamport:
				t.Errorf("Reconcile merged %v at lamport %d depending on %v at %d, want a 1003 obstruction", e.ID, e.Lamport, d, lam)
			}
		}
	}
}

func checkObstruction(t rapid.TB, prior *omega.State, contents []content, r *omega.Result) {
	t.Helper()
	o := r.Obstruction
	n := len(contents)
	if got := r.AcceptedIDs(); got != nil {
		t.Errorf("Reconcile(%d events).AcceptedIDs() = %v, want nil for an obstruction", n, got)
	}
	if !predicates.IsBuiltin(o.Predicate) && (o.Predicate < predicates.DomainMin || o.Predicate > predicates.DomainMax) {
		t.Errorf("Reconcile(%d events).Predicate = %d, want a built-in or domain id", n, o.Predicate)
	}
	if len(o.ConflictSet) == 0 || len(o.ConflictSet) > 2 || !slices.Contains(o.ConflictSet, o.Event) {
		t.Errorf("Reconcile(%d events).ConflictSet = %v, want 1 or 2 ids including %v", n, o.ConflictSet, o.Event)
	}
	for i := 1; i < len(o.ConflictSet); i++ {
		if o.ConflictSet[i-1].Compare(o.ConflictSet[i]) >= 0 {
			t.Errorf("Reconcile(%d events).ConflictSet = %v, want ascending, no repeats", n, o.ConflictSet)
		}
	}
	var ids []byte
	for _, id := range o.ConflictSet {
		ids = appendID(ids, id)
	}
	if got, want := o.OverlapContextDigest, omega.Hash(digest.Of(digest.IDs, ids)); got != want {
		t.Errorf("Reconcile(%d events).OverlapContextDigest = %v, want %v", n, got, want)
	}

	byDigest := map[omega.Hash]bool{}
	for _, c := range contents {
		byDigest[c.digest] = true
	}
	if len(o.Evidence) == 0 || len(o.Evidence) != len(o.EvidenceDigests) {
		t.Fatalf("Reconcile(%d events): %d evidence events, %d evidence digests; want as many, at least one", n, len(o.Evidence), len(o.EvidenceDigests))
		return
	}
	witness := binary.LittleEndian.AppendUint32(nil, uint32(o.Predicate))
	witness = append(witness, ids...)
	var offending *omega.Event
	for i := range o.Evidence {
		ev := &o.Evidence[i]
		d := eventDigest(ev)
		if o.EvidenceDigests[i] != d {
			t.Errorf("Reconcile(%d events).EvidenceDigests[%d] = %v, want %v", n, i, o.EvidenceDigests[i], d)
		}
		if !byDigest[d] {
			t.Errorf("Reconcile(%d events).Evidence[%d] = event %v, not a content of the batch", n, i, ev.ID)
		}
		if i > 0 && compareContents(&content{&o.Evidence[i-1], o.EvidenceDigests[i-1]}, &content{ev, d}) >= 0 {
			t.Errorf("Reconcile(%d events).Evidence[%d..%d] not in canonical order", n, i-1, i)
		}
		if ev.ID == o.Event && offending == nil {
			offending = ev
		}
		witness = append(witness, d[:]...)
	}
	if got, want := r.WitnessHash, omega.Hash(digest.Of(digest.ObstructionWitness, witness)); got != want {
		t.Errorf("Reconcile(%d events).WitnessHash = %v, want %v", n, got, want)
	}
	if offending == nil {
		t.Errorf("Reconcile(%d events).Evidence holds no event with the offending id %v", n, o.Event)
		return
	}
	if err := recheck(prior, contents, o, offending); err != "" {
		t.Errorf("Reconcile(%d events) = obstruction %d at %v: %s", n, o.Predicate, o.Event, err)
	}
}

// recheck re-checks a built-in violation from its evidence and the prior,
// as SPEC 4's evidence rule promises, and describes what does not hold.
func recheck(prior *omega.State, contents []content, o *omega.Obstruction, e *omega.Event) string {
	other := func() (omega.EventID, bool) {
		for _, id := range o.ConflictSet {
			if id != e.ID {
				return id, true
			}
		}
		return omega.EventID{}, false
	}
	inEvidence := func(id omega.EventID) *omega.Event {
		for i := range o.Evidence {
			if o.Evidence[i].ID == id {
				return &o.Evidence[i]
			}
		}
		return nil
	}
	switch o.Predicate {
	case predicates.PayloadHashMatch:
		if len(o.ConflictSet) != 1 || len(o.Evidence) != 1 {
			return "want conflict set and evidence of e alone"
		}
		if bytes.Equal(e.PayloadHash[:], plainHash(e.Payload)) {
			return "payload hash matches"
		}
	case predicates.OverlapAgreement:
		if len(o.ConflictSet) != 1 || len(o.Evidence) < 2 {
			return "want conflict set of e alone, evidence of two contents or more"
		}
		want := 0
		for _, c := range contents {
			if c.ev.ID == e.ID {
				want++
			}
		}
		if got := len(o.Evidence); got != min(want, 65535) {
			return "evidence does not hold every content with e's id"
		}
		for i := range o.Evidence {
			if o.Evidence[i].ID != e.ID {
				return "evidence holds another id"
			}
		}
	case predicates.EventUnique:
		if len(o.ConflictSet) != 1 || len(o.Evidence) != 1 {
			return "want conflict set and evidence of e alone"
		}
		if _, ok := prior.Lamport(e.ID); !ok {
			return "e's id is not known to the prior"
		}
	case predicates.LamportMonotonic:
		p, ok := other()
		if !ok {
			return "want two ids in the conflict set"
		}
		if pe := inEvidence(p); pe != nil {
			if len(o.Evidence) != 2 || pe.NodeID != e.NodeID || pe.StreamID != e.StreamID || pe.Lamport != e.Lamport {
				return "previous event is not of e's stream with e's lamport"
			}
		} else {
			h, hok := prior.Head(e.NodeID, e.StreamID)
			if len(o.Evidence) != 1 || !hok || h.ID != p || e.Lamport > h.Lamport {
				return "e is not at or below its stream's prior head"
			}
		}
	case predicates.CausalOrder:
		d, ok := other()
		if !ok {
			d = e.ID // a self-dependency
		}
		if !slices.Contains(e.Deps, d) {
			return "e does not depend on the other id"
		}
		var lam uint64
		if de := inEvidence(d); de != nil {
			if len(o.Evidence) != 1+b2i(d != e.ID) {
				return "want evidence of e and the dependency"
			}
			lam = de.Lamport
		} else {
			lam, ok = prior.Lamport(d)
			if !ok || len(o.Evidence) != 1 {
				return "dependency neither in the evidence nor known to the prior"
			}
		}
		if lam < e.Lamport {
			return "dependency's lamport is below e's"
		}
	case predicates.DependencyKnown:
		d, ok := other()
		if !ok || len(o.Evidence) != 1 || !slices.Contains(e.Deps, d) {
			return "want e and one of its dependencies, evidence of e alone"
		}
		if _, known := prior.Lamport(d); known {
			return "dependency is known to the prior"
		}
		for _, c := range contents {
			if c.ev.ID == d {
				return "dependency is in the batch"
			}
		}
	default:
		if len(o.ConflictSet) != 1 || len(o.Evidence) != 1 {
			return "want conflict set and evidence of e alone"
		}
	}
	return ""
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// content is one distinct content of a batch.
type content struct {
	ev     *omega.Event
	digest omega.Hash
}

// canonical returns the distinct contents of events in canonical order.
func canonical(events []omega.Event) []content {
	seen := map[omega.Hash]bool{}
	var out []content
	for i := range events {
		d := eventDigest(&events[i])
		if seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, content{&events[i], d})
	}
	slices.SortFunc(out, func(a, b content) int { return compareContents(&a, &b) })
	return out
}

// compareContents orders by the key (lamport, node, stream, id), then the
// event digest (SPEC 3).
func compareContents(a, b *content) int {
	return cmp.Or(
		cmp.Compare(a.ev.Lamport, b.ev.Lamport),
		cmp.Compare(a.ev.NodeID, b.ev.NodeID),
		cmp.Compare(a.ev.StreamID, b.ev.StreamID),
		a.ev.ID.Compare(b.ev.ID),
		bytes.Compare(a.digest[:], b.digest[:]),
	)
}

// encode returns e's canonical encoding (SPEC 3).
func encode(e *omega.Event) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, 80+16*len(e.Deps)+len(e.Payload))
	b = appendID(b, e.ID)
	b = le.AppendUint32(b, e.NodeID)
	b = le.AppendUint16(b, e.StreamID)
	b = le.AppendUint64(b, e.Lamport)
	b = le.AppendUint64(b, e.MonoTSNs)
	b = le.AppendUint16(b, e.Kind)
	b = le.AppendUint16(b, e.Flags)
	b = le.AppendUint16(b, uint16(len(e.Deps)))
	b = le.AppendUint32(b, uint32(len(e.Payload)))
	b = append(b, e.PayloadHash[:]...)
	for _, d := range e.Deps {
		b = appendID(b, d)
	}
	return append(b, e.Payload...)
}

func eventDigest(e *omega.Event) omega.Hash { return digest.Of(digest.Event, encode(e)) }

func plainHash(p []byte) []byte {
	h := digest.Plain(p)
	return h[:]
}

func appendID(b []byte, id omega.EventID) []byte {
	b = binary.LittleEndian.AppendUint64(b, id.Lo)
	return binary.LittleEndian.AppendUint64(b, id.Hi)
}

func sortedHeads(m map[stream]omega.StreamHead) []omega.StreamHead {
	out := make([]omega.StreamHead, 0, len(m))
	for _, h := range m {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b omega.StreamHead) int {
		return compareStreams(stream{a.NodeID, a.StreamID}, stream{b.NodeID, b.StreamID})
	})
	return out
}

func headsBytes(heads []omega.StreamHead) []byte {
	var b []byte
	for _, h := range heads {
		b = binary.LittleEndian.AppendUint32(b, h.NodeID)
		b = binary.LittleEndian.AppendUint16(b, h.StreamID)
		b = binary.LittleEndian.AppendUint64(b, h.Lamport)
		b = appendID(b, h.ID)
	}
	return b
}

// merkleRoot is the RFC 6962 tree over leaves used as given, with nodes
// D("trace node", left || right).
func merkleRoot(leaves []omega.Hash) omega.Hash {
	switch n := len(leaves); n {
	case 0:
		return omega.Hash{}
	case 1:
		return leaves[0]
	default:
		k := 1 << (bits.Len(uint(n-1)) - 1)
		l, r := merkleRoot(leaves[:k]), merkleRoot(leaves[k:])
		return digest.Of(digest.TraceNode, l[:], r[:])
	}
}
