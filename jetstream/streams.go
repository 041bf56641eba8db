package jetstream

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/jetstream/internal/engine"
)

// Names of the streams and subjects (see the package documentation).
const (
	EventsStream  = "OMEGA_EVENTS"
	CertsStream   = "OMEGA_CERTS"
	SubjectEvents = "omega.events" // a node publishes on omega.events.<node_id>
	SubjectFlush  = "omega.flush"
	SubjectCerts  = "omega.certs" // the certificate of batch n is on omega.certs.<n>
)

// StreamOptions configures [SetupStreams]. A nil *StreamOptions and zero
// fields mean the defaults.
type StreamOptions struct {
	// Replicas is the number of servers each stream is stored on, in a
	// cluster. 0 means 1; use 3 or 5 in production.
	Replicas int
	// Duplicates is the window in which the server drops a message whose
	// Nats-Msg-Id it has stored already. 0 means the server's default (2
	// minutes). It only saves work: correctness does not depend on it.
	Duplicates time.Duration
}

// SetupStreams creates the events stream and the certificates stream, or
// updates them to the configuration omega needs:
//
//   - OMEGA_EVENTS takes omega.events.> and omega.flush in one total order,
//     on file storage, keeping every message (no limits, and no message may
//     be deleted or the stream purged: two reconcilers, one of which read a
//     message the other did not, would decide different batches).
//   - OMEGA_CERTS takes omega.certs.> on file storage, one message per
//     subject, and refuses a second one (DiscardNewPerSubject): the
//     certificate of batch n is written once, whoever publishes it and
//     however late, and every reconciler that publishes it again learns
//     whether its bytes are the same. No message may be deleted from it
//     either. Only reconcilers should be allowed to publish on
//     omega.certs.> (NATS permissions): [Verify] gives up on a message that
//     is no certificate of the chain.
//
// Both use the stream's default persist mode (a message is written before
// it is acknowledged). Whether it is also fsynced is the server's setting:
// JetStream syncs every two minutes by default, so a machine that loses
// power loses acknowledged messages. Run the servers with sync_interval:
// always in their jetstream block (server.Options.SyncAlways when
// embedded, as package natstest does) for acknowledged events to survive
// that.
func SetupStreams(ctx context.Context, js jetstream.JetStream, opts *StreamOptions) error {
	var o StreamOptions
	if opts != nil {
		o = *opts
	}
	if o.Replicas < 0 || o.Duplicates < 0 {
		return errors.New("omega/jetstream: StreamOptions: Replicas and Duplicates must not be negative")
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "omega: canonical EVENT encodings from every node, and flush markers, in one order",
		Subjects:    []string{SubjectEvents + ".>", SubjectFlush},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    o.Replicas,
		Duplicates:  o.Duplicates,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		PersistMode: jetstream.DefaultPersistMode,
	})
	if err != nil {
		return fmt.Errorf("omega/jetstream: setting up stream %s: %w", EventsStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 CertsStream,
		Description:          "omega: certificate envelopes, one per batch id",
		Subjects:             []string{SubjectCerts + ".>"},
		Storage:              jetstream.FileStorage,
		Retention:            jetstream.LimitsPolicy,
		Replicas:             o.Replicas,
		Duplicates:           o.Duplicates,
		MaxMsgs:              -1,
		MaxBytes:             -1,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		AllowAtomicPublish:   true,
		DenyDelete:           true,
		DenyPurge:            true,
		PersistMode:          jetstream.DefaultPersistMode,
	})
	if err != nil {
		return fmt.Errorf("omega/jetstream: setting up stream %s: %w", CertsStream, err)
	}
	return nil
}

// EventSubject returns the subject node publishes its events on.
func EventSubject(node uint32) string {
	return SubjectEvents + "." + strconv.FormatUint(uint64(node), 10)
}

// CertSubject returns the subject of the certificate of batch id.
func CertSubject(batchID uint64) string {
	return SubjectCerts + "." + strconv.FormatUint(batchID, 10)
}

func batchOfSubject(subject string) (uint64, error) {
	s, ok := strings.CutPrefix(subject, SubjectCerts+".")
	if !ok {
		return 0, fmt.Errorf("omega/jetstream: subject %q is no certificate subject", subject)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("omega/jetstream: subject %q names no batch id", subject)
	}
	return n, nil
}

// Publish publishes events on their nodes' subjects and returns once the
// server has acknowledged every message: stored, and under sync_interval:
// always, durable. Consecutive events of one node travel in one message,
// their canonical EVENT encodings one after another (up to 1024 events and
// 256 KiB; an event is never split), with the hash of the message's data
// (omega.PayloadHash, hex) as Nats-Msg-Id; the stream's order is the
// order of events. An event that does not pass Event.Validate with lim is
// refused with an *omega.EventError naming its index, before anything is
// published. Publishing an event again, at any time, changes nothing: the
// server drops a repeated message inside its de-duplication window, and
// the reconcilers drop the event as an exact redelivery outside it.
func Publish(ctx context.Context, js jetstream.JetStream, lim omega.Limits, events ...omega.Event) error {
	for i := range events {
		if err := events[i].Validate(lim); err != nil {
			var fe *omega.EventError
			if errors.As(err, &fe) {
				fe.Index = i
			}
			return fmt.Errorf("omega/jetstream: Publish: %w", err)
		}
	}
	var msgs []*nats.Msg
	var data []byte
	for i := 0; i < len(events); {
		node := events[i].NodeID
		data = data[:0]
		n := 0
		for ; i < len(events) && events[i].NodeID == node && n < maxEventsPerMessage; i, n = i+1, n+1 {
			if n > 0 && len(data)+events[i].EncodedLen() > maxMessageBytes {
				break
			}
			var err error
			if data, err = events[i].AppendBinary(data); err != nil {
				return fmt.Errorf("omega/jetstream: Publish: event %d: %w", i, err)
			}
		}
		h := omega.PayloadHash(data)
		m := &nats.Msg{Subject: EventSubject(node), Data: slices.Clone(data), Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, hex.EncodeToString(h[:]))
		msgs = append(msgs, m)
	}
	return publishAll(ctx, js, msgs)
}

// DecodeMessage decodes the events of one message of an events subject:
// canonical EVENT encodings one after another, as Publish makes them. An
// error names the first event that does not decode, with the events
// before it. (The reconcilers skip such an event, and the rest of its
// message only when its length cannot be read.)
func DecodeMessage(data []byte, lim omega.Limits) ([]omega.Event, error) {
	return engine.DecodeMessage(data, lim)
}

// Bounds of the messages Publish makes: the server refuses messages over
// its max_payload, 1 MiB by default. Under sync_interval: always the
// server fsyncs each message on its own, so fewer, larger messages go
// faster: with at most 64 events a message, Publish calls of 256 events
// made 40-45k events/s in BenchmarkPipeline, with 1024 80-88k.
const (
	maxEventsPerMessage = 1024
	maxMessageBytes     = 256 << 10
)

// PublishFlush publishes a flush marker: every reconciler decides the
// events released to a batch before it, as a partial batch if need be. A
// program that wants partial batches decided within an interval publishes
// one at that interval (batch boundaries come from the stream, never from a
// reconciler's clock).
func PublishFlush(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.Publish(ctx, SubjectFlush, nil)
	if err != nil {
		return fmt.Errorf("omega/jetstream: PublishFlush: %w", err)
	}
	return nil
}

// publishAll publishes msgs asynchronously, in order, and waits for every
// acknowledgement. (An atomic batch would cost one fsync for all of them
// under sync_interval: always, but the server stages a batch's messages
// before it stores them: in BenchmarkPipeline, Publish calls of 256 events
// in four messages made 31k events/s that way against 40-45k.)
func publishAll(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("omega/jetstream: publishing on %s: %w", m.Subject, err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("omega/jetstream: publishing on %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// The headers of JetStream's atomic batch publish (nats-server 2.12 and
// later), and the most messages a server takes in one batch by default.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
	maxAtomicBatch    = 1000
)

// publishAtomic publishes msgs, in order, as one atomic batch: the stream
// stores all of them, or none, and syncs them at once. Their headers are
// set for it.
func publishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	id := nuid.Next()
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set(batchCommitHeader, "1")
		resp, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return err
		}
		var ack struct {
			Error *struct {
				Code        int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
			Count int `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return err
		}
		if ack.Error != nil {
			return fmt.Errorf("atomic batch refused: %s (%d)", ack.Error.Description, ack.Error.Code)
		}
		if ack.Count != len(msgs) {
			return fmt.Errorf("atomic batch of %d messages stored %d", len(msgs), ack.Count)
		}
	}
	return nil
}
