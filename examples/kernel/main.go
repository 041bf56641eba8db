// Command kernel runs omega's Kernel on simulated nodes and shows what it
// certifies, how it recovers after being killed, and that its chain
// verifies.
//
// Several nodes submit concurrently. Every node redelivers some events (the
// kernel drops the copies), node 2 sends children before their parents (the
// kernel holds them until the parents arrive), and node 3 equivocates once:
// two contents under its last event id, which the checker obstructs by
// 3001 while the rest of the batch is merged.
//
//	go run ./examples/kernel                  # a temporary directory, removed at the end
//	go run ./examples/kernel --dir data --kill-after 40
//	go run ./examples/kernel --dir data       # the restart recovers, and goes on
//
// With --kill-after N the process kills itself (SIGKILL: nothing is flushed
// or closed) after N acknowledged Submits; run it again on the same
// directory to see the kernel recover: every acknowledged event is kept,
// batches logged but not certified are certified again, and the chain goes
// on.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/keyfile"
	"github.com/omega-sheaf/omega/predicates"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kernel:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("kernel", flag.ContinueOnError)
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed at the end)")
	nodes := fs.Int("nodes", 3, "simulated nodes")
	perNode := fs.Int("events", 64, "events per node")
	killAfter := fs.Int("kill-after", 0, "kill this process (SIGKILL) after this many acknowledged Submits; 0 never")
	quiet := fs.Bool("quiet", false, "print a summary only, not every decision")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes < 3 {
		return errors.New("--nodes must be at least 3")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "omega-kernel-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	ctx := context.Background()

	var merges, obstructions, recertified atomic.Int64
	report := func(d omega.Decision) {
		r := d.Output.Result
		tag := ""
		if d.Recertified {
			tag = " (certified again after a restart)"
			recertified.Add(1)
		}
		switch r.Kind {
		case omega.KindMerge:
			merges.Add(1)
			if !*quiet {
				fmt.Printf("batch %4d  merge        %2d events accepted%s\n", d.Certificate.BatchID, len(r.Members), tag)
			}
		case omega.KindObstruction:
			obstructions.Add(1)
			if !*quiet {
				o := r.Obstruction
				e, _ := predicates.Default().Lookup(o.Predicate)
				fmt.Printf("batch %4d  obstruction  %d %s on %v: %s; quarantined, the rest re-checked%s\n",
					d.Certificate.BatchID, o.Predicate, e.Name, o.ConflictSet, why(o.Predicate), tag)
			}
		}
	}

	fmt.Printf("opening the kernel in %s\n", *dir)
	k, err := omega.OpenKernel(ctx, *dir, &omega.KernelConfig{OnDecision: report, MaxPendingAge: 2 * time.Second})
	if err != nil {
		return err
	}
	st := k.Status()
	head := k.Head()
	fmt.Printf("recovered: chain at batch %d, %d batches certified again, safe mode %v\n", head.BatchID, recertified.Load(), st.SafeMode)
	if st.SafeMode {
		fmt.Printf("  safe mode: %s\n", st.Reason)
	}

	// Each run takes ids and lamports above the last run's, so a second
	// run on the same directory goes on where the first stopped.
	base := head.BatchID*1000 + 1
	var acks atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *nodes)
	for n := 1; n <= *nodes; n++ {
		wg.Go(func() {
			if err := node(ctx, k, uint32(n), base, *perNode, func() {
				if a := acks.Add(1); *killAfter > 0 && a == int64(*killAfter) {
					fmt.Printf("killing the process after %d acknowledged Submits\n", a)
					// SIGKILL where there are signals: nothing deferred runs.
					if p, err := os.FindProcess(os.Getpid()); err == nil {
						p.Kill()
					}
				}
			}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := k.Flush(ctx); err != nil {
		return err
	}
	s := k.Stats()
	fmt.Printf("submitted %d events: %d logged, %d redeliveries dropped; %d merges, %d obstructions certified\n",
		s.Submitted, s.Accepted, s.Dropped, merges.Load(), obstructions.Load())
	fmt.Printf("latency submit->durable p50 %v p99 %v; submit->certificate p50 %v p99 %v; %.3f fsyncs per event\n",
		s.SubmitToDurable.P50, s.SubmitToDurable.P99, s.SubmitToCertificate.P50, s.SubmitToCertificate.P99, s.FsyncsPerAcceptedEvent)
	if err := k.Close(ctx); err != nil {
		return err
	}

	// Reopen, as a restart would, and verify the whole chain with the
	// public key alone.
	k, err = omega.OpenKernel(ctx, *dir, nil)
	if err != nil {
		return err
	}
	defer k.Close(ctx)
	priv, err := keyfile.LoadPrivate(filepath.Join(*dir, "kernel.key"))
	if err != nil {
		return err
	}
	ring, err := omega.NewKeyRing(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	a, err := k.Certificates().VerifyAll(ring, k.Binding())
	if err != nil {
		return fmt.Errorf("the chain does not verify: %w", err)
	}
	fmt.Printf("reopened: the chain of %d certificates verifies, head batch %d, merged state %s\n", k.Certificates().Len(), a.BatchID, a.MergedStateHash)
	return nil
}

// node submits perNode events of node n, one or two at a time: every
// tenth is sent again later (a redelivery), node 2 sends each fifth event
// before its parent, and node 3 sends two contents for its last id.
func node(ctx context.Context, k *omega.Kernel, n uint32, base uint64, perNode int, acked func()) error {
	id := func(i int) omega.EventID { return omega.EventID{Hi: base, Lo: uint64(n)<<32 | uint64(i)} }
	ev := func(i int, payload string) omega.Event {
		e := omega.Event{ID: id(i), NodeID: n, Lamport: base + uint64(i), Payload: []byte(payload), Deps: []omega.EventID{}}
		if i > 0 {
			e.Deps = append(e.Deps, id(i-1))
		}
		e.PayloadHash = omega.PayloadHash(e.Payload)
		return e
	}
	submit := func(es ...omega.Event) error {
		if err := k.Submit(ctx, es...); err != nil {
			return err
		}
		acked()
		return nil
	}
	var redeliver []omega.Event
	for i := 0; i < perNode; i++ {
		e := ev(i, fmt.Sprintf("node %d event %d", n, i))
		switch {
		case n == 2 && i%5 == 3 && i+1 < perNode:
			// The child first: it waits in the pending buffer.
			child := ev(i+1, fmt.Sprintf("node %d event %d", n, i+1))
			if err := submit(child); err != nil {
				return err
			}
			if err := submit(e); err != nil {
				return err
			}
			i++
			continue
		case n == 3 && i == perNode-1:
			other := e
			other.Payload = []byte("a second content for the same id")
			other.PayloadHash = omega.PayloadHash(other.Payload)
			if err := submit(e, other); err != nil {
				return err
			}
			continue
		}
		if err := submit(e); err != nil {
			return err
		}
		if i%10 == 0 {
			redeliver = append(redeliver, e)
		}
		if len(redeliver) > 0 && i%7 == 0 {
			if err := submit(redeliver[0]); err != nil {
				return err
			}
			redeliver = redeliver[1:]
		}
	}
	return nil
}

func why(p predicates.ID) string {
	switch p {
	case predicates.OverlapAgreement:
		return "two different contents share one event id"
	case predicates.EventUnique:
		return "the id was accepted before"
	case predicates.DependencyKnown:
		return "a dependency never arrived"
	case predicates.LamportMonotonic:
		return "lamports of a stream do not increase"
	case predicates.CausalOrder:
		return "a dependency is not earlier than its event"
	case predicates.PayloadHashMatch:
		return "the payload does not hash to payload_hash"
	}
	return "a domain predicate failed"
}
