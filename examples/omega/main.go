// Command omega is the command-line face of the omega library: it generates
// event batches, reconciles them, inspects .omega frame logs and measures the
// checker. It uses only the public API of package omega.
//
// Usage:
//
//	omega <command> [flags]
//
// Flags are written --name value or --name=value (a single dash works too).
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
// type (errors.Is and errors.As), never from its text:
//
//	 0  success; a batch that obstructs is a success too (the obstruction is
//	    the result), and so is a damaged frame log body that ingest reports
//	10  schema, format or binding: an event that does not decode (the error
//	    names the event's position and field), a bad .omega header, a header
//	    bound to another schema, a corrupt frame log given to reconcile, a
//	    frame other than EVENT in reconcile's input, a batch over
//	    omega.MaxBatchContents, batch id 0
//	50  anything else: usage (an unknown command, an unknown or malformed
//	    flag, a missing required flag, a value out of the command's range),
//	    files that cannot be read or written
//
// # Commands
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
// hash is not omega.SchemaHash() or whose schema version is not
// omega.SchemaVersion, except an all-zero schema hash (written by the original
// system's tools), which is reported with "schema_bound":false. A header cut
// short by a crash (SPEC section 5), or 64 header bytes all zero whatever
// follows them, is reported with "torn_header":true, no frames, "tail":"torn"
// at offset 0 and the whole file as malformed_tail_bytes, and exits 0.
//
// generate-events --output F --count N [--nodes K] [--streams S] [--seed X]
//
// Writes N events that merge as one batch from genesis: K nodes (ids 1..K,
// default 4), S streams per node (ids 0..S-1, default 2), event ids 1..N,
// Lamport clocks per node, up to three dependencies on recent events of lower
// lamport, correct payload hashes. The events are a function of the flags
// alone (math/rand/v2's PCG seeded with X, default 0): the same flags give the
// same bytes. An existing F is replaced. When F ends in .omega the file is a
// frame log of EVENT frames whose header carries omega.SchemaVersion and
// omega.SchemaHash(), created with omega.OpenFrameLog (header and directory
// synced) and synced after the last frame; otherwise it is a JSON array with
// one event per line in the original system's form (SPEC sections 3 and 9):
// all twelve fields in the table's order, event_id and deps as decimal
// strings, payload_hash and payload as arrays of integers 0..255, the other
// fields as JSON integers. N ranges over 1..16777216; a batch holds at most
// omega.MaxBatchContents events, so a larger file must be split before it is
// reconciled.
//
// reconcile --input F --batch-id B [--replay-seed S] [--output O]
//
// Reconciles the events of F as one batch from genesis with the built-in
// catalog and prints
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
// "tail_offset":0. B must be at least 1 (SPEC section 4);
// --replay-seed defaults to 0. Both are echoed, not used by the checker.
//
// With --output O, the file O receives one JSON object and a newline,
//
//	{"batch_id":B,"replay_seed":S,"result":{...},"binding":{...}}
//
// the checker output with the batch id and replay seed it was made for.
// Standard output is the same as without --output.
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
// help
//
// Prints the commands and their flags.
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

	"github.com/omega-sheaf/omega"
)

// Exit codes (SPEC section 9).
const (
	exitOK     = 0
	exitFormat = 10 // schema, format or binding
	exitOther  = 50 // anything else, usage included
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
		"ingest":          {"report the header, frames and tail of an .omega frame log", ingestFlags, runIngest},
		"generate-events": {"write a deterministic batch of events as JSON or an .omega log", generateFlags, runGenerate},
		"reconcile":       {"reconcile a batch of events from genesis", reconcileFlags, runReconcile},
		"bench":           {"measure Reconcile on the bench workload", benchFlags, runBench},
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
		out, err = c.run(args[1:])
	case name == "help" || name == "-h" || name == "--help" || name == "-help":
		out, err = runHelp(cmds)
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
		writeLine(stdout, marshal(errorOutput{Status: "error", ExitCode: code, Command: name, Error: err.Error()}))
		return code
	}
	if werr := writeLine(stdout, out); werr != nil {
		return exitOther
	}
	return exitOK
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

type errorOutput struct {
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	Command  string `json:"command"`
	Error    string `json:"error"`
}

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

func inputErrorf(format string, args ...any) error {
	return &inputError{fmt.Sprintf(format, args...)}
}

// exitCode maps an error to its exit code by type, never by text.
func exitCode(err error) int {
	var (
		ie *inputError
		fe *omega.FrameError
	)
	switch {
	case errors.As(err, &ie),
		errors.As(err, &fe),
		errors.Is(err, omega.ErrMalformedEvent),
		errors.Is(err, omega.ErrBadHeader),
		errors.Is(err, omega.ErrSchemaMismatch),
		errors.Is(err, omega.ErrBindingMismatch),
		errors.Is(err, omega.ErrCorrupt),
		errors.Is(err, omega.ErrTornTail),
		errors.Is(err, omega.ErrBatchTooLarge):
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
	Name    string            `json:"name"`
	Summary string            `json:"summary"`
	Flags   map[string]string `json:"flags"`
}

func helpFor(fs *flag.FlagSet) helpCommand {
	flags := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { flags["--"+f.Name] = f.Usage })
	return helpCommand{Name: fs.Name(), Summary: commands()[fs.Name()].summary, Flags: flags}
}

func runHelp(cmds map[string]command) ([]byte, error) {
	var list []helpCommand
	for _, name := range commandNames(cmds) {
		c, ok := cmds[name]
		if !ok {
			continue
		}
		fs := newFlagSet(name)
		c.flags(fs)
		list = append(list, helpFor(fs))
	}
	return marshal(helpOutput{"ok", "help", list}), nil
}
