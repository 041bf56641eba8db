package predicates

import (
	"encoding/hex"
	"errors"
	"testing"
)

// From SPEC 4 and the "binding" vector of vectors.json.
const (
	wantCatalogHex  = "0100000006000000e90300000111006c616d706f72745f6d6f6e6f746f6e69632300666f726d616c3a2f2f6f72646572696e672f6c616d706f72745f6d6f6e6f746f6e6963ea030000010c006576656e745f756e697175651e00666f726d616c3a2f2f6f72646572696e672f6576656e745f756e69717565eb030000020c0063617573616c5f6f726465721e00666f726d616c3a2f2f6f72646572696e672f63617573616c5f6f72646572d10700000112007061796c6f61645f686173685f6d617463682600666f726d616c3a2f2f646570656e64656e63792f7061796c6f61645f686173685f6d61746368d2070000021000646570656e64656e63795f6b6e6f776e2400666f726d616c3a2f2f646570656e64656e63792f646570656e64656e63795f6b6e6f776eb90b00000211006f7665726c61705f61677265656d656e741a00666f726d616c3a2f2f6f7665726c61702f61677265656d656e74"
	wantCatalogHash = "190ddf6dc268a1cea3bd1d6117382164fdcf896ba551dc2117860ea18c9f02f7"
)

func TestDefaultCatalogVector(t *testing.T) {
	c := Default()
	if got := hex.EncodeToString(c.AppendBinary(nil)); got != wantCatalogHex {
		t.Errorf("AppendBinary = %s, want %s", got, wantCatalogHex)
	}
	h := c.Hash()
	if got := hex.EncodeToString(h[:]); got != wantCatalogHash {
		t.Errorf("Hash = %s, want %s", got, wantCatalogHash)
	}
}

func TestDomainEntryChangesHash(t *testing.T) {
	base := Default().Hash()
	e := Entry{ID: 4001, Name: "balance_non_negative", Arity: 1, SemanticsRef: "app://ledger/balance/v1"}
	c, err := New(e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() == base {
		t.Error("registering a domain entry left the catalog hash unchanged")
	}
	e2 := e
	e2.SemanticsRef = "app://ledger/balance/v2"
	c2, err := New(e2)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Hash() == c.Hash() {
		t.Error("changing a semantics_ref left the catalog hash unchanged")
	}
	if got, ok := c.Lookup(4001); !ok || got != e {
		t.Errorf("Lookup(4001) = %v, %v; want %v, true", got, ok, e)
	}
	if n := len(c.Entries()); n != 7 {
		t.Errorf("len(Entries()) = %d, want 7", n)
	}
	// Order of registration does not matter.
	a, _ := New(Entry{ID: 4002, Name: "a"}, Entry{ID: 4001, Name: "b"})
	b, _ := New(Entry{ID: 4001, Name: "b"}, Entry{ID: 4002, Name: "a"})
	if a.Hash() != b.Hash() {
		t.Error("catalog hash depends on registration order")
	}
}

func TestNewRefusesBadEntries(t *testing.T) {
	long := string(make([]byte, 1<<16))
	for _, tc := range []struct {
		name string
		in   []Entry
	}{
		{"builtin id", []Entry{{ID: 1001, Name: "x"}}},
		{"below range", []Entry{{ID: 3999, Name: "x"}}},
		{"above range", []Entry{{ID: 5000, Name: "x"}}},
		{"empty name", []Entry{{ID: 4000}}},
		{"long name", []Entry{{ID: 4000, Name: long}}},
		{"long ref", []Entry{{ID: 4000, Name: "x", SemanticsRef: long}}},
		{"duplicate", []Entry{{ID: 4000, Name: "x"}, {ID: 4000, Name: "y"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.in...); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("New(%v) error = %v, want ErrInvalidEntry", tc.in, err)
			}
		})
	}
}
