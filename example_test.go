package omega_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

func event(id uint64, node uint32, lamport uint64, payload string, deps ...uint64) omega.Event {
	e := omega.Event{
		ID:          omega.ID64(id),
		NodeID:      node,
		Lamport:     lamport,
		PayloadHash: blake3.Sum256([]byte(payload)),
		Deps:        []omega.EventID{},
		Payload:     []byte(payload),
	}
	for _, d := range deps {
		e.Deps = append(e.Deps, omega.ID64(d))
	}
	return e
}

// Reconcile a batch from genesis, then a second batch against the State the
// first one yields.
func ExampleChecker_Reconcile() {
	c, err := omega.NewChecker(nil)
	if err != nil {
		panic(err)
	}
	out, err := c.Reconcile(nil, []omega.Event{ // nil: from genesis
		event(3, 1, 2, "c", 2),
		event(1, 1, 1, "a"),
		event(2, 2, 1, "b"),
	})
	if err != nil {
		panic(err)
	}
	r := out.Result
	fmt.Println(r.Kind, r.AcceptedIDs(), r.Merge.MergedStateHash)

	// Event 4 repeats lamport 2 on stream (1, 0), whose head is event 3.
	out, err = c.Reconcile(r.Merge.Next, []omega.Event{event(4, 1, 2, "d")})
	if err != nil {
		panic(err)
	}
	o := out.Result.Obstruction
	fmt.Println(out.Result.Kind, o.Predicate, o.ConflictSet)
	// Output:
	// merge [1 2 3] 16ca67640176c9f35ccf8cbb9bee896e863dfe84071ff892bbf2f1f7aa87be9e
	// obstruction 1001 [3 4]
}

// A third party holding an obstruction's evidence and a trusted prior State
// re-checks it; a holder of one event proves it was in the batch.
func ExampleChecker_VerifyObstruction() {
	c, _ := omega.NewChecker(nil)
	bad := event(10, 1, 1, "x")
	bad.PayloadHash = omega.Hash{} // violates 2001
	out, _ := c.Reconcile(nil, []omega.Event{bad, event(11, 2, 1, "y")})
	fmt.Println(out.Result.Obstruction.Predicate, c.VerifyObstruction(out.Result, nil))

	ok := event(11, 2, 1, "y")
	proof, _ := out.Result.ProveInclusion(ok.Digest())
	fmt.Println(proof.LeafIndex, proof.TreeSize, proof.Verify(out.Result.TraceRoot))
	// Output:
	// 2001 <nil>
	// 1 2 <nil>
}

// Journal two batches, the second obstructed, into an event log, then
// replay the log and prove the decisions deterministic; a replay with
// another seed reports an incident instead.
func ExampleReplay() {
	c, err := omega.NewChecker(nil)
	if err != nil {
		panic(err)
	}
	var log bytes.Buffer
	w, err := framelog.NewWriter(&log, omega.DefaultBinding().Header(), nil)
	if err != nil {
		panic(err)
	}
	j := omega.NewJournal(w, c, nil, 0)
	batches := [][]omega.Event{
		{event(1, 1, 1, "a"), event(2, 2, 1, "b")},
		{event(3, 1, 2, "c", 9)}, // depends on an unknown event: 2002
	}
	for i, b := range batches {
		if _, err := j.LogEvents(b); err != nil {
			panic(err)
		}
		out, err := j.Decide(b, omega.BatchMeta{BatchID: uint64(i + 1), ReplaySeed: 7})
		if err != nil {
			panic(err)
		}
		fmt.Println("batch", i+1, out.Result.Kind)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	final := j.State().MergedStateHash()

	rep, err := omega.Replay(nil, log.Bytes(), final, 7, c, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Outcome, len(rep.Batches), "batches,", len(rep.Pending), "pending")

	rep, err = omega.Replay(nil, log.Bytes(), final, 8, c, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Outcome, rep.Incident.Field, "at batch", rep.Incident.BatchID)
	// Output:
	// batch 1 merge
	// batch 2 obstruction
	// deterministic 2 batches, 0 pending
	// incident replay_seed at batch 1
}

// Stream a log kept in two segment files against a certificate chain that
// lacks the last batch's certificate: the process stopped after logging
// batch 2 and before certifying it. The replayer yields that batch as
// uncertified, with what certifying it takes.
func ExampleReplayer() {
	c, err := omega.NewChecker(nil)
	if err != nil {
		panic(err)
	}
	signer := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	hdr := omega.DefaultBinding().Header()
	var segments [2]bytes.Buffer
	var chain []*omega.Certificate
	var state *omega.State
	batches := [][]omega.Event{
		{event(1, 1, 1, "a"), event(2, 2, 1, "b")},
		{event(3, 1, 2, "c", 1)},
	}
	for i, b := range batches {
		// Each batch in a segment of its own, with its own header.
		w, err := framelog.NewWriter(&segments[i], hdr, nil)
		if err != nil {
			panic(err)
		}
		j := omega.NewJournal(w, c, state, uint64(i))
		if _, err := j.LogEvents(b); err != nil {
			panic(err)
		}
		meta := omega.BatchMeta{BatchID: uint64(i + 1), ReplaySeed: 7}
		out, err := j.Decide(b, meta)
		if err != nil {
			panic(err)
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		state = j.State()
		if i == 0 { // the second certificate is never made
			cert, err := omega.Certify(out, c.Binding(), meta, omega.Hash{}, signer)
			if err != nil {
				panic(err)
			}
			chain = append(chain, cert)
		}
	}

	ctx := context.Background()
	rp := omega.NewReplayer(nil, []io.Reader{bytes.NewReader(segments[0].Bytes()), bytes.NewReader(segments[1].Bytes())},
		7, c, &omega.ReplayOptions{Certificates: chain, UncertifiedSuffix: true})
	prev := chain[len(chain)-1].Hash()
	for {
		b, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println("batch", b.BatchID, b.Kind, "uncertified:", b.Uncertified)
		if b.Uncertified {
			cert, err := omega.Certify(b.Output, b.Output.Binding, b.Meta(), prev, signer)
			if err != nil {
				panic(err)
			}
			ring, err := omega.NewKeyRing(signer.Public().(ed25519.PublicKey))
			if err != nil {
				panic(err)
			}
			_, err = omega.Verify(cert.Bytes(), ring, c.Binding())
			fmt.Println("certified batch", cert.BatchID, "verifies:", err == nil)
			prev = cert.Hash()
		}
	}
	rep, err := rp.Finish(ctx, state.MergedStateHash())
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Outcome, "uncertified", rep.Uncertified)
	// Output:
	// batch 1 merge uncertified: false
	// batch 2 merge uncertified: true
	// certified batch 2 verifies: true
	// deterministic uncertified [2]
}

// Choose a response to an error by its category: an event that does not
// decode, a certificate that does not verify, and output made under another
// binding.
func Example_errorCategories() {
	respond := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, omega.ErrDivergence):
			return "replay incident"
		case errors.Is(err, omega.ErrVerification):
			return "does not verify"
		case errors.Is(err, omega.ErrFormat):
			return "refused input"
		}
		return "other"
	}
	_, err := omega.DecodeEventsJSON([]byte(`[{"event_id":1}]`), omega.Limits{})
	fmt.Println(respond(err), errors.Is(err, omega.ErrMalformedEvent))
	_, err = omega.Verify([]byte("OMEGACRT"), omega.KeyRing{}, omega.DefaultBinding())
	fmt.Println(respond(err), errors.Is(err, omega.ErrMalformedCertificate))
	other := omega.DefaultBinding()
	other.SchemaVersion++
	err = other.Check(omega.DefaultBinding())
	fmt.Println(respond(err), errors.Is(err, omega.ErrBindingMismatch))
	// Output:
	// refused input true
	// does not verify true
	// refused input true
}

// A kernel on a data directory: three events and an equivocation submitted,
// flushed, and the decisions it certified, in chain order. The
// equivocation is obstructed by 3001 and quarantined; the rest of the
// batch is checked again at once and merged.
func ExampleOpenKernel() {
	dir, err := os.MkdirTemp("", "omega-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	var mu sync.Mutex
	var decided []string
	k, err := omega.OpenKernel(ctx, dir, &omega.KernelConfig{
		Signer: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), // nil: a key made and kept in dir/kernel.key
		OnDecision: func(d omega.Decision) {
			mu.Lock()
			defer mu.Unlock()
			r := d.Output.Result
			line := fmt.Sprintf("batch %d: %s of %d events", d.Certificate.BatchID, r.Kind, len(r.Members))
			if r.Kind == omega.KindObstruction {
				line += fmt.Sprintf(", predicate %d, conflict set %v", r.Obstruction.Predicate, r.Obstruction.ConflictSet)
			}
			decided = append(decided, line)
		},
	})
	if err != nil {
		panic(err)
	}
	err = k.Submit(ctx,
		event(1, 1, 1, "a"),
		event(2, 2, 2, "b", 1),
		event(3, 3, 1, "c"),
		event(3, 3, 1, "c, said otherwise"), // two contents under id 3
	)
	if err != nil {
		panic(err) // a malformed event, or ctx ended while the kernel had no room
	}
	if err := k.Flush(ctx); err != nil { // decide what is released, wait for the certificates
		panic(err)
	}
	if err := k.Close(ctx); err != nil {
		panic(err)
	}
	for _, line := range decided {
		fmt.Println(line)
	}
	// Output:
	// batch 1: obstruction of 4 events, predicate 3001, conflict set [3]
	// batch 2: merge of 2 events
}

// Verify checks one certificate against a key ring and the binding it must
// carry, and names the check that fails: here a certificate signed by a key
// the ring does not hold.
func ExampleVerify() {
	c, _ := omega.NewChecker(nil)
	out, err := c.Reconcile(nil, []omega.Event{event(1, 1, 1, "hello")})
	if err != nil {
		panic(err)
	}
	trusted := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	ring, _ := omega.NewKeyRing(trusted.Public().(ed25519.PublicKey))
	for _, key := range []ed25519.PrivateKey{trusted, other} {
		cert, err := omega.Certify(out, c.Binding(), omega.BatchMeta{BatchID: 1, CreatedAtNs: 1}, omega.Hash{}, key)
		if err != nil {
			panic(err)
		}
		_, err = omega.Verify(cert.Bytes(), ring, c.Binding())
		fmt.Println(err == nil, errors.Is(err, omega.ErrUnknownKey))
	}
	// Output:
	// true false
	// false true
}

// Reconcile decides a batch with the default checker: here from genesis,
// where every event merges, the copy of event 1 glued to it.
func ExampleReconcile() {
	out, err := omega.Reconcile(nil, []omega.Event{
		event(1, 1, 1, "a"),
		event(2, 2, 2, "b", 1),
		event(1, 1, 1, "a"), // an identical copy
	})
	if err != nil {
		panic(err) // a malformed event or an oversized batch; never a violation
	}
	r := out.Result
	fmt.Println(r.Kind, len(r.AcceptedIDs()), r.Merge.Next.KnownCount())
	// Output: merge 2 2
}
