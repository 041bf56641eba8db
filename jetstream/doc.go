// Package jetstream runs omega on NATS JetStream: many nodes publish
// events to one replicated stream, any number of reconcilers read it and
// decide byte-identical certificate chains, and verifiers check the chain
// as it is published. It is its own module, so that omega's core keeps its
// small set of dependencies.
//
// # Streams and subjects
//
// [SetupStreams] makes two streams:
//
//	OMEGA_EVENTS  omega.events.<node_id>  canonical EVENT encodings (SPEC 3),
//	                                      Nats-Msg-Id: the event digest, hex
//	              omega.flush             flush markers (empty)
//	OMEGA_CERTS   omega.certs.<batch_id>  certificate envelopes (SPEC 6),
//	                                      Nats-Msg-Id: the cert_id; one per
//	                                      subject, a second refused
//
// A node publishes with [Publish], which validates each event and waits
// for the server's acknowledgement. NATS permissions can hold each node to
// its own subject; the subject carries no meaning beyond that, the checker
// judges what the event says.
//
// # Deterministic batches
//
// OMEGA_EVENTS puts the events of every node in one total order, and a
// [Reconciler] decides its batches as a function of that order alone:
//
//   - Events that are not well-formed are skipped (and counted): there is
//     no caller to refuse them to. When an event's length cannot be read,
//     the rest of its message goes with it.
//   - Exact redeliveries of an accepted or undecided event are dropped (an
//     accepted one is recognised by 64 bits of its digest, as the Kernel
//     does); every other event, an equivocation or a reused id included,
//     reaches the checker, so that every rejection is certified.
//   - An event whose dependencies have not arrived waits in a pending
//     buffer and is released when they do. Its age is stream time: the
//     greatest of the timestamps the server stores with each message (and
//     replicates with it) read so far, which every reader sees alike.
//     After MaxPendingAge of stream time, or when MaxPending events wait
//     and another arrives (a stream cannot be made to wait), the oldest is
//     released for the checker to obstruct by 2002.
//   - A batch is cut when BatchSize events are released, and every partial
//     batch at a flush marker. No reconciler's timer cuts a batch: a
//     program that wants partial batches decided within an interval
//     publishes markers at that interval ([PublishFlush]).
//   - After an Obstruction the conflict set is quarantined and the rest is
//     checked again as the next batch, at once.
//   - A certificate's created_at_ns is the stream time when its batch was
//     completed.
//   - There is no safe mode: a reconciler that finds its store and the
//     stream disagree stops with ErrDivergence.
//
// These are the Kernel's rules (SPEC 8) with the stream for arrival order
// and clock; a test checks the reconciler's decisions against the Kernel's
// on the same events. Reconcilers that share the Config fields a decision
// depends on, the signing key among them (Ed25519 signatures are
// deterministic), make byte-identical chains.
//
// # Idempotency
//
// The server's de-duplication window (Nats-Msg-Id, two minutes by default)
// only saves work. Correctness comes from the reconcilers: a copy published
// after the window, after a server restart or a leader change, is stored
// by the stream and dropped by every reconciler as an exact redelivery (an
// event the stream holds twice is decided once).
//
// # Certificates and restart
//
// A reconciler keeps its chain in a certificate store (omega.CertStore) in
// a directory it owns, and syncs it once for all the certificates one read
// of the stream completes, before it publishes them to OMEGA_CERTS, each on
// its batch's subject. The stream takes one message per subject: a
// certificate published again (by another reconciler, or after a restart,
// after the de-duplication window) is refused, and the publisher checks that
// the stored one has its very bytes, else it stops with [ErrDivergence].
//
// [Reconciler.Run] reads OMEGA_EVENTS through an ordered consumer (in
// order, no gaps, recreated by the client after a disconnection or a server
// restart). Every CheckpointEvery batches, and when Run stops, the
// reconciler writes a checkpoint of its whole state beside its store,
// naming the stream sequence it has read and its last certificate. A
// restarted reconciler restores the newest checkpoint its store confirms
// (it holds the certificate the checkpoint names), reads the stream after
// it, derives again the batches its store certified after it, checks each
// gives the same bytes, and goes on from its chain head: no gap, no
// decision twice, whether it or the server was killed. With no checkpoint
// it reads the stream from its first message. Its position is thus its
// certificate chain and checkpoint, kept on its own disk, not a durable
// consumer's acknowledgement floor on the server, which cannot be moved
// atomically with a local fsync. Certificates the store holds and
// OMEGA_CERTS lacks (a crash between the sync and the publish) are
// published when Run starts. OMEGA_EVENTS keeps every message: a
// reconciler that starts with no checkpoint needs them all.
//
// [Verify] reads OMEGA_CERTS and checks each certificate's signature,
// binding and link to the chain before it hands it on.
//
// # Durability
//
// A stream acknowledges a message once it is written, and fsyncs it every
// two minutes by default: acknowledged messages can be lost with the
// machine (an independent analysis in 2025 showed such losses). Run every
// server with sync_interval: always in its jetstream block
// (server.Options.SyncAlways when embedded; package natstest does so) for
// an acknowledged Publish to mean a durable event, and replicate the streams
// (StreamOptions.Replicas) to survive the loss of a server.
package jetstream
