// Package cas is ftc's content-addressed store and action cache.
//
// Blobs are files named by their sha256. A directory is stored as a tree:
// a canonical JSON manifest of (path, mode, size, digest) entries, itself a
// blob. An action entry maps a stage key to the trees of its outputs.
//
// The commit protocol (DESIGN.md §3 rule 6) makes the store safe against
// crashes at any instant: data is written to a temporary file on the same
// file system, fsynced, checked against its digest and renamed into place;
// the action entry is written last, also by rename. A reader therefore
// sees either no entry or an entry whose blobs were complete before it was
// written. A hit counts only when every blob it names is present and
// verifies; a blob is re-hashed unless its (size, mtime, ctime, inode)
// match the memo its last full verification wrote beside it.
//
// What that guarantees: any change to a blob made through the file system
// — an edit, a truncation, a copy or rename over it, a restore from a
// backup — changes its ctime or inode, which no user can set back, so the
// next hit re-hashes it and refuses it if it no longer matches. What it
// does not: someone who can write the store can rewrite a blob and then
// its memo to match the new file; the quick check then trusts the forged
// blob. The memo guards against accidents and stale data, not against a
// forger with write access to the store. `ftc cache verify` (Verify)
// re-hashes every blob whatever its memo says, and so catches both.
//
// Several processes may share a store: stage execution is serialised per
// key with file locks (Lock), and every write is idempotent.
package cas
