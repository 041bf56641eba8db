module github.com/omega-sheaf/omega/transparency

go 1.26.0

require (
	github.com/omega-sheaf/omega v0.0.0
	github.com/transparency-dev/formats v0.1.1
	github.com/transparency-dev/merkle v0.0.2
	github.com/zeebo/blake3 v0.2.4
	golang.org/x/mod v0.43.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	filippo.io/mldsa v0.0.0-20260215214346-43d0283efc3e // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	golang.org/x/crypto v0.52.0 // indirect
)

replace github.com/omega-sheaf/omega => ../
