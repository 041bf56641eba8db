//go:build amd64 && !purego

package digest

import "testing"

// archImpls8 adds the AVX2 path, called directly, where the CPU has it.
func archImpls8(t testing.TB) []impl8 {
	if !hasAVX2() {
		t.Log("no AVX2: the eight-lane path is not tested")
		return nil
	}
	return []impl8{{"avx2", hashChunks8AVX2, hashPairs8AVX2}}
}
