package omegatest

import (
	"slices"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// Injectable reports whether [Inject] can violate pred in a batch against
// prior: pred must be a built-in, and event_unique (1002) needs a prior that
// knows at least one id.
func Injectable(prior *omega.State, pred predicates.ID) bool {
	switch pred {
	case predicates.EventUnique:
		return prior.KnownCount() > 0
	case predicates.LamportMonotonic, predicates.CausalOrder, predicates.PayloadHashMatch,
		predicates.DependencyKnown, predicates.OverlapAgreement:
		return true
	}
	return false
}

// Inject returns a copy of batch, which must merge against prior (as from
// [ValidBatch]), changed so that its first violation in the evaluation order
// of SPEC section 4 is pred, and the id of the offending event there. batch is
// not changed; identical copies in it are glued into one first.
//
// The injected violation is the batch's only failure, except for
// overlap_agreement (3001), where both contents under the shared id fail 3001
// and the later one also fails lamport_monotonic (1001); the first of them in
// canonical order is reported, and it carries the returned id.
//
// The violations injected, drawn from t:
//   - 2001: a byte of one event's payload hash flipped;
//   - 3001: a second content for one event's id, equal to it but for a
//     payload, mono_ts_ns, kind or flags;
//   - 1002: a new event carrying a prior id with that id's lamport;
//   - 1001: a new event at or below a prior head in its stream, or with the
//     lamport of another event of its stream;
//   - 1003: a new event depending on an event of equal or higher lamport, or
//     on itself;
//   - 2002: a new event depending on an id neither in the batch nor known.
//
// New events take fresh ids and fresh streams, so nothing else in the batch
// changes its outcome. Inject fails t when ![Injectable](prior, pred).
func Inject(t *rapid.T, batch []omega.Event, prior *omega.State, pred predicates.ID) ([]omega.Event, omega.EventID) {
	t.Helper()
	if !Injectable(prior, pred) {
		t.Fatalf("Inject(%d): predicate cannot be violated against this prior", pred)
	}
	d := ledgerOf(prior).draft(distinct(batch))
	var offending omega.EventID
	switch pred {
	case predicates.PayloadHashMatch:
		if len(d.events) == 0 {
			d.addFresh(t)
		}
		i := rapid.IntRange(0, len(d.events)-1).Draw(t, "2001 at")
		e := &d.events[i]
		e.PayloadHash[rapid.IntRange(0, 31).Draw(t, "2001 byte")] ^= byte(rapid.IntRange(1, 255).Draw(t, "2001 flip"))
		offending = e.ID

	case predicates.OverlapAgreement:
		if len(d.events) == 0 {
			d.addFresh(t)
		}
		x := d.events[rapid.IntRange(0, len(d.events)-1).Draw(t, "3001 at")]
		y := clone(&x)
		switch rapid.IntRange(0, 3).Draw(t, "3001 field") {
		case 0:
			y.Payload = append(y.Payload, rapid.Byte().Draw(t, "3001 byte"))
			y.PayloadHash = digest.Plain(y.Payload)
		case 1:
			y.MonoTSNs ^= 1 << rapid.IntRange(0, 63).Draw(t, "3001 bit")
		case 2:
			y.Kind ^= 1 << rapid.IntRange(0, 15).Draw(t, "3001 bit")
		default:
			y.Flags ^= 1 << rapid.IntRange(0, 15).Draw(t, "3001 bit")
		}
		d.add(y)
		offending = x.ID

	case predicates.EventUnique:
		k := d.l.ids[rapid.IntRange(0, len(d.l.ids)-1).Draw(t, "1002 id")]
		lam := d.l.known[k]
		// The prior's lamport keeps every batch event that depends on k
		// satisfying causal_order with the batch's content for k.
		e := newEvent(t, k, d.freshStream(t), lam, d.validDeps(t, lam))
		d.add(e)
		offending = k

	case predicates.LamportMonotonic:
		offending = d.injectLamport(t)

	case predicates.CausalOrder:
		id := d.freshID(t, "1003 id")
		s := d.freshStream(t)
		var target omega.EventID
		var lam uint64
		if len(d.events)+len(d.l.ids) == 0 || rapid.IntRange(0, 3).Draw(t, "1003 self") == 0 {
			target, lam = id, lamport().Draw(t, "1003 lamport")
		} else {
			target = d.anyID(t)
			top, _ := d.lamportOf(target)
			lam = rapid.Uint64Range(0, top).Draw(t, "1003 lamport")
			if rapid.Bool().Draw(t, "1003 equal") {
				lam = top
			}
		}
		deps := d.validDeps(t, lam)
		at := rapid.IntRange(0, len(deps)).Draw(t, "1003 position")
		d.add(newEvent(t, id, s, lam, slices.Insert(deps, at, target)))
		offending = id

	case predicates.DependencyKnown:
		id := d.freshID(t, "2002 id")
		missing := d.freshID(t, "2002 missing")
		lam := lamport().Draw(t, "2002 lamport")
		deps := d.validDeps(t, lam)
		at := rapid.IntRange(0, len(deps)).Draw(t, "2002 position")
		d.add(newEvent(t, id, d.freshStream(t), lam, slices.Insert(deps, at, missing)))
		offending = id
	}
	return d.events, offending
}

// injectLamport adds an event that violates lamport_monotonic and returns
// the id of the event that fails.
func (d *batchDraft) injectLamport(t *rapid.T) omega.EventID {
	heads := d.l.sortedHeads()
	if len(heads) > 0 && rapid.Bool().Draw(t, "1001 against prior") {
		// At or below the prior head, the new event comes first in its
		// stream within the batch: every batch event of the stream is
		// above the head.
		h := heads[rapid.IntRange(0, len(heads)-1).Draw(t, "1001 head")]
		lam := h.Lamport
		if !rapid.Bool().Draw(t, "1001 equal") {
			lam = rapid.Uint64Range(0, h.Lamport).Draw(t, "1001 lamport")
		}
		id := d.freshID(t, "1001 id")
		d.add(newEvent(t, id, stream{h.NodeID, h.StreamID}, lam, d.validDeps(t, lam)))
		return id
	}
	if len(d.events) == 0 {
		d.addFresh(t)
	}
	// Beside an event of the batch with its lamport and stream: the two
	// differ only in id (and content), and the one with the larger id comes
	// second in canonical order, so it is the one that fails.
	x := d.events[rapid.IntRange(0, len(d.events)-1).Draw(t, "1001 beside")]
	id := d.freshID(t, "1001 id")
	d.add(newEvent(t, id, stream{x.NodeID, x.StreamID}, x.Lamport, d.validDeps(t, x.Lamport)))
	if id.Compare(x.ID) > 0 {
		return id
	}
	return x.ID
}

// anyID draws the id of a batch event or of the prior; there must be one.
func (d *batchDraft) anyID(t *rapid.T) omega.EventID {
	i := rapid.IntRange(0, len(d.events)+len(d.l.ids)-1).Draw(t, "any id")
	if i < len(d.events) {
		return d.events[i].ID
	}
	return d.l.ids[i-len(d.events)]
}

// addFresh adds a valid event in a fresh stream with no dependencies.
func (d *batchDraft) addFresh(t *rapid.T) {
	d.add(newEvent(t, d.freshID(t, "fresh id"), d.freshStream(t), rapid.Uint64Range(0, 8).Draw(t, "fresh lamport"), nil))
}

// distinct returns deep copies of batch's events with identical copies
// glued into the first.
func distinct(batch []omega.Event) []omega.Event {
	var out []omega.Event
	seen := map[string]bool{}
	for i := range batch {
		enc := string(encode(&batch[i]))
		if seen[enc] {
			continue
		}
		seen[enc] = true
		out = append(out, clone(&batch[i]))
	}
	return out
}
