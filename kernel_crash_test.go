package omega

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/trace"
)

// kernelStep is one step of a kernel workload: events to submit, or a
// flush.
type kernelStep struct {
	events []Event
	flush  bool
}

// kernelWorkload makes a seeded workload of n steps from three nodes:
// fresh events with dependencies across nodes, redeliveries, events that
// arrive before their dependency, and an equivocation now and then.
func kernelWorkload(seed uint64, n int) []kernelStep {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	clock := map[uint32]uint64{}
	var sent []Event
	next := uint64(1)
	fresh := func(node uint32, deps ...Event) Event {
		l := clock[node] + 1
		for _, d := range deps {
			l = max(l, d.Lamport+1)
		}
		clock[node] = l
		var ids []uint64
		for _, d := range deps {
			ids = append(ids, d.ID.Lo)
		}
		e := kev(next, node, l, fmt.Sprintf("n%d-%d", node, next), ids...)
		next++
		return e
	}
	var late *Event
	var steps []kernelStep
	for range n {
		var es []Event
		if late != nil {
			es = append(es, *late)
			late = nil
		}
		switch r := rng.IntN(10); {
		case r < 5:
			for range 1 + rng.IntN(3) {
				node := uint32(1 + rng.IntN(3))
				var deps []Event
				if len(sent) > 0 && rng.IntN(2) == 0 {
					deps = append(deps, sent[rng.IntN(len(sent))])
				}
				es = append(es, fresh(node, deps...))
			}
		case r < 7 && len(sent) > 0:
			es = append(es, sent[rng.IntN(len(sent))]) // a redelivery
		case r < 8:
			a := fresh(1)
			b := fresh(2, a)
			es = append(es, b)
			late = &a
		case r < 9 && len(sent) > 0:
			e := sent[rng.IntN(len(sent))]
			e.Payload = []byte("equivocation")
			e.PayloadHash = PayloadHash(e.Payload)
			es = append(es, e)
		default:
			steps = append(steps, kernelStep{flush: true})
			continue
		}
		sent = append(sent, es...)
		steps = append(steps, kernelStep{events: es})
	}
	return steps
}

// crashRun is what a recorded kernel run gives the crash-point checks.
type crashRun struct {
	seed   uint64 // the workload's
	from   string // the file it was read from, if it was
	policy framelog.SyncPolicy
	root   string  // the directory the run used
	ops    []fsOp  // every write, truncate, sync, rename and removal
	acked  []acked // Submits that returned, with the op count then
	certs  [][]byte
	steps  []opStep // the kernel's trace
}

// opStep is a step of the kernel's trace and how many file operations were
// recorded when the kernel reported it: a crash after op p follows the
// steps reported with ops <= p. A step is reported after the operations
// that make it true (a Sync after the fsync, a Certify before its bytes
// are written), so the model's view of a crash point lags the files', and
// its torn-tail search covers the difference.
type opStep struct {
	ops  int
	step trace.Step
}

type acked struct {
	ops     int
	digests []Hash
}

func crashConfig(fsys framelog.FS, d *decisions, policy framelog.SyncPolicy) *KernelConfig {
	cfg := kernelConfig(d)
	cfg.FS = fsys
	cfg.Sync = policy
	cfg.BatchSize = 4
	cfg.FlushInterval = time.Hour
	cfg.MaxPendingAge = time.Hour
	cfg.SnapshotEvery = 5
	cfg.SegmentSize = 4 << 10
	return cfg
}

// recordKernelRun runs the workload on a kernel over a recording file
// system.
func recordKernelRun(t *testing.T, steps []kernelStep, policy framelog.SyncPolicy) *crashRun {
	t.Helper()
	root := scratchDir(t)
	rec := newRecFS()
	var d decisions
	run := &crashRun{root: root, policy: policy}
	cfg := crashConfig(rec, &d, policy)
	cfg.Trace = func(s trace.Step) { run.steps = append(run.steps, opStep{rec.Len(), s}) }
	k := openKernel(t, filepath.Join(root, "data"), cfg)
	ctx := t.Context()
	for _, s := range steps {
		if s.flush {
			if err := k.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := k.Submit(ctx, s.events...); err != nil {
			t.Fatal(err)
		}
		a := acked{ops: len(rec.Ops())}
		for i := range s.events {
			a.digests = append(a.digests, s.events[i].Digest())
		}
		run.acked = append(run.acked, a)
	}
	closeKernel(t, k)
	run.ops = rec.Ops()
	run.certs = readCertLog(t, filepath.Join(root, "data", "certs", certLogName))
	if err := validateTrace(run.traceTo(len(run.ops)), cfg.BatchSize); err != nil {
		t.Fatalf("the run's trace breaks the model: %v", err)
	}
	return run
}

// traceTo returns the steps of the run's trace a crash after op p follows.
func (r *crashRun) traceTo(p int) []trace.Step {
	var out []trace.Step
	for _, s := range r.steps {
		if s.ops <= p {
			out = append(out, s.step)
		}
	}
	return out
}

// readCertLog returns the envelopes of the CERT frames of a cert.log.
func readCertLog(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	s := framelog.NewScanner(b, nil)
	for {
		f, err := s.Next()
		if err != nil {
			return out
		}
		out = append(out, bytes.Clone(f.Payload))
	}
}

// crashVariant says what of a file's unsynced bytes a crash leaves.
type crashVariant int

const (
	crashAll     crashVariant = iota // every write reached the disk
	crashSynced                      // only what was synced
	crashTorn                        // half of the unsynced bytes
	crashZeroed                      // the unsynced bytes read back as zeros
	crashGarbage                     // the unsynced bytes read back as garbage
)

func (v crashVariant) String() string {
	return [...]string{"all", "synced", "torn", "zeroed", "garbage"}[v]
}

// kernelCrashImage writes to dir what a crash after ops leaves of the run's
// files, by variant v, and returns dir's data directory.
func kernelCrashImage(t *testing.T, run *crashRun, ops []fsOp, v crashVariant, dir string, seed uint64) string {
	t.Helper()
	crashFiles(t, nil, run.root, ops, v, dir, seed)
	return filepath.Join(dir, "data")
}

// crashFiles writes to dir what a crash after ops leaves of the files
// under root, which held start (all of it durable) before them, by
// variant v: dir then holds what root would. Every variant but crashAll
// also loses the directory entries not synced: a file created or renamed
// since its directory's last sync is gone, or back under its old name.
func crashFiles(t *testing.T, start map[string][]byte, root string, ops []fsOp, v crashVariant, dir string, seed uint64) {
	t.Helper()
	m := newFSModel(start)
	m.apply(ops...)
	rng := rand.New(rand.NewPCG(seed, uint64(v)))
	files := m.content
	if v != crashAll {
		files = m.durableFiles()
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		content, b := m.content[path], files[path]
		if _, changed := m.entries[path]; v != crashAll && !changed {
			durable := b
			if bytes.HasPrefix(content, durable) {
				u := content[len(durable):]
				switch v {
				case crashTorn:
					b = append(slices.Clone(durable), u[:len(u)/2]...)
				case crashZeroed:
					b = append(slices.Clone(durable), make([]byte, len(u))...)
				case crashGarbage:
					g := make([]byte, len(u))
					for i := range g {
						g[i] = byte(rng.Uint32())
					}
					b = append(slices.Clone(durable), g...)
				}
			}
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("a file outside the run: %s", path)
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loggedDigests returns the digests of every EVENT frame in the data
// directory's log segments.
func loggedDigests(t *testing.T, data string) map[Hash]bool {
	t.Helper()
	seen := map[Hash]bool{}
	segs, err := listSeqs(osFS{}, filepath.Join(data, "log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(data, "log", fmt.Sprintf("%016x.omega", s)))
		if err != nil {
			t.Fatal(err)
		}
		sc := framelog.NewScanner(b, nil)
		for {
			f, err := sc.Next()
			if err != nil {
				break
			}
			if f.Type == framelog.FrameEvent {
				seen[eventDigestOf(f.Payload)] = true
			}
		}
	}
	return seen
}

func eventDigestOf(enc []byte) Hash {
	e, err := DecodeEvent(enc, Limits{})
	if err != nil {
		panic(err)
	}
	return e.Digest()
}

// checkCrashPoint reopens the image of a crash after the first p ops of
// run and checks SPEC 8's promises.
func checkCrashPoint(t *testing.T, run *crashRun, p int, v crashVariant) {
	t.Helper()
	what := fmt.Sprintf("crash after op %d of %d (%s)", p, len(run.ops), v)
	dir := scratchDir(t)
	defer os.RemoveAll(dir)
	data := kernelCrashImage(t, run, run.ops[:p], v, dir, uint64(p))
	var d decisions
	rec := newRecFS()
	cfg := crashConfig(rec, &d, run.policy)
	// The model reads the run's steps up to the crash, the crash, and the
	// reopened kernel's steps.
	steps := run.traceTo(p)
	if len(steps) > 0 && steps[len(steps)-1].Action != trace.Crash {
		// The kernel had opened (a crash during the first open finds the
		// model's Init, where the process is not yet running).
		steps = append(steps, trace.Step{Action: trace.Crash})
	}
	cfg.Trace = func(s trace.Step) { steps = append(steps, s) }
	k, err := OpenKernel(context.Background(), data, cfg)
	if err != nil {
		t.Fatalf("%s: OpenKernel: %v", what, err)
	}
	// SPEC 8's order across the restart: nothing is certified before the
	// log it comes from is synced again (a second crash must not leave a
	// certificate without its BATCH frame).
	logSynced := false
	for _, op := range rec.Ops() {
		switch {
		case op.kind == "sync" && strings.Contains(op.path, string(filepath.Separator)+"log"+string(filepath.Separator)):
			logSynced = true
		case op.kind == "write" && filepath.Base(op.path) == certLogName && op.off >= framelog.HeaderSize && !logSynced:
			t.Fatalf("%s: cert.log written at reopening before the log was synced", what)
		}
	}
	defer k.Close(context.Background())
	if st := k.Status(); st.SafeMode {
		t.Errorf("%s: safe mode after a crash: %+v", what, st)
	}
	// The chain verifies, and is a prefix of the run's chain: certificates
	// made again are the same bytes.
	ring, _ := NewKeyRing(kernelKey.Public().(ed25519.PublicKey))
	if _, err := k.Certificates().VerifyAll(ring, k.Binding()); err != nil {
		t.Errorf("%s: chain: %v", what, err)
	}
	i := 0
	for _, c := range k.Certificates().All() {
		if i >= len(run.certs) || !bytes.Equal(c.Bytes(), run.certs[i]) {
			t.Errorf("%s: certificate %d differs from the run's", what, i)
			break
		}
		i++
	}
	for _, dec := range d.all() {
		if !dec.Recertified {
			t.Errorf("%s: a decision other than a re-certification while opening", what)
		}
	}
	// Every acknowledged event is in the log.
	logged := loggedDigests(t, data)
	for _, a := range run.acked {
		if a.ops > p {
			break
		}
		for _, dg := range a.digests {
			if !logged[dg] {
				t.Errorf("%s: an event acknowledged at op %d is lost", what, a.ops)
			}
		}
	}
	// And the kernel goes on: a new event is decided and certified.
	if err := k.Submit(context.Background(), kev(1<<40, 99, 1<<30, "after")); err != nil {
		t.Fatalf("%s: Submit after reopening: %v", what, err)
	}
	if err := k.Flush(context.Background()); err != nil {
		t.Fatalf("%s: Flush after reopening: %v", what, err)
	}
	if _, err := k.Certificates().VerifyAll(ring, k.Binding()); err != nil {
		t.Errorf("%s: chain after going on: %v", what, err)
	}
	if err := k.Close(context.Background()); err != nil {
		t.Errorf("%s: Close: %v", what, err)
	}
	if err := validateTrace(steps, cfg.BatchSize); err != nil {
		t.Errorf("%s: the trace breaks the model: %v", what, err)
	}
}

// TestKernelCrashPoints records every file operation of a kernel run and
// reopens what a crash after each prefix of them leaves, with the unsynced
// bytes written, lost, torn, zeroed or garbled.
//
// The workloads are seeded, but the order of a run's operations is the
// kernel goroutines' interleaving, which differs from one recording to the
// next. So when a crash point fails, the recorded run is saved under
// testdata/crashruns, and every run saved there is checked again, exactly,
// before the new recordings: keep the file as a regression run once the
// failure is fixed.
func TestKernelCrashPoints(t *testing.T) {
	longTest(t)
	if raceEnabled {
		// Reopening images one after the other exercises no concurrency
		// the race detector would not see faster in the other kernel tests.
		t.Skip("crash points are enumerated without the race detector")
	}
	saved, err := filepath.Glob(filepath.Join("testdata", "crashruns", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range saved {
		run := readCrashRun(t, path)
		t.Logf("%s: the saved run of seed %d, %d ops", path, run.seed, len(run.ops))
		checkCrashRun(t, run)
	}
	seeds := []uint64{1, 2}
	steps := 40
	if testing.Short() {
		seeds, steps = seeds[:1], 20
	}
	for _, seed := range seeds {
		// Seed 1 under group commit, seed 2 syncing every frame.
		policy := framelog.SyncBatch
		if seed%2 == 0 {
			policy = framelog.SyncAlways
		}
		run := recordKernelRun(t, kernelWorkload(seed, steps), policy)
		run.seed = seed
		t.Logf("seed %d (sync policy %d): %d ops, %d certificates, %d acknowledged Submits", seed, policy, len(run.ops), len(run.certs), len(run.acked))
		checkCrashRun(t, run)
	}
}

// checkCrashRun checks every crash point of run, in every variant, and
// stops at the first that fails, saving the run first unless it was read
// from a file.
func checkCrashRun(t *testing.T, run *crashRun) {
	t.Helper()
	defer func() {
		if t.Failed() && run.from == "" {
			path := filepath.Join("testdata", "crashruns", fmt.Sprintf("seed%d-%d.json", run.seed, time.Now().UnixNano()))
			writeCrashRun(t, path, run)
			t.Logf("the failing run is saved in %s: this test checks it again, exactly, first", path)
		}
	}()
	points, corrupt := 0, 0
	for p := 0; p <= len(run.ops); p++ {
		for v := crashAll; v <= crashGarbage; v++ {
			checkCrashPoint(t, run, p, v)
			points++
			if t.Failed() {
				t.Fatalf("seed %d: stopping at the first failing crash point", run.seed)
			}
		}
		if checkCorruptPoint(t, run, p) {
			corrupt++
		}
		if t.Failed() {
			t.Fatalf("seed %d: stopping at the first failing crash point", run.seed)
		}
	}
	t.Logf("seed %d: %d crash points, and %d of them with a byte of the log damaged", run.seed, points, corrupt)
}

// checkCorruptPoint damages one byte of a synced log frame that a valid
// frame follows, in the image of a crash after the first p ops of run,
// and checks that reopening reports it in safe mode, at that frame, and
// leaves the segment as it was: damage is never cut off as a torn tail.
// It reports false when the image has no such frame.
func checkCorruptPoint(t *testing.T, run *crashRun, p int) bool {
	t.Helper()
	dir := scratchDir(t)
	defer os.RemoveAll(dir)
	data := kernelCrashImage(t, run, run.ops[:p], crashSynced, dir, uint64(p))
	type frame struct {
		seg       string
		off, next int64
	}
	var frames []frame
	segs, err := listSeqs(osFS{}, filepath.Join(data, "log"))
	if err != nil {
		return false // no log yet
	}
	for _, s := range segs {
		seg := filepath.Join(data, "log", fmt.Sprintf("%016x.omega", s))
		offs := frameOffsets(t, seg)
		for i := 0; i+1 < len(offs); i++ {
			frames = append(frames, frame{seg, offs[i], offs[i+1]})
		}
	}
	if len(frames) == 0 {
		return false
	}
	rng := rand.New(rand.NewPCG(uint64(p), 0xc0))
	f := frames[rng.IntN(len(frames))]
	at := f.off + rng.Int64N(f.next-f.off)
	b, err := os.ReadFile(f.seg)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= byte(1 + rng.IntN(255))
	if err := os.WriteFile(f.seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	what := fmt.Sprintf("crash after op %d of %d, %s damaged at %d (frame at %d)", p, len(run.ops), filepath.Base(f.seg), at, f.off)

	var d decisions
	cfg := crashConfig(osFS{}, &d, run.policy)
	k, err := OpenKernel(context.Background(), data, cfg)
	if err != nil {
		t.Fatalf("%s: OpenKernel: %v", what, err)
	}
	st := k.Status()
	if !st.SafeMode || st.Segment != f.seg || st.Offset != f.off {
		t.Errorf("%s: Status %+v, want safe mode at that frame", what, st)
	}
	// It goes on in safe mode: events are still logged and decided, and
	// no merge is certified.
	if err := k.Submit(context.Background(), kev(1<<40, 99, 1<<30, "after")); err != nil {
		t.Errorf("%s: Submit in safe mode: %v", what, err)
	}
	if err := k.Flush(context.Background()); err != nil {
		t.Errorf("%s: Flush in safe mode: %v", what, err)
	}
	for _, dec := range d.all() {
		if !dec.Recertified && dec.Output.Result.Kind == KindMerge {
			t.Errorf("%s: a merge certified in safe mode", what)
		}
	}
	if err := k.Close(context.Background()); err != nil {
		t.Errorf("%s: Close: %v", what, err)
	}
	if after, err := os.ReadFile(f.seg); err != nil || !bytes.Equal(after, b) {
		t.Errorf("%s: the damaged segment was changed (%v)", what, err)
	}
	return true
}

// savedRun is a crashRun as JSON.
type savedRun struct {
	Seed   uint64
	Policy framelog.SyncPolicy
	Root   string
	Ops    []savedOp
	Acked  []savedAck
	Certs  [][]byte
	Steps  []savedStep
}

type savedOp struct {
	Kind, Path, To string
	Off            int64
	Data           []byte
}

type savedAck struct {
	Ops     int
	Digests []Hash
}

type savedStep struct {
	Ops  int
	Step trace.Step
}

func writeCrashRun(t *testing.T, path string, run *crashRun) {
	t.Helper()
	sr := savedRun{Seed: run.seed, Policy: run.policy, Root: run.root, Certs: run.certs}
	for _, o := range run.ops {
		sr.Ops = append(sr.Ops, savedOp{o.kind, o.path, o.to, o.off, o.data})
	}
	for _, a := range run.acked {
		sr.Acked = append(sr.Acked, savedAck{a.ops, a.digests})
	}
	for _, s := range run.steps {
		sr.Steps = append(sr.Steps, savedStep{s.ops, s.step})
	}
	b, err := json.MarshalIndent(&sr, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readCrashRun(t *testing.T, path string) *crashRun {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sr savedRun
	if err := json.Unmarshal(b, &sr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	run := &crashRun{seed: sr.Seed, policy: sr.Policy, root: sr.Root, certs: sr.Certs, from: path}
	for _, o := range sr.Ops {
		run.ops = append(run.ops, fsOp{o.Kind, o.Path, o.To, o.Off, o.Data})
	}
	for _, a := range sr.Acked {
		run.acked = append(run.acked, acked{a.Ops, a.Digests})
	}
	for _, s := range sr.Steps {
		run.steps = append(run.steps, opStep{s.Ops, s.Step})
	}
	return run
}

// TestKernelCrashRunSaved saves a recorded run, reads it back the same,
// and checks crash points of the copy: what TestKernelCrashPoints relies
// on to check a failing run again.
func TestKernelCrashRunSaved(t *testing.T) {
	run := recordKernelRun(t, kernelWorkload(3, 8), framelog.SyncBatch)
	run.seed = 3
	path := filepath.Join(t.TempDir(), "run.json")
	writeCrashRun(t, path, run)
	got := readCrashRun(t, path)
	if got.from != path {
		t.Errorf("read from %q, want %q", got.from, path)
	}
	got.from = ""
	if diff := cmp.Diff(run, got, cmp.AllowUnexported(crashRun{}, fsOp{}, acked{}, opStep{}), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("the run read back differs (-saved +read):\n%s", diff)
	}
	for _, p := range []int{len(got.ops) / 3, len(got.ops) / 2, len(got.ops)} {
		checkCrashPoint(t, got, p, crashTorn)
	}
}
