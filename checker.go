package omega

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// The version of this checker (major, minor, patch). It changes whenever
// some input could give a different result byte.
const (
	versionMajor = 1
	versionMinor = 0
	versionPatch = 0
)

// checkerVersion is the version of this checker as a binding holds it
// (every binding this package makes: read it from [DefaultBinding]).
func checkerVersion() [3]uint16 { return [3]uint16{versionMajor, versionMinor, versionPatch} }

// SchemaHash returns D("schema", SchemaDescriptor).
func schemaHash() Hash { return digest.Of(digest.Schema, []byte(SchemaDescriptor)) }

// Binding names the exact checker, event schema and predicate catalog that
// made a decision (SPEC 4). Every checker output carries one; certification
// and replay refuse an output whose binding differs from the one expected.
type Binding struct {
	CheckerVersion [3]uint16
	SchemaVersion  uint16
	SchemaHash     Hash
	CatalogHash    Hash
}

// bindingLen is the length of a binding's encoding: 3 x u16 || u16 || 2 x 32.
const bindingLen = 8 + 2*32

// AppendBinary appends checker_version 3 x u16 || schema_version u16 ||
// schema_hash || catalog_hash, the input of the binding digest.
func (b Binding) AppendBinary(dst []byte) ([]byte, error) { return b.appendBinary(dst), nil }

func (b Binding) appendBinary(dst []byte) []byte {
	for _, v := range b.CheckerVersion {
		dst = binary.LittleEndian.AppendUint16(dst, v)
	}
	dst = binary.LittleEndian.AppendUint16(dst, b.SchemaVersion)
	dst = append(dst, b.SchemaHash[:]...)
	return append(dst, b.CatalogHash[:]...)
}

// Digest returns binding_digest = D("binding", encoding).
func (b Binding) Digest() Hash {
	var buf [bindingLen]byte
	return digest.Of(digest.Binding, b.appendBinary(buf[:0]))
}

// String returns a short human form, such as "checker 1.0.0 schema 1 catalog 190ddf6d".
func (b Binding) String() string {
	v := b.CheckerVersion
	return fmt.Sprintf("checker %d.%d.%d schema %d (%x) catalog %x", v[0], v[1], v[2], b.SchemaVersion, b.SchemaHash[:4], b.CatalogHash[:4])
}

// BindingError reports which binding was expected and which was found. It
// unwraps to [ErrBindingMismatch].
type BindingError struct {
	Want, Got Binding
}

func (e *BindingError) Error() string {
	return fmt.Sprintf("omega: binding mismatch: want %v, got %v", e.Want, e.Got)
}

// Unwrap returns [ErrBindingMismatch].
func (e *BindingError) Unwrap() error { return ErrBindingMismatch }

// Check returns nil when b equals want, else a [*BindingError].
func (b Binding) Check(want Binding) error {
	if b != want {
		return &BindingError{Want: want, Got: b}
	}
	return nil
}

// DomainPredicate is a predicate supplied by the embedding program (ids
// 4000-4999, SPEC 4). The checker evaluates domain predicates after the
// built-ins, in ascending id, on each distinct content in canonical order.
//
// Violated must be deterministic and may look only at e and the prior State
// (read-only): its obstructions are re-checked later from the evidence
// alone. Its Entry is bound into the catalog hash; change the entry's
// SemanticsRef whenever Violated's behaviour changes. Violated may be called
// from several goroutines at once.
type DomainPredicate interface {
	Entry() predicates.Entry
	Violated(e *Event, prior *State) bool
}

// CheckerOptions configures a [Checker]. The zero value, or nil, means the
// built-in catalog, the default [Limits], and as many workers as GOMAXPROCS.
type CheckerOptions struct {
	// Domain predicates, with distinct ids in 4000-4999.
	Domain []DomainPredicate
	// Limits applied to every event of a batch.
	Limits Limits
	// Workers caps the goroutines Reconcile hashes on, at most MaxWorkers;
	// 0 means GOMAXPROCS. Results never depend on it.
	Workers int
}

// Checker reconciles batches under one [Binding]. It is safe for concurrent
// use.
//
// A Checker keeps scratch memory between calls: one set, sized for the
// largest batch it has decided (about 150 bytes per event for a batch in
// canonical order, 270 for one out of order), stays with it
// for as long as it lives, so that a garbage collection between two large
// batches does not make the second allocate it all again; the sets that
// concurrent calls need beyond that one are pooled and released under
// memory pressure. [Checker.ReleaseScratch] lets go of all of it.
type Checker struct {
	binding Binding
	catalog *predicates.Catalog
	domain  []domainPredicate // ascending by id
	limits  Limits
	workers int
	kept    atomic.Pointer[scratch] // the scratch that outlives collections
	scratch sync.Pool               // *scratch, for concurrent calls
}

// NewChecker returns a checker for opts (nil means defaults). It refuses
// domain predicates with invalid or repeated entries and a worker count
// out of range.
func NewChecker(opts *CheckerOptions) (*Checker, error) {
	var o CheckerOptions
	if opts != nil {
		o = *opts
	}
	entries := make([]predicates.Entry, len(o.Domain))
	for i, d := range o.Domain {
		if d == nil {
			return nil, fmt.Errorf("%w: domain predicate %d is nil", predicates.ErrInvalidEntry, i)
		}
		entries[i] = d.Entry()
	}
	cat, err := predicates.New(entries...)
	if err != nil {
		return nil, err
	}
	domain := make([]domainPredicate, len(o.Domain))
	for i, d := range o.Domain {
		domain[i] = domainPredicate{id: entries[i].ID, p: d}
	}
	slices.SortFunc(domain, func(a, b domainPredicate) int { return cmp.Compare(a.id, b.id) })
	if o.Workers < 0 || o.Workers > MaxWorkers {
		return nil, fmt.Errorf("omega: CheckerOptions.Workers %d out of range 0..%d", o.Workers, MaxWorkers)
	}
	workers := o.Workers
	if workers == 0 {
		workers = min(runtime.GOMAXPROCS(0), MaxWorkers)
	}
	return &Checker{
		binding: Binding{
			CheckerVersion: checkerVersion(),
			SchemaVersion:  SchemaVersion,
			SchemaHash:     schemaHash(),
			CatalogHash:    cat.Hash(),
		},
		catalog: cat,
		domain:  domain,
		limits:  o.Limits,
		workers: workers,
	}, nil
}

// domainPredicate is a domain predicate with the id its entry had when the
// checker was made: the id the catalog hash binds.
type domainPredicate struct {
	id predicates.ID
	p  DomainPredicate
}

// DefaultBinding returns the binding of a checker with the built-in catalog
// alone: this checker's version (1.0.0), schema version 1, SchemaHash and
// the built-in CatalogHash.
func DefaultBinding() Binding {
	return Binding{
		CheckerVersion: checkerVersion(),
		SchemaVersion:  SchemaVersion,
		SchemaHash:     schemaHash(),
		CatalogHash:    predicates.Default().Hash(),
	}
}

// Binding returns the checker's binding.
func (c *Checker) Binding() Binding { return c.binding }

// Limits returns the limits the checker applies to every event, as
// CheckerOptions gave them (zero fields mean the defaults): what a program
// taking events in for the checker checks them against with
// Event.Validate, as the Kernel's Submit does.
func (c *Checker) Limits() Limits { return c.limits }

// Catalog returns the checker's predicate catalog.
func (c *Checker) Catalog() *predicates.Catalog { return c.catalog }

// Output is what a checker produces for one batch: the result and the
// binding of the checker that made it.
type Output struct {
	Result  *Result
	Binding Binding
}

// Validate returns nil when the output was made under want, else a
// [*BindingError]: the core safety rule of SPEC 4.
func (o *Output) Validate(want Binding) error { return o.Binding.Check(want) }
