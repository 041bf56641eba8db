//go:build !amd64 || purego

package digest

import "testing"

func archImpls8(testing.TB) []impl8 { return nil }
