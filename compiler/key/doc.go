// Package key is the one place content keys are computed.
//
// A key is sha256 over a domain string, a version and the canonical JSON
// encoding of a typed material: object keys sorted, numbers as written by
// encoding/json, no insignificant white space, no HTML escaping. Materials
// hold content only — parameters, pins, digests and the keys of inputs —
// never names, paths, timestamps, hostnames or environment variables, so
// the same recipe gives the same keys on any machine, in any directory.
//
// A change to what a material holds or how it is encoded is a change of
// every key it produces: bump the material's version with it, and update
// the golden key files deliberately.
//
// This package imports the standard library only.
package key
