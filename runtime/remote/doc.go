// Package remote shares ftc's cache through an OCI registry, the kind of
// server teams already run.
//
// A stage's cache entry becomes an OCI artifact tagged with its key
// ("sha256-<hex>"): the manifest's config is the action entry, its layers
// are the tree manifests and file blobs, uncompressed, so a layer's digest
// is the blob's own sha256 and the registry is content-addressed exactly
// like the local store. Pushing skips blobs the registry has (and whole
// entries it has); pulling skips blobs the local store has and verifies
// every byte it receives before committing it. Credentials come from the
// standard docker config keychain.
package remote
