package omega

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
)

// sentinels lists every exported sentinel error of the package with its
// message and category (nil: none). TestSentinelTableComplete keeps it
// complete.
var sentinels = []struct {
	name string
	err  error
	msg  string
	cat  error
}{
	{"ErrFormat", ErrFormat, "omega: format error", nil},
	{"ErrVerification", ErrVerification, "omega: verification failed", nil},
	{"ErrDivergence", ErrDivergence, "omega: replay diverged", nil},

	{"framelog.ErrBadHeader", framelog.ErrBadHeader, "omega: bad frame log header", ErrFormat},
	{"framelog.ErrTornTail", framelog.ErrTornTail, "omega: torn tail", ErrFormat},
	{"framelog.ErrCorrupt", framelog.ErrCorrupt, "omega: corrupt frame log", ErrFormat},
	{"ErrBindingMismatch", ErrBindingMismatch, "omega: binding mismatch", ErrFormat},
	{"ErrSchemaMismatch", ErrSchemaMismatch, "omega: binding mismatch: frame log bound to another schema", ErrFormat},
	{"ErrMalformedEvent", ErrMalformedEvent, "omega: malformed event", ErrFormat},
	{"ErrMalformedBatch", ErrMalformedBatch, "omega: malformed BATCH record", ErrFormat},
	{"ErrMalformedIncident", ErrMalformedIncident, "omega: malformed incident", ErrFormat},
	{"ErrMalformedResult", ErrMalformedResult, "omega: malformed result", ErrFormat},
	{"ErrMalformedSnapshot", ErrMalformedSnapshot, "omega: malformed snapshot", ErrFormat},
	{"ErrReplayFormat", ErrReplayFormat, "omega: replay format error", ErrFormat},
	{"ErrBatchTooLarge", ErrBatchTooLarge, "omega: batch too large", ErrFormat},
	{"ErrBadKey", ErrBadKey, "omega: bad key", ErrFormat},
	{"ErrInvalidState", ErrInvalidState, "omega: invalid state", ErrFormat},
	{"ErrCannotCertify", ErrCannotCertify, "omega: cannot certify", ErrFormat},

	{"ErrMalformedCertificate", ErrMalformedCertificate, "omega: malformed certificate", ErrVerification},
	{"ErrBodyHash", ErrBodyHash, "omega: certificate body hash mismatch", ErrVerification},
	{"ErrCertID", ErrCertID, "omega: certificate id mismatch", ErrVerification},
	{"ErrUnknownKey", ErrUnknownKey, "omega: certificate signed by an unknown key", ErrVerification},
	{"ErrBadSignature", ErrBadSignature, "omega: bad certificate signature", ErrVerification},
	{"ErrDigestMismatch", ErrDigestMismatch, "omega: certificate digest mismatch", ErrVerification},
	{"ErrChainLink", ErrChainLink, "omega: certificate chain link broken", ErrVerification},
	{"ErrBatchOrder", ErrBatchOrder, "omega: certificate batch id out of order", ErrVerification},
	{"ErrChainState", ErrChainState, "omega: certificate chain state mismatch", ErrVerification},
	{"ErrObstructionInvalid", ErrObstructionInvalid, "omega: obstruction does not verify", ErrVerification},
	{"ErrPriorMismatch", ErrPriorMismatch, "omega: obstruction names another prior state", ErrVerification},
	{"ErrNotIncluded", ErrNotIncluded, "omega: event not included", ErrVerification},

	{"ErrNotEd25519", ErrNotEd25519, "omega: signer is not an Ed25519 key", nil},
	{"framelog.ErrInvalidFrameType", framelog.ErrInvalidFrameType, "omega: invalid frame type", nil},
	{"framelog.ErrFrameTooLarge", framelog.ErrFrameTooLarge, "omega: frame too large", nil},
	{"framelog.ErrWriterClosed", framelog.ErrWriterClosed, "omega: frame writer closed", nil},
	{"framelog.ErrWriterFailed", framelog.ErrWriterFailed, "omega: frame writer failed", nil},
	{"framelog.ErrUnknownSyncPolicy", framelog.ErrUnknownSyncPolicy, "omega: unknown sync policy", nil},
	{"ErrJournal", ErrJournal, "omega: journal refused the batch", nil},
	{"ErrKernelClosed", ErrKernelClosed, "omega: kernel closed", nil},
	{"ErrLocked", ErrLocked, "omega: file locked by another appender", nil},
	// omega's names for two errors of the frame log, the same values.
	{"framelog.ErrSchemaMismatch", framelog.ErrSchemaMismatch, "omega: binding mismatch: frame log bound to another schema", ErrFormat},
	{"framelog.ErrLocked", framelog.ErrLocked, "omega: file locked by another appender", nil},
}

var categories = []error{ErrFormat, ErrVerification, ErrDivergence}

// categoryOf returns the one category err wraps, nil for none, and fails t
// when err wraps more than one.
func categoryOf(t *testing.T, what string, err error) error {
	t.Helper()
	var found error
	for _, c := range categories {
		if errors.Is(err, c) && err != c {
			if found != nil {
				t.Errorf("%s wraps both %v and %v, want one category", what, found, c)
			}
			found = c
		}
	}
	return found
}

func TestSentinelCategories(t *testing.T) {
	for _, s := range sentinels {
		if got := s.err.Error(); got != s.msg {
			t.Errorf("%s.Error() = %q, want %q", s.name, got, s.msg)
		}
		if got := categoryOf(t, s.name, s.err); got != s.cat {
			t.Errorf("category of %s = %v, want %v", s.name, got, s.cat)
		}
		wrapped := fmt.Errorf("context: %w", s.err)
		if !errors.Is(wrapped, s.err) {
			t.Errorf("errors.Is(wrapped %s, %s) = false", s.name, s.name)
		}
		if s.cat != nil && !errors.Is(wrapped, s.cat) {
			t.Errorf("errors.Is(wrapped %s, %v) = false", s.name, s.cat)
		}
		for _, o := range sentinels {
			if o.name != s.name && o.err != s.cat && o.err != s.err && errors.Is(s.err, o.err) &&
				!(strings.HasSuffix(s.name, "ErrSchemaMismatch") && o.name == "ErrBindingMismatch") {
				t.Errorf("errors.Is(%s, %s) = true", s.name, o.name)
			}
		}
	}
}

// TestSentinelTableComplete fails when an exported Err variable of the
// package or of framelog is missing from sentinels, so that every new
// sentinel gets a category decided.
func TestSentinelTableComplete(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("framelog/*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	listed := map[string]bool{}
	for _, s := range sentinels {
		listed[s.name] = true
	}
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if !id.IsExported() || !strings.HasPrefix(id.Name, "Err") {
						continue
					}
					n++
					name := id.Name
					if filepath.Dir(file) == "framelog" {
						name = "framelog." + name
					}
					if !listed[name] {
						t.Errorf("exported %s is not in the sentinel table: decide its category", name)
					}
				}
			}
		}
	}
	if n != len(sentinels) {
		t.Errorf("found %d exported Err variables, the table lists %d", n, len(sentinels))
	}
}

// TestErrorTypeCategories checks that each error type unwraps to its
// specific sentinel and through it to one category.
func TestErrorTypeCategories(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		sentinel error
		cat      error
	}{
		{"framelog.HeaderError", &framelog.HeaderError{Field: "magic"}, framelog.ErrBadHeader, ErrFormat},
		{"framelog.FrameError torn", &framelog.FrameError{Err: framelog.ErrTornTail}, framelog.ErrTornTail, ErrFormat},
		{"framelog.FrameError corrupt", &framelog.FrameError{Err: framelog.ErrCorrupt}, framelog.ErrCorrupt, ErrFormat},
		{"EventError", &EventError{Index: 3, Field: "lamport"}, ErrMalformedEvent, ErrFormat},
		{"BindingError", &BindingError{}, ErrBindingMismatch, ErrFormat},
		{"SnapshotError", &SnapshotError{Offset: -1, Reason: "x"}, ErrMalformedSnapshot, ErrFormat},
		{"SnapshotError with a frame error", &SnapshotError{Offset: 64, Err: &framelog.FrameError{Err: framelog.ErrCorrupt}}, framelog.ErrCorrupt, ErrFormat},
		{"ChainError", &ChainError{Index: 2, Err: fmt.Errorf("%w: x", ErrChainLink)}, ErrChainLink, ErrVerification},
		{"ChainError with a binding", &ChainError{Err: &BindingError{}}, ErrBindingMismatch, ErrFormat},
		{"CertLogError corrupt", &CertLogError{Err: fmt.Errorf("%w: EVENT frame", framelog.ErrCorrupt)}, framelog.ErrCorrupt, ErrFormat},
		{"CertLogError malformed", &CertLogError{Err: malformed(0, "x")}, ErrMalformedCertificate, ErrVerification},
		{"Incident", &Incident{Field: FieldMember}, ErrDivergence, ErrDivergence},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.sentinel) {
			t.Errorf("errors.Is(%s, %v) = false", tc.name, tc.sentinel)
		}
		if got := categoryOf(t, tc.name, tc.err); got != tc.cat {
			t.Errorf("category of %s = %v, want %v", tc.name, got, tc.cat)
		}
	}
}

func TestReplayReportErr(t *testing.T) {
	inc := &Incident{BatchID: 7, EventID: ID64(9), Field: FieldMember}
	if err := (&ReplayReport{Outcome: Deterministic}).Err(); err != nil {
		t.Errorf("Err of a deterministic replay = %v, want nil", err)
	}
	err := (&ReplayReport{Outcome: Diverged, Incident: inc}).Err()
	var got *Incident
	if !errors.Is(err, ErrDivergence) || !errors.As(err, &got) || got != inc {
		t.Errorf("Err of a diverged replay = %v, want the incident, wrapping ErrDivergence", err)
	}
	if want := "omega: replay incident: member differs at batch 7 (event 9)"; err.Error() != want {
		t.Errorf("Err().Error() = %q, want %q", err.Error(), want)
	}
}
