package omega_test

// A reference checker written from SPEC section 4 for clarity, not speed:
// plain maps and loops, sort.Slice, a recursive Merkle tree, and every digest
// input built as a byte slice. The tests below check omega's checker against
// it on random batches, field by field and byte by byte.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zeebo/blake3"
	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/omegatest"
	"github.com/omega-sheaf/omega/predicates"
)

// refStream names a stream.
type refStream struct {
	node   uint32
	stream uint16
}

// refHead is a stream's head.
type refHead struct {
	lamport uint64
	id      omega.EventID
}

// refPrior is a prior State as plain data.
type refPrior struct {
	known    map[omega.EventID]uint64
	heads    map[refStream]refHead
	merged   omega.Hash
	frontier omega.Hash
}

// refOutcome is the reference's decision on a batch.
type refOutcome struct {
	result *omega.Result // Merge.Next is left nil: next holds the state
	next   *refPrior     // the state a Merge yields
	json   []byte        // the result's JSON view, written from SPEC 4
}

// refD is D(purpose, bytes) of SPEC 2: BLAKE3 derive_key mode with context
// "omega v1 " + purpose.
func refD(purpose string, b []byte) omega.Hash {
	h := blake3.NewDeriveKey("omega v1 " + purpose)
	h.Write(b)
	var out omega.Hash
	h.Sum(out[:0])
	return out
}

func refID(b []byte, id omega.EventID) []byte {
	b = binary.LittleEndian.AppendUint64(b, id.Lo)
	return binary.LittleEndian.AppendUint64(b, id.Hi)
}

// refEncode is the canonical encoding of SPEC 3, field by field.
func refEncode(e *omega.Event) []byte {
	var b []byte
	b = refID(b, e.ID)
	b = binary.LittleEndian.AppendUint32(b, e.NodeID)
	b = binary.LittleEndian.AppendUint16(b, e.StreamID)
	b = binary.LittleEndian.AppendUint64(b, e.Lamport)
	b = binary.LittleEndian.AppendUint64(b, e.MonoTSNs)
	b = binary.LittleEndian.AppendUint16(b, e.Kind)
	b = binary.LittleEndian.AppendUint16(b, e.Flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e.Deps)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Payload)))
	b = append(b, e.PayloadHash[:]...)
	for _, d := range e.Deps {
		b = refID(b, d)
	}
	return append(b, e.Payload...)
}

// refMerkle is the RFC 6962 tree: split at the largest power of two smaller
// than n, leaves used as given, nodes D("trace node", l || r).
func refMerkle(leaves []omega.Hash) omega.Hash {
	if len(leaves) == 0 {
		return omega.Hash{}
	}
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l := refMerkle(leaves[:k])
	r := refMerkle(leaves[k:])
	return refD("trace node", append(l[:], r[:]...))
}

func refLessID(a, b omega.EventID) bool {
	if a.Hi != b.Hi {
		return a.Hi < b.Hi
	}
	return a.Lo < b.Lo
}

// refViolation is one failed predicate with its conflict set and evidence
// (indexes into the distinct contents).
type refViolation struct {
	pred     predicates.ID
	event    omega.EventID
	conflict []omega.EventID
	evidence []int
}

// refReconcile decides batch against prior. domain holds the domain
// predicates, evaluated with priorState (the State prior describes).
func refReconcile(prior *refPrior, priorState *omega.State, batch []omega.Event, domain []omega.DomainPredicate) refOutcome {
	// Glue identical copies: one representative per canonical encoding.
	var events []omega.Event
	var encs [][]byte
	for i := range batch {
		enc := refEncode(&batch[i])
		dup := false
		for _, seen := range encs {
			if bytes.Equal(seen, enc) {
				dup = true
			}
		}
		if !dup {
			events = append(events, batch[i])
			encs = append(encs, enc)
		}
	}
	digests := make([]omega.Hash, len(events))
	for i := range events {
		digests[i] = refD("event", encs[i])
	}
	// Canonical order: (lamport, node, stream, id), then the event digest.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(x, y int) bool {
		a, b := &events[order[x]], &events[order[y]]
		if a.Lamport != b.Lamport {
			return a.Lamport < b.Lamport
		}
		if a.NodeID != b.NodeID {
			return a.NodeID < b.NodeID
		}
		if a.StreamID != b.StreamID {
			return a.StreamID < b.StreamID
		}
		if a.ID != b.ID {
			return refLessID(a.ID, b.ID)
		}
		return bytes.Compare(digests[order[x]][:], digests[order[y]][:]) < 0
	})
	var sorted []omega.Event
	var sortedDigests []omega.Hash
	for _, i := range order {
		sorted = append(sorted, events[i])
		sortedDigests = append(sortedDigests, digests[i])
	}
	events, digests = sorted, sortedDigests

	res := &omega.Result{PriorStateHash: prior.merged, TraceRoot: refMerkle(digests)}
	for i := range events {
		res.Members = append(res.Members, omega.Member{ID: events[i].ID, Digest: digests[i]})
	}

	v := refFirstViolation(prior, priorState, events, domain)
	if v == nil {
		next := refMerge(prior, events, res)
		return refOutcome{result: res, next: next, json: refMergeJSON(res)}
	}

	res.Kind = omega.KindObstruction
	o := &omega.Obstruction{Predicate: v.pred, Event: v.event}
	sort.Slice(v.conflict, func(i, j int) bool { return refLessID(v.conflict[i], v.conflict[j]) })
	for i, id := range v.conflict {
		if i == 0 || id != v.conflict[i-1] {
			o.ConflictSet = append(o.ConflictSet, id)
		}
	}
	var ids []byte
	for _, id := range o.ConflictSet {
		ids = refID(ids, id)
	}
	o.OverlapContextDigest = refD("ids", ids)
	sort.Ints(v.evidence)
	for _, i := range v.evidence {
		o.Evidence = append(o.Evidence, events[i])
		o.EvidenceDigests = append(o.EvidenceDigests, digests[i])
	}
	w := binary.LittleEndian.AppendUint32(nil, uint32(v.pred))
	w = append(w, ids...)
	for _, d := range o.EvidenceDigests {
		w = append(w, d[:]...)
	}
	res.WitnessHash = refD("obstruction witness", w)
	res.Obstruction = o
	return refOutcome{result: res, json: refObstructionJSON(res)}
}

// refFirstViolation walks the distinct contents in canonical order and
// evaluates, at each, 2001, 3001, 1002, 1001, 1003, 2002, then the domain
// predicates in ascending id; the first failure is returned.
func refFirstViolation(prior *refPrior, priorState *omega.State, events []omega.Event, domain []omega.DomainPredicate) *refViolation {
	domain = append([]omega.DomainPredicate(nil), domain...)
	sort.Slice(domain, func(i, j int) bool { return domain[i].Entry().ID < domain[j].Entry().ID })

	// firstWithID is the first content in canonical order with each id.
	firstWithID := map[omega.EventID]int{}
	for i := len(events) - 1; i >= 0; i-- {
		firstWithID[events[i].ID] = i
	}
	for i := range events {
		e := &events[i]
		single := func(p predicates.ID) *refViolation {
			return &refViolation{pred: p, event: e.ID, conflict: []omega.EventID{e.ID}, evidence: []int{i}}
		}
		// 2001 payload_hash_match.
		if blake3.Sum256(e.Payload) != e.PayloadHash {
			return single(predicates.PayloadHashMatch)
		}
		// 3001 overlap_agreement: another content with e's id.
		var same []int
		for j := range events {
			if events[j].ID == e.ID {
				same = append(same, j)
			}
		}
		if len(same) > 1 {
			if len(same) > 65535 {
				same = same[:65535]
			}
			return &refViolation{pred: predicates.OverlapAgreement, event: e.ID, conflict: []omega.EventID{e.ID}, evidence: same}
		}
		// 1002 event_unique.
		if _, ok := prior.known[e.ID]; ok {
			return single(predicates.EventUnique)
		}
		// 1001 lamport_monotonic.
		s := refStream{e.NodeID, e.StreamID}
		prev := -1
		for j := i - 1; j >= 0; j-- {
			if events[j].NodeID == e.NodeID && events[j].StreamID == e.StreamID {
				prev = j
				break
			}
		}
		if prev >= 0 {
			if events[prev].Lamport == e.Lamport {
				return &refViolation{pred: predicates.LamportMonotonic, event: e.ID,
					conflict: []omega.EventID{e.ID, events[prev].ID}, evidence: []int{prev, i}}
			}
		} else if h, ok := prior.heads[s]; ok && e.Lamport <= h.lamport {
			return &refViolation{pred: predicates.LamportMonotonic, event: e.ID,
				conflict: []omega.EventID{e.ID, h.id}, evidence: []int{i}}
		}
		// 1003 causal_order, over every dependency before any 2002.
		for _, d := range e.Deps {
			if j, ok := firstWithID[d]; ok {
				if events[j].Lamport >= e.Lamport {
					ev := []int{i}
					if j != i {
						ev = append(ev, j)
					}
					return &refViolation{pred: predicates.CausalOrder, event: e.ID,
						conflict: []omega.EventID{e.ID, d}, evidence: ev}
				}
			} else if lam, ok := prior.known[d]; ok && lam >= e.Lamport {
				return &refViolation{pred: predicates.CausalOrder, event: e.ID,
					conflict: []omega.EventID{e.ID, d}, evidence: []int{i}}
			}
		}
		// 2002 dependency_known.
		for _, d := range e.Deps {
			_, inBatch := firstWithID[d]
			_, inPrior := prior.known[d]
			if !inBatch && !inPrior {
				return &refViolation{pred: predicates.DependencyKnown, event: e.ID,
					conflict: []omega.EventID{e.ID, d}, evidence: []int{i}}
			}
		}
		for _, p := range domain {
			if p.Violated(e, priorState) {
				return single(p.Entry().ID)
			}
		}
	}
	return nil
}

// refMerge fills in a Merge's fields and returns the next state.
func refMerge(prior *refPrior, events []omega.Event, res *omega.Result) *refPrior {
	var batch, ids []byte
	for i := range events {
		batch = append(batch, events[i].PayloadHash[:]...)
		batch = refID(batch, events[i].ID)
		ids = refID(ids, events[i].ID)
	}
	m := &omega.Merge{}
	m.BatchDigest = refD("batch", batch)
	m.MergedStateHash = refD("state", append(prior.merged[:], m.BatchDigest[:]...))
	m.AcceptedIDsDigest = refD("ids", ids)
	m.FrontierDigest = refD("frontier", append(prior.frontier[:], m.AcceptedIDsDigest[:]...))

	next := &refPrior{known: map[omega.EventID]uint64{}, heads: map[refStream]refHead{},
		merged: m.MergedStateHash, frontier: m.FrontierDigest}
	for id, lam := range prior.known {
		next.known[id] = lam
	}
	for s, h := range prior.heads {
		next.heads[s] = h
	}
	moved := map[refStream]refHead{}
	for i := range events {
		e := &events[i]
		next.known[e.ID] = e.Lamport
		moved[refStream{e.NodeID, e.StreamID}] = refHead{e.Lamport, e.ID} // the last one wins
	}
	for s, h := range moved {
		next.heads[s] = h
	}
	m.HeadsDigest = refD("heads", refHeadsBytes(moved))
	res.Kind = omega.KindMerge
	res.WitnessHash = refD("merge witness", append(append(m.MergedStateHash[:], m.AcceptedIDsDigest[:]...), res.TraceRoot[:]...))
	res.Merge = m
	return next
}

// refHeadsBytes encodes heads ascending by (node, stream).
func refHeadsBytes(heads map[refStream]refHead) []byte {
	var keys []refStream
	for s := range heads {
		keys = append(keys, s)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].node != keys[j].node {
			return keys[i].node < keys[j].node
		}
		return keys[i].stream < keys[j].stream
	})
	var b []byte
	for _, s := range keys {
		b = binary.LittleEndian.AppendUint32(b, s.node)
		b = binary.LittleEndian.AppendUint16(b, s.stream)
		b = binary.LittleEndian.AppendUint64(b, heads[s].lamport)
		b = refID(b, heads[s].id)
	}
	return b
}

// refDecimal writes a u128 in full decimal.
func refDecimal(id omega.EventID) string {
	v := new(big.Int).SetUint64(id.Hi)
	v.Lsh(v, 64)
	return v.Or(v, new(big.Int).SetUint64(id.Lo)).String()
}

func refHex(h omega.Hash) string { return `"` + hex.EncodeToString(h[:]) + `"` }

func refIDList(ids []omega.EventID) string {
	var s []string
	for _, id := range ids {
		s = append(s, refDecimal(id))
	}
	return "[" + strings.Join(s, ",") + "]"
}

// refEventJSON is the JSON form of SPEC 3: twelve fields in the table's
// order, ids in decimal, hashes in hex, the payload in padded base64.
func refEventJSON(e *omega.Event) string {
	return fmt.Sprintf(`{"event_id":%s,"node_id":%d,"stream_id":%d,"lamport":%d,"mono_ts_ns":%d,"event_kind":%d,"flags":%d,"deps_count":%d,"payload_len":%d,"payload_hash":%s,"deps":%s,"payload":"%s"}`,
		refDecimal(e.ID), e.NodeID, e.StreamID, e.Lamport, e.MonoTSNs, e.Kind, e.Flags,
		len(e.Deps), len(e.Payload), refHex(e.PayloadHash), refIDList(e.Deps),
		base64.StdEncoding.EncodeToString(e.Payload))
}

func refMergeJSON(r *omega.Result) []byte {
	m := r.Merge
	var ids []omega.EventID
	for _, mb := range r.Members {
		ids = append(ids, mb.ID)
	}
	return []byte(`{"kind":"merge","batch_digest":` + refHex(m.BatchDigest) +
		`,"merged_state_hash":` + refHex(m.MergedStateHash) +
		`,"prior_state_hash":` + refHex(r.PriorStateHash) +
		`,"accepted_ids_digest":` + refHex(m.AcceptedIDsDigest) +
		`,"frontier_digest":` + refHex(m.FrontierDigest) +
		`,"heads_digest":` + refHex(m.HeadsDigest) +
		`,"trace_root":` + refHex(r.TraceRoot) +
		`,"witness_hash":` + refHex(r.WitnessHash) +
		`,"accepted_count":` + strconv.Itoa(len(r.Members)) +
		`,"accepted_event_ids":` + refIDList(ids) + `}`)
}

func refObstructionJSON(r *omega.Result) []byte {
	o := r.Obstruction
	var ev, ds []string
	for i := range o.Evidence {
		ev = append(ev, refEventJSON(&o.Evidence[i]))
		ds = append(ds, refHex(o.EvidenceDigests[i]))
	}
	return []byte(`{"kind":"obstruction","violated_predicate_id":` + strconv.Itoa(int(o.Predicate)) +
		`,"conflict_set":` + refIDList(o.ConflictSet) +
		`,"overlap_context_digest":` + refHex(o.OverlapContextDigest) +
		`,"prior_state_hash":` + refHex(r.PriorStateHash) +
		`,"evidence":[` + strings.Join(ev, ",") + `]` +
		`,"evidence_digests":[` + strings.Join(ds, ",") + `]` +
		`,"trace_root":` + refHex(r.TraceRoot) +
		`,"witness_hash":` + refHex(r.WitnessHash) + `}`)
}

// refView returns a reference state in omegatest's view, computing its heads
// digest itself.
func refView(p *refPrior) omegatest.StateView {
	v := omegatest.StateView{Known: []omega.KnownID{}, Heads: []omega.StreamHead{},
		MergedStateHash: p.merged, FrontierDigest: p.frontier, HeadsDigest: refD("heads", refHeadsBytes(p.heads))}
	for id, lam := range p.known {
		v.Known = append(v.Known, omega.KnownID{ID: id, Lamport: lam})
	}
	sort.Slice(v.Known, func(i, j int) bool { return refLessID(v.Known[i].ID, v.Known[j].ID) })
	for s, h := range p.heads {
		v.Heads = append(v.Heads, omega.StreamHead{NodeID: s.node, StreamID: s.stream, Lamport: h.lamport, ID: h.id})
	}
	sort.Slice(v.Heads, func(i, j int) bool {
		a, b := v.Heads[i], v.Heads[j]
		if a.NodeID != b.NodeID {
			return a.NodeID < b.NodeID
		}
		return a.StreamID < b.StreamID
	})
	return v
}

// refPriorGen draws a prior as plain data and the State omega.NewState
// builds from it: ids and streams from small ranges, so that batches from
// omegatest.Batch collide with them.
func refPriorGen() *rapid.Generator[refPair] {
	return rapid.Custom(func(t *rapid.T) refPair {
		p := &refPrior{known: map[omega.EventID]uint64{}, heads: map[refStream]refHead{}}
		var known []omega.KnownID
		var heads []omega.StreamHead
		for range rapid.IntRange(0, 8).Draw(t, "known") {
			id := omegatest.EventID().Draw(t, "id")
			if _, dup := p.known[id]; dup {
				continue
			}
			lam := rapid.OneOf(rapid.Uint64Range(0, 8), rapid.Uint64()).Draw(t, "lamport")
			p.known[id] = lam
			known = append(known, omega.KnownID{ID: id, Lamport: lam})
			s := refStream{rapid.Uint32Range(0, 2).Draw(t, "node"), rapid.Uint16Range(0, 1).Draw(t, "stream")}
			if _, taken := p.heads[s]; taken || !rapid.Bool().Draw(t, "is head") {
				continue
			}
			p.heads[s] = refHead{lam, id}
			heads = append(heads, omega.StreamHead{NodeID: s.node, StreamID: s.stream, Lamport: lam, ID: id})
		}
		p.merged = omegatest.Hash().Draw(t, "merged")
		p.frontier = omegatest.Hash().Draw(t, "frontier")
		st, err := omega.NewState(known, heads, p.merged, p.frontier)
		if err != nil {
			t.Fatalf("NewState(%v, %v) = %v, want a state", known, heads, err)
		}
		return refPair{p, st}
	})
}

// refPair is a prior in both forms.
type refPair struct {
	ref   *refPrior
	state *omega.State
}

// refDomain returns domain predicates for the reference tests: one on the
// event alone, one that also reads the prior.
func refDomain() []omega.DomainPredicate {
	return []omega.DomainPredicate{
		omegatest.Domain(predicates.Entry{ID: 4711, Name: "kind_known_count", Arity: 1, SemanticsRef: "test://kind_known_count/v1"},
			func(e *omega.Event, prior *omega.State) bool { return int(e.Kind%16) == prior.KnownCount()+3 }),
		omegatest.Domain(predicates.Entry{ID: 4002, Name: "flags_odd_payload", Arity: 1, SemanticsRef: "test://flags_odd_payload/v1"},
			func(e *omega.Event, _ *omega.State) bool { return e.Flags&1 == 1 && len(e.Payload)%2 == 1 }),
	}
}

// compareWithReference reconciles batch with c and with the reference and
// fails t on any difference. It returns omega's output.
func compareWithReference(t rapid.TB, c *omega.Checker, domain []omega.DomainPredicate, prior refPair, batch []omega.Event) omega.Output {
	t.Helper()
	out, err := c.Reconcile(prior.state, batch)
	if err != nil {
		t.Fatalf("Reconcile(%d events) error %v, want a result", len(batch), err)
	}
	want := refReconcile(prior.ref, prior.state, batch, domain)

	got := *out.Result
	if got.Merge != nil {
		m := *got.Merge
		m.Next = nil
		got.Merge = &m
	}
	if diff := cmp.Diff(want.result, &got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("Reconcile(%v) differs from the reference (-want +got):\n%s", batch, diff)
	}
	if js, _ := out.Result.MarshalJSON(); !bytes.Equal(js, want.json) {
		t.Fatalf("Reconcile(%v).MarshalJSON() =\n%s\nwant\n%s", batch, js, want.json)
	}
	if out.Result.Kind == omega.KindMerge {
		if g, w := omegatest.View(out.Result.Merge.Next), refView(want.next); !g.Equal(w) {
			t.Fatalf("Reconcile(%v).Merge.Next = %+v, want %+v", batch, g, w)
		}
	}

	vs, err := c.Diagnose(prior.state, batch)
	if err != nil {
		t.Fatalf("Diagnose(%d events) error %v", len(batch), err)
	}
	switch o := out.Result.Obstruction; {
	case o == nil && len(vs) != 0:
		t.Fatalf("Diagnose(%v) = %v, want none for a merge", batch, vs)
	case o != nil && len(vs) == 0:
		t.Fatalf("Diagnose(%v) = none, want %d at %v first", batch, o.Predicate, o.Event)
	case o != nil:
		first := omega.Violation{Predicate: o.Predicate, Event: o.Event, ConflictSet: o.ConflictSet}
		if diff := cmp.Diff(first, vs[0]); diff != "" {
			t.Fatalf("Diagnose(%v)[0] differs from the obstruction (-want +got):\n%s", batch, diff)
		}
	}
	omegatest.CheckResult(t, prior.state, batch, out.Result)
	return out
}

// TestReferenceAgrees checks omega's checker against the reference on valid
// batches, batches with an injected violation and arbitrary batches, against
// random priors and priors reached by merges, with and without domain
// predicates.
func TestReferenceAgrees(t *testing.T) {
	domain := refDomain()
	plain, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	withDomain, err := omega.NewChecker(&omega.CheckerOptions{Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	all := []predicates.ID{predicates.LamportMonotonic, predicates.EventUnique, predicates.CausalOrder,
		predicates.PayloadHashMatch, predicates.DependencyKnown, predicates.OverlapAgreement}
	rapid.Check(t, func(t *rapid.T) {
		c, dom := plain, []omega.DomainPredicate(nil)
		if rapid.IntRange(0, 3).Draw(t, "domain") == 0 {
			c, dom = withDomain, domain
		}
		prior := refPriorGen().Draw(t, "prior")
		if rapid.Bool().Draw(t, "prior from merges") {
			// Reach a prior through merges, in both checkers.
			prior = refPair{&refPrior{known: map[omega.EventID]uint64{}, heads: map[refStream]refHead{}}, new(omega.State)}
			for _, b := range omegatest.History().Draw(t, "history") {
				out := compareWithReference(t, plain, nil, prior, b)
				if out.Result.Kind != omega.KindMerge {
					t.Fatalf("Reconcile(history batch) = %v, want merge", out.Result.Kind)
				}
				prior = refPair{refReconcile(prior.ref, prior.state, b, nil).next, out.Result.Merge.Next}
			}
		}
		var batch []omega.Event
		switch rapid.IntRange(0, 3).Draw(t, "batch kind") {
		case 0:
			batch = omegatest.ValidBatch(prior.state).Draw(t, "valid")
		case 1:
			var ok []predicates.ID
			for _, p := range all {
				if omegatest.Injectable(prior.state, p) {
					ok = append(ok, p)
				}
			}
			valid := omegatest.ValidBatch(prior.state).Draw(t, "valid")
			batch, _ = omegatest.Inject(t, valid, prior.state, rapid.SampledFrom(ok).Draw(t, "predicate"))
		case 2:
			batch = rapid.SliceOfN(omegatest.Event(), 0, 6).Draw(t, "events")
		default:
			batch = omegatest.Batch(prior.state).Draw(t, "arbitrary")
		}
		compareWithReference(t, c, dom, prior, omegatest.Redeliver(t, batch))
	})
}

// TestReferenceCases pins corner cases of SPEC 4 by hand: the predicate the
// SPEC's text gives, and agreement with the reference on every field.
func TestReferenceCases(t *testing.T) {
	ev := func(id uint64, node uint32, stream uint16, lamport uint64, deps ...uint64) omega.Event {
		e := omega.Event{ID: omega.ID64(id), NodeID: node, StreamID: stream, Lamport: lamport, Payload: []byte{byte(id)}}
		for _, d := range deps {
			e.Deps = append(e.Deps, omega.ID64(d))
		}
		e.PayloadHash = blake3.Sum256(e.Payload)
		return e
	}
	withPayload := func(e omega.Event, p string) omega.Event {
		e.Payload = []byte(p)
		e.PayloadHash = blake3.Sum256(e.Payload)
		return e
	}
	badHash := func(e omega.Event) omega.Event { e.PayloadHash[0] ^= 1; return e }

	// Prior: id 100 at lamport 5 heads stream (1, 0); id 101 at lamport 9.
	priorRef := &refPrior{
		known:  map[omega.EventID]uint64{omega.ID64(100): 5, omega.ID64(101): 9},
		heads:  map[refStream]refHead{{1, 0}: {5, omega.ID64(100)}},
		merged: omega.Hash{1}, frontier: omega.Hash{2},
	}
	priorState, err := omega.NewState(
		[]omega.KnownID{{ID: omega.ID64(100), Lamport: 5}, {ID: omega.ID64(101), Lamport: 9}},
		[]omega.StreamHead{{NodeID: 1, StreamID: 0, Lamport: 5, ID: omega.ID64(100)}},
		omega.Hash{1}, omega.Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	prior := refPair{priorRef, priorState}

	type want struct {
		pred     predicates.ID // 0 for a merge
		event    uint64
		conflict []uint64
		evidence int
	}
	tests := []struct {
		name  string
		batch []omega.Event
		want  want
	}{
		{"empty batch merges", nil, want{}},
		{"valid chain merges", []omega.Event{ev(1, 1, 0, 6, 100), ev(2, 2, 0, 10, 1, 101, 1)}, want{}},
		{"self dependency", []omega.Event{ev(1, 0, 0, 3, 1)}, want{predicates.CausalOrder, 1, []uint64{1}, 1}},
		{"equal lamport dependency", []omega.Event{ev(1, 0, 0, 3), ev(2, 0, 1, 3, 1)}, want{predicates.CausalOrder, 2, []uint64{1, 2}, 2}},
		{"prior dependency not below", []omega.Event{ev(1, 0, 0, 9, 101)}, want{predicates.CausalOrder, 1, []uint64{1, 101}, 1}},
		{"1003 before 2002 whatever the deps order", []omega.Event{ev(1, 0, 0, 3, 77, 1)}, want{predicates.CausalOrder, 1, []uint64{1}, 1}},
		{"first failing dependency", []omega.Event{ev(1, 0, 0, 3, 78, 77)}, want{predicates.DependencyKnown, 1, []uint64{1, 78}, 1}},
		{"at the prior head", []omega.Event{ev(1, 1, 0, 5)}, want{predicates.LamportMonotonic, 1, []uint64{1, 100}, 1}},
		{"below the prior head", []omega.Event{ev(1, 1, 0, 2), ev(2, 1, 0, 7)}, want{predicates.LamportMonotonic, 1, []uint64{1, 100}, 1}},
		{"equal lamports in a stream", []omega.Event{ev(3, 0, 0, 4), ev(2, 0, 0, 4)}, want{predicates.LamportMonotonic, 3, []uint64{2, 3}, 2}},
		{"known id", []omega.Event{ev(101, 3, 0, 20)}, want{predicates.EventUnique, 101, []uint64{101}, 1}},
		{"hash before everything", []omega.Event{badHash(ev(101, 1, 0, 1, 101))}, want{predicates.PayloadHashMatch, 101, []uint64{101}, 1}},
		{"two contents under one id", []omega.Event{ev(5, 0, 0, 4), withPayload(ev(5, 0, 0, 4), "x"), withPayload(ev(5, 2, 0, 1), "y")},
			want{predicates.OverlapAgreement, 5, []uint64{5}, 3}},
		{"overlap before unique", []omega.Event{ev(100, 3, 0, 8), withPayload(ev(100, 3, 0, 8), "z")}, want{predicates.OverlapAgreement, 100, []uint64{100}, 2}},
		{"prior head's id also in the batch", []omega.Event{ev(1, 1, 0, 3), ev(100, 2, 0, 8)}, want{predicates.LamportMonotonic, 1, []uint64{1, 100}, 1}},
		{"identical copies glued", []omega.Event{ev(1, 0, 0, 1), ev(1, 0, 0, 1), ev(2, 0, 0, 2, 1)}, want{}},
		{"batch content over the prior's for 1003", []omega.Event{ev(101, 4, 0, 11), ev(1, 0, 0, 10, 101)}, want{predicates.CausalOrder, 1, []uint64{1, 101}, 2}},
		{"first of several contents for 1003", []omega.Event{ev(6, 0, 0, 9), withPayload(ev(6, 1, 0, 2), "q"), ev(7, 2, 0, 1, 6)},
			want{predicates.CausalOrder, 7, []uint64{6, 7}, 2}},
	}
	c, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := compareWithReference(t, c, nil, prior, tt.batch)
			r := out.Result
			if tt.want.pred == 0 {
				if r.Kind != omega.KindMerge {
					t.Fatalf("Reconcile(%s) = %v %d, want merge", tt.name, r.Kind, r.Obstruction.Predicate)
				}
				return
			}
			if r.Kind != omega.KindObstruction {
				t.Fatalf("Reconcile(%s) = %v, want obstruction %d", tt.name, r.Kind, tt.want.pred)
			}
			o := r.Obstruction
			var cs []omega.EventID
			for _, id := range tt.want.conflict {
				cs = append(cs, omega.ID64(id))
			}
			if o.Predicate != tt.want.pred || o.Event != omega.ID64(tt.want.event) || !cmp.Equal(o.ConflictSet, cs) || len(o.Evidence) != tt.want.evidence {
				t.Errorf("Reconcile(%s) = %d at %v, conflict %v, %d evidence; want %d at %d, conflict %v, %d evidence",
					tt.name, o.Predicate, o.Event, o.ConflictSet, len(o.Evidence), tt.want.pred, tt.want.event, cs, tt.want.evidence)
			}
		})
	}
}

// TestReferenceOverlapEvidenceCap: 3001 evidence holds at most the first
// 65,535 contents with the id, in canonical order (SPEC 4).
func TestReferenceOverlapEvidenceCap(t *testing.T) {
	const n = 65535 + 2
	batch := make([]omega.Event, n)
	for i := range batch {
		p := binary.LittleEndian.AppendUint32(nil, uint32(i))
		batch[i] = omega.Event{ID: omega.ID64(7), Lamport: uint64(i % 3), Payload: p, PayloadHash: blake3.Sum256(p)}
	}
	rOut, err := omega.Reconcile(nil, batch)
	r := rOut.Result
	if err != nil {
		t.Fatal(err)
	}
	o := r.Obstruction
	if r.Kind != omega.KindObstruction || o.Predicate != predicates.OverlapAgreement || len(o.Evidence) != 65535 {
		t.Fatalf("Reconcile(%d contents under one id) = %v with %d evidence, want 3001 with 65535", n, r.Kind, len(o.Evidence))
	}
	for i := range o.Evidence {
		if o.EvidenceDigests[i] != r.Members[i].Digest {
			t.Fatalf("Reconcile(%d contents).EvidenceDigests[%d] = %v, want member %v", n, i, o.EvidenceDigests[i], r.Members[i].Digest)
		}
	}
	omegatest.CheckResult(t, nil, batch, r)
}

// TestReferenceLargeBatch compares a batch large enough for the checker to
// hash and build its tree on several goroutines, merged and obstructed.
func TestReferenceLargeBatch(t *testing.T) {
	if omega.RaceEnabled && testing.Short() {
		t.Skip("one large batch on one goroutine: run in full without the race detector")
	}
	const n = 5000
	batch := make([]omega.Event, n)
	for i := range batch {
		e := omega.Event{ID: omega.EventID{Hi: uint64(i % 5), Lo: uint64(i) * 0x9e3779b97f4a7c15}, NodeID: uint32(i % 7), StreamID: uint16(i % 3), Lamport: uint64(i + 1)}
		for _, back := range []int{1, 10, 1} {
			if i >= back {
				e.Deps = append(e.Deps, batch[i-back].ID)
			}
		}
		e.Payload = binary.LittleEndian.AppendUint64(nil, uint64(i))
		e.PayloadHash = blake3.Sum256(e.Payload)
		batch[i] = e
	}
	c, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	genesis := refPair{&refPrior{known: map[omega.EventID]uint64{}, heads: map[refStream]refHead{}}, new(omega.State)}
	if out := compareWithReference(t, c, nil, genesis, batch); out.Result.Kind != omega.KindMerge {
		t.Fatalf("Reconcile(%d chained events) = %v, want merge", n, out.Result.Kind)
	}
	late := slices.Clone(batch)
	late[n-1].Deps = append(slices.Clone(late[n-1].Deps), omega.ID64(1<<40))
	if out := compareWithReference(t, c, nil, genesis, late); out.Result.Kind != omega.KindObstruction {
		t.Fatalf("Reconcile(%d events, the last with a missing dependency) = %v, want obstruction", n, out.Result.Kind)
	}
	diverging := append(slices.Clone(batch), batch[n-3])
	diverging[n].MonoTSNs++
	out := compareWithReference(t, c, nil, genesis, diverging)
	if o := out.Result.Obstruction; o == nil || o.Predicate != 3001 || o.Event != batch[n-3].ID {
		t.Fatalf("Reconcile(%d events and a diverging copy of event %d) = %+v, want 3001 at it", n, n-3, o)
	}
}
