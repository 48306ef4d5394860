package build

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// Observer hears what Recipe and LockRecipe do, so that a caller can say
// it (only internal/cli prints). Every method may be left to NopObserver.
type Observer interface {
	// Locked says that the lock at path was written with what lr pinned
	// now; Recipe calls it only when the lock changed.
	Locked(path string, lr *LockResult)
	// Built says that the image is made (not yet published).
	Built(b *Built)
	// Published says where a publisher put the image; pushed is set for
	// a registry, where is then the reference by digest.
	Published(where string, pushed bool)
}

// NopObserver hears nothing.
type NopObserver struct{}

func (NopObserver) Locked(string, *LockResult) {}
func (NopObserver) Built(*Built)               {}
func (NopObserver) Published(string, bool)     {}

// RecipeOptions say how Recipe builds a vetted recipe's image.
type RecipeOptions struct {
	// Builder builds the environment and appends the ftc layers.
	Builder *Builder
	// Frozen refuses anything unpinned: nothing is locked, and a missing
	// pin fails with image.Unpinned. Otherwise what the lock lacks is
	// locked first (Lock, with LockOptions) and the lock written.
	Frozen      bool
	LockOptions LockOptions
	// Spec's inputs that do not come from the recipe or the lock.
	Entrypoints fs.FS
	Version     string
	Epoch       int64
	// Publishers, made for the recipe's name (Recipe calls it with it):
	// each writes or pushes the image with its SBOM and provenance. None
	// builds only.
	Publishers func(name string) []Publisher
	// IIDFile, when set, receives the image's reference by digest
	// (REPO@sha256:… when pushed, else sha256:…) and a newline.
	IIDFile string
	// Observer hears each step; nil is NopObserver.
	Observer Observer
}

// Built is an image Recipe made, with what it was made from.
type Built struct {
	Recipe   *config.Recipe
	Lock     *resolve.Lock
	LockPath string
	Spec     *image.Spec
	*Result
	Epoch int64
	// Took is how long the build (not the lock) took.
	Took time.Duration
	// Ref is the image by digest: the last registry's REPO@sha256:… when
	// pushed, else sha256:….
	Ref string
}

// Recipe is ftc build as a library: lock what ftc.lock (beside the
// recipe) lacks unless o.Frozen, compile the image spec, build it (the
// environment by BuildKit or from the cache, the ftc layers appended),
// and publish it with its attachments.
//
// What was locked stays locked: the lock is written when it changed,
// even when locking failed part-way (Lock), so that the work is not lost.
func Recipe(ctx context.Context, r *config.Recipe, o RecipeOptions) (*Built, error) {
	obs := o.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	lockPath := filepath.Join(r.Dir, resolve.LockFile)
	lock, err := resolve.ReadLock(lockPath)
	if err != nil {
		return nil, err
	}
	if !o.Frozen {
		before := string(lock.Bytes())
		lr, err := Lock(ctx, o.Builder, r, lock, o.LockOptions)
		changed := string(lock.Bytes()) != before
		if changed && lr != nil {
			if werr := lock.Write(lockPath); werr != nil {
				return nil, &resolve.WriteError{Path: lockPath, Err: werr}
			}
		}
		if err != nil {
			return nil, err
		}
		if changed {
			obs.Locked(lockPath, lr)
		}
	}
	spec, err := Spec(r, lock, SpecOptions{Entrypoints: o.Entrypoints, Version: o.Version, Epoch: o.Epoch})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := o.Builder.Build(ctx, spec)
	if err != nil {
		return nil, err
	}
	b := &Built{Recipe: r, Lock: lock, LockPath: lockPath, Spec: spec, Result: res, Epoch: o.Epoch,
		Took: time.Since(start), Ref: res.Digest.String()}
	obs.Built(b)
	if o.Publishers == nil {
		return b, nil
	}
	atts, err := Attachments(spec, res, r, lock, o.Version)
	if err != nil {
		return nil, err
	}
	for _, p := range o.Publishers(r.Name) {
		where, err := p.Publish(ctx, res.Image, atts)
		if err != nil {
			return nil, err
		}
		_, pushed := p.(Registry)
		if pushed {
			b.Ref = where
		}
		obs.Published(where, pushed)
	}
	if o.IIDFile != "" {
		if err := os.WriteFile(o.IIDFile, []byte(b.Ref+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// LockRecipe is ftc lock's image part as a library: it pins what r's image
// needs (Lock) into the ftc.lock beside the recipe and writes it, also when
// Lock failed after pinning some of it (lr is then non-nil with the error).
func LockRecipe(ctx context.Context, b *Builder, r *config.Recipe, o LockOptions) (lr *LockResult, lockPath string, err error) {
	lockPath = filepath.Join(r.Dir, resolve.LockFile)
	lock, err := resolve.ReadLock(lockPath)
	if err != nil {
		return nil, lockPath, err
	}
	lr, err = Lock(ctx, b, r, lock, o)
	if lr == nil {
		return nil, lockPath, err
	}
	if werr := lock.Write(lockPath); werr != nil {
		return lr, lockPath, &resolve.WriteError{Path: lockPath, Err: werr}
	}
	return lr, lockPath, err
}

// ErrDestination is a destination that is neither oci:DIR nor
// oci-archive:FILE.
var ErrDestination = errors.New("want oci:DIR or oci-archive:FILE")

// Destinations are where ftc build puts an image: Output, an OCI layout
// (oci:DIR) or archive (oci-archive:FILE), and Push, a registry
// reference REPO[:TAG]; neither is the layout oci:ftc-image. Progress
// receives a push's progress (nil: none).
type Destinations struct {
	Output, Push string
	// Name, when set, is the image's name in a layout or archive instead
	// of the one Publishers' function is given (the recipe's).
	Name     string
	Epoch    int64
	Progress io.Writer
}

// Publishers checks the destinations and returns their publishers, made
// for the image's name: the layout or archive first, then the registry.
func (d Destinations) Publishers() (func(name string) []Publisher, error) {
	var out []func(string) Publisher
	dest := d.Output
	if dest == "" && d.Push == "" {
		dest = "oci:ftc-image"
	}
	if dest != "" {
		kind, where, ok := strings.Cut(dest, ":")
		switch {
		case !ok || where == "":
			return nil, ErrDestination
		case kind == "oci":
			out = append(out, func(name string) Publisher { return Layout{Dir: where, Name: name} })
		case kind == "oci-archive":
			out = append(out, func(name string) Publisher { return Archive{Path: where, Name: name, Epoch: d.Epoch} })
		default:
			return nil, ErrDestination
		}
	}
	if d.Push != "" {
		out = append(out, func(string) Publisher { return Registry{Ref: d.Push, Progress: d.Progress} })
	}
	return func(name string) []Publisher {
		if d.Name != "" {
			name = d.Name
		}
		ps := make([]Publisher, len(out))
		for i, p := range out {
			ps[i] = p(name)
		}
		return ps
	}, nil
}
