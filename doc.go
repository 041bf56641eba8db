// Package omega reconciles event batches from many nodes deterministically
// into a Merge or an Obstruction with evidence, bound to the exact checker,
// schema and predicate catalog that decided it, and keeps events and
// decisions in a crash-safe binary frame log.
//
// The byte formats, digests and checker semantics follow omega's design
// contract; "SPEC n" below names the section of it a rule comes from, and
// the layouts the library writes are given in full under Byte layouts.
// Results are pure
// functions of their inputs: no clock, no randomness, no map iteration and
// no goroutine scheduling reaches a result byte.
//
// # Events
//
// An [Event] has a u128 [EventID], a node, a stream, a lamport clock, a
// payload and the ids it depends on. [Event.AppendBinary] writes its
// canonical encoding (SPEC 3), [DecodeEvent] reads one under [Limits], and
// [Event.Digest] is D("event", encoding). [DecodeEventsJSON] reads the JSON
// forms, strictly: every failure is an [*EventError] naming the field and
// the event's position. It reads one batch, and stops at the first event
// past [MaxBatchContents] distinct contents; [BatchCounter] does that
// counting for a reader of another source. Canonical order ([Event.Compare]) is the ordering
// key (lamport, node, stream, id), then the event digest.
//
// # Reconciling
//
// A [Checker] decides batches under one [Binding]; [NewChecker] with nil
// options uses the six built-in predicates of catalog version 1 (package
// predicates). [Checker.Reconcile] takes a prior [State] (nil is genesis)
// and a batch and returns an [Output]: the [Result] and the binding that
// made it. Identical copies of an event are glued first; the distinct
// contents are walked in canonical order evaluating 2001, 3001, 1002, 1001,
// 1003, 2002 and then the domain predicates, and the first failure is the
// obstruction. A Merge carries the next State; the prior State never
// changes. [Checker.Diagnose] lists every violation instead of the first.
//
//	c, _ := omega.NewChecker(nil)
//	out, err := c.Reconcile(nil, events) // a nil State is genesis
//	if err != nil { ... }            // a malformed event or an oversized batch
//	if out.Result.Kind == omega.KindMerge {
//		next := out.Result.Merge.Next
//		...
//	}
//
// Domain predicates ([DomainPredicate], ids 4000-4999) are values passed in
// [CheckerOptions]; their catalog entries change the binding's catalog
// hash. A domain predicate sees the event and the prior State only, and is
// called without any lock of omega held.
//
// [Checker.VerifyObstruction] re-checks an obstruction from its evidence
// and a trusted prior State, and [Result.ProveInclusion] proves that one
// event was a member of a batch, against its trace root
// ([InclusionProof.Verify]).
//
// # Predicates
//
// The built-in catalog (version 1, package predicates) holds six
// predicates, each violated at an event e of a batch decided on a prior
// State:
//
//	1001 lamport_monotonic    e's lamport is not above the previous content of its stream
//	                          (in the batch, else the prior head)
//	1002 event_unique         e's id is known to the prior State
//	1003 causal_order         a known dependency of e has a lamport not below e's
//	2001 payload_hash_match   payload_hash is not BLAKE3-256 of the payload
//	2002 dependency_known     a dependency of e is neither in the batch nor known
//	3001 overlap_agreement    another content in the batch has e's id
//
// They are evaluated in the order 2001, 3001, 1002, 1001, 1003, 2002 at each
// distinct content in canonical order, then the domain predicates by id;
// the first failure is the obstruction, its conflict set the ids it names
// (e, and the other event or the missing dependency where there is one),
// its evidence the events that let anyone re-check it
// ([Checker.VerifyObstruction]). The catalog's hash, over every entry's id,
// arity, name and semantics reference, is bound into every certificate.
//
// # Certificates
//
// [Certify] turns a checker [Output] into a signed, content-addressed
// [Certificate] (SPEC 6): it refuses an output made under another binding
// than the one expected, and signs with any crypto.Signer whose public key
// is Ed25519, so a key in an HSM plugs in; an ed25519.PrivateKey signs
// through filippo.io/edwards25519 (the standard library's curve code as a
// module) to the same bytes as crypto/ed25519, a sixth faster, except in
// FIPS 140-3 mode. [DecodeOutputJSON] reads an
// output's JSON view back strictly, recomputing what it can, and the output
// it gives certifies to the same bytes as the one the checker returned.
// [Verify] checks one envelope against a [KeyRing] and the expected
// binding, each failure with its own sentinel in SPEC's order; [VerifyChain]
// checks a chain from genesis or a trusted [ChainAnchor], signatures on
// [ChainOptions].Workers cores, links and states in order, until its
// context ends. [Checker.VerifyCertifiedObstruction] re-checks a certified
// obstruction from its evidence events, and
// [InclusionProof.VerifyCertificate] checks that one event was part of a
// certified batch.
//
// # States
//
// A [State] holds the known ids with their lamports, the stream heads, the
// merged state hash and the frontier digest. A Merge's next State is a
// batch-sized overlay on its prior: deriving any number of successors of
// one State costs O(batch) each, however long the history is, and a
// successor that is dropped changes nothing. [State.Commit] adds a
// successor to the append-only history its lineage shares, also in
// O(batch); [Checker.Reconcile] commits the State it decides on, so a
// program that carries each next State to the next batch commits as it
// goes. Committing a successor of a State that is no longer the newest of
// its lineage (two histories diverging) copies the history that State sees,
// once. States are immutable and safe for concurrent use, and reading one
// takes no lock. The history costs about 32 bytes per known id. A lineage
// holds at most 2^32-2 known ids; a batch that would pass that is refused
// with [ErrBatchTooLarge].
//
// # Frame log
//
// Journals, certificate stores and snapshots keep their bytes in the .omega
// frame log of SPEC 5: a 64-byte header and CRC-checked frames, read and
// written by package [github.com/omega-sheaf/omega/framelog], which also
// serves tools that look at frames themselves. A [Binding] gives the header
// of its logs ([Binding.Header]) and checks a log's header
// ([Binding.CheckHeader]). Opening a log for append recovers it first: a
// torn tail (the normal trace of a crash, [framelog.ErrTornTail]) is cut,
// corruption ([framelog.ErrCorrupt]: damage followed by a valid frame, or
// a frame whose CRC holds over an invalid field) is refused. Writers
// make appends durable under a [framelog.SyncPolicy]; after a failed write
// or fsync they stay failed.
//
// A header cut short, or all zero with nothing but zeros after it, is a
// creation a crash interrupted: the log reads as empty and opening it for
// append writes the header anew. A zeroed header followed by any non-zero
// byte is damage: it is refused and the file is never rewritten. Every
// file omega appends to (an event log, cert.log, incidents.omega) is held
// under an exclusive appender's lock from open to Close; a second appender,
// in this process or another, is refused with [ErrLocked], never
// interleaved.
//
// # Replay
//
// A log that holds every batch's events and decision replays: a [Journal]
// appends EVENT frames ([Journal.LogEvents]) and, for each decision, a
// BATCH frame ([BatchRecord], SPEC 5) naming the batch's members by id and
// event digest, whether it decides the batch itself ([Journal.Decide]) or
// records a decision made elsewhere ([Journal.Record]), and refuses one
// that does not continue the log ([ErrJournal]) without writing anything.
// A decision is durable when Decide or Record returns, with the events
// logged before it, unless the writer's policy is SyncNever or it writes
// to something that cannot sync; [Journal.Sync] makes events logged since
// durable. It
// keeps the events logged but not yet decided, and gives a [Snapshot] at
// any point. [OpenJournal] resumes a log after a restart or a crash: it
// cuts a torn tail, replays the log and continues from the State, the
// batch id and the pending events its last complete frame left.
//
// [Replay] re-executes each BATCH of such a log, from genesis
// or a [Snapshot] (SPEC 7: the State, the events logged but not yet
// decided, and the offset in the log it covers), with a [Checker], and
// compares every recomputed outcome with the recorded one, then the final
// merged state hash with the one expected:
//
//	log, _ := os.ReadFile("events.omega")
//	rep, err := omega.Replay(nil, log, certifiedHash, seed, checker, nil)
//	if err != nil { ... }            // a log replay cannot read
//	if rep.Outcome != omega.Deterministic {
//		inc := rep.Incident          // the first difference
//		...
//	}
//
// The first difference is an [Incident]: which check failed
// ([IncidentField]), the batch and event where it shows, what the log
// recorded and what re-execution gave, under an id that is a digest of
// all of it. [Incident.WriteFile] keeps incidents as JSON and INCIDENT frames.
// Given the certificate chain ([ReplayOptions].Certificates), replay also
// pairs every batch with its certificate, and checks a snapshot against the
// chain before any batch: nothing signs a manifest, so its merged state
// hash and frontier digest must be those of the last Merge certificate at
// or before its last batch. [ReplayReport.Snapshot] captures
// where a replay stopped, for [Snapshot.AppendBinary] and
// [Snapshot.WriteFile]; [LoadSnapshotFile] checks every digest of a
// snapshot file before it is used.
//
// [Replay] takes the log as one byte slice. [Replayer] is the streaming form
// beneath it: it reads the log through [framelog.Reader]s, from one or several
// segment files in order, and yields batch after batch ([Replayer.Next])
// with its decoded [BatchRecord] and the recomputed [Output], enough to
// certify the batch again byte for byte with [Certify]. It never holds the
// log: per logged event it keeps a small record, and the bytes only of the
// events not yet decided, reading a decided one again from its segment in
// the rare case a later batch names it (see [Replayer]). Given the chain
// and [ReplayOptions].UncertifiedSuffix, the BATCH frames after its last
// certificate, the crash window between syncing a BATCH frame and
// appending its certificate, are replayed and listed as uncertified rather
// than reported as a field-11 incident, for the caller to certify them:
//
//	rp := omega.NewReplayer(snap, []io.Reader{seg1, seg2}, seed, checker, &omega.ReplayOptions{
//		Certificates: chain, UncertifiedSuffix: true})
//	for {
//		b, err := rp.Next(ctx)
//		if err == io.EOF {
//			break
//		}
//		if err != nil { ... }        // a log replay cannot read, or ctx's error
//		if b.Uncertified {
//			cert, err := omega.Certify(b.Output, b.Output.Binding, b.Meta(), prev, signer)
//			...
//		}
//	}
//	rep, err := rp.Finish(ctx, certifiedHash)
//
// Replay covers every byte of each BATCH frame but created_at_ns, and
// every byte of each EVENT frame a member resolves to, with two limits
// (SPEC 7): an Obstruction leaves the merged state unchanged, so a BATCH
// frame recording one that is missing (deleted, cut off in a torn tail,
// re-typed into an application frame) leaves the final hash as it was, and
// the last batch's id may grow without breaking the order. So the report
// carries, beside its result, the last batch id ([ReplayReport].LastBatchID),
// the number of batches of each kind (Merges, Obstructions) and the torn
// tail (TornTail bytes at LogEnd), for the caller to compare with what it
// knows of the history. The certificate chain covers all of it: every
// certificate needs its BATCH frame (else a field-11 incident), and
// created_at_ns must agree with it.
//
// # Runtime
//
// A [Kernel] is what a service runs for months (SPEC 8): it owns a data
// directory (event log segments, the certificate store, snapshots, a lock
// file), takes events from any number of goroutines, and certifies every
// decision in one hash chain. [Kernel.Submit] returns once its events are
// durable; decisions arrive, certified and in chain order, at
// [KernelConfig].OnDecision:
//
//	k, err := omega.OpenKernel(ctx, "/var/lib/omega", &omega.KernelConfig{
//		Signer:     key, // nil: a key made on first open, kept in kernel.key
//		OnDecision: func(d omega.Decision) { ... },
//	})
//	if err != nil { ... }            // ErrLocked: another process runs this directory
//	defer k.Close(ctx)
//	if err := k.Submit(ctx, events...); err != nil { ... }
//
// The sequencer drops exact redeliveries, holds events until their
// dependencies arrive (or MaxPendingAge passes, for the checker to
// obstruct them by 2002), and makes Submit wait when its buffer is full; the
// coordinator decides batches of BatchSize events, or fewer after
// FlushInterval, and after an Obstruction re-checks the rest of the batch
// at once, its conflict set quarantined. One fsync covers every Submit and
// batch ready while the previous one ran. Reopening after a crash recovers
// the segments, loads the newest snapshot, replays the rest against the
// chain and certifies again, byte for byte, what was logged but not
// certified. Corruption in the log, or a replay incident, puts the kernel
// in safe mode ([Kernel.Status]): obstructions are certified, merges wait
// for [Kernel.Resume]. Metrics go to a [MetricsSink] ([JSONLSink] writes
// the original system's lines); [Kernel.Stats] keeps counts and latencies;
// [KernelConfigFromEnv] maps the original system's OMEGA_* variables.
//
// # Testing with omegatest
//
// Package omegatest gives a downstream test suite rapid generators (events,
// valid batches and histories, each kind of violation injected, frame
// logs, certificate chains, kernel runs from correct and faulty nodes) and
// checks: CheckResult re-derives a result from SPEC's formulas,
// CheckTrace reads a kernel's steps ([KernelConfig].Trace) through the
// formal model of formal/OMEGA.tla and names the first step it does not
// explain, and the history checks (NoDoubleAccept, DepsAcceptedNoLater,
// LamportMonotonic, ClockCondition, ChainLinked, EventuallyDecided) explain
// the first breach in what a test saw of a kernel by rule, decision and
// events.
//
// # Byte layouts
//
// Integers are little-endian; a u128 is 16 bytes, low half first; a hash
// is 32 bytes. payload_hash is plain BLAKE3-256 of the payload; every other
// digest D(purpose, bytes) is BLAKE3-256 in derive-key mode with the
// context "omega v1 " + purpose.
//
// An event's canonical encoding, the EVENT frame's payload and the input of
// its digest D("event", encoding):
//
//	offset  size            field
//	 0      16              event_id
//	16       4              node_id
//	20       2              stream_id
//	22       8              lamport
//	30       8              mono_ts_ns
//	38       2              event_kind
//	40       2              flags
//	42       2              deps_count
//	44       4              payload_len
//	48      32              payload_hash
//	80      16 x deps_count deps, in the order given
//	...     payload_len     payload
//
// An .omega file: a 64-byte header, magic "OMEGA" 0 1 0 | schema_version
// u16 | endian flag u8 = 1 | hash algorithm u8 = 1 (BLAKE3) | 14 zero
// bytes | schema_hash [32] | 6 zero bytes; then frames, each frame_len u32
// (12 + payload) | frame_crc32 u32 (CRC-32/IEEE over type, reserved and
// payload) | frame_type u16 | reserved u16 = 0 | payload. Frame types: 1
// EVENT, 2 BATCH, 3 CERT, 4 SNAPSHOT, 5 STATE, 6 INCIDENT, 0x8000-0xFFFF
// the embedding program's.
//
// A BATCH frame's payload: batch_id u64 | replay_seed u64 | created_at_ns
// u64 | kind u8 (1 merge, 2 obstruction) | 7 zero bytes | witness_hash |
// merged_state_hash (the prior State's for an obstruction) | trace_root |
// binding_digest | member_count u32 | members, each event_id u128 || event
// digest, one per distinct content in canonical order.
//
// A certificate (a CERT frame's payload) is its to-be-signed encoding
// followed by the 64-byte Ed25519 signature over "omega v1 certificate\x00"
// || TBS: magic "OMEGACRT" | format_version u16 = 1 | cert_type u8 (1
// merge, 2 obstruction) | reserved u8 | cert_id u128 (the first 16 bytes of
// D("cert id", TBS with cert_id zeroed)) | batch_id u64 | created_at_ns u64
// | checker_version 3 x u16 | schema_version u16 | schema_hash |
// catalog_hash | issuer_key_id [16] | trace_root_hash | prev_cert_hash (the
// cert_hash, D("cert", envelope), of the one before; zero for the first) |
// body_hash (D("cert body", body)) | body_len u32 | body. A merge's body:
// batch_digest | merged_state_hash | prior_state_hash | accepted_ids_digest
// | frontier_digest | heads_digest | witness_hash | accepted_count u32 |
// replay_seed u64. An obstruction's: violated_predicate_id u32 |
// conflict_set_len u16 | conflict_set (u128 each, ascending) | witness_hash
// | overlap_context_digest | prior_state_hash | evidence_count u16 |
// evidence event digests | replay_seed u64.
//
// # Errors
//
// Every failure a caller may handle differently has its own sentinel
// ([framelog.ErrTornTail], [ErrBadSignature], ...), and typed errors carry the
// offset or index and unwrap to it. Each sentinel is in at most one of three
// categories, so a program chooses its response with one errors.Is:
//
//	switch {
//	case errors.Is(err, omega.ErrDivergence):   // a replay incident
//	case errors.Is(err, omega.ErrVerification): // a certificate or chain that does not verify
//	case errors.Is(err, omega.ErrFormat):       // input that does not decode, or another binding
//	}
//
// Errors of the program's own making and I/O are in none. The documentation
// of the three categories lists which sentinel is in which.
//
// # Decisions where SPEC is silent
//
//   - Identical copies are recognised by equal ordering keys and equal event
//     digests; equal digests stand for equal canonical encodings.
//   - For 1001 against a prior head, the evidence is e alone, even when the
//     batch also holds a content with the head's id: "the other event" of
//     SPEC 4's evidence rule is the previous event of e's stream in the batch.
//   - Reconcile returns an error, not an obstruction, for an event over
//     [Limits] and for a batch over [MaxBatchContents] distinct contents.
//   - Replay reads a torn tail of the log as its end (the normal trace of a
//     crash) and reports it in [ReplayReport].TornTail; corruption is an
//     error. A certificate whose batch has no BATCH frame is a field-11
//     incident at that certificate's batch id.
//   - A BATCH frame without its certificate is field 11 (SPEC 7 step 4)
//     unless the caller asks for the uncertified suffix
//     ([ReplayOptions].UncertifiedSuffix), and even then when a later
//     certificate follows it.
//   - A log in segments is the first segment followed by each later
//     segment's frames: a later segment's header must equal the first
//     one's, only the last may end in a torn tail or have a torn header, and
//     offsets (a snapshot's base offset, LogEnd) and the log length an
//     incident's metadata digest covers are those of the one log the
//     segments make, the first segment followed by each later one's bytes
//     after its header.
//   - A content counts as decided, and so is not pending, when any logged
//     copy of it was accepted by a Merge or quarantined by an Obstruction.
//   - A 2002 obstruction verifies from its evidence as far as evidence can go:
//     e depends on the missing id and the prior State does not know it.
//
// # Performance
//
// Reconcile sorts compact ordering keys rather than events (radix on lamport
// for large shuffled batches; input already in canonical order costs one
// pass and is used in place), all on the checker's workers, validates and
// hashes events on them too, fills a large batch's id table on two, and computes
// the trace root and a Merge's batch and accepted-ids digests beside the
// predicate walk (an obstruction abandons the latter two). One-chunk inputs (payload
// hashes, event digests, Merkle nodes) are hashed eight at a time with an
// AVX2 BLAKE3 compression where the CPU has AVX2, else one at a time with
// an unrolled one; both give the bytes of github.com/zeebo/blake3, which
// hashes longer inputs. A Checker keeps the scratch memory of its largest
// batch until [Checker.ReleaseScratch] (see [Checker]). Results never depend on the number of workers or
// on the CPU.
package omega
