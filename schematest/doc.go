// Package schematest holds the tests that validate the omega command's
// real output against the JSON Schemas of testdata/schemas. It is a module
// of its own so that the validator, a test-only dependency, stays out of
// the core module.
package schematest
