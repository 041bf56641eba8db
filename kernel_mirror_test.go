package omega

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/model"
	"github.com/omega-sheaf/omega/trace"
)

// TestKernelMirror is the model's mirror: rapid drives the real kernel with
// actions named after formal/OMEGA.tla's (Receive, from correct and faulty
// nodes, with redeliveries; Decide, by Flush; Expire; Snapshot; Crash,
// leaving a torn, zeroed or garbled tail; Damage to the certificate store;
// Restart; Resume) and, after every action, reads the kernel's whole trace
// so far through the model (internal/model), which checks each step and
// every invariant. At the end, once restarted, resumed and flushed past
// the pending age, every acknowledged event is decided (EventuallyDecided).
// Failing cases are kept under testdata/rapid.
func TestKernelMirror(t *testing.T) {
	longTest(t)
	if raceEnabled {
		t.Skip("the mirror's kernels run one at a time; the race detector sees their goroutines in the other kernel tests")
	}
	rapid.Check(t, func(rt *rapid.T) {
		m := &mirror{t: t, rt: rt, clock: map[uint32]uint64{}}
		m.open(scratchDir(t))
		defer m.stop()
		rt.Repeat(map[string]func(*rapid.T){
			"Receive":  m.receive,
			"Decide":   m.decide,
			"Expire":   m.expire,
			"Snapshot": m.snapshot,
			"Crash":    m.crash,
			"Damage":   m.damage,
			"Restart":  m.restart,
			"Resume":   m.resume,
			"":         m.check,
		})
		m.eventually()
	})
}

const mirrorPendingAge = 20 * time.Millisecond

// mirror is the state of one run of TestKernelMirror.
type mirror struct {
	t  *testing.T
	rt *rapid.T

	k     *Kernel
	rec   *recFS
	root  string            // the directory of the running kernel's data directory
	start map[string][]byte // the files under root when it opened

	mu      sync.Mutex
	history []trace.Step // the steps of the kernels before the running one
	steps   []opStep     // the running kernel's, with the op count then

	down    string // when no kernel runs: the root the next opens
	damaged bool

	clock  map[uint32]uint64 // correct nodes' lamports
	nextID uint64
	sent   []Event
}

func (m *mirror) config(rec *recFS) *KernelConfig {
	var d decisions
	cfg := crashConfig(rec, &d, framelog.SyncBatch)
	cfg.MaxPendingAge = mirrorPendingAge
	cfg.SnapshotEvery = -1
	cfg.SegmentSize = 2 << 10
	cfg.Trace = func(s trace.Step) {
		m.mu.Lock()
		m.steps = append(m.steps, opStep{rec.Len(), s})
		m.mu.Unlock()
	}
	return cfg
}

// open starts a kernel on root/data.
func (m *mirror) open(root string) {
	m.start = readTree(m.t, root)
	m.rec = newRecFS()
	m.root = root
	k, err := OpenKernel(context.Background(), filepath.Join(root, "data"), m.config(m.rec))
	if err != nil {
		m.rt.Fatalf("OpenKernel: %v", err)
	}
	m.k, m.down = k, ""
}

func (m *mirror) stop() {
	if m.k != nil {
		m.k.Close(context.Background())
	}
}

// trace returns every step so far.
func (m *mirror) trace() []trace.Step {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.history)
	for _, s := range m.steps {
		out = append(out, s.step)
	}
	return out
}

func (m *mirror) check(rt *rapid.T) {
	if err := validateTrace(m.trace(), 4); err != nil {
		rt.Fatalf("the kernel's trace breaks the model: %v", err)
	}
}

// event makes an event from node: node 3 is faulty (it reuses ids, breaks
// monotonicity, depends on what does not exist, lies about payload
// hashes); the others are correct.
func (m *mirror) event(rt *rapid.T, node uint32) Event {
	payload := fmt.Sprintf("p%d", rapid.IntRange(0, 3).Draw(rt, "payload"))
	if node == 3 {
		id := uint64(rapid.IntRange(1, int(m.nextID)+2).Draw(rt, "id"))
		m.nextID = max(m.nextID, id)
		var deps []uint64
		for range rapid.IntRange(0, 2).Draw(rt, "deps") {
			deps = append(deps, uint64(rapid.IntRange(1, int(m.nextID)+2).Draw(rt, "dep")))
		}
		e := kev(id, node, uint64(rapid.IntRange(0, 12).Draw(rt, "lamport")), payload, deps...)
		if rapid.IntRange(0, 5).Draw(rt, "bad hash") == 0 {
			e.PayloadHash[0] ^= 1
		}
		return e
	}
	m.nextID++
	l := m.clock[node] + 1
	var deps []uint64
	if len(m.sent) > 0 && rapid.Bool().Draw(rt, "depends") {
		d := m.sent[rapid.IntRange(0, len(m.sent)-1).Draw(rt, "on")]
		deps = append(deps, d.ID.Lo)
		l = max(l, d.Lamport+1)
	}
	m.clock[node] = l
	return kev(m.nextID, node, l, payload, deps...)
}

// receive: nodes submit events, new ones or redeliveries of sent ones.
func (m *mirror) receive(rt *rapid.T) {
	if m.k == nil {
		rt.Skip("no kernel runs")
	}
	var es []Event
	for range rapid.IntRange(1, 3).Draw(rt, "events") {
		if len(m.sent) > 0 && rapid.IntRange(0, 3).Draw(rt, "redeliver") == 0 {
			es = append(es, m.sent[rapid.IntRange(0, len(m.sent)-1).Draw(rt, "which")])
			continue
		}
		es = append(es, m.event(rt, uint32(rapid.IntRange(1, 3).Draw(rt, "node"))))
	}
	if err := m.k.Submit(context.Background(), es...); err != nil {
		rt.Fatalf("Submit: %v", err)
	}
	m.sent = append(m.sent, es...)
}

func (m *mirror) decide(rt *rapid.T) {
	if m.k == nil {
		rt.Skip("no kernel runs")
	}
	if err := m.k.Flush(context.Background()); err != nil {
		rt.Fatalf("Flush: %v", err)
	}
}

// expire lets the pending age run out; the next flush releases what waits.
func (m *mirror) expire(rt *rapid.T) {
	if m.k == nil {
		rt.Skip("no kernel runs")
	}
	time.Sleep(mirrorPendingAge + time.Millisecond)
	m.decide(rt)
}

func (m *mirror) snapshot(rt *rapid.T) {
	if m.k == nil {
		rt.Skip("no kernel runs")
	}
	err := m.k.Snapshot(context.Background())
	if safe := m.k.Status().SafeMode; err != nil && !(safe && errors.Is(err, errSafeModeSnapshot)) {
		rt.Fatalf("Snapshot (safe mode %v): %v", safe, err)
	}
}

// crash stops the kernel as a crash would: what its files hold is what the
// operations recorded so far leave, by a variant rapid picks.
func (m *mirror) crash(rt *rapid.T) {
	if m.k == nil {
		// While down, most actions skip, and rapid gives up after a
		// long run of skipped ones; its choices lean towards the first
		// action, this one. Restarting keeps the run going.
		m.restart(rt)
		return
	}
	ops := m.rec.Ops()
	v := rapid.SampledFrom([]crashVariant{crashAll, crashSynced, crashTorn, crashZeroed, crashGarbage}).Draw(rt, "variant")
	m.k.Close(context.Background()) // its goroutines end; what it does now is not kept
	m.k = nil
	m.mu.Lock()
	for _, s := range m.steps {
		if s.ops <= len(ops) && s.step.Action != trace.Crash {
			m.history = append(m.history, s.step)
		}
	}
	m.history = append(m.history, trace.Step{Action: trace.Crash})
	m.steps = nil
	m.mu.Unlock()
	m.down = scratchDir(m.t)
	crashFiles(m.t, m.start, m.root, ops, v, m.down, uint64(len(ops)))
}

// damage flips a byte of a certificate in the middle of the certificate
// store while the process is down (damage to the last would be a torn
// tail): the kernel must find it and enter safe mode.
func (m *mirror) damage(rt *rapid.T) {
	if m.down == "" || m.damaged {
		rt.Skip("only while down, once")
	}
	path := filepath.Join(m.down, "data", "certs", certLogName)
	b, err := os.ReadFile(path)
	if err != nil {
		rt.Skip("no certificate store")
	}
	offs := frameOffsets(m.t, path)
	if len(offs) < 2 {
		rt.Skip("no certificate in the middle to damage")
	}
	b[offs[len(offs)-2]+framelog.FrameHeaderLen+20] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		rt.Fatal(err)
	}
	m.damaged = true
}

func (m *mirror) restart(rt *rapid.T) {
	if m.down == "" {
		rt.Skip("the kernel runs")
	}
	m.open(m.down)
	if m.damaged && !m.k.Status().SafeMode {
		rt.Fatalf("damage to the certificate store, and no safe mode: %+v", m.k.Status())
	}
}

func (m *mirror) resume(rt *rapid.T) {
	if m.k == nil || !m.k.Status().SafeMode {
		rt.Skip("not in safe mode")
	}
	err := m.k.Resume(context.Background())
	if st := m.k.Status(); err != nil && !(st.Stale && errors.Is(err, errStaleState)) {
		rt.Fatalf("Resume: %v (%+v)", err, st)
	}
}

// eventually checks EventuallyDecided: restarted, resumed, and flushed
// until the pending age has run out for every event that waits, every
// acknowledged event is decided.
func (m *mirror) eventually() {
	rt := m.rt
	if m.k == nil {
		m.restart(rt)
	}
	if m.k.Status().Stale {
		return // no decision can extend the chain: nothing is decided
	}
	if m.k.Status().SafeMode {
		m.resume(rt)
	}
	var left []trace.Event
	for range 8 {
		m.expire(rt)
		s, err := model.Validate(model.Config{BatchSize: 4}, m.trace())
		if err != nil {
			rt.Fatalf("the kernel's trace breaks the model: %v", err)
		}
		if left = s.UndecidedAcked(); len(left) == 0 {
			return
		}
	}
	rt.Fatalf("EventuallyDecided: %d acknowledged events are not decided, among them %+v", len(left), left[0])
}

// readTree returns the contents of every file under root, by path.
func readTree(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
