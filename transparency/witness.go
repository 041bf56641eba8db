package transparency

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The C2SP tlog-witness protocol: a log (or anyone) POSTs to the witness's
// add-checkpoint endpoint the size of the last checkpoint the witness
// cosigned for the log ("old"), a consistency proof from that size, and
// the new signed checkpoint; the witness answers with its cosignature
// lines, or with 409 Conflict and the size it has when old is not it.

// AddCheckpointPath is the witness's endpoint, under its base URL.
const AddCheckpointPath = "/add-checkpoint"

// sizeContentType is the content type of a witness's conflict answer.
const sizeContentType = "text/x.tlog.size"

// maxRequest bounds an add-checkpoint request.
const maxRequest = 1 << 16

// Witness is a tlog-witness: an http.Handler serving AddCheckpointPath
// for the logs added to it. It cosigns (cosignature/v1, with the signer
// it was made with) a checkpoint that the log signed and that is
// consistent with the last one it cosigned for that log. It keeps that
// last checkpoint of each log in a file of its directory, synced before
// it answers, so that a restarted witness cosigns no other history. It is
// safe for concurrent use.
type Witness struct {
	signer note.Signer
	dir    string // "" keeps the state in memory only, for tests
	mu     sync.Mutex
	logs   map[string]*witnessed // by origin
}

type witnessed struct {
	key  note.Verifier
	size int64
	root tlog.Hash
}

// NewWitness returns a witness that cosigns with signer, a cosignature/v1
// signer (see CosignatureSigner), and keeps its state in dir; an empty dir
// keeps it in memory only, which a witness anyone relies on must not do.
func NewWitness(signer note.Signer, dir string) *Witness {
	return &Witness{signer: signer, dir: dir, logs: make(map[string]*witnessed)}
}

// AddLog has w witness the log origin, whose checkpoints key verifies:
// from the last checkpoint w cosigned for it, kept in its directory, or
// else from the empty tree.
func (w *Witness) AddLog(origin string, key note.Verifier) error {
	l := &witnessed{key: key, root: emptyRoot}
	if w.dir != "" {
		b, err := os.ReadFile(w.statePath(origin))
		switch {
		case err == nil:
			var cp log.Checkpoint
			if _, err := cp.Unmarshal(b); err != nil || cp.Origin != origin || len(cp.Hash) != tlog.HashSize || cp.Size > 1<<62 {
				return fmt.Errorf("omega: transparency: the witness's state of %q is damaged: %v", origin, err)
			}
			l.size, l.root = int64(cp.Size), tlog.Hash(cp.Hash)
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("omega: transparency: %w", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logs[origin] = l
	return nil
}

// statePath is the file of w's state of origin: named by a digest of the
// origin, which may hold any character.
func (w *Witness) statePath(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(w.dir, hex.EncodeToString(h[:8])+".checkpoint")
}

// emptyRoot is the RFC 6962 hash of the empty tree: SHA-256 of nothing.
var emptyRoot, _ = tlog.TreeHash(0, nil)

func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != AddCheckpointPath {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil || len(body) > maxRequest {
		http.Error(rw, "request too large or unreadable", http.StatusBadRequest)
		return
	}
	old, proof, signed, err := parseAddCheckpoint(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	status, answer := w.add(old, proof, signed)
	if status == http.StatusConflict {
		rw.Header().Set("Content-Type", sizeContentType)
	}
	rw.WriteHeader(status)
	rw.Write(answer)
}

// add serves one parsed add-checkpoint request: the status and the body.
func (w *Witness) add(old int64, proof tlog.TreeProof, signed []byte) (int, []byte) {
	origin, _, _ := strings.Cut(string(signed), "\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	l, ok := w.logs[origin]
	if !ok {
		return http.StatusNotFound, []byte("unknown log\n")
	}
	cp, n, err := OpenCheckpoint(signed, origin, l.key)
	if err != nil {
		return http.StatusForbidden, []byte(err.Error() + "\n")
	}
	if cp.Size < old || old == 0 && len(proof) > 0 {
		return http.StatusBadRequest, []byte("old is past the checkpoint, or a proof from the empty tree\n")
	}
	if old != l.size || cp.Size == l.size && cp.Root != l.root {
		return http.StatusConflict, fmt.Appendf(nil, "%d\n", l.size)
	}
	prev := Checkpoint{Origin: origin, Size: l.size, Root: l.root}
	if err := VerifyConsistency(prev, cp, proof); err != nil {
		return http.StatusUnprocessableEntity, []byte(err.Error() + "\n")
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return http.StatusInternalServerError, []byte(err.Error() + "\n")
	}
	if w.dir != "" && cp.Size != l.size {
		// Durable before the answer: once a cosignature is out, a
		// restarted witness must not cosign another history.
		text := log.Checkpoint{Origin: origin, Size: uint64(cp.Size), Hash: cp.Root[:]}.Marshal()
		if err := writeFile(w.statePath(origin), text); err != nil {
			return http.StatusInternalServerError, []byte(err.Error() + "\n")
		}
	}
	l.size, l.root = cp.Size, cp.Root
	return http.StatusOK, sigLines(cosigned)
}

// sigLines returns the signature lines of a signed note.
func sigLines(signed []byte) []byte {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	return signed[i+2:]
}

// parseAddCheckpoint reads an add-checkpoint request body: "old <size>",
// the consistency proof's hashes in base64, one per line, an empty line,
// and the signed checkpoint.
func parseAddCheckpoint(b []byte) (int64, tlog.TreeProof, []byte, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		if err != nil {
			return "", errors.New("omega: transparency: add-checkpoint: truncated request")
		}
		return s[:len(s)-1], nil
	}
	first, err := line()
	if err != nil {
		return 0, nil, nil, err
	}
	sizeText, ok := strings.CutPrefix(first, "old ")
	old, err := strconv.ParseInt(sizeText, 10, 64)
	if !ok || err != nil || old < 0 || sizeText != strconv.FormatInt(old, 10) {
		return 0, nil, nil, fmt.Errorf("omega: transparency: add-checkpoint: bad first line %q", first)
	}
	var proof tlog.TreeProof
	for {
		s, err := line()
		if err != nil {
			return 0, nil, nil, err
		}
		if s == "" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(h) != tlog.HashSize {
			return 0, nil, nil, fmt.Errorf("omega: transparency: add-checkpoint: bad proof line %q", s)
		}
		if len(proof) == 63 {
			return 0, nil, nil, errors.New("omega: transparency: add-checkpoint: a proof of more than 63 hashes")
		}
		proof = append(proof, tlog.Hash(h))
	}
	rest, _ := io.ReadAll(r)
	return old, proof, rest, nil
}

// ConflictError is a witness's answer that it last cosigned the log at
// another size than the request's old one: Size is that size.
type ConflictError struct{ Size int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("omega: transparency: the witness is at size %d", e.Size)
}

// AddCheckpoint asks the witness at base (its URL, without
// AddCheckpointPath) to cosign signed, a checkpoint that proof shows to
// extend the one of size old the witness cosigned last. It returns the
// witness's cosignature lines, or a *ConflictError when the witness is at
// another size.
func AddCheckpoint(ctx context.Context, client *http.Client, base string, old int64, proof tlog.TreeProof, signed []byte) ([]byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range proof {
		fmt.Fprintf(&body, "%s\n", base64.StdEncoding.EncodeToString(h[:]))
	}
	body.WriteByte('\n')
	body.Write(signed)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+AddCheckpointPath, &body)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxRequest))
	if err != nil {
		return nil, fmt.Errorf("omega: transparency: reading the witness's answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return answer, nil
	case http.StatusConflict:
		size, err := strconv.ParseInt(strings.TrimSuffix(string(answer), "\n"), 10, 64)
		if err != nil || size < 0 || resp.Header.Get("Content-Type") != sizeContentType {
			return nil, fmt.Errorf("omega: transparency: a conflict answer without a size: %q", answer)
		}
		return nil, &ConflictError{Size: size}
	default:
		return nil, fmt.Errorf("omega: transparency: the witness answered %s: %s", resp.Status, bytes.TrimSpace(answer))
	}
}

// WithSignatures returns the signed note signed with the signature lines
// sigs (a witness's answer) added.
func WithSignatures(signed []byte, sigs ...[]byte) []byte {
	out := bytes.Clone(signed)
	for _, s := range sigs {
		out = append(out, s...)
	}
	return out
}

// Witness has the witness at base, whose cosignatures witness verifies,
// cosign the log's latest checkpoint, starting from size old, the size the
// caller believes the witness has; when the witness answers it has
// another, Witness retries once from that one. It returns the latest
// checkpoint's note with the cosignature added, after checking it.
func (l *Log) Witness(ctx context.Context, client *http.Client, base string, witness note.Verifier, old int64) ([]byte, error) {
	cp, signed := l.Latest()
	if signed == nil {
		return nil, errors.New("omega: transparency: no checkpoint signed yet")
	}
	for try := 0; ; try++ {
		var proof tlog.TreeProof
		if old > 0 && old < cp.Size {
			p, err := l.tree.ProveConsistency(old, cp.Size)
			if err != nil {
				return nil, err
			}
			proof = p
		}
		sigs, err := AddCheckpoint(ctx, client, base, old, proof, signed)
		var conflict *ConflictError
		if errors.As(err, &conflict) && try == 0 && conflict.Size <= cp.Size {
			old = conflict.Size
			continue
		}
		if err != nil {
			return nil, err
		}
		out := WithSignatures(signed, sigs)
		if !cosignedBy(out, witness) {
			return nil, fmt.Errorf("%w: the witness at %s answered no valid cosignature of %s", ErrBadCheckpoint, base, witness.Name())
		}
		return out, nil
	}
}

// cosignedBy reports whether signed carries a valid signature of w; other
// signatures are not looked at.
func cosignedBy(signed []byte, w note.Verifier) bool {
	n, err := note.Open(signed, note.VerifierList(w))
	if err != nil {
		return false
	}
	return slices.ContainsFunc(n.Sigs, func(s note.Signature) bool { return s.Name == w.Name() && s.Hash == w.KeyHash() })
}

// sameKey reports whether a and b are the same signed-note key.
func sameKey(a, b note.Verifier) bool { return a.Name() == b.Name() && a.KeyHash() == b.KeyHash() }

// VerifyWitnessed checks signed: a checkpoint of origin that logKey
// signed and that at least k of witnesses cosigned. It returns the
// checkpoint.
func VerifyWitnessed(signed []byte, origin string, logKey note.Verifier, witnesses []note.Verifier, k int) (Checkpoint, error) {
	cp, _, err := OpenCheckpoint(signed, origin, logKey)
	if err != nil {
		return Checkpoint{}, err
	}
	// Each witness on its own: a bad or repeated cosignature of one
	// fails that one, not the checkpoint.
	count := 0
	for i, w := range witnesses {
		if slices.ContainsFunc(witnesses[:i], func(o note.Verifier) bool { return sameKey(o, w) }) {
			continue
		}
		if cosignedBy(signed, w) {
			count++
		}
	}
	if count < k {
		return Checkpoint{}, fmt.Errorf("%w: %d of the %d witnesses cosigned the checkpoint of size %d; the policy wants %d", ErrBadCheckpoint, count, len(witnesses), cp.Size, k)
	}
	return cp, nil
}

// Follower follows one log's checkpoints as a verifier does: it accepts a
// checkpoint only when the log signed it, k of its witnesses cosigned it,
// and it is consistent with the last one accepted. One that is not is
// refused, with ErrFork when the two cannot both be true. It follows the
// log's key rotations (Rotate). It is not safe for concurrent use.
type Follower struct {
	origin    string
	keys      []epoch // the log's keys, oldest first
	witnesses []note.Verifier
	k         int
	last      Checkpoint
}

// epoch is a log key and the sizes it signs checkpoints of: from from to
// the next key's from, both included.
type epoch struct {
	key  note.Verifier
	from int64
}

// NewFollower returns a follower of origin from the empty tree on, whose
// checkpoints logKey signs, and k of witnesses cosign.
func NewFollower(origin string, logKey note.Verifier, witnesses []note.Verifier, k int) *Follower {
	return &Follower{origin: origin, keys: []epoch{{key: logKey}}, witnesses: witnesses, k: k, last: Checkpoint{Origin: origin, Root: emptyRoot}}
}

// Last returns the last checkpoint accepted.
func (f *Follower) Last() Checkpoint { return f.last }

// keysFor returns the log keys that may sign a checkpoint of size.
func (f *Follower) keysFor(size int64) []note.Verifier {
	var out []note.Verifier
	for i, e := range f.keys {
		if size >= e.from && (i+1 == len(f.keys) || size <= f.keys[i+1].from) {
			out = append(out, e.key)
		}
	}
	return out
}

// Accept checks signed, and proof from the last checkpoint accepted to
// it, and accepts it. A checkpoint older than the last is checked
// against it too, proof then running from it to the last.
func (f *Follower) Accept(signed []byte, proof tlog.TreeProof) (Checkpoint, error) {
	var cp Checkpoint
	var err error
	for _, key := range slices.Backward(f.keys) {
		// The size is known once a key opened it; then only the keys
		// of that size count.
		if cp, err = VerifyWitnessed(signed, f.origin, key.key, f.witnesses, f.k); err == nil {
			if !slices.ContainsFunc(f.keysFor(cp.Size), func(v note.Verifier) bool { return sameKey(v, key.key) }) {
				err = fmt.Errorf("%w: a checkpoint of size %d signed by a key the log had rotated away from, or not yet to", ErrBadCheckpoint, cp.Size)
			}
			break
		}
	}
	if err != nil {
		return Checkpoint{}, err
	}
	if err := f.consistent(cp, proof); err != nil {
		return Checkpoint{}, err
	}
	if cp.Size > f.last.Size {
		f.last = cp
	}
	return cp, nil
}

// consistent checks cp against the last checkpoint accepted, by proof.
func (f *Follower) consistent(cp Checkpoint, proof tlog.TreeProof) error {
	older, newer := f.last, cp
	if cp.Size < f.last.Size {
		older, newer = cp, f.last
	}
	return VerifyConsistency(older, newer, proof)
}

// Rotate checks the rotation statement stmt, signed by the log's current
// key and its next one at a point of its history that proof shows
// consistent with the last checkpoint accepted, and trusts the next key
// for checkpoints from that size on (the current one keeps those up to
// it).
func (f *Follower) Rotate(stmt []byte, proof tlog.TreeProof) error {
	cur := f.keys[len(f.keys)-1]
	r, next, err := OpenRotation(stmt, f.origin, cur.key)
	if err != nil {
		return err
	}
	if r.Size < cur.from {
		return fmt.Errorf("%w: a rotation at size %d, before the current key's first, %d", ErrBadRotation, r.Size, cur.from)
	}
	at := Checkpoint{Origin: f.origin, Size: r.Size, Root: r.Root}
	if err := f.consistent(at, proof); err != nil {
		return err
	}
	f.keys = append(f.keys, epoch{key: next, from: r.Size})
	if at.Size > f.last.Size {
		// The statement is the log's word for its history at that size,
		// as a checkpoint is: later ones must extend it.
		f.last = at
	}
	return nil
}
