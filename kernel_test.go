package omega

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/predicates"
)

var kernelKey = ed25519.NewKeyFromSeed(make([]byte, 32))

// kev makes event id of a node's stream 0 at lamport, depending on deps.
func kev(id uint64, node uint32, lamport uint64, payload string, deps ...uint64) Event {
	e := Event{ID: ID64(id), NodeID: node, Lamport: lamport, MonoTSNs: lamport, Payload: []byte(payload), Deps: []EventID{}}
	for _, d := range deps {
		e.Deps = append(e.Deps, ID64(d))
	}
	e.PayloadHash = PayloadHash(e.Payload)
	return e
}

// decisions collects what a kernel reports.
type decisions struct {
	mu sync.Mutex
	ds []Decision
}

func (d *decisions) add(x Decision) {
	d.mu.Lock()
	d.ds = append(d.ds, x)
	d.mu.Unlock()
}

func (d *decisions) all() []Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ds)
}

// kernelConfig is a test configuration: fixed key and clock, collecting
// decisions into d.
func kernelConfig(d *decisions) *KernelConfig {
	return &KernelConfig{
		Signer:     kernelKey,
		OnDecision: d.add,
		Now:        func() time.Time { return time.Unix(1_700_000_000, 0) },
	}
}

// openKernel opens a kernel on dir whose steps are traced, for
// closeKernel to check against the formal model.
func openKernel(t *testing.T, dir string, cfg *KernelConfig) *Kernel {
	t.Helper()
	traceKernel(dir, cfg)
	k, err := OpenKernel(t.Context(), dir, cfg)
	if err != nil {
		t.Fatalf("OpenKernel: %v", err)
	}
	return k
}

// closeKernel closes k and checks its trace against the formal model.
func closeKernel(t *testing.T, k *Kernel) {
	t.Helper()
	if err := k.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkTrace(t, k.Dir(), k.cfg.BatchSize)
}

// verifyKernelChain checks the kernel's certificate chain in full.
func verifyKernelChain(t *testing.T, k *Kernel) ChainAnchor {
	t.Helper()
	ring, _ := NewKeyRing(kernelKey.Public().(ed25519.PublicKey))
	a, err := k.Certificates().VerifyAll(ring, k.Binding())
	if err != nil {
		t.Fatalf("VerifyAll: %v", err)
	}
	return a
}

// accepted returns the ids accepted by the merges among ds.
func acceptedIDs(ds []Decision) map[EventID]int {
	m := map[EventID]int{}
	for _, d := range ds {
		if d.Output.Result.Kind == KindMerge {
			for _, id := range d.Output.Result.AcceptedIDs() {
				m[id]++
			}
		}
	}
	return m
}

// TestKernelKnownDependencyLamport decides events whose dependency the
// sequencer found accepted, and handed its lamport to the checker, which
// then does not look it up again: 1003 still holds them to it, an event at
// its dependency's lamport obstructed, one above it merged.
func TestKernelKnownDependencyLamport(t *testing.T) {
	var got decisions
	k := openKernel(t, t.TempDir(), kernelConfig(&got))
	ctx := t.Context()
	if err := k.Submit(ctx, kev(1, 1, 5, "a")); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Submit(ctx, kev(2, 2, 5, "b", 1), kev(3, 3, 6, "c", 1)); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if acc := acceptedIDs(got.all()); acc[ID64(1)] != 1 || acc[ID64(2)] != 0 || acc[ID64(3)] != 1 {
		t.Errorf("accepted %v, want 1 and 3", acc)
	}
	var obstructed bool
	for _, d := range got.all() {
		if o := d.Output.Result.Obstruction; o != nil && o.Event == ID64(2) && o.Predicate == predicates.CausalOrder {
			obstructed = true
		}
	}
	if !obstructed {
		t.Errorf("event 2, at its dependency's lamport, was not obstructed by 1003")
	}
	closeKernel(t, k)
}

func TestKernelDecides(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	k := openKernel(t, dir, kernelConfig(&got))
	ctx := t.Context()
	// Three nodes; node 3 equivocates on id 7.
	good := []Event{kev(1, 1, 1, "a"), kev(2, 2, 1, "b"), kev(3, 1, 2, "c", 1), kev(4, 2, 3, "d", 2, 3)}
	if err := k.Submit(ctx, good...); err != nil {
		t.Fatal(err)
	}
	bad := []Event{kev(7, 3, 1, "x"), kev(7, 3, 1, "y"), kev(8, 3, 2, "z")}
	if err := k.Submit(ctx, bad...); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ds := got.all()
	acc := acceptedIDs(ds)
	for _, e := range append(good, bad[2]) {
		if acc[e.ID] != 1 {
			t.Errorf("event %v accepted %d times, want once", e.ID, acc[e.ID])
		}
	}
	if acc[ID64(7)] != 0 {
		t.Errorf("equivocated id 7 accepted")
	}
	var obstructed bool
	for i, d := range ds {
		if d.Certificate.BatchID != uint64(i+1) {
			t.Errorf("decision %d has batch id %d, want %d", i, d.Certificate.BatchID, i+1)
		}
		if r := d.Output.Result; r.Kind == KindObstruction {
			obstructed = true
			if r.Obstruction.Predicate != 3001 || !slices.Contains(r.Obstruction.ConflictSet, ID64(7)) {
				t.Errorf("obstruction %d on %v, want 3001 on id 7", r.Obstruction.Predicate, r.Obstruction.ConflictSet)
			}
		}
	}
	if !obstructed {
		t.Error("no obstruction certified for the equivocation")
	}
	a := verifyKernelChain(t, k)
	if a.BatchID != uint64(len(ds)) {
		t.Errorf("chain ends at batch %d, want %d", a.BatchID, len(ds))
	}
	st := k.Stats()
	if st.Accepted != 7 || st.Certified != uint64(len(ds)) || st.Merges+st.Obstructions != st.Batches {
		t.Errorf("Stats = %+v", st)
	}
	if st.LogFsyncs == 0 || st.FsyncsPerAcceptedEvent != float64(st.LogFsyncs)/float64(st.Accepted) {
		t.Errorf("%d log fsyncs, %v per accepted event", st.LogFsyncs, st.FsyncsPerAcceptedEvent)
	}
	for name, l := range map[string]Latency{"SubmitToDurable": st.SubmitToDurable, "SubmitToCertificate": st.SubmitToCertificate, "LogFsync": st.LogFsync} {
		if l.Count == 0 || l.Max <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max+l.Max/16 {
			t.Errorf("%s = %+v: want samples, in order", name, l)
		}
	}
	if n := st.SubmitToCertificate.Count; n < st.Accepted {
		t.Errorf("SubmitToCertificate has %d samples, want one per event of each batch (%d accepted)", n, st.Accepted)
	}
	closeKernel(t, k)

	// Reopened, it goes on with the chain and the batch ids, and knows
	// what it accepted.
	var more decisions
	k = openKernel(t, dir, kernelConfig(&more))
	if err := k.Submit(ctx, kev(9, 1, 3, "e", 3), kev(1, 1, 1, "a")); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mds := more.all()
	if len(mds) != 1 || mds[0].Certificate.BatchID != uint64(len(ds)+1) || mds[0].Output.Result.Kind != KindMerge {
		t.Fatalf("after reopening: decisions %v, want one merge as batch %d", mds, len(ds)+1)
	}
	if n := len(mds[0].Output.Result.Members); n != 1 {
		t.Errorf("merge accepted %d events, want 1 (the redelivery of id 1 dropped)", n)
	}
	if k.Stats().Dropped != 1 {
		t.Errorf("Dropped = %d, want 1", k.Stats().Dropped)
	}
	verifyKernelChain(t, k)
	closeKernel(t, k)
}

func TestKernelRefusesMalformed(t *testing.T) {
	var got decisions
	k := openKernel(t, t.TempDir(), kernelConfig(&got))
	defer closeKernel(t, k)
	bad := kev(2, 1, 1, "b")
	bad.Deps = make([]EventID, 70000)
	err := k.Submit(t.Context(), kev(1, 1, 1, "a"), bad)
	var ee *EventError
	if !errors.As(err, &ee) || ee.Index != 1 {
		t.Fatalf("Submit(malformed) = %v, want an *EventError at index 1", err)
	}
	if err := k.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(got.all()); n != 0 {
		t.Errorf("%d decisions after a refused Submit, want none: nothing of it is logged", n)
	}
	if s := k.Stats(); s.Malformed != 1 || s.Accepted != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestKernelLock(t *testing.T) {
	dir := t.TempDir()
	k := openKernel(t, dir, &KernelConfig{Signer: kernelKey})
	_, err := OpenKernel(t.Context(), dir, &KernelConfig{Signer: kernelKey})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenKernel = %v, want ErrLocked", err)
	}
	closeKernel(t, k)
	k = openKernel(t, dir, &KernelConfig{Signer: kernelKey})
	closeKernel(t, k)
	if err := k.Submit(t.Context(), kev(1, 1, 1, "a")); !errors.Is(err, ErrKernelClosed) {
		t.Errorf("Submit after Close = %v, want ErrKernelClosed", err)
	}
	if err := k.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestKernelDefaultKey(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	k := openKernel(t, dir, &KernelConfig{OnDecision: got.add})
	if err := k.Submit(t.Context(), kev(1, 1, 1, "a")); err != nil {
		t.Fatal(err)
	}
	closeKernel(t, k)
	priv, err := loadOrMakeKey(osFS{}, filepath.Join(dir, kernelKeyName))
	if err != nil {
		t.Fatal(err)
	}
	ds := got.all()
	if len(ds) != 1 || ds[0].Certificate.IssuerKeyID != KeyID(priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("decisions %v not signed with the key in kernel.key", ds)
	}
	if fi, err := os.Stat(filepath.Join(dir, kernelKeyName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kernel.key: %v, %v; want mode 0600", fi, err)
	}
}

// TestKernelTimers runs the flush and expiry timers in a synctest bubble,
// which also fails the test if Close leaves a goroutine behind.
func TestKernelTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		cfg := kernelConfig(&got)
		cfg.MaxPendingAge = time.Second
		k := openKernel(t, t.TempDir(), cfg)
		ctx := context.Background()
		if err := k.Submit(ctx, kev(1, 1, 1, "a")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultFlushInterval - time.Millisecond)
		synctest.Wait()
		if n := len(got.all()); n != 0 {
			t.Fatalf("%d decisions before the flush interval", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if ds := got.all(); len(ds) != 1 || ds[0].Output.Result.Kind != KindMerge {
			t.Fatalf("after the flush interval: %v, want one merge", ds)
		}
		// 3 waits for 2, which never comes: after MaxPendingAge it is
		// obstructed by 2002.
		if err := k.Submit(ctx, kev(3, 1, 3, "c", 2)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second - time.Millisecond)
		synctest.Wait()
		if n := len(got.all()); n != 1 {
			t.Fatalf("%d decisions before the pending age ran out, want 1", n)
		}
		time.Sleep(time.Millisecond + DefaultFlushInterval)
		synctest.Wait()
		ds := got.all()
		if len(ds) != 2 || ds[1].Output.Result.Kind != KindObstruction || ds[1].Output.Result.Obstruction.Predicate != 2002 {
			t.Fatalf("after the pending age: %v, want an obstruction by 2002", ds)
		}
		if k.Stats().Expired != 1 {
			t.Errorf("Expired = %d, want 1", k.Stats().Expired)
		}
		closeKernel(t, k)
	})
}

func TestKernelLateDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		k := openKernel(t, t.TempDir(), kernelConfig(&got))
		ctx := context.Background()
		// A chain submitted backwards: each waits for the one before it.
		for id := uint64(5); id >= 2; id-- {
			if err := k.Submit(ctx, kev(id, 1, id, "x", id-1)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(got.all()); n != 0 {
			t.Fatalf("%d decisions while the first event is missing", n)
		}
		if err := k.Submit(ctx, kev(1, 1, 1, "x")); err != nil {
			t.Fatal(err)
		}
		if err := k.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ds := got.all()
		if acc := acceptedIDs(ds); len(acc) != 5 || len(ds) != 1 {
			t.Fatalf("decisions %v accept %v, want one merge of all 5", ds, acc)
		}
		closeKernel(t, k)
	})
}

func TestKernelBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		k := openKernel(t, t.TempDir(), pendingConfig(&got, 2, time.Minute))
		ctx := context.Background()
		// Two events wait for 1: the pending buffer is full.
		if err := k.Submit(ctx, kev(10, 1, 10, "a", 1), kev(11, 1, 11, "b", 1)); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := k.Submit(short, kev(12, 2, 12, "c", 1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Submit into a full pending buffer = %v, want it to wait for its context", err)
		}
		// Nothing was dropped: what was queued is taken in once expiry
		// makes room (10 and 11 meet 2002), and a Submit waiting behind
		// it goes through.
		done := make(chan error, 1)
		go func() { done <- k.Submit(ctx, kev(1, 3, 1, "x")) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Submit returned %v while the buffer was full", err)
		default:
		}
		time.Sleep(time.Minute)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := k.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// 10 and 11, released at expiry, are decided with whatever
		// arrived by then: each exactly once, accepted or obstructed.
		ds := got.all()
		acc := acceptedIDs(ds)
		if acc[ID64(1)] != 1 || acc[ID64(12)] != 1 {
			t.Errorf("accepted %v, want 1 and 12", acc)
		}
		for _, id := range []EventID{ID64(10), ID64(11)} {
			n := acc[id]
			for _, d := range ds {
				if o := d.Output.Result.Obstruction; o != nil && slices.Contains(o.ConflictSet, id) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("id %v decided %d times, want once", id, n)
			}
		}
		if k.Stats().Expired != 2 {
			t.Errorf("Expired = %d, want 2", k.Stats().Expired)
		}
		closeKernel(t, k)
	})
}

// TestKernelPendingBoundOneSubmit submits, in one call, more events waiting
// for a dependency than the pending buffer holds: the buffer never holds
// more than MaxPending, the call is taken in as expiry makes room, and it
// returns once all of it is logged.
func TestKernelPendingBoundOneSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		k := openKernel(t, t.TempDir(), pendingConfig(&got, 4, time.Second))
		ctx := context.Background()
		es := orphans(10)
		done := make(chan error, 1)
		go func() { done <- k.Submit(ctx, es...) }()
		// Four at a time enter the buffer, and expire a second later:
		// the last two enter after two seconds.
		for round, expired := range []uint64{0, 4} {
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Submit returned %v with %d of 10 events taken in", err, 4*round)
			default:
			}
			if n := k.Stats().Expired; n != expired {
				t.Fatalf("after %d s, %d expired, want %d: the buffer holds at most 4", round, n, expired)
			}
			if n, want := k.Stats().Accepted, 4*uint64(round+1); n != want {
				t.Fatalf("after %d s, Accepted = %d, want the %d taken in so far", round, n, want)
			}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		mustHaveReturned(t, done, "Submit has not returned with every event taken in")
		if n := k.Stats().Expired; n != 8 {
			t.Errorf("after 2 s, %d expired, want 8", n)
		}
		if n := k.Stats().Accepted; n != 10 {
			t.Errorf("Accepted = %d, want 10", n)
		}
		time.Sleep(time.Second)
		if err := k.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		obstructed := 0
		for _, d := range got.all() {
			if o := d.Output.Result.Obstruction; o != nil && o.Predicate == 2002 {
				obstructed++
			}
		}
		if obstructed != 10 || k.Stats().Expired != 10 {
			t.Errorf("%d obstructions by 2002, %d expired; want 10 of each", obstructed, k.Stats().Expired)
		}
		closeKernel(t, k)
	})
}

// orphans returns n events of node 1, ids 100 on, that wait for event 99,
// which never comes.
func orphans(n int) []Event {
	var es []Event
	for i := range uint64(n) {
		es = append(es, kev(100+i, 1, 2+i, "w", 99))
	}
	return es
}

// mustHaveReturned fails t with why unless a call has sent nil on done.
func mustHaveReturned(t *testing.T, done <-chan error, why string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal(why)
	}
}

// pendingConfig is kernelConfig with a pending buffer of max events, which
// wait at most age.
func pendingConfig(d *decisions, max int, age time.Duration) *KernelConfig {
	cfg := kernelConfig(d)
	cfg.MaxPending = max
	cfg.MaxPendingAge = age
	return cfg
}

// TestKernelPendingSubmitAbandoned gives up on a Submit waiting for room in
// the pending buffer: the events it had not handed over are left out, and
// the next Submit is taken in as soon as there is room, rather than behind
// them.
func TestKernelPendingSubmitAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		k := openKernel(t, t.TempDir(), pendingConfig(&got, 2, time.Minute))
		es := orphans(10)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := k.Submit(ctx, es...); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Submit = %v, want the deadline's error", err)
		}
		// The buffer is full of the two taken in: the next Submit waits
		// for them to expire, and no longer.
		done := make(chan error, 1)
		go func() { done <- k.Submit(context.Background(), kev(500, 2, 1, "free")) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		mustHaveReturned(t, done, "a Submit waits behind the events of one whose caller has gone")
		if err := k.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := k.Stats()
		if st.Accepted != 3 || st.Expired != 2 {
			t.Errorf("Accepted %d, Expired %d: want the 2 taken in before the deadline, expired, and the free one", st.Accepted, st.Expired)
		}
		closeKernel(t, k)
	})
}

// TestKernelPendingSubmitCutAck checks what the core answers a Submit it
// took in only in part, its caller having gone: its context's error, never
// nil, which the caller could otherwise see first.
func TestKernelPendingSubmitCutAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		k := openKernel(t, t.TempDir(), pendingConfig(&got, 2, time.Minute))
		es := orphans(5)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := k.newSubmit(ctx, es)
		if err != nil {
			t.Fatal(err)
		}
		k.submits <- r
		if err := <-r.done; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the answer to a Submit cut short = %v, want its context's error", err)
		}
		closeKernel(t, k)
	})
}

// TestKernelQueueFull fills the pending buffer, so that the core takes in
// no Submit, and the queue behind it: a Submit that finds the queue full
// waits, and when its context ends first, nothing of it was taken in.
func TestKernelQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		cfg := kernelConfig(&got)
		cfg.MaxPending = 1
		cfg.QueueLen = 1
		cfg.MaxPendingAge = time.Minute
		k := openKernel(t, t.TempDir(), cfg)
		ctx := context.Background()
		if err := k.Submit(ctx, kev(10, 1, 10, "held", 1)); err != nil {
			t.Fatal(err)
		}
		queued := make(chan error, 1)
		go func() { queued <- k.Submit(ctx, kev(11, 2, 1, "queued")) }()
		synctest.Wait() // in the queue, which is now full
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := k.Submit(short, kev(12, 3, 1, "refused")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Submit into a full queue = %v, want it to wait for its context", err)
		}
		time.Sleep(time.Minute) // 10 expires: room in the buffer
		if err := <-queued; err != nil {
			t.Fatal(err)
		}
		if err := k.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ds := got.all()
		if acc := acceptedIDs(ds); acc[ID64(11)] != 1 || acc[ID64(12)] != 0 {
			t.Errorf("accepted %v: want 11, and nothing of the Submit whose context ended outside the queue", acc)
		}
		for _, d := range ds {
			if o := d.Output.Result.Obstruction; o != nil && slices.Contains(o.ConflictSet, ID64(12)) {
				t.Errorf("12 was decided: %v", o)
			}
		}
		if st := k.Stats(); st.Accepted != 2 {
			t.Errorf("Accepted = %d, want 10 and 11", st.Accepted)
		}
		closeKernel(t, k)
	})
}

func TestKernelConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"OMEGA_BATCH_SIZE": "64", "OMEGA_FLUSH_MS": "250", "OMEGA_METRICS_DIR": "/m",
		"OMEGA_CERT_DIR": "/c", "OMEGA_SNAPSHOT_DIR": "/s", "OMEGA_REPLAY_DIR": "/r",
	}
	c, err := KernelConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := KernelConfig{BatchSize: 64, FlushInterval: 250 * time.Millisecond, MetricsFile: filepath.Join("/m", "metrics.jsonl"), CertDir: "/c", SnapshotDir: "/s", IncidentDir: "/r"}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("KernelConfigFromEnv = %+v, want %+v", c, want)
	}
	for name, bads := range map[string][]string{
		"OMEGA_BATCH_SIZE": {"0", "-1", "x", "2000000"},
		// Milliseconds past what a time.Duration holds would wrap.
		"OMEGA_FLUSH_MS": {"0", "-5", "1.5", "9223372036855", "10000000000000", "9223372036854775807"},
	} {
		for _, bad := range bads {
			e := maps.Clone(env)
			e[name] = bad
			if _, err := KernelConfigFromEnv(func(k string) string { return e[k] }); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: error %v, want one naming the variable", name, bad, err)
			}
		}
	}
	env["OMEGA_FLUSH_MS"] = "9223372036854" // the largest that fits
	if c, err := KernelConfigFromEnv(func(k string) string { return env[k] }); err != nil || c.FlushInterval != 9223372036854*time.Millisecond {
		t.Errorf("OMEGA_FLUSH_MS=%s: %v, %v", env["OMEGA_FLUSH_MS"], c.FlushInterval, err)
	}
}

var _ = framelog.HeaderSize

// TestKernelConcurrent submits from several goroutines into small segments
// with frequent snapshots, redelivering now and then: every event is
// accepted exactly once, and the chain verifies, before and after
// reopening.
func TestKernelConcurrent(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.SegmentSize = 8 << 10
	cfg.SnapshotEvery = 20
	cfg.FlushInterval = time.Millisecond
	k := openKernel(t, dir, cfg)
	const submitters, calls, per = 8, 100, 4
	var wg sync.WaitGroup
	for s := range uint64(submitters) {
		wg.Go(func() {
			var prev []Event
			for c := range uint64(calls) {
				es := make([]Event, per)
				for i := range es {
					id := s<<32 | c<<8 | uint64(i)
					es[i] = kev(id, uint32(s+1), c*per+uint64(i)+1, "x")
				}
				if c%10 == 9 {
					es = append(es, prev...) // redeliveries
				}
				if err := k.Submit(context.Background(), es...); err != nil {
					t.Error(err)
					return
				}
				prev = es[:per]
			}
		})
	}
	wg.Wait()
	if err := k.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	acc := acceptedIDs(got.all())
	if len(acc) != submitters*calls*per {
		t.Errorf("%d ids accepted, want %d", len(acc), submitters*calls*per)
	}
	for id, n := range acc {
		if n != 1 {
			t.Errorf("id %v accepted %d times", id, n)
		}
	}
	for _, d := range got.all() {
		if d.Output.Result.Kind != KindMerge {
			t.Errorf("batch %d obstructed: %v", d.Certificate.BatchID, d.Output.Result.Obstruction.Predicate)
		}
	}
	if st := k.Stats(); st.Dropped != submitters*(calls/10)*per {
		t.Errorf("Dropped = %d, want %d", st.Dropped, submitters*(calls/10)*per)
	}
	head := verifyKernelChain(t, k)
	closeKernel(t, k)
	k = openKernel(t, dir, cfg)
	if st := k.Status(); st.SafeMode || k.Head() != head {
		t.Errorf("reopened: %+v, head %+v, want %+v", st, k.Head(), head)
	}
	verifyKernelChain(t, k)
	closeKernel(t, k)
}

// TestKernelCloseLeavesNoGoroutine opens and closes kernels outside a
// synctest bubble, after real work, and counts goroutines.
func TestKernelCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		var got decisions
		cfg := kernelConfig(&got)
		cfg.SnapshotEvery = 1
		k := openKernel(t, t.TempDir(), cfg)
		kernelBatches(t, k, 0, 3)
		if err := k.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
		closeKernel(t, k)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestKernelManyDependencies holds an event for thousands of dependencies,
// some listed twice, that arrive one call at a time, and one that depends
// on itself (the checker's to judge).
func TestKernelManyDependencies(t *testing.T) {
	longTest(t)
	var got decisions
	cfg := kernelConfig(&got)
	cfg.FlushInterval = time.Millisecond
	// 3000 durable Submits one after the other can outlast the default
	// pending age on a slow machine; expiry is not what this tests.
	cfg.MaxPendingAge = time.Hour
	k := openKernel(t, t.TempDir(), cfg)
	ctx := t.Context()
	const n = 3000
	var deps []uint64
	for i := range uint64(n) {
		deps = append(deps, i+1)
		if i%7 == 0 {
			deps = append(deps, i+1)
		}
	}
	if err := k.Submit(ctx, kev(n+1, 1, 2, "child", deps...)); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(n) {
		if err := k.Submit(ctx, kev(i+1, uint32(i+2), 1, "dep")); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Submit(ctx, kev(n+2, 1, 3, "self", n+2)); err != nil {
		t.Fatal(err)
	}
	if err := k.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ds := got.all()
	acc := acceptedIDs(ds)
	if len(acc) != n+1 || acc[ID64(n+1)] != 1 {
		t.Fatalf("%d ids accepted (child %d), want %d and the child", len(acc), acc[ID64(n+1)], n+1)
	}
	self := false
	for _, d := range ds {
		if o := d.Output.Result.Obstruction; o != nil && o.Event == ID64(n+2) && o.Predicate == 1003 {
			self = true
		}
	}
	if !self {
		t.Errorf("the self-dependent event was not obstructed by 1003")
	}
	closeKernel(t, k)
}

// TestReconcileHashedSame checks the kernel's path into the checker, with
// the digests and payload checks Submit computed, against Reconcile, on
// batches with copies, equivocations, missing dependencies and wrong
// payload hashes.
func TestReconcileHashedSame(t *testing.T) {
	c, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var prior *State
	for round := range 300 {
		n := 1 + rng.IntN(40)
		evs := make([]Event, n)
		for i := range evs {
			id := uint64(round*8 + rng.IntN(48))
			var deps []uint64
			if rng.IntN(3) == 0 {
				deps = append(deps, uint64(rng.IntN(round*8+48)))
			}
			evs[i] = kev(id, uint32(1+rng.IntN(4)), uint64(1+rng.IntN(1000)), fmt.Sprint("p", rng.IntN(3)), deps...)
			if rng.IntN(20) == 0 {
				evs[i].PayloadHash[0] ^= 1
			}
			if i > 0 && rng.IntN(10) == 0 {
				evs[i] = evs[rng.IntN(i)] // an identical copy
			}
		}
		h := hashed{}
		for i := range evs {
			h.digests = append(h.digests, evs[i].Digest())
			h.payloadOK = append(h.payloadOK, evs[i].PayloadHashOK())
		}
		want, err := c.Reconcile(prior, evs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.reconcileHashed(prior, evs, &h)
		if err != nil {
			t.Fatal(err)
		}
		wj, gj := want.AppendJSON(nil), got.AppendJSON(nil)
		if !bytes.Equal(wj, gj) {
			t.Fatalf("round %d: reconcileHashed differs from Reconcile:\n%s\n%s", round, gj, wj)
		}
		wr, _ := want.BatchRecord(BatchMeta{BatchID: 1})
		gr, _ := got.BatchRecord(BatchMeta{BatchID: 1})
		wb, _ := wr.MarshalBinary()
		gb, _ := gr.MarshalBinary()
		if !bytes.Equal(wb, gb) {
			t.Fatalf("round %d: BATCH records differ", round)
		}
		if want.Result.Kind == KindMerge {
			prior = want.Result.Merge.Next
		}
	}
}

// slowSyncFS makes every fsync of a log segment take a few milliseconds,
// as a disk's does: long enough for concurrent Submits to pile up behind
// it.
type slowSyncFS struct{ osFS }

func (s slowSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (framelog.File, error) {
	f, err := s.osFS.OpenFile(name, flag, perm)
	if err != nil || filepath.Base(filepath.Dir(name)) != "log" {
		return f, err
	}
	return slowSyncFile{f}, nil
}

type slowSyncFile struct{ framelog.File }

func (f slowSyncFile) Sync() error {
	time.Sleep(3 * time.Millisecond)
	return f.File.Sync()
}

// TestKernelGroupCommit checks that one fsync of the log covers the
// batches of several concurrent Submits: eight submitters, each with one
// call of a batch in flight, need far fewer fsyncs than batches.
func TestKernelGroupCommit(t *testing.T) {
	var got decisions
	cfg := kernelConfig(&got)
	cfg.FS = slowSyncFS{}
	cfg.SnapshotEvery = -1
	k := openKernel(t, t.TempDir(), cfg)
	const submitters, calls = 8, 12
	var wg sync.WaitGroup
	for s := range submitters {
		wg.Go(func() {
			for c := range calls {
				es := make([]Event, 32)
				for i := range es {
					id := uint64((s*calls+c)*32 + i + 1)
					es[i] = kev(id, uint32(s+1), uint64(c*32+i+1), "p")
				}
				if err := k.Submit(t.Context(), es...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := k.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := k.Stats()
	closeKernel(t, k)
	if want := uint64(submitters * calls * 32); st.Accepted != want {
		t.Fatalf("accepted %d events, want %d", st.Accepted, want)
	}
	t.Logf("%d log fsyncs for %d batches", st.LogFsyncs, st.Batches)
	if st.Batches < submitters*calls || st.LogFsyncs == 0 || 2*st.LogFsyncs > st.Batches {
		t.Errorf("%d log fsyncs for %d batches: want one fsync to cover two batches or more on average", st.LogFsyncs, st.Batches)
	}
}
