// Package predicates is omega's predicate catalog as data (SPEC 4): each
// entry's id, name, arity and semantics reference, the catalog version, and
// the canonical encoding whose digest binds a checker's decisions to the
// catalog that made them.
//
// The package holds descriptions, not code. Executable domain predicates are
// values of an interface in package omega, passed to its checker; a
// [Catalog] only records what they claim to be, so that registering one, or
// changing its semantics reference, changes the catalog hash and with it
// every certificate's binding. There is no global registry.
package predicates

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/omega-sheaf/omega/internal/digest"
)

// Version is the catalog version of the built-in entries.
const Version = 1

// ID identifies a predicate.
type ID uint32

// The built-in predicates of catalog version 1, in the order of their ids.
// The checker evaluates them in another, fixed order: 2001, 3001, 1002,
// 1001, 1003, 2002 (SPEC 4).
const (
	LamportMonotonic ID = 1001
	EventUnique      ID = 1002
	CausalOrder      ID = 1003
	PayloadHashMatch ID = 2001
	DependencyKnown  ID = 2002
	OverlapAgreement ID = 3001
)

// Domain predicates, supplied by the embedding program, take ids in
// [DomainMin, DomainMax].
const (
	DomainMin ID = 4000
	DomainMax ID = 4999
)

// Entry describes one predicate. Arity and SemanticsRef are descriptive
// (arity is not the size of a conflict set) but bound into the catalog hash.
// A domain predicate whose behaviour changes must change its SemanticsRef.
type Entry struct {
	ID           ID
	Name         string
	Arity        uint8
	SemanticsRef string
}

var builtins = [...]Entry{
	{LamportMonotonic, "lamport_monotonic", 1, "formal://ordering/lamport_monotonic"},
	{EventUnique, "event_unique", 1, "formal://ordering/event_unique"},
	{CausalOrder, "causal_order", 2, "formal://ordering/causal_order"},
	{PayloadHashMatch, "payload_hash_match", 1, "formal://dependency/payload_hash_match"},
	{DependencyKnown, "dependency_known", 2, "formal://dependency/dependency_known"},
	{OverlapAgreement, "overlap_agreement", 2, "formal://overlap/agreement"},
}

// Builtins returns the six built-in entries, ascending by id. The slice is
// the caller's.
func Builtins() []Entry { return slices.Clone(builtins[:]) }

// IsBuiltin reports whether id is one of the six built-in predicates.
func IsBuiltin(id ID) bool {
	for _, e := range builtins {
		if e.ID == id {
			return true
		}
	}
	return false
}

// ErrInvalidEntry is the sentinel of every refused domain entry.
var ErrInvalidEntry = errors.New("omega: invalid predicate entry")

// Catalog is an immutable set of entries: the built-ins and any domain
// entries, ascending by id. It is safe for concurrent use.
type Catalog struct {
	entries []Entry
	hash    [digest.Size]byte
}

// New returns the catalog of the built-ins plus domain. Each domain entry
// must have an id in [DomainMin, DomainMax], not used twice, a non-empty
// name, and a name and semantics reference of at most 65535 bytes.
func New(domain ...Entry) (*Catalog, error) {
	entries := make([]Entry, 0, len(builtins)+len(domain))
	entries = append(entries, builtins[:]...)
	for _, d := range domain {
		if d.ID < DomainMin || d.ID > DomainMax {
			return nil, fmt.Errorf("%w: id %d outside the domain range %d-%d", ErrInvalidEntry, d.ID, DomainMin, DomainMax)
		}
		if d.Name == "" {
			return nil, fmt.Errorf("%w: id %d has an empty name", ErrInvalidEntry, d.ID)
		}
		if len(d.Name) > math.MaxUint16 || len(d.SemanticsRef) > math.MaxUint16 {
			return nil, fmt.Errorf("%w: id %d: name or semantics_ref longer than 65535 bytes", ErrInvalidEntry, d.ID)
		}
		entries = append(entries, d)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return int(int64(a.ID) - int64(b.ID)) })
	for i := 1; i < len(entries); i++ {
		if entries[i].ID == entries[i-1].ID {
			return nil, fmt.Errorf("%w: id %d registered twice", ErrInvalidEntry, entries[i].ID)
		}
	}
	c := &Catalog{entries: entries}
	c.hash = digest.Of(digest.Catalog, c.AppendBinary(nil))
	return c, nil
}

// Default returns the catalog of the six built-ins alone.
func Default() *Catalog {
	c, _ := New() // the built-ins are valid by construction
	return c
}

// Version returns the catalog version.
func (c *Catalog) Version() uint32 { return Version }

// Entries returns the entries ascending by id. The slice is the caller's.
func (c *Catalog) Entries() []Entry { return slices.Clone(c.entries) }

// Lookup returns the entry with id.
func (c *Catalog) Lookup(id ID) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(c.entries, id, func(e Entry, id ID) int { return int(int64(e.ID) - int64(id)) })
	if !ok {
		return Entry{}, false
	}
	return c.entries[i], true
}

// AppendBinary appends the canonical encoding of SPEC 4 to b:
// catalog_version u32 || entry count u32 || per entry, ascending by id:
// id u32 || arity u8 || name length u16 || name || semantics_ref length u16
// || semantics_ref. All integers little-endian.
func (c *Catalog) AppendBinary(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c.entries)))
	for _, e := range c.entries {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.ID))
		b = append(b, e.Arity)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.Name)))
		b = append(b, e.Name...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.SemanticsRef)))
		b = append(b, e.SemanticsRef...)
	}
	return b
}

// Hash returns CatalogHash = D("catalog", encoding).
func (c *Catalog) Hash() [digest.Size]byte { return c.hash }
