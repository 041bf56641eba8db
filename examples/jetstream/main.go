// Command jetstream runs omega on NATS JetStream in one process: an
// embedded server, three node publishers, two reconcilers and a verifier,
// and shows that both reconcilers certify byte-identical chains.
//
// Every node publishes some events twice in one call (the copy travels in
// the same message, so the reconcilers drop it, as they would a copy
// published after the server's de-duplication window), node 2 publishes
// children before their parents (the reconcilers hold them until the
// parents arrive), and node 3 equivocates once: two contents under its
// last event id, which the checker obstructs by 3001 when both fall in one
// batch, or the second by 1002 when the first was merged before it. A flusher publishes
// a flush marker every 50 ms, so partial batches are decided at the same
// stream position by every reconciler. The second reconciler starts late,
// once the nodes are half done: it reads the stream from its beginning and
// certifies the same chain.
//
//	go run .                    # in a temporary directory, removed at the end
//	go run . --dir data         # keep the server's store and the chains
//	go run . --dir data         # again: the reconcilers resume from the
//	                            # checkpoints they wrote when they stopped
//
// Run it from examples/jetstream: it is its own module, like the adapter.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/jetstream"
	"github.com/omega-sheaf/omega/jetstream/natstest"
	"github.com/omega-sheaf/omega/keyfile"
	"github.com/omega-sheaf/omega/predicates"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "jetstream:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("jetstream", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory of the server's store, the key and the reconcilers' chains (default: a temporary one, removed at the end)")
	perNode := fs.Int("events", 100, "events per node")
	quiet := fs.Bool("quiet", false, "print a summary only, not every decision")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *perNode < 10 || *perNode >= 1<<20 {
		return errors.New("--events must be at least 10 and below 1048576")
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "omega-jetstream-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The server, syncing every message before it acknowledges it.
	srv, err := natstest.Start(filepath.Join(*dir, "nats"), nil)
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	fmt.Printf("NATS server with JetStream at %s, storing in %s\n", srv.ClientURL(), filepath.Join(*dir, "nats"))
	conn := func() (js.JetStream, func(), error) {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			return nil, nil, err
		}
		j, err := js.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return j, nc.Close, nil
	}
	admin, closeAdmin, err := conn()
	if err != nil {
		return err
	}
	defer closeAdmin()
	if err := jetstream.SetupStreams(ctx, admin, nil); err != nil {
		return err
	}
	start, err := streamLast(ctx, admin)
	if err != nil {
		return err
	}

	// The reconcilers share one signing key: Ed25519 signatures are
	// deterministic, so equal decisions make equal bytes.
	key, err := loadKey(filepath.Join(*dir, "reconciler.key"))
	if err != nil {
		return err
	}
	reconcilers := make([]*reconciler, 2)
	startReconciler := func(i int) error {
		j, closeConn, err := conn()
		if err != nil {
			return err
		}
		cfg := &jetstream.Config{Signer: key}
		if i == 0 {
			cfg.OnDecision = func(d omega.Decision) { report(d, *quiet) }
		}
		r, err := startRun(ctx, j, filepath.Join(*dir, fmt.Sprintf("reconciler-%d", i+1)), cfg, closeConn)
		if err != nil {
			closeConn()
			return err
		}
		reconcilers[i] = r
		return nil
	}
	if err := startReconciler(0); err != nil {
		return err
	}
	defer func() {
		for _, r := range reconcilers {
			if r != nil {
				r.stop()
			}
		}
	}()

	// The verifier reads OMEGA_CERTS and checks every certificate as it
	// arrives.
	ring, err := omega.NewKeyRing(key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	vj, closeV, err := conn()
	if err != nil {
		return err
	}
	defer closeV()
	var vmu sync.Mutex
	var verified []*omega.Certificate
	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	vdone := make(chan error, 1)
	go func() {
		vdone <- jetstream.Verify(vctx, vj, ring, omega.DefaultBinding(), func(c *omega.Certificate) error {
			vmu.Lock()
			verified = append(verified, c)
			vmu.Unlock()
			return nil
		})
	}()

	// The flusher, and the nodes.
	fctx, fcancel := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	defer func() { fcancel(); fwg.Wait() }()
	fwg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
				jetstream.PublishFlush(fctx, admin)
			}
		}
	})
	// Ids and lamports above those of earlier runs on the same store.
	base := (start + 1) << 20
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	var half sync.WaitGroup
	half.Add(3)
	for n := uint32(1); n <= 3; n++ {
		wg.Go(func() {
			j, closeConn, err := conn()
			if err != nil {
				errs <- err
				half.Done()
				return
			}
			defer closeConn()
			errs <- node(ctx, j, n, base, *perNode, half.Done)
		})
	}
	half.Wait()
	if err := startReconciler(1); err != nil {
		return err
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fcancel()
	fwg.Wait()
	if err := jetstream.PublishFlush(ctx, admin); err != nil {
		return err
	}

	// Wait until both reconcilers have read the whole stream, and the
	// verifier has checked every certificate.
	last, err := streamLast(ctx, admin)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		done := true
		for _, r := range reconcilers {
			if err := r.err(); err != nil {
				return err
			}
			if r.r.Stats().Messages < last {
				done = false
			}
		}
		select {
		case err := <-vdone:
			return fmt.Errorf("verifier: %w", err)
		default:
		}
		vmu.Lock()
		nv := len(verified)
		vmu.Unlock()
		if done && nv >= reconcilers[0].r.Certificates().Len() {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the reconcilers and the verifier did not catch up in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	vcancel()
	if err := <-vdone; !errors.Is(err, context.Canceled) {
		return fmt.Errorf("verifier: %w", err)
	}

	for i, r := range reconcilers {
		if at := r.r.ResumedAt(); at > 0 {
			fmt.Printf("reconciler %d resumed from its checkpoint after stream sequence %d\n", i+1, at)
		}
	}
	st := reconcilers[0].r.Stats()
	fmt.Printf("\nstream: %d messages (%d flush markers); the reconcilers took in %d events, dropped %d copies, expired %d\n",
		st.Messages, st.Flushes, st.Taken, st.Dropped, st.Expired)
	fmt.Printf("decided: %d batches, %d merges, %d obstructions\n", st.Batches, st.Merges, st.Obstructions)
	chains := make([][][]byte, 2)
	for i, r := range reconcilers {
		for _, c := range r.r.Certificates().All() {
			chains[i] = append(chains[i], c.Bytes())
		}
	}
	if len(chains[0]) != len(chains[1]) {
		return fmt.Errorf("reconciler 1 certified %d batches, reconciler 2 %d", len(chains[0]), len(chains[1]))
	}
	for i := range chains[0] {
		if !bytes.Equal(chains[0][i], chains[1][i]) {
			return fmt.Errorf("certificate %d of reconciler 1 differs from reconciler 2's", i+1)
		}
	}
	head := reconcilers[0].r.Head()
	fmt.Printf("reconcilers 1 and 2: %d certificates each, byte-identical, head batch %d cert_hash %x\n",
		len(chains[0]), head.BatchID, head.CertHash[:8])
	vmu.Lock()
	v := verified[len(verified)-1]
	vmu.Unlock()
	if v.Hash() != head.CertHash {
		return fmt.Errorf("the verifier's last certificate (batch %d) is not the reconcilers' head", v.BatchID)
	}
	fmt.Printf("verifier: %d certificates on %s, signatures and chain checked, same head\n", len(verified), jetstream.CertsStream)
	return nil
}

// reconciler is a Reconciler running in its own goroutine.
type reconciler struct {
	r    *jetstream.Reconciler
	stop func() error
	err  func() error
}

func startRun(ctx context.Context, j js.JetStream, dir string, cfg *jetstream.Config, closeConn func()) (*reconciler, error) {
	r, err := jetstream.Open(dir, j, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var mu sync.Mutex
	var runErr error
	ended := false
	wait := func(block bool) error {
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			select {
			case runErr = <-done:
				ended = true
			default:
				if !block {
					return nil
				}
				runErr = <-done
				ended = true
			}
		}
		return runErr
	}
	return &reconciler{
		r: r,
		err: func() error {
			return wait(false)
		},
		stop: func() error {
			cancel()
			err := wait(true)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			closeConn()
			return err
		},
	}, nil
}

// node publishes perNode events of node n, a few at a time: some twice,
// node 2 some children before their parents, node 3 two contents for its
// last id. It calls half once half of them are published.
func node(ctx context.Context, j js.JetStream, n uint32, base uint64, perNode int, half func()) error {
	defer func() {
		if half != nil {
			half()
		}
	}()
	id := func(i int) omega.EventID { return omega.EventID{Hi: base, Lo: uint64(n)<<32 | uint64(i)} }
	ev := func(i int, payload string) omega.Event {
		e := omega.Event{ID: id(i), NodeID: n, Lamport: base + uint64(i), Payload: []byte(payload), Deps: []omega.EventID{}}
		if i > 0 {
			e.Deps = append(e.Deps, id(i-1))
		}
		e.PayloadHash = omega.PayloadHash(e.Payload)
		return e
	}
	var events []omega.Event
	for i := range perNode {
		events = append(events, ev(i, fmt.Sprintf("node %d event %d", n, i)))
	}
	if n == 2 {
		for i := 3; i+1 < perNode; i += 5 {
			events[i], events[i+1] = events[i+1], events[i]
		}
	}
	if n == 3 {
		other := events[perNode-1]
		other.Payload = []byte("a second content for the same id")
		other.PayloadHash = omega.PayloadHash(other.Payload)
		events = append(events, other)
	}
	for i := 0; i < len(events); i += 4 {
		chunk := events[i:min(i+4, len(events)):min(i+4, len(events))]
		if i%20 == 0 {
			chunk = append(chunk, chunk[0]) // published twice
		}
		if err := jetstream.Publish(ctx, j, omega.Limits{}, chunk...); err != nil {
			return fmt.Errorf("node %d: %w", n, err)
		}
		if i >= len(events)/2 && half != nil {
			half()
			half = nil
		}
		time.Sleep(time.Millisecond) // nodes interleave
	}
	return nil
}

func report(d omega.Decision, quiet bool) {
	if quiet {
		return
	}
	r := d.Output.Result
	switch r.Kind {
	case omega.KindMerge:
		fmt.Printf("batch %4d  merge        %2d events accepted\n", d.Certificate.BatchID, len(r.Members))
	case omega.KindObstruction:
		o := r.Obstruction
		e, _ := predicates.Default().Lookup(o.Predicate)
		fmt.Printf("batch %4d  obstruction  %d %s on %v: quarantined, the rest checked again\n",
			d.Certificate.BatchID, o.Predicate, e.Name, o.ConflictSet)
	}
}

// streamLast returns the last sequence of OMEGA_EVENTS.
func streamLast(ctx context.Context, j js.JetStream) (uint64, error) {
	s, err := j.Stream(ctx, jetstream.EventsStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// loadKey reads the reconcilers' key from path, making it on first use
// (and its public half beside it, for verifiers).
func loadKey(path string) (ed25519.PrivateKey, error) {
	key, err := keyfile.LoadPrivate(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return key, keyfile.Save(path, path+".pub", key)
}
