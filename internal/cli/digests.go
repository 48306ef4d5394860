package cli

import (
	"io"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// dataDigests is how vet, plan and run check data files against their
// sha256 pins: the resolver's hasher, whose memo in the cache directory
// makes an unchanged file cost a stat. progress, when set, hears about
// large files being hashed.
func dataDigests(c cacheFlag, progress io.Writer) config.Digester {
	h := &resolve.Hasher{MemoDir: c.dirs().Hashes}
	if progress != nil {
		h.Progress = hashProgress(progress)
	}
	return h.SHA256
}
