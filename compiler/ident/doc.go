// Package ident decides, in one place, what ftc accepts as an identifier:
// a Hub commit id (a revision pinned for good) and a sha256 digest. The
// compiler, the lock file and the resolver all ask here, so "pinned" means
// the same thing to vet, to the lock and to the cache.
package ident
