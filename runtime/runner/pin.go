package runner

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// Pins is what ftc pin finds in one recipe file.
type Pins struct {
	// Out is the file with every pin filled or updated (load.RewritePins).
	Out []byte
	// Sites are the file structs, in order.
	Sites []load.PinSite
	// Added, Updated and Current count the sites by what happened to
	// their pin; Failed is set when a site's file could not be hashed
	// (its Err says why).
	Added, Updated, Current int
	Failed                  bool
}

// Changed reports whether a pin was added or updated.
func (p *Pins) Changed() bool { return p.Added+p.Updated > 0 }

// PinFile hashes every local file that file names in a file struct
// (through hasher, relative to file's directory: resolve.PinSum) and
// rewrites its pins in memory; nothing is written.
func PinFile(file string, hasher *resolve.Hasher) (*Pins, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out, sites, err := load.RewritePins(file, src, resolve.PinSum(filepath.Dir(file), hasher))
	if err != nil {
		return nil, err
	}
	p := &Pins{Out: out, Sites: sites}
	for _, s := range sites {
		switch {
		case s.Err != nil:
			p.Failed = true
		case s.Old == s.New:
			p.Current++
		case s.Old == "":
			p.Added++
		default:
			p.Updated++
		}
	}
	return p, nil
}

// PinsLeft are the data pins vet still finds missing or stale in the
// recipe file (hashing through hasher): after ftc pin, those written in
// another file (an imported package, another file of the recipe's
// package).
func PinsLeft(file string, hasher *resolve.Hasher) diag.List {
	_, diags, _ := Vet(file, nil, compiler.Options{Digest: hasher.SHA256})
	var left diag.List
	for _, d := range diags.Errors() {
		if strings.HasSuffix(d.Path, ".file.sha256") {
			left = append(left, d)
		}
	}
	return left
}
