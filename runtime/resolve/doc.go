// Package resolve pins what a recipe leaves open and checks what it pins.
//
// Local files are hashed (sha256, streamed) and compared with the digest
// the recipe declares; a stat memo — size, mtime, ctime, inode — means an
// unchanged 10 GB file is not read twice. Hub models and datasets named by
// branch or tag are resolved to commits through the Hub's API when the
// network allows, and recorded in ftc.lock, a small sorted text file users
// commit; offline runs read the lock, and an unpinned reference with no
// lock entry is an error that says how to fix it.
//
// ftc lock's model step (LockModels) and ftc pin's digests (PinSum,
// ReplaceFile) are here as a library; the CLI only prints what they did.
package resolve
