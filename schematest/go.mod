module github.com/omega-sheaf/omega/schematest

go 1.26

require (
	github.com/omega-sheaf/omega v0.0.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
	golang.org/x/text v0.14.0 // indirect
)

replace github.com/omega-sheaf/omega => ../
