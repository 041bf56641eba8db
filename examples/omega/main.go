// Command omega is the command-line face of the omega library: it generates
// event batches, reconciles them, signs the results into certificates and
// verifies them, inspects .omega frame logs, explains any file it writes and
// measures the checker, and checks a checkout or a kernel data directory.
// It uses only the public API of package omega (and, to probe a data
// directory's lock, the appender's lock the library takes).
//
// Usage:
//
//	omega <command> [flags]
//
// Flags are written --name value or --name=value (a single dash works too).
// Every command takes --timeout D (a Go duration such as 30s or 2m): when D
// runs out before the command is done, the command is stopped where it is,
// as a crash would stop it, and the process exits with code 40. What it was
// writing is left as after a crash: frame logs and certificate logs end in
// a torn tail, which the next open recovers; a snapshot is there whole or
// not at all (it is renamed into place); an --output or key file may be cut
// short, to be written again.
//
// # Output
//
// Every command writes exactly one compact JSON object and a newline to
// standard output, and nothing to standard error. On success the object
// starts with "status":"ok" and "command"; on failure it is
//
//	{"status":"error","exit_code":N,"command":"...","error":"..."}
//
// with the process exiting with N. The exit code is chosen from the error's
// type (errors.Is and errors.As), never from its text: from the library's
// error categories (omega.ErrFormat 10, omega.ErrVerification 20,
// omega.ErrDivergence 30), beside the command's own errors:
//
//	 0  success; a batch that obstructs is a success too (the obstruction is
//	    the result), and so is a damaged frame log body that ingest reports
//	10  schema, format or binding: an event that does not decode (the error
//	    names the event's position and field), a bad .omega header, a header
//	    bound to another schema, a corrupt frame log given to reconcile, a
//	    frame other than EVENT in reconcile's input, a batch over
//	    omega.MaxBatchContents, batch id 0, a checker output that does not
//	    decode (omega.ErrMalformedResult), a result whose batch id, replay
//	    seed or schema version is not the flags' or whose binding is not
//	    this checker's, a key file that is not an Ed25519 PEM key, a file
//	    explain does not recognize
//	20  certificate or signature: certify given a result that does not
//	    continue its --cert-log's chain, or a --cert-log, given to certify
//	    or replay, that verify would fail as a log (a bad or foreign header,
//	    corruption, a frame that is no certificate; for certify also a
//	    broken chain), named by the same check; a certificate explain cannot
//	    decode; and every
//	    check verify fails, a malformed envelope, a binding mismatch and a
//	    damaged cert.log included
//	40  the --timeout given to the command ran out
//	50  anything else: usage (an unknown command, an unknown or malformed
//	    flag, a missing required flag, a value out of the command's range),
//	    files that cannot be read or written, a key file that exists already
//
// Exit code 30 is a replay incident (SPEC section 7): the first difference
// replay found, under "incident" after the four fields, with the file it
// was written to under --incident-dir:
//
//	{"status":"error","exit_code":30,"command":"replay","error":"...",
//	 "incident":{"incident_id":"<hex>","divergence_batch_id":B,
//	 "divergence_event_id":E,"field":F,"field_name":"member",
//	 "expected":"<hex>","observed":"<hex>","metadata_digest":"<hex>"},
//	 "incident_file":"D/<incident_id>.json"}
//
// A log or snapshot replay cannot read (a bad header, corruption, a
// malformed BATCH, EVENT or snapshot) is exit 10, not an incident.
//
// An exit 20 error names the check that failed after the four fields, and
// where when known:
//
//	{"status":"error","exit_code":20,"command":"verify","error":"...",
//	 "check":C,"position":P,"offset":O}
//
// check is one of log_header, log_schema and log_corrupt (cert.log as a
// frame log: its header, its binding to this schema, corruption or a frame
// other than CERT), then malformed, body_hash, cert_id, unknown_key,
// signature, binding, digests, chain_link, batch_order and chain_state (the
// checks of SPEC section 6, in the order they run). position is the
// failing certificate's index in the log, from 0; offset the byte offset in
// cert.log of a frame that holds no certificate. Each appears only when it
// applies.
//
// # Commands
//
// init-log --output F
//
// Creates F, an empty event log: its 64-byte header alone, bound to this
// checker's schema, header and directory synced (what the original
// system's make_sample_log.sh wrote for its manual sequence to ingest). An
// existing F is refused (exit 50). It prints
//
//	{"status":"ok","command":"init-log","output":F,"bytes":64,
//	 "schema_version":1,"schema_hash":"<hex>"}
//
// ingest --input F.omega
//
// Recovers the frame log F and reports what recovery finds:
//
//	{"status":"ok","command":"ingest","input":F,
//	 "header":{"schema_version":1,"schema_hash":"<hex>","schema_bound":true},
//	 "torn_header":false,"frames":N,"frames_by_type":{"EVENT":N,...},
//	 "valid_bytes_after_header":B,"malformed_tail_bytes":T,
//	 "tail":"clean"|"torn"|"corrupt","tail_offset":O,"reason":"..."}
//
// frames_by_type lists only the types present. reason, what is wrong with the
// bad frame (or the torn header), appears only when tail is not clean.
// A damaged body exits 0. A bad header exits 10, as does a header whose schema
// hash is not omega.DefaultBinding().SchemaHash or whose schema version is not
// omega.SchemaVersion, except an all-zero schema hash (written by the original
// system's tools), which is reported with "schema_bound":false. A header cut
// short by a crash (SPEC section 5), or 64 header bytes all zero whatever
// follows them, is reported with "torn_header":true, no frames, "tail":"torn"
// at offset 0 and the whole file as malformed_tail_bytes, and exits 0.
//
// generate-events --output F --count N [--nodes K] [--streams S] [--seed X] [--start-id I] [--snapshot S1]
//
// Writes N events that merge as one batch from genesis: K nodes (ids 1..K,
// default 4), S streams per node (ids 0..S-1, default 2), event ids I..I+N-1
// (I default 1; with --snapshot S1, after the highest id S1's State knows,
// and lamports above its stream heads, so that the batch merges from S1:
// a second batch after reconcile --snapshot-out),
// Lamport clocks per node, up to three dependencies on recent events of lower
// lamport, correct payload hashes. The events are a function of the flags
// alone (math/rand/v2's PCG seeded with X, default 0): the same flags give the
// same bytes. An existing F is replaced. When F ends in .omega the file is a
// frame log of EVENT frames whose header carries omega.SchemaVersion and
// omega.DefaultBinding().SchemaHash, created with framelog.Open (header and directory
// synced) and synced after the last frame; otherwise it is a JSON array with
// one event per line in the original system's form (SPEC sections 3 and 9):
// all twelve fields in the table's order, event_id and deps as decimal
// strings, payload_hash and payload as arrays of integers 0..255, the other
// fields as JSON integers. N ranges over 1..16777216; a batch holds at most
// omega.MaxBatchContents events, so a larger file must be split before it is
// reconciled. It prints
//
//	{"status":"ok","command":"generate-events","output":F,"count":N,
//	 "nodes":K,"streams":S,"seed":X,"start_id":I,"lamport_base":L,
//	 "format":"json"|"omega"}
//
// lamport_base is the highest head lamport of S1 (0 without it).
//
// reconcile --input F --batch-id B [--replay-seed S] [--output O] [--snapshot S1] [--snapshot-out S2] [--log L] [--created-at-ns T]
//
// Reconciles the events of F as one batch, from genesis or from the State of
// the snapshot S1, with the built-in catalog alone (no sequencer: an event
// already accepted is a 1002) and prints
//
//	{"status":"ok","command":"reconcile","batch_id":B,"replay_seed":S,
//	 "checker_output":{"result":{...},"binding":{...}}}
//
// with the result's and binding's JSON views of SPEC section 4. F is a frame
// log when its first byte is that of the .omega magic ('O') or zero (a header
// cut short or zeroed), neither of which starts JSON; otherwise it is a JSON
// array or JSON lines, in any JSON form SPEC section 3 accepts (the original
// system's byte arrays and decimal-string ids included). A frame log must hold
// only EVENT frames and be bound to this schema (an all-zero schema hash is
// refused: the events' schema is unknown). Corruption is refused; a torn
// tail, the normal result of a crash, is not: the complete frames before it
// are reconciled and the output ends with "tail":"torn","tail_offset":O. A
// torn header (cut short, or 64 zero bytes whatever follows them) holds no
// acknowledged frame: an empty batch is reconciled, with "tail":"torn",
// "tail_offset":0. An empty F (nothing but white space) is refused with exit
// 10: an empty batch is written []. F holds one batch: at most
// omega.MaxBatchContents distinct contents, identical copies counting once;
// reading stops at the first event past that, with exit 10. B must be at
// least 1 (SPEC section 4); --replay-seed defaults to 0. Both are echoed, not
// used by the checker.
//
// With --output O, the file O receives one JSON object and a newline,
//
//	{"batch_id":B,"replay_seed":S,"created_at_ns":T,"result":{...},"binding":{...}}
//
// the checker output with the batch id, replay seed and created_at_ns it
// was made for (certify takes created_at_ns from there).
// Standard output is the same as without --output.
//
// The other flags build a history that certify and replay take up:
//
//   - --snapshot S1: the prior State. S1 must be bound to this checker and B
//     greater than its last batch id (exit 10 otherwise).
//   - --log L: the events are appended to the event log L as EVENT frames,
//     one per input event, then the decision as a BATCH frame (SPEC section
//     5), synced; L is created with this schema's header when missing, an
//     existing L must be bound to this schema (not unbound either), and
//     B must be greater than the id of its last BATCH frame and the prior
//     State the one that frame left, as a replay of L requires: after the
//     first batch, give --snapshot the --snapshot-out of the last (exit 10
//     otherwise, L unchanged). L is written last, after O and S2: a
//     command that fails leaves it as it was, to be run again.
//   - --snapshot-out S2: the State after the batch (after an obstruction,
//     the prior State unchanged) is written to S2 as a snapshot with
//     snapshot_id and last_batch_id B, no pending events and base offset 64
//     (taken from no log: replay from it skips the batches up to B).
//   - --created-at-ns T: created_at_ns of the BATCH frame and the snapshot,
//     by default the current time. Give certify the same value: replay with
//     the certificate chain compares them.
//
// With --log or --snapshot-out the output adds "created_at_ns", then "log"
// and "snapshot_out".
//
// generate-history --log L --count N [--batch-size K] [--nodes --streams --seed] [--replay-seed R] [--created-at-ns T] [--obstruct-every M] [--snapshot S --snapshot-at B]
//
// Writes a multi-batch event log, as a program embedding omega would with
// an omega.Journal: the events generate-events would write for the same
// --count, --nodes, --streams and --seed, cut into batches of K (default
// 32), each logged as EVENT frames and decided into a BATCH frame with batch
// ids 1, 2, ..., replay seed R and created_at_ns T, T+1, .... With M > 0,
// every Mth batch also carries a new content under an id an earlier batch
// accepted: it is obstructed by 1002, and the rest of the batch, not logged
// again, is re-checked as the next batch. With --snapshot, the snapshot
// after batch B, taken from the log (its base offset is where the log
// stood then, its pending events those logged and not yet decided), is
// written to S. L is replaced. It prints
//
//	{"status":"ok","command":"generate-history","log":L,"events":N,
//	 "batches":C,"merges":M,"obstructions":O,"last_batch_id":I,
//	 "replay_seed":R,"final_state_hash":"<hex>","log_bytes":Z,
//	 "snapshot":{"path":S,"last_batch_id":B,"base_checkpoint_offset":O,
//	 "merged_state_hash":"<hex>","pending":P}}
//
// final_state_hash is what replay's --expected_hash_hex must be.
//
// replay --log_suffix L (or --log-suffix) [--log-suffix L2 ...] --expected_hash_hex H [--snapshot S] [--replay-seed R] [--cert-log DIR [--uncertified-suffix]] [--incident-dir D] [--other-checker] [--divergence_batch_id B] [--divergence_event_id E]
//
// Re-executes every BATCH of the event log L with omega.Replayer, from the
// snapshot S (omitted: genesis), and compares each recomputed outcome with
// the recorded one, then the final merged state hash with H (SPEC section
// 7). The log is streamed from its file, not read whole; given more than
// once, --log-suffix names its segments in order, each a frame log with its
// own header whose frames continue the previous one's (offsets are those
// of the one log they make). R is the seed every BATCH must carry; without
// --replay-seed it is the seed of the log's first BATCH frame (0 for a log
// without one), and the output says which ("replay_seed_from": "flag",
// "log" or "default"). With --cert-log, every batch must agree with the certificate of
// its batch id in DIR/cert.log (read, never written; a cert.log that verify
// would fail as a log is refused with exit 20 and the same check), every
// certificate after the snapshot must have its batch, and the snapshot's
// merged state hash and frontier digest must be those of the last Merge
// certificate at or before its last batch. With --uncertified-suffix as well, the batches
// after DIR's last certificate (the trace of a crash between logging a
// batch and certifying it) are replayed and listed under "uncertified",
// and marked so in per_batch, rather than reported as an incident. With
// --other-checker the binding checks are skipped and a clean replay is
// "equivalent". The original system's replay could not locate a divergence
// and took its place from the caller as --divergence_batch_id and
// --divergence_event_id (also with dashes); replay finds the first
// divergence itself, and with these flags reports under
// "expected_divergence" ({"batch_id","event_id","found"}) whether it is at
// that batch (and event), in the incident's output or, for a deterministic
// replay, with "found":false. It prints
//
//	{"status":"ok","command":"replay","result":"deterministic",
//	 "replay_seed":R,"replay_seed_from":"log","batches":C,"merges":M,"obstructions":O,"members":N,"pending":P,
//	 "last_batch_id":I,"final_state_hash":"<hex>","log_end":E,
//	 "torn_tail_bytes":T,"torn_tail_offset":F,"certificates":K,
//	 "uncertified":[I,...],
//	 "per_batch":[{"batch_id":I,"kind":"merge","members":N,
//	 "merged_state_hash":"<hex>","uncertified":true},...]}
//
// or, at the first difference, exit 30 with the incident (see Output); with
// an incident in a field that holds an integer (replay_seed, order,
// created_at) also shows the values as decimals,
// "incident_decimal":{"expected":"9","observed":"8"}; with
// --incident-dir D it is also written to D as <incident_id>.json and
// appended to D/incidents.omega (when D cannot take it, the output is the
// same without incident_file, and the error says why). pending counts the
// events logged and not decided; a torn tail of L ends the log: its length
// is torn_tail_bytes and its offset torn_tail_offset, which appears only
// when there is one; certificates appears with --cert-log, uncertified (in
// both places) only for uncertified batches.
//
// Without --cert-log, check last_batch_id, merges, obstructions and the torn
// tail against what the history is known to hold: a BATCH frame recording
// an obstruction that is missing (deleted, cut off, re-typed), or a last
// batch id grown larger, leaves the final state as it was (SPEC section 7).
// With --cert-log every certificate needs its BATCH frame, so the chain
// covers them.
//
// export-metrics --input F [--input F2 ...] --output O
//
// Reads metric lines from F, F2, ... in order and writes them to O (through
// a temporary file renamed into place) in the kernel's shape,
// {"seq_id","metric","value","metadata"}, with seq_id numbered from 1 in
// that order: the files of several runs, each numbered from 1, or lines
// written without sequence ids, become one sequence. A line may name its
// metric "metric" or "name" and its labels "metadata" or "labels"; a null
// value (what a sink writes for NaN) stays null; the original system's
// "batch_id" and "cert_id" fields go into the metadata under those names;
// blank lines are skipped. A
// line that does not read is exit 10, naming the file and line, and O is
// not written. It prints
//
//	{"status":"ok","command":"export-metrics","inputs":[F,...],"output":O,
//	 "lines":N,"renumbered":R,"metrics":{"<name>":count,...}}
//
// renumbered counts the lines whose seq_id changed (or that had none).
//
// doctor (--root R | --dir D)
//
// Checks, changing nothing, and prints one check per thing it looked at,
//
//	{"status":"ok","command":"doctor","root":R,"healthy":true,
//	 "checks":[{"name":"module","status":"ok","detail":"..."},...]}
//
// each "ok", "warn" (worth knowing, nothing broken) or "fail"; healthy is
// false when one fails, and the exit code is 0 either way (50 when R or D
// cannot be read at all). With --root, a checkout of the module: go.mod,
// the library, formal/ (the TLA+ model, its cfg and README), the schemas,
// the vectors, the examples and CI, the Go toolchain on PATH and the one
// this binary was built with, and Java (optional: it runs TLC on the
// formal model). With --dir, a kernel data directory, read as a restart
// would read it but without recovering anything: whether a kernel holds
// its lock now, kernel.key, every log segment (its header, its frames, and
// a torn tail, expected after a crash in the last segment, or corruption,
// which puts a kernel in safe mode), the certificate chain (verified with
// kernel.key's public key; damage, torn tails, later generations), every
// snapshot (it loads, and its fingerprint file is beside it) and the
// replay incidents found.
//
// bench [--events N] [--workers W] [--runs R]
//
// Reconciles the bench workload (event i: payload "event-i", event_id i+1,
// node i%32, stream i%8, lamport i/8+1, no dependencies, correct payload
// hash) from genesis: one warm-up run, then R timed runs (default 3), and
// prints
//
//	{"status":"ok","command":"bench","events":N,"runs":R,"workers":W,
//	 "events_per_sec":E,"ns_per_event":T,"best_ns_per_event":T0,
//	 "allocs_per_event":A,"bytes_per_event":M,"kind":"merge"}
//
// events_per_sec and ns_per_event come from the median run, best_ns_per_event
// from the fastest; allocations are the runtime.MemStats deltas of the timed
// runs, averaged. N defaults to 100000 and ranges over
// 1..omega.MaxBatchContents; W caps the checker's goroutines (0, the default,
// means GOMAXPROCS, and the output shows GOMAXPROCS).
//
// keygen --out NAME.pem
//
// Makes an Ed25519 key from crypto/rand and writes the private key to
// NAME.pem (PKCS#8 PEM, mode 0600) and the public key beside it as NAME.pub
// (PKIX PEM), with keyfile.Save:
//
//	{"status":"ok","command":"keygen","private_key":"NAME.pem",
//	 "public_key":"NAME.pub","key_id":"<32 hex digits>"}
//
// key_id is the issuer_key_id certificates signed with the key carry. An
// existing file is never replaced (exit 50, and no file is written); --out
// must not itself end in .pub.
//
// certify --result R --batch-id B --replay-seed S --schema-version V --key K.pem --output C [--cert-log DIR] [--created-at-ns N]
//
// Reads R, what reconcile --output wrote, with omega's strict decoder (every
// digest the result's JSON view lets one recompute is checked), signs it
// with the private key K.pem into a certificate and writes it to C
// (replaced if it exists): its JSON view when C ends in .json, else its
// binary envelope. Without --key the error says how to make one (keygen):
//
//	{"status":"ok","command":"certify","cert_id":N,"cert_hash":"<hex>",
//	 "batch_id":B,"kind":"merge"|"obstruction","created_at_ns":N,
//	 "created_at_from":"result","output":C,"format":"envelope"|"json",
//	 "cert_log":DIR,"seq":Q,"certificate":{...}}
//
// B and S must be R's batch id and replay seed, and V the schema version of
// R's binding (exit 10 otherwise); R's binding must be this checker's,
// omega.DefaultBinding() (exit 10). cert_id is the certificate's u128 id in
// decimal, certificate its JSON view (SPEC section 6). created_at_ns is
// --created-at-ns ("created_at_from":"flag"), by default the one reconcile
// recorded in R and in the BATCH frame it logged ("result"), so that the
// certificate agrees with the log on replay, else, for a result file
// written before reconcile recorded it, the current time ("clock").
// DIR is a certificate log directory holding cert.log; a path to a file
// named cert.log, as the original system's tools took it, means its
// directory (so for verify and replay), and any other file is refused
// (exit 50). Without --cert-log the
// certificate is the first of a chain (prev_cert_hash zero) and cert_log and
// seq are left out. With --cert-log, DIR is opened as a certificate log
// (created when missing, bound to this schema, synced at every append,
// locked while the command runs: a log another process holds is exit 50;
// a log whose header, frames or chain are damaged is exit 20 with the
// check verify names) and the certificate follows its last one: it is
// refused with exit 20 when R
// does not continue the chain (batch id not greater than the last one:
// batch_order; prior_state_hash not the merged state of the log's last
// merge, or a merge's frontier not extending it: chain_state), and otherwise
// appended, seq being its position in the log from 0. A refused
// certificate is neither appended nor written to C, and C is written before
// the append: a command that fails leaves DIR as it was, to be run again.
// Results continue the chain past a merge when each batch is reconciled
// from the snapshot after the one before (reconcile --snapshot).
//
// verify (--cert C | --cert-log DIR) --pub K.pub [--pub K2.pub ...]
//
// Verifies against a key ring of every --pub key and this checker's
// binding. With --cert, C is an envelope or its JSON view (recognized by its
// first byte), checked with omega.Verify:
//
//	{"status":"ok","command":"verify","cert":C,"verified":1,
//	 "kind":"merge"|"obstruction","batch_id":B,"cert_id":N,
//	 "cert_hash":"<hex>","prev_cert_hash":"<hex>","issuer_key_id":"<hex>"}
//
// With --cert-log, DIR/cert.log is read and its certificates verified as a
// chain from genesis with omega.VerifyChain:
//
//	{"status":"ok","command":"verify","cert_log":DIR,"verified":N,
//	 "head":{"cert_hash":"<hex>","batch_id":B,"merged_state_hash":"<hex>",
//	 "frontier_digest":"<hex>"},"torn_tail_bytes":T}
//
// head is the chain's position after its last certificate (all zero for an
// empty log). A torn tail, the normal trace of a crash, ends the log and is
// reported in torn_tail_bytes, not refused. verify reads and never writes:
// it neither truncates a torn tail nor rewrites cert.idx and cert.hash
// (caches of cert.log, not read here), as opening the log for appending
// would. Any check that fails exits 20 with its name (see Output); a
// missing file exits 50.
//
// explain --input X
//
// Says what X is, from its content alone, and summarizes it:
//
//	{"status":"ok","command":"explain","input":X,"type":T,"format":F,
//	 "summary":"<a sentence>", T:{...}}
//
// with type and format one of
//
//	certificate     envelope (starts with OMEGACRT) or json_view
//	checker_output  result_file (what reconcile --output writes),
//	                reconcile_line (what reconcile prints) or output_view
//	                ({"result":...,"binding":...})
//	events          json_array or json_lines
//	frame_log       omega (starts with the .omega magic, or a torn header)
//	snapshot        omega (a frame log holding a snapshot: reconcile
//	                --snapshot-out, a kernel's snapshots/)
//	incident        json (what replay --incident-dir writes)
//	original_snapshot_manifest  json (the original system's snapshot
//	                manifest, which holds no state: the summary says what
//	                omega reads instead)
//
// and the object named by type: for a certificate its kind, batch_id,
// cert_id, cert_hash, prev_cert_hash, chain_position ("first of a chain"
// when prev_cert_hash is zero), created_at_ns and created_at (RFC 3339),
// issuer_key_id, replay_seed, trace_root, binding (with this_checker: true
// when it is omega.DefaultBinding()), decision and "signature_checked":false
// (explain holds no key: verify checks signatures); for a checker output its
// batch_id and replay_seed (when the file has them), decision and binding;
// a decision holds kind and prior_state_hash, then accepted_count and
// merged_state_hash for a merge, or predicate {id, name from the built-in
// catalog}, conflict_set, evidence_count and, for a checker output, the
// evidence events (event_id, node_id, stream_id, lamport, digest,
// payload_hash_ok) for an obstruction; for events their count, the distinct
// nodes and (node, stream) streams, the event_ids and lamports ranges
// {min, max} and payload_hash_mismatches; for a frame log the fields ingest
// prints after input; for a snapshot its snapshot_id, created_at_ns and
// created_at, last_batch_id, base_checkpoint_offset, known_ids,
// stream_heads, pending, merged_state_hash, frontier_digest, state_digest
// and binding; for an incident its fields as replay prints them, with
// expected_decimal and observed_decimal for an integer field and a
// sentence saying what the field means. Unknown content exits 10 with a
// message that also says what omega reads instead of the original
// system's opaque log suffix. Certificates and checker outputs are decoded as
// strictly as certify and verify decode them: a damaged one exits 20 (a
// certificate) or 10 (a checker output), and content that is none of the
// above exits 10. Events are read as reconcile reads them, as one batch: a
// file of more than omega.MaxBatchContents distinct events exits 10.
//
// help [COMMAND ...] [--text]
//
// Prints the commands and their flags (those named, or all), and with
// --help after a command that command's alone:
//
//	{"status":"ok","command":"help","commands":[{"name":"bench",
//	 "summary":"<a sentence>","flags":{"--events":"<what it sets>",...},
//	 "defaults":{"--events":"100000",...}},...]}
//
// defaults lists the flags whose default is not empty, zero or false. With
// --text, help prints the same as text a person reads, each flag with its
// argument type and default: the one output that is not a JSON object.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

// Exit codes (SPEC section 9).
const (
	exitOK      = 0
	exitFormat  = 10 // schema, format or binding
	exitCert    = 20 // certificate or signature; every check verify fails
	exitReplay  = 30 // a replay incident
	exitTimeout = 40 // the command's --timeout ran out
	exitOther   = 50 // anything else, usage included
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

// A command parses its own flags from args and returns the JSON object it
// prints, without the trailing newline.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet) // declares the flags, for help
	run     func(args []string) ([]byte, error)
}

func commands() map[string]command {
	return map[string]command{
		"init-log":         {"create an empty event log, its header alone, as the original's make_sample_log.sh did", initLogFlags, runInitLog},
		"ingest":           {"report the header, frames and tail of an .omega frame log", ingestFlags, runIngest},
		"generate-events":  {"write a deterministic batch of events as JSON or an .omega log", generateFlags, runGenerate},
		"generate-history": {"write a multi-batch event log decided batch by batch, and optionally a snapshot of it", historyFlags, runGenerateHistory},
		"reconcile":        {"reconcile a batch of events from genesis or a snapshot, optionally appending it to an event log", reconcileFlags, runReconcile},
		"bench":            {"measure Reconcile on the bench workload", benchFlags, runBench},
		"keygen":           {"write a new Ed25519 key pair: PKCS#8 private key and PKIX public key", keygenFlags, runKeygen},
		"certify":          {"sign what reconcile --output wrote into a certificate, optionally appended to a certificate log", certifyFlags, runCertify},
		"verify":           {"verify a certificate or a certificate log against trusted public keys", verifyFlags, runVerify},
		"replay":           {"re-execute an event log's batches from a snapshot or genesis and report the first divergence", replayFlags, runReplay},
		"explain":          {"say what a file is and summarize it: certificate, checker output, events, frame log, snapshot or replay incident", explainFlags, runExplain},
		"export-metrics":   {"renumber metric lines from one or more files into one sequence of seq_ids, in the kernel's shape", exportFlags, runExportMetrics},
		"doctor":           {"check a checkout of the module (--root) or a kernel data directory (--dir), changing nothing", doctorFlags, runDoctor},
	}
}

// run executes the command named by args[0] and writes its one JSON line to
// stdout. It returns the process exit code.
func run(args []string, stdout io.Writer) int {
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	cmds := commands()
	var (
		out []byte
		err error
	)
	switch c, ok := cmds[name]; {
	case ok:
		out, err = runBounded(c, name, args[1:])
	case name == "help" || name == "-h" || name == "--help" || name == "-help":
		out, err = runHelp(cmds, args[min(1, len(args)):])
	case name == "":
		err = usageErrorf("no command given; available: %s", strings.Join(commandNames(cmds), ", "))
	default:
		err = usageErrorf("unknown command %q; available: %s", name, strings.Join(commandNames(cmds), ", "))
	}
	var help *helpRequest
	if errors.As(err, &help) {
		out, err = help.out, nil
	}
	if err != nil {
		code := exitCode(err)
		writeLine(stdout, marshal(newErrorOutput(code, name, err)))
		return code
	}
	if werr := writeLine(stdout, out); werr != nil {
		return exitOther
	}
	return exitOK
}

// runBounded runs c with args, for no longer than the --timeout they give.
// When it runs out, c is left running and a *timeoutError returned: the
// process is to exit at once, which stops c.
func runBounded(c command, name string, args []string) ([]byte, error) {
	d := timeoutOf(c, name, args)
	if d <= 0 {
		return c.run(args)
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.run(args)
		done <- result{out, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-done:
		return r.out, r.err
	case <-t.C:
		return nil, &timeoutError{name, d}
	}
}

// timeoutOf returns the --timeout of a command line, parsed as the command
// parses it; 0 when there is none, or when the line does not parse, which
// the command reports itself.
func timeoutOf(c command, name string, args []string) time.Duration {
	fs := newFlagSet(name)
	c.flags(fs)
	if fs.Parse(args) != nil {
		return 0
	}
	return fs.Lookup("timeout").Value.(flag.Getter).Get().(time.Duration)
}

// timeoutError is a command stopped by its --timeout: exit 40.
type timeoutError struct {
	command string
	d       time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s: --timeout %v ran out; the command was stopped", e.command, e.d)
}

func commandNames(cmds map[string]command) []string {
	names := make([]string, 0, len(cmds)+1)
	for n := range cmds {
		names = append(names, n)
	}
	names = append(names, "help")
	slices.Sort(names)
	return names
}

// errorOutput is the object a failing command prints: the four fields of
// SPEC section 9, then, for exit code 20, the check that failed and where.
type errorOutput struct {
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	Command  string `json:"command"`
	Error    string `json:"error"`
	Check    string `json:"check,omitempty"`
	Position *int   `json:"position,omitempty"` // the certificate's index in the log, from 0
	Offset   *int64 `json:"offset,omitempty"`   // the byte offset in cert.log of a frame that holds no certificate
	// For exit code 30: the incident (SPEC section 7), and the file it
	// was written to under --incident-dir.
	Incident     json.RawMessage `json:"incident,omitempty"`
	IncidentFile string          `json:"incident_file,omitempty"`
	// For an incident in a replay seed, a batch id or a created_at_ns:
	// the values as decimals.
	IncidentDecimal *incidentDecimal `json:"incident_decimal,omitempty"`
	// The divergence --divergence_batch_id and --divergence_event_id
	// expected, and whether the incident is there.
	ExpectedDivergence *expectedDiv `json:"expected_divergence,omitempty"`
}

func newErrorOutput(code int, command string, err error) errorOutput {
	out := errorOutput{Status: "error", ExitCode: code, Command: command, Error: err.Error()}
	if code == exitReplay {
		out.Incident, out.IncidentFile = incidentJSON(err)
		out.IncidentDecimal = incidentDecimals(err)
		var ie *incidentError
		if errors.As(err, &ie) {
			out.ExpectedDivergence = ie.expect
		}
		return out
	}
	if code != exitCert {
		return out
	}
	out.Check = checkName(err)
	var ce *omega.ChainError
	if errors.As(err, &ce) {
		out.Position = &ce.Index
	}
	var le *omega.CertLogError
	if errors.As(err, &le) {
		out.Offset = &le.Offset
	}
	return out
}

// certChecks names the checks of SPEC section 6 by their sentinels: those of
// cert.log as a frame log first (a log bound to another schema also wraps
// omega.ErrBindingMismatch), then the checks of the certificates in the
// order Verify and VerifyChain run them.
var certChecks = []struct {
	err  error
	name string
}{
	{framelog.ErrBadHeader, "log_header"},
	{omega.ErrSchemaMismatch, "log_schema"},
	{framelog.ErrCorrupt, "log_corrupt"},
	{omega.ErrMalformedCertificate, "malformed"},
	{omega.ErrBodyHash, "body_hash"},
	{omega.ErrCertID, "cert_id"},
	{omega.ErrUnknownKey, "unknown_key"},
	{omega.ErrBadSignature, "signature"},
	{omega.ErrBindingMismatch, "binding"},
	{omega.ErrDigestMismatch, "digests"},
	{omega.ErrChainLink, "chain_link"},
	{omega.ErrBatchOrder, "batch_order"},
	{omega.ErrChainState, "chain_state"},
}

// checkName returns the name of the certificate check err failed, or "" when
// it failed none.
func checkName(err error) string {
	for _, c := range certChecks {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// checkFailure is a check verify ran and the input failed: exit 20 whatever
// the check, a binding mismatch or a corrupt log included (SPEC section 9).
type checkFailure struct{ err error }

func (e *checkFailure) Error() string { return e.err.Error() }

func (e *checkFailure) Unwrap() error { return e.err }

// usageError is a mistake in the command line: exit 50.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// inputError is input the command refuses on format grounds that the library
// has no sentinel for (a frame type reconcile does not read, batch id 0):
// exit 10.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

// Unwrap returns omega.ErrFormat, the category of the input refused.
func (e *inputError) Unwrap() error { return omega.ErrFormat }

func inputErrorf(format string, args ...any) error {
	return &inputError{fmt.Sprintf(format, args...)}
}

// exitCode maps an error to its exit code by type, never by text: by the
// library's error categories, beside the command's own errors.
func exitCode(err error) int {
	var (
		te *timeoutError
		cf *checkFailure
	)
	switch {
	case errors.As(err, &te):
		return exitTimeout
	case errors.Is(err, omega.ErrDivergence):
		return exitReplay
	case errors.As(err, &cf), errors.Is(err, omega.ErrVerification):
		return exitCert
	case errors.Is(err, omega.ErrFormat):
		return exitFormat
	}
	return exitOther
}

// marshal encodes v as compact JSON without HTML escaping and without a
// trailing newline. The values marshalled here cannot fail to encode.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("omega: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func writeLine(w io.Writer, b []byte) error {
	_, err := w.Write(append(b, '\n'))
	return err
}

// newFlagSet returns a flag set that reports errors to its caller instead of
// printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("timeout", 0, "stop the command after this long, a Go duration such as 30s, with exit code 40 (default: no limit)")
	return fs
}

// parseFlags parses args and refuses positional arguments and, unless set,
// the required flags.
func parseFlags(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{marshal(helpOutput{"ok", "help", []helpCommand{helpFor(fs)}})}
		}
		return usageErrorf("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	if d := fs.Lookup("timeout").Value.(flag.Getter).Get().(time.Duration); d < 0 {
		return usageErrorf("%s: --timeout %v is negative", fs.Name(), d)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, r := range required {
		if !set[r] {
			return usageErrorf("%s: missing --%s", fs.Name(), r)
		}
	}
	return nil
}

// helpRequest is returned by parseFlags for -h or --help: not an error, the
// help text to print instead of running the command.
type helpRequest struct{ out []byte }

func (h *helpRequest) Error() string { return "help requested" }

type helpOutput struct {
	Status   string        `json:"status"`
	Command  string        `json:"command"`
	Commands []helpCommand `json:"commands"`
}

type helpCommand struct {
	Name     string            `json:"name"`
	Summary  string            `json:"summary"`
	Flags    map[string]string `json:"flags"`
	Defaults map[string]string `json:"defaults"` // the flags whose default is not empty or zero
}

func helpFor(fs *flag.FlagSet) helpCommand {
	flags, defaults := map[string]string{}, map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		flags["--"+f.Name] = f.Usage
		if d := f.DefValue; d != "" && d != "0" && d != "0s" && d != "false" {
			defaults["--"+f.Name] = d
		}
	})
	return helpCommand{Name: fs.Name(), Summary: commands()[fs.Name()].summary, Flags: flags, Defaults: defaults}
}

// runHelp serves help [COMMAND...] [--text]: the commands and their flags,
// as one JSON object (SPEC section 9), or, with --text, as text a person
// reads, with each flag's default.
func runHelp(cmds map[string]command, args []string) ([]byte, error) {
	text := false
	var names []string
	for _, a := range args {
		switch a {
		case "--text", "-text":
			text = true
		case "--json", "-json":
			text = false
		default:
			if _, ok := cmds[a]; !ok {
				return nil, usageErrorf("help: unknown command %q; available: %s", a, strings.Join(commandNames(cmds), ", "))
			}
			names = append(names, a)
		}
	}
	all := len(names) == 0
	if all {
		names = commandNames(cmds)
	}
	var list []helpCommand
	var sets []*flag.FlagSet
	for _, name := range names {
		c, ok := cmds[name]
		if !ok {
			continue // help itself
		}
		fs := newFlagSet(name)
		c.flags(fs)
		list = append(list, helpFor(fs))
		sets = append(sets, fs)
	}
	if !text {
		return marshal(helpOutput{"ok", "help", list}), nil
	}
	var b strings.Builder
	if all {
		b.WriteString("omega <command> [flags]: every command prints one JSON object; exit codes 10 format, 20 certificate, 30 replay incident, 40 timeout, 50 anything else.\n\n")
		for _, c := range list {
			fmt.Fprintf(&b, "  %-17s %s\n", c.Name, c.Summary)
		}
		b.WriteString("\nomega help COMMAND --text shows a command's flags; omega help prints all of this as JSON.\n")
		return []byte(strings.TrimSuffix(b.String(), "\n")), nil
	}
	for i, fs := range sets {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "omega %s: %s\n\n", fs.Name(), list[i].Summary)
		fs.VisitAll(func(f *flag.Flag) {
			arg, usage := flag.UnquoteUsage(f)
			name := "--" + f.Name
			if arg != "" {
				name += " " + arg
			}
			fmt.Fprintf(&b, "  %s\n      %s", name, usage)
			if d := list[i].Defaults["--"+f.Name]; d != "" {
				fmt.Fprintf(&b, " (default %s)", d)
			}
			b.WriteString("\n")
		})
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
