// Command quickstart is omega in one run: three simulated nodes feed a
// Kernel, which logs their events durably, decides them in batches and
// certifies every decision in a signed, hash-chained certificate log; the
// run then verifies the chain with the public key alone, takes a snapshot,
// feeds more events, and replays the log after the snapshot to show that
// every decision comes out the same.
//
//	go run ./examples/quickstart               # a temporary directory, removed at the end
//	go run ./examples/quickstart --dir data    # keep the files (a second run goes on from them)
//	go run ./examples/quickstart --json        # one JSON object, for machines
//
// Nodes 1 and 2 are correct: node 2's events depend on node 1's, so some
// arrive before what they depend on and wait in the pending buffer. Node 3
// is faulty: it sends two different contents under one event id (the
// checker obstructs them by 3001, overlap_agreement) and an event whose
// dependency never comes (obstructed by 2002, dependency_known, once its
// age runs out). Every node sends some events twice, and the kernel drops
// the copies.
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/keyfile"
	"github.com/omega-sheaf/omega/predicates"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// pendingAge is how long an event waits for a missing dependency before
// the checker obstructs it (KernelConfig.MaxPendingAge; 5 s by default).
const pendingAge = 300 * time.Millisecond

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data directory to keep (default: a temporary one, removed at the end)")
	perNode := fs.Int("events", 40, "events each node sends before the snapshot (at least 10)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text, and no progress line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *perNode < 10 {
		return errors.New("--events must be at least 10")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "omega-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	out := &report{Status: "ok", Command: "quickstart", Dir: *dir}
	say := func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(stdout, format+"\n", a...)
		}
	}
	ctx := context.Background()

	var mu sync.Mutex
	var certified atomic.Int64
	onDecision := func(d omega.Decision) {
		certified.Add(1)
		mu.Lock()
		defer mu.Unlock()
		out.Decisions = append(out.Decisions, describe(d))
	}
	_, statErr := os.Stat(filepath.Join(*dir, "kernel.key"))
	k, err := omega.OpenKernel(ctx, *dir, &omega.KernelConfig{OnDecision: onDecision, MaxPendingAge: pendingAge})
	if err != nil {
		return err
	}
	defer k.Close(ctx)
	key := "a new Ed25519 key, made now, in kernel.key"
	if statErr == nil {
		key = "the Ed25519 key in kernel.key"
	}
	head := k.Head()
	say("omega quickstart: 3 nodes feed a kernel in %s, signing with %s", *dir, key)
	if head.BatchID > 0 {
		say("the directory holds a chain up to batch %d: this run goes on from it", head.BatchID)
	}

	// Each run takes ids above the last run's, so that a run on a kept
	// directory goes on where the one before stopped.
	base := head.BatchID*100_000 + 1
	showProgress := !*asJSON && isTerminal(stderr)
	progress := startProgress(stderr, showProgress, k, &certified)
	if err := feed(ctx, k, base, 0, *perNode, true); err != nil {
		progress.stop()
		return err
	}
	// The event that waits for a dependency that never comes is released
	// to the checker once its age runs out.
	time.Sleep(pendingAge + 50*time.Millisecond)
	if err := k.Flush(ctx); err != nil {
		progress.stop()
		return err
	}
	progress.stop()
	mu.Lock()
	printDecisions(say, out.Decisions)
	mu.Unlock()

	// A snapshot: a new log segment starts, and the snapshot file holds the
	// State the log reached before it, so that a restart replays only what
	// follows.
	if err := k.Snapshot(ctx); err != nil {
		return err
	}
	before := k.Head()
	out.Snapshot = &snapReport{LastBatchID: before.BatchID, MergedStateHash: before.MergedStateHash.String()}
	say("snapshot: taken after batch %d, merged state %s", before.BatchID, short(before.MergedStateHash))

	// More events after the snapshot: the suffix that replay re-executes.
	n0 := len(out.Decisions)
	progress = startProgress(stderr, showProgress, k, &certified)
	err = feed(ctx, k, base, *perNode, *perNode/4, false)
	if err == nil {
		err = k.Flush(ctx)
	}
	progress.stop()
	if err != nil {
		return err
	}
	mu.Lock()
	printDecisions(say, out.Decisions[n0:])
	mu.Unlock()
	s := k.Stats()
	out.Submitted, out.Logged, out.Dropped = s.Submitted, s.Accepted, s.Dropped
	say("%d events submitted: %d logged, %d redeliveries dropped; %d batches certified",
		s.Submitted, s.Accepted, s.Dropped, len(out.Decisions))
	if err := k.Close(ctx); err != nil {
		return err
	}

	// The chain, verified with the public key alone.
	chain, anchor, err := verifyChain(*dir)
	if err != nil {
		return err
	}
	out.Chain = chainReport{Certificates: len(chain), HeadBatchID: anchor.BatchID, MergedStateHash: anchor.MergedStateHash.String(), Verified: true}
	say("chain: %d certificates verify with the kernel's public key; head batch %d, merged state %s",
		len(chain), anchor.BatchID, short(anchor.MergedStateHash))

	// Replay from the snapshot: every batch after it re-executed, each
	// outcome compared with its BATCH frame and its certificate, and the
	// final state with the chain's.
	rep, err := replaySuffix(ctx, *dir, chain, anchor)
	if err != nil {
		return err
	}
	out.Replay = rep
	if rep.Result != "deterministic" {
		say("replay: %s: %s", rep.Result, rep.Incident)
		return fmt.Errorf("replay: %s", rep.Result)
	}
	say("replay: from the snapshot (after batch %d), %s re-executed to the outcomes the log and the certificates record, and to the chain's merged state: %s",
		rep.FromBatchID, plural(rep.Batches, "batch", "batches"), rep.Result)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	return nil
}

// feed has three nodes submit n events each, concurrently, numbered from
// first. With faults, node 3 equivocates once and sends an event whose
// dependency never comes.
func feed(ctx context.Context, k *omega.Kernel, base uint64, first, n int, faults bool) error {
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for node := uint32(1); node <= 3; node++ {
		wg.Go(func() {
			if err := sendNode(ctx, k, base, node, first, n, faults); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func eventID(base uint64, node uint32, i int) omega.EventID {
	return omega.ID64(base + uint64(node)*10_000 + uint64(i))
}

func makeEvent(base uint64, node uint32, i int, payload string, deps ...omega.EventID) omega.Event {
	e := omega.Event{
		ID:      eventID(base, node, i),
		NodeID:  node,
		Lamport: base + uint64(2*i+int(node)), // node 2's i-th after node 1's i-th
		Payload: []byte(payload),
		Deps:    append([]omega.EventID{}, deps...),
	}
	e.PayloadHash = omega.PayloadHash(e.Payload)
	return e
}

func sendNode(ctx context.Context, k *omega.Kernel, base uint64, node uint32, first, n int, faults bool) error {
	var sent []omega.Event
	for i := first; i < first+n; i++ {
		var deps []omega.EventID
		if node == 2 {
			deps = append(deps, eventID(base, 1, i)) // node 1's event of the same round
		}
		e := makeEvent(base, node, i, fmt.Sprintf("node %d, event %d", node, i), deps...)
		batch := []omega.Event{e}
		switch {
		case faults && node == 3 && i == first+3:
			// Two contents under one id: an equivocation.
			twin := makeEvent(base, node, i, "node 3 says something else under the same id")
			batch = append(batch, twin)
		case faults && node == 3 && i == first+n-1:
			// A dependency that never comes: the node's last event, so
			// that nothing of its stream overtakes it while it waits.
			e.Deps = append(e.Deps, omega.ID64(base+99_999))
			batch = []omega.Event{e}
		case len(sent) > 0 && i%6 == 0:
			batch = append(batch, sent[len(sent)/2]) // a redelivery
		}
		if err := k.Submit(ctx, batch...); err != nil {
			return err
		}
		sent = append(sent, e)
	}
	return nil
}

// progress prints a line that it rewrites while the nodes submit.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
	w    io.Writer
	on   bool
}

func startProgress(w io.Writer, on bool, k *omega.Kernel, certified *atomic.Int64) *progress {
	p := &progress{done: make(chan struct{}), w: w, on: on}
	if !on {
		return p
	}
	p.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				s := k.Stats()
				fmt.Fprintf(w, "\r  %d events submitted, %d logged, %d dropped as copies, %d batches certified ", s.Submitted, s.Accepted, s.Dropped, certified.Load())
			}
		}
	})
	return p
}

// isTerminal reports whether w is a terminal, where a rewritten line reads
// as progress rather than as clutter.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

type report struct {
	Status    string        `json:"status"`
	Command   string        `json:"command"`
	Dir       string        `json:"dir"`
	Submitted uint64        `json:"events_submitted"`
	Logged    uint64        `json:"events_logged"`
	Dropped   uint64        `json:"redeliveries_dropped"`
	Decisions []decision    `json:"decisions"`
	Snapshot  *snapReport   `json:"snapshot"`
	Chain     chainReport   `json:"chain"`
	Replay    *replayReport `json:"replay"`
}

type decision struct {
	BatchID     uint64     `json:"batch_id"`
	Kind        string     `json:"kind"`
	Events      int        `json:"events"`
	CertID      string     `json:"cert_id"`
	Predicate   uint32     `json:"predicate,omitempty"`
	Name        string     `json:"predicate_name,omitempty"`
	Event       string     `json:"event,omitempty"`
	ConflictSet []string   `json:"conflict_set,omitempty"`
	Evidence    []evidence `json:"evidence,omitempty"`
	Why         string     `json:"why,omitempty"`
}

type evidence struct {
	ID      string   `json:"id"`
	Node    uint32   `json:"node"`
	Lamport uint64   `json:"lamport"`
	Deps    []string `json:"deps"`
	Payload string   `json:"payload"`
	Digest  string   `json:"digest"`
}

type snapReport struct {
	LastBatchID     uint64 `json:"last_batch_id"`
	MergedStateHash string `json:"merged_state_hash"`
}

type chainReport struct {
	Certificates    int    `json:"certificates"`
	HeadBatchID     uint64 `json:"head_batch_id"`
	MergedStateHash string `json:"merged_state_hash"`
	Verified        bool   `json:"verified"`
}

type replayReport struct {
	Result      string `json:"result"`
	FromBatchID uint64 `json:"from_batch_id"`
	Batches     int    `json:"batches"`
	Incident    string `json:"incident,omitempty"`
}

func describe(d omega.Decision) decision {
	r := d.Output.Result
	out := decision{BatchID: d.Certificate.BatchID, Events: len(r.Members), CertID: d.Certificate.ID().String()}
	if r.Kind == omega.KindMerge {
		out.Kind = "merge"
		return out
	}
	o := r.Obstruction
	e, _ := predicates.Default().Lookup(o.Predicate)
	out.Kind, out.Predicate, out.Name, out.Event, out.Why = "obstruction", uint32(o.Predicate), e.Name, o.Event.String(), why(o.Predicate)
	for _, id := range o.ConflictSet {
		out.ConflictSet = append(out.ConflictSet, id.String())
	}
	for i, ev := range o.Evidence {
		x := evidence{ID: ev.ID.String(), Node: ev.NodeID, Lamport: ev.Lamport, Payload: string(ev.Payload), Digest: o.EvidenceDigests[i].String(), Deps: []string{}}
		for _, d := range ev.Deps {
			x.Deps = append(x.Deps, d.String())
		}
		out.Evidence = append(out.Evidence, x)
	}
	return out
}

func printDecisions(say func(string, ...any), ds []decision) {
	var run []decision // consecutive merges
	flushMerges := func() {
		switch n := len(run); {
		case n == 1:
			say("  batch %d: merge: its %d events accepted", run[0].BatchID, run[0].Events)
		case n > 1:
			events := 0
			for _, d := range run {
				events += d.Events
			}
			say("  batches %d to %d: merges: their %d events accepted", run[0].BatchID, run[n-1].BatchID, events)
		}
		run = run[:0]
	}
	for _, d := range ds {
		if d.Kind == "merge" {
			run = append(run, d)
			continue
		}
		flushMerges()
		say("  batch %d: obstruction by %d %s at event %s: %s", d.BatchID, d.Predicate, d.Name, d.Event, d.Why)
		for _, e := range d.Evidence {
			say("    evidence: event %s from node %d at lamport %d, deps %v, payload %q", e.ID, e.Node, e.Lamport, e.Deps, e.Payload)
		}
		say("    quarantined %v; the rest of the batch was checked again as the next batch", d.ConflictSet)
	}
	flushMerges()
}

func why(p predicates.ID) string {
	switch p {
	case predicates.OverlapAgreement:
		return "two different contents share one event id, so neither can be accepted"
	case predicates.EventUnique:
		return "the id was accepted before"
	case predicates.DependencyKnown:
		return "it depends on an event that never arrived (it waited in the pending buffer until its age ran out)"
	case predicates.LamportMonotonic:
		return "the lamports of its stream do not increase"
	case predicates.CausalOrder:
		return "a dependency is not earlier than the event"
	case predicates.PayloadHashMatch:
		return "its payload does not hash to its payload_hash"
	}
	return "a domain predicate failed"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func short(h omega.Hash) string { return h.String()[:16] }

// verifyChain reads the certificate store and verifies it with the public
// key of the kernel's key file.
func verifyChain(dir string) ([]*omega.Certificate, omega.ChainAnchor, error) {
	priv, err := keyfile.LoadPrivate(filepath.Join(dir, "kernel.key"))
	if err != nil {
		return nil, omega.ChainAnchor{}, err
	}
	ring, err := omega.NewKeyRing(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, omega.ChainAnchor{}, err
	}
	c, err := omega.NewChecker(nil)
	if err != nil {
		return nil, omega.ChainAnchor{}, err
	}
	store, err := omega.OpenCertStore(filepath.Join(dir, "certs"), c.Binding().Header(), nil)
	if err != nil {
		return nil, omega.ChainAnchor{}, err
	}
	defer store.Close()
	anchor, err := store.VerifyAll(ring, c.Binding())
	if err != nil {
		return nil, omega.ChainAnchor{}, fmt.Errorf("the chain does not verify: %w", err)
	}
	var chain []*omega.Certificate
	for _, cert := range store.All() {
		chain = append(chain, cert)
	}
	return chain, anchor, nil
}

// replaySuffix replays the log segments from the newest snapshot on,
// against the chain.
func replaySuffix(ctx context.Context, dir string, chain []*omega.Certificate, anchor omega.ChainAnchor) (*replayReport, error) {
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.omega"))
	if len(snaps) == 0 {
		return nil, errors.New("no snapshot was written")
	}
	slices.Sort(snaps)
	newest := snaps[len(snaps)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		return nil, err
	}
	snap, err := omega.DecodeSnapshot(b)
	if err != nil {
		return nil, err
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "*.omega"))
	slices.Sort(segs)
	var readers []io.Reader
	for _, s := range segs {
		if filepath.Base(s) < filepath.Base(newest) {
			continue // described by the snapshot
		}
		f, err := os.Open(s)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		readers = append(readers, f)
	}
	c, err := omega.NewChecker(nil)
	if err != nil {
		return nil, err
	}
	rp := omega.NewReplayer(snap, readers, 0, c, &omega.ReplayOptions{Certificates: chain})
	n := 0
	for {
		_, err := rp.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		n++
	}
	rep, err := rp.Finish(ctx, anchor.MergedStateHash)
	if err != nil {
		return nil, err
	}
	out := &replayReport{Result: strings.ToLower(rep.Outcome.String()), FromBatchID: snap.LastBatchID, Batches: n}
	if rep.Incident != nil {
		out.Incident = rep.Incident.Error()
	}
	return out, nil
}
