package jetstream_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/jetstream"
	"github.com/omega-sheaf/omega/jetstream/natstest"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// startServer starts a server storing in dir (a new temporary directory
// when ""), and stops it at the end of the test.
func startServer(t testing.TB, dir string, opts *natstest.Options) *server.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := natstest.Start(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func connect(t testing.TB, s *server.Server) js.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func setup(t testing.TB, j js.JetStream, opts *jetstream.StreamOptions) {
	t.Helper()
	if err := jetstream.SetupStreams(context.Background(), j, opts); err != nil {
		t.Fatal(err)
	}
}

// nodeEvents makes node n's events: a chain, each depending on the one
// before.
func nodeEvents(n uint32, count int) []omega.Event {
	id := func(i int) omega.EventID { return omega.EventID{Hi: 1, Lo: uint64(n)<<32 | uint64(i)} }
	var out []omega.Event
	for i := range count {
		e := omega.Event{ID: id(i), NodeID: n, Lamport: uint64(i + 1), Payload: fmt.Appendf(nil, "node %d event %d", n, i), Deps: []omega.EventID{}}
		if i > 0 {
			e.Deps = append(e.Deps, id(i-1))
		}
		e.PayloadHash = omega.PayloadHash(e.Payload)
		out = append(out, e)
	}
	return out
}

// publishNodes publishes the events of nodes 1..n concurrently, a few at
// a time: node 2 sends some children before their parents, every node
// sends some events twice, and node 3 equivocates on its last event. It
// returns once every publish is acknowledged, having published a flush
// marker last.
func publishNodes(t testing.TB, j js.JetStream, n, perNode int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for node := uint32(1); node <= uint32(n); node++ {
		wg.Go(func() {
			evs := nodeEvents(node, perNode)
			if node == 2 {
				for i := 3; i+1 < len(evs); i += 5 {
					evs[i], evs[i+1] = evs[i+1], evs[i]
				}
			}
			if node == 3 {
				x := evs[len(evs)-1]
				x.Payload = []byte("a second content")
				x.PayloadHash = omega.PayloadHash(x.Payload)
				evs = append(evs, x)
			}
			for i := 0; i < len(evs); i += 3 {
				chunk := evs[i:min(i+3, len(evs)):min(i+3, len(evs))]
				if i%9 == 0 {
					chunk = append(chunk, chunk[0]) // a redelivery
				}
				if err := jetstream.Publish(ctx, j, omega.Limits{}, chunk...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := jetstream.PublishFlush(ctx, j); err != nil {
		t.Fatal(err)
	}
}

// reconciler runs a reconciler on dir until stop is called, which
// returns Run's error (nil when it ended with stop's cancel).
type running struct {
	r    *jetstream.Reconciler
	stop func() error
}

func startReconciler(t testing.TB, j js.JetStream, dir string, cfg *jetstream.Config) running {
	t.Helper()
	if cfg == nil {
		cfg = &jetstream.Config{}
	}
	c := *cfg
	if c.Signer == nil {
		c.Signer = testKey
	}
	r, err := jetstream.Open(dir, j, &c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			if errors.Is(runErr, context.Canceled) {
				runErr = nil
			}
			if err := r.Close(); runErr == nil {
				runErr = err
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return running{r: r, stop: stop}
}

// streamLen returns the last sequence of the events stream.
func streamLen(t testing.TB, j js.JetStream) uint64 {
	t.Helper()
	s, err := j.Stream(context.Background(), jetstream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// waitRead waits until r has applied n messages.
func waitRead(t testing.TB, r *jetstream.Reconciler, n uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.Stats().Messages < n {
		if time.Now().After(deadline) {
			t.Fatalf("the reconciler applied %d messages of %d in 60 s", r.Stats().Messages, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// chain returns the envelopes of the certificate store in dir.
func chain(t testing.TB, dir string) [][]byte {
	t.Helper()
	st, err := omega.OpenCertStore(filepath.Join(dir, "certs"), omega.DefaultBinding().Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ring, _ := omega.NewKeyRing(testKey.Public().(ed25519.PublicKey))
	if _, err := st.VerifyAll(ring, omega.DefaultBinding()); err != nil {
		t.Fatalf("the chain in %s does not verify: %v", dir, err)
	}
	var out [][]byte
	for _, c := range st.All() {
		out = append(out, c.Bytes())
	}
	return out
}

// published reads and verifies OMEGA_CERTS, until it holds want
// certificates.
func published(t testing.TB, j js.JetStream, want int) [][]byte {
	t.Helper()
	ring, _ := omega.NewKeyRing(testKey.Public().(ed25519.PublicKey))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out [][]byte
	errDone := errors.New("done")
	err := jetstream.Verify(ctx, j, ring, omega.DefaultBinding(), func(c *omega.Certificate) error {
		out = append(out, c.Bytes())
		if len(out) == want {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("Verify after %d certificates of %d: %v", len(out), want, err)
	}
	return out
}

func sameChains(t testing.TB, what string, a, b [][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d certificates against %d", what, len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("%s: certificate %d differs", what, i+1)
		}
	}
}

func TestReconcilersIdentical(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var rs []running
	for _, d := range dirs[:2] {
		rs = append(rs, startReconciler(t, j, d, nil))
	}
	publishNodes(t, j, 3, 50)
	// A third starts once everything is published.
	rs = append(rs, startReconciler(t, j, dirs[2], nil))
	n := streamLen(t, j)
	for _, r := range rs {
		waitRead(t, r.r, n)
	}
	st := rs[0].r.Stats()
	for i, r := range rs {
		if err := r.stop(); err != nil {
			t.Fatalf("reconciler %d: %v", i, err)
		}
		if got := r.r.Stats(); got != st {
			t.Errorf("reconciler %d: stats %+v, reconciler 0: %+v", i, got, st)
		}
	}
	// The copies were published at once: the server dropped them
	// (TestDuplicates has the reconcilers drop some).
	if st.Taken != 3*50+1 || st.Obstructions == 0 || st.Merges == 0 {
		t.Errorf("stats %+v: want 151 events taken, obstructions and merges", st)
	}
	want := chain(t, dirs[0])
	for i, d := range dirs[1:] {
		sameChains(t, fmt.Sprintf("reconciler %d against 0", i+1), chain(t, d), want)
	}
	sameChains(t, "OMEGA_CERTS against reconciler 0", published(t, j, len(want)), want)
}

// TestReconcilerRestart stops a reconciler part way, loses the tail of
// its certificate store as a crash before the sync would, and restarts it:
// the chain goes on exactly as that of one that never stopped, and what
// it certifies again is not published twice.
func TestReconcilerRestart(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	// A short de-duplication window, for the certificates published
	// again after the restart to meet the one-per-subject rule instead.
	setup(t, j, &jetstream.StreamOptions{Duplicates: 100 * time.Millisecond})
	publishNodes(t, j, 3, 40)
	half := streamLen(t, j)
	dir, ref := t.TempDir(), t.TempDir()
	a := startReconciler(t, j, dir, nil)
	waitRead(t, a.r, half)
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	// The crash: the last certificates never reached the disk (cut in the
	// middle of a frame, a torn tail). They were published.
	log := filepath.Join(dir, "certs", "cert.log")
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, fi.Size()*2/3); err != nil {
		t.Fatal(err)
	}
	before := len(chain(t, dir))
	publishNodes(t, j, 4, 40) // more, after the restart point
	time.Sleep(150 * time.Millisecond)
	a = startReconciler(t, j, dir, nil)
	b := startReconciler(t, j, ref, &jetstream.Config{Publish: jetstream.PublishNone})
	n := streamLen(t, j)
	waitRead(t, a.r, n)
	waitRead(t, b.r, n)
	for _, r := range []running{a, b} {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
	got, want := chain(t, dir), chain(t, ref)
	if len(got) <= before {
		t.Fatalf("the restarted reconciler has %d certificates, %d before", len(got), before)
	}
	sameChains(t, "restarted against uninterrupted", got, want)
	sameChains(t, "OMEGA_CERTS", published(t, j, len(want)), want)
}

// TestReconcilerResumes stops a reconciler that checkpoints every two
// batches and starts it again: it reads on from its checkpoint, not from
// the stream's start, and its chain is that of one never stopped. With its
// newest checkpoint damaged, it starts from the one before; with all of
// them gone, from the stream's start.
func TestReconcilerResumes(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	dir, ref := t.TempDir(), t.TempDir()
	cfg := &jetstream.Config{BatchSize: 4, CheckpointEvery: 2, Publish: jetstream.PublishNone}
	b := startReconciler(t, j, ref, cfg)
	var starts, lens []uint64
	for round := range 4 {
		publishNodes(t, j, 2+round, 20)
		lens = append(lens, streamLen(t, j))
		a := startReconciler(t, j, dir, cfg)
		waitRead(t, a.r, streamLen(t, j))
		if err := a.stop(); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, a.r.ResumedAt())
		ckpts, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*.ckpt"))
		switch round {
		case 1:
			// Damage the newest checkpoint: the next start takes the
			// one before.
			slices.Sort(ckpts)
			if err := os.WriteFile(ckpts[len(ckpts)-1], []byte("damaged"), 0o600); err != nil {
				t.Fatal(err)
			}
		case 2:
			for _, c := range ckpts {
				os.Remove(c)
			}
		}
	}
	t.Logf("each start read the stream after sequence %v; it ended at %v", starts, lens)
	// The first start reads all; the second from the checkpoint the first
	// wrote when it stopped; the third from one before the damaged one,
	// written when the second stopped; the last, with none left, all.
	if starts[0] != 0 || starts[1] != lens[0] || starts[2] == 0 || starts[2] >= lens[1] || starts[3] != 0 {
		t.Errorf("starts after %v: want 0, %d, one in 1..%d, 0", starts, lens[0], lens[1]-1)
	}
	waitRead(t, b.r, streamLen(t, j))
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	sameChains(t, "stopped three times against never stopped", chain(t, dir), chain(t, ref))
	if a, b := startStats(t, j, dir, cfg), b.r.Stats(); a != b {
		t.Errorf("stats after resuming %+v, never stopped %+v", a, b)
	}
}

// startStats starts a reconciler on dir, lets it read the stream, and
// returns its stats.
func startStats(t *testing.T, j js.JetStream, dir string, cfg *jetstream.Config) jetstream.Stats {
	t.Helper()
	a := startReconciler(t, j, dir, cfg)
	waitRead(t, a.r, streamLen(t, j))
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	return a.r.Stats()
}

// TestReconcilerDivergence: a reconciler configured otherwise than the
// one whose certificates OMEGA_CERTS holds stops with ErrDivergence, as
// does one whose store holds a chain the stream does not give.
func TestReconcilerDivergence(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	publishNodes(t, j, 3, 20)
	n := streamLen(t, j)
	a := startReconciler(t, j, t.TempDir(), nil)
	waitRead(t, a.r, n)
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := jetstream.Open(dir, j, &jetstream.Config{Signer: testKey, ReplaySeed: 99})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, jetstream.ErrDivergence) {
		t.Errorf("Run with another replay seed = %v, want ErrDivergence", err)
	}
	r.Close()
	// The store now holds the other seed's first batch: run with the
	// first configuration, without publishing, it diverges from it.
	r, err = jetstream.Open(dir, j, &jetstream.Config{Signer: testKey, Publish: jetstream.PublishNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); !errors.Is(err, jetstream.ErrDivergence) {
		t.Errorf("Run on a store of another seed = %v, want ErrDivergence", err)
	}
	r.Close()
}

// TestServerRestart restarts the server (SyncAlways) on its store while
// a reconciler reads: no acknowledged event is lost, and the reconciler,
// whose connection reconnects, reads on and decides every event once.
func TestServerRestart(t *testing.T) {
	sdir := t.TempDir()
	port := freePort(t)
	s := startServer(t, sdir, &natstest.Options{Port: port})
	j := connect(t, s)
	setup(t, j, nil)
	a := startReconciler(t, j, t.TempDir(), &jetstream.Config{Publish: jetstream.PublishNone})
	publishNodes(t, j, 3, 30)
	first := streamLen(t, j)
	waitRead(t, a.r, first)
	s.Shutdown()
	s.WaitForShutdown()
	s2 := startServer(t, sdir, &natstest.Options{Port: port})
	j2 := connect(t, s2)
	if got := streamLen(t, j2); got != first {
		t.Fatalf("after the restart the stream ends at %d, before at %d", got, first)
	}
	// Nodes 1-3 publish their events again (the server's de-duplication
	// state survived the restart: they are not stored again), node 4 new
	// ones.
	publishNodes(t, j2, 4, 30)
	n := streamLen(t, j2)
	waitRead(t, a.r, n)
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	st := a.r.Stats()
	if st.Taken != 3*30+1+30 || st.Malformed != 0 || st.Messages != n {
		t.Errorf("stats %+v: want %d events taken in, none malformed, %d messages", st, 3*30+1+30, n)
	}
}

func portOf(t testing.TB, url string) int {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(url[len("nats://127.0.0.1:"):], "%d", &port); err != nil {
		t.Fatalf("the port of %s: %v", url, err)
	}
	return port
}

// TestDuplicates publishes every event again inside the server's
// de-duplication window (the server drops them) and outside it (the
// stream stores them, the reconcilers drop them): the decisions are those
// of the stream without them.
func TestDuplicates(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, &jetstream.StreamOptions{Duplicates: 200 * time.Millisecond})
	ctx := context.Background()
	evs := nodeEvents(1, 64)
	if err := jetstream.Publish(ctx, j, omega.Limits{}, evs...); err != nil {
		t.Fatal(err)
	}
	n := streamLen(t, j)
	if err := jetstream.Publish(ctx, j, omega.Limits{}, evs...); err != nil {
		t.Fatal(err)
	}
	if got := streamLen(t, j); got != n {
		t.Fatalf("copies inside the window: the stream grew from %d to %d", n, got)
	}
	time.Sleep(300 * time.Millisecond)
	if err := jetstream.Publish(ctx, j, omega.Limits{}, evs...); err != nil {
		t.Fatal(err)
	}
	if got := streamLen(t, j); got != 2*n {
		t.Fatalf("copies outside the window: the stream ends at %d, want %d", got, 2*n)
	}
	if err := jetstream.PublishFlush(ctx, j); err != nil {
		t.Fatal(err)
	}
	a := startReconciler(t, j, t.TempDir(), nil)
	waitRead(t, a.r, 2*n+1)
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	st := a.r.Stats()
	want := jetstream.Stats{Messages: 2*n + 1, Flushes: 1, Dropped: 64, Taken: 64, Batches: 2, Merges: 2}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []*jetstream.Config{
		nil,
		{},
		{Signer: testKey, BatchSize: -1},
		{Signer: testKey, BatchSize: omega.MaxBatchContents + 1},
		{Signer: testKey, MaxPending: -1},
		{Signer: testKey, Publish: 9},
	} {
		if r, err := jetstream.Open(dir, nil, cfg); err == nil {
			r.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
	r, err := jetstream.Open(dir, nil, &jetstream.Config{Signer: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := jetstream.Open(dir, nil, &jetstream.Config{Signer: testKey}); err == nil {
		t.Error("a second Open of one directory succeeded")
	}
}

// TestNoGoroutineLeft: when Run and Verify return, every goroutine they
// started has ended. (The server runs in the test process, and the
// connection keeps goroutines of its own, so only goroutines running code
// of the package count.)
func TestNoGoroutineLeft(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	publishNodes(t, j, 3, 20)
	a := startReconciler(t, j, t.TempDir(), nil)
	waitRead(t, a.r, streamLen(t, j))
	if ours := packageGoroutines(); len(ours) == 0 {
		t.Fatal("no goroutine of the package while Run runs: the check cannot see them")
	}
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	published(t, j, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ring, _ := omega.NewKeyRing(testKey.Public().(ed25519.PublicKey))
	if err := jetstream.Verify(ctx, j, ring, omega.DefaultBinding(), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Verify until its context ends = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ours := packageGoroutines()
		if len(ours) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the package left:\n%s", len(ours), strings.Join(ours, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var packageFrame = regexp.MustCompile(`omega/jetstream\.[A-Za-z(]`)

// packageGoroutines returns the stacks of the goroutines running code of
// package jetstream (not of its tests).
func packageGoroutines() []string {
	buf := make([]byte, 1<<22)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if packageFrame.MatchString(g) {
			out = append(out, g)
		}
	}
	return out
}

// TestVerifyRejects: Verify stops at the first message of OMEGA_CERTS that
// is no certificate continuing the chain, naming it.
func TestVerifyRejects(t *testing.T) {
	ring, _ := omega.NewKeyRing(testKey.Public().(ed25519.PublicKey))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	c, err := omega.NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Reconcile(nil, nodeEvents(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	cert := func(key ed25519.PrivateKey, batch uint64) []byte {
		x, err := omega.Certify(out, c.Binding(), omega.BatchMeta{BatchID: batch}, omega.Hash{}, key)
		if err != nil {
			t.Fatal(err)
		}
		return x.Bytes()
	}
	for _, tc := range []struct {
		name, subject string
		data          []byte
		want          string
	}{
		{"garbage", "omega.certs.1", []byte("not a certificate"), "omega.certs.1"},
		{"another batch's subject", "omega.certs.2", cert(testKey, 1), "holds the certificate of batch 1"},
		{"unknown key", "omega.certs.1", cert(other, 1), "unknown key"},
		{"not linked", "omega.certs.2", cert(testKey, 2), "omega.certs.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, "", nil)
			j := connect(t, s)
			setup(t, j, nil)
			if tc.subject == "omega.certs.2" {
				// A sound first certificate, then one that does not
				// follow it.
				if _, err := j.Publish(context.Background(), "omega.certs.1", cert(testKey, 1)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := j.Publish(context.Background(), tc.subject, tc.data); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := jetstream.Verify(ctx, j, ring, omega.DefaultBinding(), nil)
			if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestPublishMessages: Publish puts consecutive events of one node in one
// message, at most 1024 and 256 KiB, and starts a new one at each change
// of node;
// DecodeMessage gives them back; a malformed event refuses the call.
func TestPublishMessages(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	evs := append(nodeEvents(1, 1100), nodeEvents(2, 3)...)
	evs = append(evs, nodeEvents(1, 1101)[1100])
	big := nodeEvents(5, 3)
	for i := range big {
		big[i].Payload = bytes.Repeat([]byte{byte(i)}, 100<<10)
		big[i].PayloadHash = omega.PayloadHash(big[i].Payload)
	}
	evs = append(evs, big...)
	if err := jetstream.Publish(context.Background(), j, omega.Limits{}, evs...); err != nil {
		t.Fatal(err)
	}
	st, err := j.Stream(context.Background(), jetstream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var got []omega.Event
	var sizes []int
	for seq := uint64(1); seq <= streamLen(t, j); seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		es, err := jetstream.DecodeMessage(m.Data, omega.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if want := jetstream.EventSubject(es[0].NodeID); m.Subject != want {
			t.Errorf("message %d on %s, want %s", seq, m.Subject, want)
		}
		got = append(got, es...)
		sizes = append(sizes, len(es))
	}
	if !slices.Equal(sizes, []int{1024, 76, 3, 1, 2, 1}) {
		t.Errorf("messages of %v events, want [1024 76 3 1 2 1]", sizes)
	}
	if len(got) != len(evs) {
		t.Fatalf("%d events back, %d published", len(got), len(evs))
	}
	for i := range got {
		if got[i].Digest() != evs[i].Digest() {
			t.Fatalf("event %d came back changed", i)
		}
	}
	bad := nodeEvents(3, 2)
	bad[1].Deps = make([]omega.EventID, 70000)
	err = jetstream.Publish(context.Background(), j, omega.Limits{}, bad...)
	var ee *omega.EventError
	if !errors.As(err, &ee) || ee.Index != 1 {
		t.Errorf("Publish of a malformed second event = %v, want an EventError for index 1", err)
	}
	if n := streamLen(t, j); n != uint64(len(sizes)) {
		t.Errorf("the refused call published: the stream has %d messages", n)
	}
}

// TestCheckpointOtherStream: a checkpoint taken from an OMEGA_EVENTS that
// was deleted and made again is passed over (its sequences name other
// messages), and the chain, which the new stream does not give, diverges.
func TestCheckpointOtherStream(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	publishNodes(t, j, 3, 20)
	dir := t.TempDir()
	cfg := &jetstream.Config{CheckpointEvery: 2, Publish: jetstream.PublishNone}
	a := startReconciler(t, j, dir, cfg)
	waitRead(t, a.r, streamLen(t, j))
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if err := j.DeleteStream(context.Background(), jetstream.EventsStream); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // another creation time
	setup(t, j, nil)
	// Other events first: the first batch differs.
	if err := jetstream.Publish(context.Background(), j, omega.Limits{}, nodeEvents(9, 40)...); err != nil {
		t.Fatal(err)
	}
	publishNodes(t, j, 4, 20)
	r, err := jetstream.Open(dir, j, &jetstream.Config{Signer: testKey, CheckpointEvery: 2, Publish: jetstream.PublishNone})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, jetstream.ErrDivergence) {
		t.Errorf("Run on a stream made again = %v, want ErrDivergence", err)
	}
	if at := r.ResumedAt(); at != 0 {
		t.Errorf("Run resumed from a checkpoint of the deleted stream, after sequence %d", at)
	}
}

// TestVerifyOutOfOrder: certificates published out of chain order (as
// after a failure left a batch out and a restart published it) are
// verified, and handed on, in chain order.
func TestVerifyOutOfOrder(t *testing.T) {
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	publishNodes(t, j, 3, 20)
	dir := t.TempDir()
	a := startReconciler(t, j, dir, &jetstream.Config{BatchSize: 8, Publish: jetstream.PublishNone})
	waitRead(t, a.r, streamLen(t, j))
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	want := chain(t, dir)
	if len(want) < 4 {
		t.Fatalf("%d certificates, want 4 or more", len(want))
	}
	order := []int{0, 3, 2, 1}
	for i := 4; i < len(want); i++ {
		order = append(order, i)
	}
	for _, i := range order {
		if _, err := j.Publish(context.Background(), jetstream.CertSubject(uint64(i+1)), want[i]); err != nil {
			t.Fatal(err)
		}
	}
	sameChains(t, "verified out of order", published(t, j, len(want)), want)
}
