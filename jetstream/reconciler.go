package jetstream

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/jetstream/internal/engine"
)

// Config configures [Open]. A nil *Config is refused (a Signer is needed);
// zero fields mean the defaults given beside them.
//
// Every field that reaches a certificate or a decision (Checker's binding
// and limits, Signer, ReplaySeed, BatchSize, MaxPending, MaxPendingAge)
// must be the same on every reconciler whose chains are to be identical,
// and the same across restarts: a reconciler that re-derives a batch its store holds
// with other bytes stops with ErrDivergence.
type Config struct {
	// Checker decides the batches. Nil means omega.NewChecker(nil).
	Checker *omega.Checker
	// Signer signs the certificates, with an Ed25519 key. Required.
	// Ed25519 signatures are deterministic (RFC 8032; crypto/ed25519's
	// are), so reconcilers sharing a key make byte-identical certificates.
	// A signer that is not (some hardware modules randomize) makes a
	// restarted reconciler stop with ErrDivergence.
	Signer crypto.Signer
	// ReplaySeed is recorded in every certificate.
	ReplaySeed uint64
	// BatchSize is the most events a batch holds. 0 means 32.
	BatchSize int
	// MaxPending is how many events may wait for their dependencies; when
	// one more arrives, the oldest is released for the checker to
	// obstruct (2002). 0 means 65536.
	MaxPending int
	// MaxPendingAge is how long, in stream time (the timestamps the server
	// stores with the messages), an event waits for its dependencies
	// before it is released for the checker to obstruct (2002). Stream
	// time moves when a message arrives. 0 means 5 s.
	MaxPendingAge time.Duration
	// Publish says whether the reconciler publishes its certificates to
	// OMEGA_CERTS. The zero value publishes; PublishNone keeps them local.
	Publish PublishMode
	// Sync is the certificate store's sync policy: SyncBatch (the default)
	// syncs once for every certificate made from one read of the stream,
	// before any of them is published or reported.
	Sync framelog.SyncPolicy
	// CheckpointEvery is how many batches are decided between two
	// checkpoints of the reconciler's state, at least: a checkpoint also
	// waits until half as many events have been taken in since the last one
	// as have been accepted, so that writing them costs time in proportion
	// to the stream read. A restart reads the stream after the newest
	// checkpoint its certificates confirm. 0 means 4096; a negative value
	// takes none (a restart reads the whole stream).
	CheckpointEvery int
	// OnDecision, when not nil, is called with every new certified
	// decision, in chain order, from Run's goroutine, after its certificate
	// is synced (as Sync says) and published (unless PublishNone). It is
	// called at most once for a decision: one certified before a crash and
	// not yet reported is not reported after the restart, which finds it
	// certified already. A program that must see every decision reads the
	// store (Certificates().From) from the last one it saw.
	OnDecision func(omega.Decision)
}

// Stats counts what a reconciler has read and decided, from the stream's
// first message (a checkpoint keeps them). They are a function of the
// stream, like its decisions.
type Stats = engine.Stats

// PublishMode says what a reconciler publishes.
type PublishMode uint8

const (
	PublishCerts PublishMode = iota // certificates, to OMEGA_CERTS (the default)
	PublishNone                     // nothing: the chain stays in the local store
)

// Defaults of Config.
const (
	DefaultBatchSize       = omega.DefaultBatchSize
	DefaultMaxPending      = 1 << 16
	DefaultMaxPendingAge   = 5 * time.Second
	DefaultCheckpointEvery = 4096
)

// ErrDivergence reports a certificate made for a batch id that differs
// from the one certified already, by this reconciler before a restart or
// by another on OMEGA_CERTS: the two did not read the same stream, or not
// with the same configuration.
var ErrDivergence = errors.New("omega/jetstream: divergent certificate")

// Reconciler reads the events stream in its one order, decides its batches
// deterministically, certifies every decision in a hash-chained
// certificate store in a directory it owns, and publishes the certificates.
// See the package documentation.
type Reconciler struct {
	dir     string
	js      jetstream.JetStream
	cfg     Config
	c       *omega.Checker
	binding omega.Binding
	certs   *omega.CertStore
	eng     *engine.Engine

	prev     omega.Hash // the hash of the certificate of batch eng.next-1
	toPub    []*omega.Certificate
	decided  []omega.Decision
	certsStr jetstream.Stream

	// The last checkpoint written or restored: its stream sequence, and
	// the counts of batches and events taken in then.
	origin                          int64 // the creation time of OMEGA_EVENTS
	ckptSeq, ckptBatches, ckptTaken uint64
	ckptLen                         int        // the size of the last one (written by the writer, read when it is done)
	ckptDone                        chan error // while one is written in the background

	mu      sync.Mutex
	stats   Stats
	running bool
	resumed uint64
}

// Open opens a reconciler whose certificate store is in dir/certs, made
// when missing. The store's lock makes dir one reconciler's: a second Open
// on it is refused with framelog.ErrLocked. Call [Reconciler.Run] to read
// the stream, and [Reconciler.Close] when Run has returned.
func Open(dir string, js jetstream.JetStream, cfg *Config) (*Reconciler, error) {
	if cfg == nil || cfg.Signer == nil {
		return nil, errors.New("omega/jetstream: Open: Config.Signer is required")
	}
	if _, ok := cfg.Signer.Public().(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("omega/jetstream: Open: %w", omega.ErrNotEd25519)
	}
	c := *cfg
	switch {
	case c.BatchSize < 0 || c.BatchSize > omega.MaxBatchContents:
		return nil, fmt.Errorf("omega/jetstream: Config.BatchSize %d out of range 0..%d", c.BatchSize, omega.MaxBatchContents)
	case c.MaxPending < 0 || c.MaxPendingAge < 0:
		return nil, errors.New("omega/jetstream: Config: MaxPending and MaxPendingAge must not be negative")
	case c.Publish > PublishNone:
		return nil, fmt.Errorf("omega/jetstream: Config.Publish %d is unknown", c.Publish)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxPendingAge == 0 {
		c.MaxPendingAge = DefaultMaxPendingAge
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.Checker == nil {
		ch, err := omega.NewChecker(nil)
		if err != nil {
			return nil, err
		}
		c.Checker = ch
	}
	b := c.Checker.Binding()
	certs, err := omega.OpenCertStore(filepath.Join(dir, "certs"), b.Header(), &framelog.WriterOptions{Sync: c.Sync})
	if err != nil {
		return nil, fmt.Errorf("omega/jetstream: %w", err)
	}
	return &Reconciler{dir: dir, js: js, cfg: c, c: c.Checker, binding: b, certs: certs, eng: engine.New(c.Checker, engine.Options{BatchSize: c.BatchSize, MaxPending: c.MaxPending, MaxPendingAge: c.MaxPendingAge, ReplaySeed: c.ReplaySeed})}, nil
}

// Certificates returns the reconciler's certificate store, to read from
// (Lookup, All, VerifyAll); never append to it or close it.
func (r *Reconciler) Certificates() *omega.CertStore { return r.certs }

// Head returns the position of the chain after its last durable
// certificate.
func (r *Reconciler) Head() omega.ChainAnchor { return r.certs.Head() }

// Stats returns what Run has read and decided so far.
func (r *Reconciler) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close closes the certificate store. Call it after Run has returned.
func (r *Reconciler) Close() error { return r.certs.Close() }

// certQueue bounds the decisions the engine hands the certifier ahead of
// it.
const certQueue = 256

// errCertifier stops the engine once the certifier has failed; the
// certifier's error is the one Run returns.
var errCertifier = errors.New("omega/jetstream: the certifier failed")

// readMax bounds the messages taken in before the certificates they
// complete are synced and published (group commit).
const readMax = 4096

// Run reads the events stream, after the newest checkpoint its
// certificate store confirms or from its first message, and decides its
// batches until ctx ends (it then writes a checkpoint and returns ctx's
// error) or something fails. Batches the store certified already, before
// a restart, are derived again and must give the same bytes (else
// ErrDivergence); the chain continues after them with no gap and no
// repeat. Certificates the store holds and OMEGA_CERTS lacks are
// published first. Run may be called once.
func (r *Reconciler) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("omega/jetstream: Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	if err := r.republish(ctx); err != nil {
		return err
	}
	events, err := r.js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("omega/jetstream: %s: %w", EventsStream, err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		return fmt.Errorf("omega/jetstream: %s: %w", EventsStream, err)
	}
	r.origin = info.Created.UnixNano()
	cc := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if r.resume() {
		cc = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.eng.Seq() + 1}
	}
	cons, err := r.js.OrderedConsumer(ctx, EventsStream, cc)
	if err != nil {
		return fmt.Errorf("omega/jetstream: reading %s: %w", EventsStream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(readMax))
	if err != nil {
		return fmt.Errorf("omega/jetstream: reading %s: %w", EventsStream, err)
	}
	msgs := make(chan jetstream.Msg, readMax)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	// However Run returns, the reader stops: its iterator is stopped, and
	// a send it is blocked in is abandoned.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer it.Stop()
	wg.Go(func() {
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					readErr <- err
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	})

	// Run waits for a checkpoint it left being written.
	defer r.waitCheckpoint()

	group := make([]jetstream.Msg, 0, readMax)
	for {
		select {
		case m := <-msgs:
			group = append(group[:0], m)
		case err := <-readErr:
			return fmt.Errorf("omega/jetstream: reading %s: %w", EventsStream, err)
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			// Between two steps: everything decided is certified, synced
			// and reported, so the state can be kept for the next start.
			if r.cfg.CheckpointEvery > 0 && r.eng.Seq() > r.ckptSeq {
				if err := r.checkpoint(false); err != nil {
					return err
				}
			}
			return ctx.Err()
		}
	drain:
		for len(group) < readMax {
			select {
			case m := <-msgs:
				group = append(group, m)
			default:
				break drain
			}
		}
		// A step, once begun, is finished: its certificates published
		// and reported, however soon ctx ends, unless publishing takes
		// publishTimeout.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		err := r.step(pctx, group)
		cancel()
		if err != nil {
			return err
		}
	}
}

// publishTimeout bounds how long a step waits to publish its
// certificates.
const publishTimeout = 30 * time.Second

// step applies one group of messages, then syncs, publishes and reports
// the certificates they completed.
func (r *Reconciler) step(ctx context.Context, group []jetstream.Msg) error {
	// The engine decides on this goroutine while another certifies, in
	// order: signing is a third of the work, and the chain makes it
	// sequential.
	work := make(chan engine.Decision, certQueue)
	certErr := make(chan error, 1)
	var failed atomic.Bool
	go func() {
		var err error
		for d := range work {
			if err == nil {
				if err = r.certify(d); err != nil {
					failed.Store(true)
				}
			}
		}
		certErr <- err
	}()
	emit := func(d engine.Decision) error {
		if failed.Load() {
			return errCertifier
		}
		work <- d
		return nil
	}
	var err error
	for _, m := range group {
		md, merr := m.Metadata()
		if merr != nil {
			err = fmt.Errorf("omega/jetstream: reading %s: %w", EventsStream, merr)
			break
		}
		in := engine.Message{Seq: md.Sequence.Stream, TimeNs: md.Timestamp.UnixNano(), Flush: m.Subject() == SubjectFlush, Data: m.Data()}
		if err = r.eng.Apply(in, emit); err != nil {
			break
		}
	}
	close(work)
	if cerr := <-certErr; cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	if len(r.toPub) > 0 {
		if err := r.certs.Sync(); err != nil {
			return fmt.Errorf("omega/jetstream: %w", err)
		}
		if err := r.publish(ctx, r.toPub); err != nil {
			return err
		}
	}
	for _, d := range r.decided {
		if r.cfg.OnDecision != nil {
			r.cfg.OnDecision(d)
		}
	}
	clear(r.toPub)
	clear(r.decided)
	r.toPub, r.decided = r.toPub[:0], r.decided[:0]
	r.mu.Lock()
	r.stats = r.eng.Stats()
	r.mu.Unlock()
	st := r.eng.Stats()
	if every := r.cfg.CheckpointEvery; every > 0 && st.Batches-r.ckptBatches >= uint64(every) &&
		2*(st.Taken-r.ckptTaken) >= uint64(r.eng.Accepted()) && r.eng.Next()-1 <= uint64(r.certs.Len()) {
		return r.checkpoint(true)
	}
	return nil
}

// ResumedAt returns the stream sequence after which Run started reading:
// that of the checkpoint it restored, or 0 when it read the stream from
// its first message.
func (r *Reconciler) ResumedAt() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resumed
}

// resume restores the newest checkpoint that the certificate store
// confirms (it holds the certificate the checkpoint names), and reports
// whether there was one. Checkpoints that do not decode or are not
// confirmed are passed over.
func (r *Reconciler) resume() bool {
	if r.cfg.CheckpointEvery < 0 {
		return false
	}
	batches, err := checkpointBatches(r.dir)
	if err != nil {
		return false
	}
	for _, b := range batches {
		var want omega.Hash
		if b > 0 {
			c, ok := r.certs.LookupBatch(b)
			if !ok {
				continue
			}
			want = c.Hash()
		}
		data, err := os.ReadFile(checkpointPath(r.dir, b))
		if err != nil {
			continue
		}
		c, err := engine.DecodeCheckpoint(data, r.binding, r.c.Limits())
		if err != nil || c.Prev != want || c.Next != b+1 || c.Origin != r.origin {
			continue
		}
		r.eng.Restore(c)
		r.prev = c.Prev
		r.ckptSeq, r.ckptBatches, r.ckptTaken = c.Seq, c.Stats.Batches, c.Stats.Taken
		r.mu.Lock()
		r.resumed, r.stats = c.Seq, c.Stats
		r.mu.Unlock()
		return true
	}
	return false
}

// checkpoint writes the engine's state, whose every decision is certified
// and synced, and removes all but the two newest checkpoints. In the
// background, Run goes on while the bulk of it (the State and the accepted
// events) is encoded, written and synced, and a checkpoint due while the
// last one is still being written is skipped (with checkpoints encoded and
// written inline, they made the p99 from publish to certificate 110-180 ms
// in BenchmarkPipeline at 50k events/s, against 26-44 ms without).
func (r *Reconciler) checkpoint(background bool) error {
	if r.ckptDone != nil {
		select {
		case err := <-r.ckptDone:
			r.ckptDone = nil
			if err != nil {
				return err
			}
		default:
			if background {
				return nil
			}
			err := <-r.ckptDone
			r.ckptDone = nil
			if err != nil {
				return err
			}
		}
	}
	c, err := r.eng.Capture(r.origin, r.prev)
	if err != nil {
		return err
	}
	st := r.eng.Stats()
	r.ckptSeq, r.ckptBatches, r.ckptTaken = r.eng.Seq(), st.Batches, st.Taken
	path, dir, size := checkpointPath(r.dir, r.eng.Next()-1), r.dir, r.ckptLen
	write := func() error {
		b, err := c.AppendTo(make([]byte, 0, size+size/8))
		if err != nil {
			return err
		}
		r.ckptLen = len(b)
		if err := writeFileAtomic(path, b); err != nil {
			return fmt.Errorf("omega/jetstream: writing a checkpoint: %w", err)
		}
		if batches, err := checkpointBatches(dir); err == nil {
			for _, b := range batches[min(2, len(batches)):] {
				os.Remove(checkpointPath(dir, b))
			}
		}
		return nil
	}
	if !background {
		return write()
	}
	r.ckptDone = make(chan error, 1)
	go func() { r.ckptDone <- write() }()
	return nil
}

// waitCheckpoint waits for a checkpoint being written in the background.
func (r *Reconciler) waitCheckpoint() error {
	if r.ckptDone == nil {
		return nil
	}
	err := <-r.ckptDone
	r.ckptDone = nil
	return err
}

// certify is the engine's emit: it certifies a new decision, or checks a
// decision the store certified before a restart.
func (r *Reconciler) certify(d engine.Decision) error {
	id := d.Meta.BatchID
	if old, ok := r.certs.LookupBatch(id); ok {
		c, err := omega.Certify(d.Out, r.binding, d.Meta, r.prev, r.cfg.Signer)
		if err != nil {
			return fmt.Errorf("omega/jetstream: certifying batch %d: %w", id, err)
		}
		if !bytes.Equal(c.Bytes(), old.Bytes()) {
			return fmt.Errorf("%w: batch %d derived from stream sequence %d is not the one the store certified", ErrDivergence, id, d.Seq)
		}
		r.prev = old.Hash()
		return nil
	}
	c, err := r.certs.CertifyAppend(d.Out, r.binding, d.Meta, r.cfg.Signer)
	if err != nil {
		return fmt.Errorf("omega/jetstream: certifying batch %d: %w", id, err)
	}
	r.prev = c.Hash()
	r.toPub = append(r.toPub, c)
	r.decided = append(r.decided, omega.Decision{Certificate: c, Output: d.Out})
	return nil
}

// republish publishes the certificates the store holds after the last one
// OMEGA_CERTS holds: those a crash kept from being published.
func (r *Reconciler) republish(ctx context.Context) error {
	if r.cfg.Publish == PublishNone || r.certs.Len() == 0 {
		return nil
	}
	s, err := r.certStream(ctx)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("omega/jetstream: reading %s: %w", CertsStream, err)
	}
	// Certificates are published in chain order, one subject each, so the
	// stream usually holds batches 1..last, last being its last message's.
	var last uint64
	if info.State.LastSeq > 0 {
		m, err := s.GetMsg(ctx, info.State.LastSeq)
		if err != nil {
			return fmt.Errorf("omega/jetstream: reading %s: %w", CertsStream, err)
		}
		last, _ = batchOfSubject(m.Subject)
	}
	var todo []*omega.Certificate
	if last > 0 && info.State.Msgs == last {
		for i := last; i < uint64(r.certs.Len()); i++ {
			c, _ := r.certs.LookupBatch(i + 1)
			todo = append(todo, c)
		}
		return r.publish(ctx, todo)
	}
	// Else a batch is missing (a failure between two publishes, or other
	// messages on the stream): look for each of the store's.
	for _, c := range r.certs.All() {
		_, err := s.GetLastMsgForSubject(ctx, CertSubject(c.BatchID))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			todo = append(todo, c)
		case err != nil:
			return fmt.Errorf("omega/jetstream: reading %s: %w", CertsStream, err)
		}
	}
	return r.publish(ctx, todo)
}

func (r *Reconciler) certStream(ctx context.Context) (jetstream.Stream, error) {
	if r.certsStr == nil {
		s, err := r.js.Stream(ctx, CertsStream)
		if err != nil {
			return nil, fmt.Errorf("omega/jetstream: %s: %w", CertsStream, err)
		}
		r.certsStr = s
	}
	return r.certsStr, nil
}

// publish publishes certs, in chain order, each on its batch's subject
// with its cert_id as Nats-Msg-Id: several as one atomic batch, which the
// server stores, and syncs, at once; one alone, or a batch the server
// refuses (a subject holds a certificate already), one at a time. A
// certificate the stream refuses because its subject holds one already
// must be byte-identical to it. (One at a time, under sync_interval:
// always, the certificates' fsyncs held the reconciler back: in
// BenchmarkPipeline, p50 and p99 from publish to certificate were 41-57
// and 90-313 ms with 8 publishers of 32 events, 28-31 and 48-49 ms in
// atomic batches.)
func (r *Reconciler) publish(ctx context.Context, certs []*omega.Certificate) error {
	if r.cfg.Publish == PublishNone || len(certs) == 0 {
		return nil
	}
	for len(certs) > 1 {
		n := min(len(certs), maxAtomicBatch)
		msgs := make([]*nats.Msg, n)
		for i, c := range certs[:n] {
			msgs[i] = certMsg(c)
		}
		if err := publishAtomic(ctx, r.js.Conn(), msgs); err != nil {
			break
		}
		certs = certs[n:]
	}
	// One at a time, each acknowledged before the next is sent, so that
	// a failure leaves no certificate on the stream after a missing one.
	for _, c := range certs {
		if _, perr := r.js.PublishMsg(ctx, certMsg(c)); perr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Refused: the subject holds a certificate already (published
			// by another reconciler, or by this one before a restart and
			// outside the de-duplication window), or the publish failed.
			if err := r.samePublished(ctx, c); err != nil {
				return fmt.Errorf("%w (publishing it: %v)", err, perr)
			}
		}
	}
	return nil
}

func certMsg(c *omega.Certificate) *nats.Msg {
	m := &nats.Msg{Subject: CertSubject(c.BatchID), Data: c.Bytes(), Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, c.ID().String())
	return m
}

// samePublished checks that OMEGA_CERTS holds c's very bytes for c's
// batch.
func (r *Reconciler) samePublished(ctx context.Context, c *omega.Certificate) error {
	s, err := r.certStream(ctx)
	if err != nil {
		return err
	}
	m, err := s.GetLastMsgForSubject(ctx, CertSubject(c.BatchID))
	if err != nil {
		return fmt.Errorf("omega/jetstream: publishing certificate %d: %w", c.BatchID, err)
	}
	if !bytes.Equal(m.Data, c.Bytes()) {
		return fmt.Errorf("%w: batch %d on %s is not the one this reconciler certified", ErrDivergence, c.BatchID, CertsStream)
	}
	return nil
}
