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
// match the last full verification, and ctime cannot be forged by a user,
// so tampering is always caught.
//
// Several processes may share a store: stage execution is serialised per
// key with file locks (Lock), and every write is idempotent.
package cas
