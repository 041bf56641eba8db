package omega

import (
	"encoding/hex"
	"strconv"
)

// Writing the JSON views (SPEC 4 and 6): compact, hashes and other bytes in
// lowercase hex, integers and ids in full decimal. These write a member
// after the first, with its leading ',', or a bare value; the result,
// binding and certificate views all use them.

// appendHashField appends ,"name":"<hex of h>".
func appendHashField(b []byte, name string, h Hash) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendHashString(b, h)
}

// appendHashString appends h as a JSON string of 64 lowercase hex digits.
func appendHashString(b []byte, h Hash) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, h[:])
	return append(b, '"')
}

// appendIDs appends ids as a JSON array of integers.
func appendIDs(b []byte, ids []EventID) []byte {
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = id.appendDecimal(b)
	}
	return append(b, ']')
}

// appendUintField appends ,"name":v.
func appendUintField(b []byte, name string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

// appendHexField appends ,"name":"<hex of v>".
func appendHexField(b []byte, name string, v []byte) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = hex.AppendEncode(b, v)
	return append(b, '"')
}

// appendCheckerVersion appends a checker_version: an array of three
// integers, in the binding view and the certificate view alike.
func appendCheckerVersion(b []byte, cv [3]uint16) []byte {
	b = append(b, '[')
	for i, v := range cv {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return append(b, ']')
}
