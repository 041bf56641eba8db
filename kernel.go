package omega

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/trace"
)

// Kernel is omega's runtime (SPEC 8): it takes event streams from many
// submitters, logs them durably, reconciles them in batches and certifies
// every decision in a hash-chained certificate log, in a data directory it
// owns. It is the pure core (Reconcile, Certify, Replay) wired to files,
// timers and goroutines, after the original system's actor graph:
//
//	Submit (ingress) -> sequencer -> coordinator -> checker -> certificates
//	                                         \-> snapshots, metrics
//
// # Submitting
//
// [Kernel.Submit] checks each event's structure (a malformed one is refused
// with an [*EventError] naming it, and nothing of the call is logged),
// then hands the events to the sequencer, which
//
//   - drops exact redeliveries (metric sequencer.drop): an event identical to
//     one accepted, or to one logged and not yet decided, by 64 bits of its
//     digest kept per accepted id (8 bytes each, and beside each snapshot in
//     a fingerprint file). Every other event, an equivocation or a reused id
//     included, reaches the checker, so that every rejection is certified.
//     Two contents of one id share those 64 bits with probability 2^-63
//     (or after some 2^63 hashes spent looking for such a pair): that
//     equivocation would be dropped as a copy instead of obstructed by
//     1002. This is the one way "exact" here falls short of SPEC 8's word,
//     traded for memory: the whole digest would take 32 bytes per event;
//   - logs the others as EVENT frames, and returns from Submit once they
//     are durable (see Sync below);
//   - holds an event whose dependencies are neither accepted nor released
//     to a batch in a pending buffer, releasing it when they are; after
//     MaxPendingAge it releases it anyway, for the checker to obstruct by
//     2002 (metric sequencer.expired).
//
// Submit waits, for as long as its context allows, while the pending
// buffer holds MaxPending events or the submission queue is full
// (backpressure): an event is never dropped for lack of room. A Submit
// with more events than the room left is taken in as room is made, in
// order, and no other Submit is taken in meanwhile; it returns once all of
// it is logged. If its context ends first, the events not yet taken in are
// left out (a prefix of the call is logged) and other Submits go on. The
// bound is strict for the events held for their dependencies; three things
// go past it: in safe mode, the events of blocked merges, which wait for
// Resume however many they are; at Close, the Submits already handed over,
// taken in whole; and at open, every event logged and not decided, pending
// again whatever MaxPending now is. An event's age counts from when it
// entered the buffer. A dependency submitted while
// the buffer is full of events waiting for it enters when expiry makes
// room: size MaxPending for the disorder the nodes produce.
//
// # Batches
//
// Released events are reconciled in arrival order, BatchSize at a time, or
// fewer FlushInterval after the first of them arrived, or at once on Flush
// and Close. After an Obstruction the conflict set is quarantined and the
// rest of the batch is checked again as the next batch, at once, so that
// one bad event never holds back good ones. Batch ids count up from the
// last one logged or certified.
//
// Each decision's BATCH frame is logged and synced before its certificate
// is made and appended, and the certificate store is synced before the
// decision is reported to [KernelConfig].OnDecision, in chain order. Group
// commit: the kernel syncs the event log once for everything that became
// ready while the previous sync ran (every Submit and every batch), and the
// certificate store once for every certificate made meanwhile.
//
// # Durability and restart
//
// The data directory holds:
//
//	LOCK              the lock of the process that owns the directory
//	kernel.key        the signing key, when KernelConfig.Signer is nil
//	log/<seq>.omega   the event log, in segments (16 hex digits each); the
//	                  one after the current is made ahead of time, empty
//	certs/            the certificate store (CertStore); certs/gen-<seq>/ after damage
//	snapshots/<seq>.omega  snapshots; one describes the log before segment seq,
//	snapshots/<seq>.fp     beside it the fingerprints of its accepted events
//	incidents/        replay incidents found on opening
//	resumed-damage    the damage to the log safe mode was resumed from
//
// A new segment starts when the current one reaches SegmentSize, at each
// snapshot, and after corruption. [OpenKernel] recovers the segments (a
// torn tail, the trace of a crash, is cut off), loads the newest snapshot
// the certificate chain covers, replays the segments after it against the
// certificates (those before it are not replayed, but their frames'
// checksums are checked, so that damage anywhere in the log is found: that
// reads the whole log once per open, at the speed of the disk; set
// PruneSegments to keep only what restart needs), re-certifies, byte for byte, the batches logged but not
// certified when the process stopped, and goes on with the chain and the
// batch ids. Events logged and not decided are pending again. No event
// whose Submit returned is lost under SyncBatch (the default) or
// SyncAlways.
//
// # Safe mode
//
// Corruption in the middle of a segment (never truncated, never appended
// to again: the kernel continues in a new segment), a damaged certificate
// log (corruption or a broken chain: it is left as it is, and the chain
// continues from its last sound certificate in a new store,
// certs/gen-<seq>, where the batches certified after the damage are
// certified again from their BATCH frames) or a replay incident puts the
// kernel in safe mode: it keeps logging events and certifying
// obstructions, but certifies no merge (metric
// reconcile.safe_mode_merge_blocked) until [Kernel.Resume]; the events of a
// blocked merge wait for it. [Kernel.Status] says why, with the offset or
// the incident. A segment a snapshot covers that is damaged, missing or
// unreadable puts it in safe mode too, though restart does not read it.
// Resume records the damage to the log it resumes from (resumed-damage):
// once a snapshot covers it, later opens count it (metric
// log.resumed_damage) and do not report it again; other damage, even in
// the same segment, they do.
//
// A Kernel is safe for concurrent use.
type Kernel struct {
	dir     string
	cfg     KernelConfig
	fsys    fileSystem
	c       *Checker
	binding Binding
	signer  crypto.Signer
	signKey *ed25519Key // signer expanded, if an ed25519.PrivateKey; for the presigner only
	lock    file
	certs   *CertStore
	// certPrefix holds the sound certificates of damaged certificate
	// stores the open one continues (see openCerts); usually none.
	certPrefix []*Certificate

	submits  chan *submitReq
	syncQ    chan commitGroup // the core's commits, for the syncer
	signQ    chan []certJob   // the core's decided batches, for the presigner
	ctl      chan ctlReq
	certWork chan certWork
	snapWork chan snapJob
	prepWork chan uint64 // a log segment for the snapshotter to create ahead
	segMu    sync.Mutex  // held while a log segment is created
	closing  chan struct{}

	mu        sync.RWMutex // write-held by Close to shut the door on Submit
	closed    bool
	closeOnce sync.Once
	closeErr  error
	done      sync.WaitGroup // the kernel's goroutines

	failure atomic.Pointer[error] // the first error that stopped the kernel
	abandon atomic.Bool           // Close's context ended: stop certifying

	statusMu sync.Mutex
	status   KernelStatus
	damage   []logDamage // to the log, found since open or the last Resume
	// resumedDamage is the damage to the log safe mode was resumed from
	// (resumedDamageName); read at open, written by Resume on the core.
	resumedDamage map[logDamage]bool

	stats kernelStats

	sinkFile io.Closer // the file of KernelConfig.MetricsFile, which the kernel opened

	hashers sync.Pool // of *digest.Hasher for event digests, for Submit

	traceMu sync.Mutex // serializes KernelConfig.Trace's calls
}

// KernelConfig configures [OpenKernel]. A nil *KernelConfig and zero fields
// mean the defaults given beside each field. The kernel reads no
// environment variable; [KernelConfigFromEnv] maps the original system's.
type KernelConfig struct {
	// Checker decides the batches: its binding (schema, catalog, domain
	// predicates) is the log's. Nil means NewChecker(nil).
	Checker *Checker
	// Signer signs the certificates, with an Ed25519 key. Nil means the
	// key in the data directory's kernel.key (PKCS#8 PEM), made with
	// crypto/rand on the first open. An ed25519.PrivateKey is expanded
	// once, at open, and signs as Certify says.
	Signer crypto.Signer
	// ReplaySeed is recorded in every BATCH frame and certificate.
	ReplaySeed uint64
	// BatchSize is the most events a batch holds. 0 means 32; at most
	// MaxBatchContents.
	BatchSize int
	// FlushInterval is how long after its first event a batch that is not
	// full is decided. 0 means 100 ms.
	FlushInterval time.Duration
	// Sync says when logged frames are durable. SyncBatch (the default):
	// Submit returns after the fsync that covers its events, shared by
	// everything ready at that moment (group commit). SyncAlways: every
	// frame is synced as it is appended. SyncNever: nothing is synced, for
	// tests; a crash loses what the operating system had not written.
	Sync framelog.SyncPolicy
	// SnapshotEvery is how many batches are decided between two snapshots,
	// at least: a snapshot also waits until half as many events have been
	// logged since the last one as the State knows ids, so that writing
	// snapshots costs time in proportion to the events logged however
	// long the history. 0 means 4096; a negative value takes none but
	// those Kernel.Snapshot asks for. A snapshot is written in the
	// background at most half a core at a time, a megabyte at a time,
	// so that Submits keep their latency meanwhile: at 10^6 ids it needs
	// about 0.16 s of a core, and takes at least twice that long.
	SnapshotEvery int
	// PruneSegments removes, after each snapshot, the log segments and
	// older snapshots it makes unnecessary for restart. Off by default:
	// the whole log stays for replay and audit.
	PruneSegments bool
	// MaxPending is how many events may wait in the pending buffer (for
	// their dependencies, or for Resume) before Submit waits: a bound also
	// within one Submit call, and strict but for the cases the package
	// docs list (safe mode, Close, open). 0 means 65536.
	MaxPending int
	// MaxPendingAge is how long an event waits for its dependencies before
	// it is released to the checker anyway. 0 means 5 s.
	MaxPendingAge time.Duration
	// QueueLen is how many Submit calls may wait for the sequencer.
	// 0 means 1024.
	QueueLen int
	// SegmentSize is the size at which the log moves to a new segment.
	// 0 means 64 MiB.
	SegmentSize int64
	// CertDir, SnapshotDir and IncidentDir place the certificate store,
	// the snapshots and the incident files; "" means the certs, snapshots
	// and incidents directories of the data directory.
	CertDir, SnapshotDir, IncidentDir string
	// Metrics receives the kernel's metrics; nil means none are sent
	// (the figures of Kernel.Stats are kept anyway).
	Metrics MetricsSink
	// MetricsFile, when Metrics is nil, is a file the kernel appends its
	// metrics to, as a JSONLSink, from open to close; its seq_ids go on
	// from the last one the file holds. One kernel at a time: a file
	// another one appends to is refused with an error wrapping ErrLocked
	// (another process's where the platform has flock(2), as on Unix;
	// this process's everywhere).
	MetricsFile string
	// OnDecision, when not nil, is called with every certified decision,
	// in chain order and one call at a time, after its certificate is
	// durable: first from OpenKernel, for the batches it certifies again,
	// then from the kernel's certifier goroutine. The kernel waits for it,
	// so it must not call Submit, Flush, Snapshot, Resume or Close, which
	// wait for the kernel: hand the decision to another goroutine for that.
	OnDecision func(Decision)
	// Now gives the created_at_ns recorded in each batch. Nil means
	// time.Now. Results depend on it only through that field.
	Now func() time.Time
	// Trace, when not nil, receives the kernel's steps at the boundaries
	// between its goroutines, each named after an action of the formal
	// model (formal/OMEGA.tla), one call at a time, from OpenKernel and
	// the kernel's goroutines: for a test to check the kernel against the
	// model (omegatest.CheckTrace). It must not call the kernel. Steps
	// cost allocations: leave it nil in production.
	Trace func(trace.Step)
	// FS is the file system the kernel reaches its files through; nil
	// means package os. One set must also have the ReadFile, ReadDir,
	// Stat, Rename, Remove and MkdirAll methods of package os.
	FS framelog.FS
}

// Defaults of KernelConfig.
const (
	DefaultBatchSize     = 32
	DefaultFlushInterval = 100 * time.Millisecond
)

const (
	defaultSnapshotEvery = 4096
	defaultMaxPending    = 1 << 16
	defaultMaxPendingAge = 5 * time.Second
	defaultQueueLen      = 1024
	defaultSegmentSize   = 64 << 20
)

// withDefaults checks cfg and fills in its defaults.
func (cfg KernelConfig) withDefaults() (KernelConfig, error) {
	switch {
	case cfg.BatchSize < 0 || cfg.BatchSize > MaxBatchContents:
		return cfg, fmt.Errorf("omega: KernelConfig.BatchSize %d out of range 0..%d", cfg.BatchSize, MaxBatchContents)
	case cfg.FlushInterval < 0:
		return cfg, fmt.Errorf("omega: KernelConfig.FlushInterval %v is negative", cfg.FlushInterval)
	case cfg.Sync > framelog.SyncNever:
		return cfg, fmt.Errorf("%w: KernelConfig.Sync %d", framelog.ErrUnknownSyncPolicy, cfg.Sync)
	case cfg.MaxPending < 0, cfg.MaxPendingAge < 0, cfg.QueueLen < 0, cfg.SegmentSize < 0:
		return cfg, errors.New("omega: KernelConfig: MaxPending, MaxPendingAge, QueueLen and SegmentSize must not be negative")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = defaultSnapshotEvery
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = defaultMaxPending
	}
	if cfg.MaxPendingAge == 0 {
		cfg.MaxPendingAge = defaultMaxPendingAge
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = defaultQueueLen
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = defaultSegmentSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// Decision is one certified batch, as [KernelConfig].OnDecision receives it.
type Decision struct {
	Certificate *Certificate
	// Output is the checker's result: for an Obstruction, the violation,
	// its conflict set (quarantined) and evidence.
	Output Output
	// Recertified marks a batch that was logged but not certified when the
	// kernel last stopped, certified again by OpenKernel.
	Recertified bool
}

// KernelStatus is what [Kernel.Status] reports.
type KernelStatus struct {
	// SafeMode is set from the moment the kernel found corruption or a
	// replay incident until Resume. Reason says what was found first;
	// Segment and Offset where, for damage in a log segment or cert.log
	// (Offset is -1 otherwise); Incident is the replay incident, when that
	// is the reason. Every finding also goes to the metric kernel.safe_mode.
	SafeMode bool
	Reason   string
	Segment  string
	Offset   int64
	Incident *Incident
	// Stale is set when the log reaches another State than the
	// certificate chain (the batches of some certificates were lost with
	// the damage): no decision can then extend the chain, not even after
	// Resume, which refuses; restore the log, or start from a snapshot the
	// chain certifies.
	Stale bool
	// Blocked counts the events held back by safe mode: those of merges
	// not certified, those depending on them, and, when Stale, every
	// batch.
	Blocked int
	// Err is the error that stopped the kernel (a failed write or sync),
	// after which every call fails with it; nil while it runs.
	Err error
}

// Dir returns the kernel's data directory.
func (k *Kernel) Dir() string { return k.dir }

// Binding returns the binding of the kernel's checker.
func (k *Kernel) Binding() Binding { return k.binding }

// Status reports safe mode and the error that stopped the kernel, if any.
func (k *Kernel) Status() KernelStatus {
	k.statusMu.Lock()
	s := k.status
	k.statusMu.Unlock()
	s.Err = k.err()
	return s
}

// Head returns the position of the certificate chain after its last
// durable certificate.
func (k *Kernel) Head() ChainAnchor { return k.certs.Head() }

// Certificates returns the certificate store the kernel appends to. It is
// the kernel's: read from it (Lookup, All, VerifyAll), never append to it
// or close it. After damage to an earlier store (see Safe mode), it holds
// the chain from the earlier store's last sound certificate on, and
// VerifyAll verifies it from there.
func (k *Kernel) Certificates() *CertStore { return k.certs }

func (k *Kernel) err() error {
	if p := k.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// fail stops the kernel with err, the first time.
func (k *Kernel) fail(err error) error {
	if err == nil {
		return nil
	}
	e := fmt.Errorf("omega: kernel stopped: %w", err)
	if k.failure.CompareAndSwap(nil, &e) {
		return e
	}
	return k.err()
}

func (k *Kernel) metric(name string, v float64, md map[string]string) {
	if k.cfg.Metrics != nil {
		k.cfg.Metrics.Record(Metric{Name: name, Value: v, Metadata: md})
	}
}

// Submit hands events to the kernel and returns once they are logged
// durably, as the sync policy says, or dropped as exact redeliveries: the
// decisions on them arrive later through OnDecision. A structurally
// malformed event (see [Event.Validate]) is refused with an [*EventError]
// naming its position, and nothing of the call is logged. Submit waits while
// the kernel has no room (backpressure) and returns ctx.Err() when ctx ends
// first: the events are then logged or not (a prefix of them, when the
// call was waiting for room in the pending buffer), and decided if they
// are.
// The kernel keeps copies; events may be reused when Submit returns.
func (k *Kernel) Submit(ctx context.Context, events ...Event) error {
	if len(events) == 0 {
		return k.err()
	}
	r, err := k.newSubmit(ctx, events)
	if err != nil {
		return err
	}
	return call(ctx, k, k.submits, r, r.done)
}

// call hands req to the core through ch and waits for its answer on done,
// as long as ctx allows. Close shuts the door first: a request is either
// taken in before the core stops, or refused with ErrKernelClosed.
func call[T any](ctx context.Context, k *Kernel, ch chan<- T, req T, done <-chan error) error {
	k.mu.RLock()
	if k.closed {
		k.mu.RUnlock()
		return ErrKernelClosed
	}
	select {
	case ch <- req:
	case <-ctx.Done():
		k.mu.RUnlock()
		return ctx.Err()
	case <-k.closing:
		k.mu.RUnlock()
		return ErrKernelClosed
	}
	k.mu.RUnlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newSubmit checks and encodes events for the sequencer, on the caller's
// goroutine: several submitters encode and hash in parallel.
func (k *Kernel) newSubmit(ctx context.Context, events []Event) (*submitReq, error) {
	k.stats.submitted.Add(uint64(len(events)))
	k.metric("ingress.events", float64(len(events)), nil)
	n, ndeps := 0, 0
	for i := range events {
		if err := events[i].Validate(k.c.limits); err != nil {
			var fe *EventError
			if errors.As(err, &fe) {
				fe.Index = i
			}
			k.stats.malformed.Add(1)
			k.metric("ingress.malformed", 1, nil)
			return nil, fmt.Errorf("omega: Submit: %w", err)
		}
		if l := events[i].EncodedLen(); l > framelog.DefaultMaxFrameLen-framelog.FrameHeaderLen {
			k.stats.malformed.Add(1)
			k.metric("ingress.malformed", 1, nil)
			return nil, fmt.Errorf("omega: Submit: %w", &EventError{Index: i, Field: "payload_len",
				Reason: fmt.Sprintf("the event encodes to %d bytes, over the %d a log frame holds", l, framelog.DefaultMaxFrameLen-framelog.FrameHeaderLen)})
		}
		n += events[i].EncodedLen()
		ndeps += len(events[i].Deps)
	}
	r := &submitReq{
		ctx:    ctx,
		events: make([]queued, len(events)),
		done:   make(chan error, 1),
	}
	at := time.Now()
	buf := make([]byte, 0, n)
	deps := make([]EventID, 0, ndeps) // the copies' Deps, in one array
	var lamps []uint64                // and their lamports, as the sequencer finds them
	if ndeps > 0 {
		lamps = make([]uint64, ndeps)
	}
	h := k.hashers.Get().(*digest.Hasher)
	defer k.hashers.Put(h)
	// Eight events at a time: their digests and payload hashes take one
	// eight-lane compression per block.
	for g := 0; g < len(events); g += 8 {
		m := min(8, len(events)-g)
		var encs, payloads [8][]byte
		var ds, phs [8][digest.Size]byte
		for j := range m {
			e := &events[g+j]
			start := len(buf)
			buf, _ = e.AppendBinary(buf)
			encs[j] = buf[start:len(buf):len(buf)]
			payloads[j] = e.Payload
		}
		h.SumMany(&encs, m, &ds)
		digest.PlainMany(&payloads, m, &phs)
		for j := range m {
			e, enc := &events[g+j], encs[j]
			// The kernel's copy shares the encoding's bytes for its
			// payload, the encoding's last field.
			c := *e
			start := len(deps)
			deps = append(deps, e.Deps...)
			c.Deps = deps[start:len(deps):len(deps)]
			c.Payload = enc[len(enc)-len(e.Payload):]
			r.events[g+j] = queued{ev: c, d: ds[j], pok: phs[j] == e.PayloadHash, enc: enc, at: at}
			if len(e.Deps) > 0 {
				r.events[g+j].lamps = lamps[start:len(deps):len(deps)]
			}
		}
	}
	return r, nil
}

// Flush decides every event released to a batch (not those still waiting
// for dependencies) and returns when their certificates are durable.
func (k *Kernel) Flush(ctx context.Context) error { return k.control(ctx, ctlFlush) }

// Snapshot starts a new log segment and writes a snapshot of the kernel as
// the previous segment left it, returning when the file is durable. It is
// refused in safe mode, where no snapshot is taken (nor anything pruned)
// until Resume.
func (k *Kernel) Snapshot(ctx context.Context) error { return k.control(ctx, ctlSnapshot) }

// Resume leaves safe mode: merges are certified again, from the State the
// kernel holds, and the events of blocked merges are batched again. The
// embedding program calls it once it has judged what safe mode reported.
// It first records, durably, the damage to the log it resumes from (see
// Safe mode), and stays in safe mode if it cannot.
func (k *Kernel) Resume(ctx context.Context) error { return k.control(ctx, ctlResume) }

func (k *Kernel) control(ctx context.Context, kind ctlKind) error {
	q := ctlReq{kind: kind, done: make(chan error, 1)}
	return call(ctx, k, k.ctl, q, q.done)
}

// Close decides the events released to a batch, waits for their
// certificates, and closes the log, the certificate store and the lock;
// events still waiting for dependencies stay logged, pending for the next
// open. When ctx ends first, Close stops deciding and certifying, waits
// only for the fsync and the certificate in progress, and closes: what was
// logged stays logged, and the next open certifies the batches left
// uncertified. Close returns when every goroutine of the kernel has ended;
// calling it again returns the first call's result.
func (k *Kernel) Close(ctx context.Context) error {
	k.closeOnce.Do(func() {
		// When ctx ends, the certifier and the snapshotter leave the work
		// they have not begun: the batches stay logged, and the next open
		// certifies them.
		unwatch := context.AfterFunc(ctx, func() { k.abandon.Store(true) })
		defer unwatch()
		close(k.closing)
		k.mu.Lock()
		k.closed = true
		k.mu.Unlock()
		stop := ctlReq{kind: ctlStop, done: make(chan error, 1), ctx: ctx}
		k.ctl <- stop // the core reads ctl until it stops
		err := <-stop.done
		k.done.Wait()
		if cerr := k.certs.Close(); err == nil && !errors.Is(cerr, framelog.ErrWriterFailed) {
			err = cerr
		}
		if k.sinkFile != nil {
			if ferr := k.cfg.Metrics.(*JSONLSink).Flush(); err == nil {
				err = ferr
			}
			if cerr := k.sinkFile.Close(); err == nil {
				err = cerr
			}
		}
		unlockDir(k.lock)
		if err == nil {
			err = k.err()
		}
		if k.tracing() {
			// To the model, a stop is a crash: what it loses, if anything,
			// the next open finds.
			k.trace(trace.Step{Action: trace.Crash})
		}
		k.closeErr = err
	})
	return k.closeErr
}

// segmentPath returns the path of log segment seq.
func (k *Kernel) segmentPath(seq uint64) string {
	return filepath.Join(k.dir, "log", fmt.Sprintf("%016x.omega", seq))
}

func (k *Kernel) snapshotPath(seq uint64) string {
	return filepath.Join(k.cfg.SnapshotDir, fmt.Sprintf("%016x.omega", seq))
}
