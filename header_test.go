package omega

import (
	"errors"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
)

func TestHeaderCheck(t *testing.T) {
	want := DefaultBinding()
	bound := framelog.Header{SchemaVersion: want.SchemaVersion, SchemaHash: want.SchemaHash}
	otherHash := bound
	otherHash.SchemaHash[31] ^= 1
	otherVersion := bound
	otherVersion.SchemaVersion++
	unbound := framelog.Header{SchemaVersion: want.SchemaVersion}
	tests := []struct {
		name  string
		h     framelog.Header
		bound bool
		ok    bool
	}{
		{"this schema", bound, true, true},
		{"another schema hash", otherHash, true, false},
		{"another schema version", otherVersion, true, false},
		{"unbound", unbound, false, false},
		{"unbound, version 0", framelog.Header{}, false, false},
	}
	for _, tc := range tests {
		if got := tc.h.Bound(); got != tc.bound {
			t.Errorf("%s: Bound() = %v, want %v", tc.name, got, tc.bound)
		}
		err := want.CheckHeader(tc.h)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrSchemaMismatch) || !errors.Is(err, ErrBindingMismatch) || !errors.Is(err, ErrFormat)) {
			t.Errorf("%s: Check = %v, want an error wrapping ErrSchemaMismatch", tc.name, err)
		}
	}
}
