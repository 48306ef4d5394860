package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	ftcremote "github.com/ftc-dev/ftc/runtime/remote"
	"github.com/ftc-dev/ftc/runtime/resolve"
)

// PinBase resolves an image reference (a tag) to the digest of what it
// names now, through the registry; credentials from the docker config.
func PinBase(ctx context.Context, ref string) (string, error) {
	var nopts []name.Option
	if ftcremote.IsLoopback(ref) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return "", fmt.Errorf("base image %q: %w", ref, err)
	}
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return "", fmt.Errorf("pinning base image %s: %w", ref, err)
	}
	return desc.Digest.String(), nil
}

// LockResult says what Lock did.
type LockResult struct {
	// Base is the base image by digest ("" when it could not be pinned).
	Base string
	// BasePinned is set when the base's digest was looked up now.
	BasePinned bool
	// Resolved is set when the Python closure was resolved now; Packages
	// is the closure (resolved or kept). Target says what it was
	// resolved for.
	Resolved bool
	Packages []image.Package
	Target   string
}

// LockOptions say how Lock resolves.
type LockOptions struct {
	// Update pins the base and resolves the closure again even when the
	// lock has them.
	Update bool
	// InBase resolves inside the base image with BuildKit, the base's own
	// pip and Python (the base is pinned first), instead of on this
	// machine for the profile's Python (RecipeTarget), which needs
	// neither a daemon nor the base.
	InBase bool
	// Pip is the interpreter that runs pip on this machine (python3 when
	// empty).
	Pip string
}

// Lock pins what r's image needs into lock: the Python closure (resolved
// on this machine for the profile's Python and platform, or inside the
// base with BuildKit when o.InBase) unless the lock has a current one, and
// the base image's digest (from the registry, when the profile names a
// tag and the lock has none).
//
// Resolved here, the closure does not depend on the base, so it is
// resolved first: when the base cannot be pinned (its registry is not
// reachable), lock still holds the closure, which is all ftc env create
// needs, and the error says so; LockResult is then non-nil.
func Lock(ctx context.Context, b *Builder, r *config.Recipe, lock *resolve.Lock, o LockOptions) (*LockResult, error) {
	res := &LockResult{}
	if o.InBase {
		if err := pinBase(ctx, r, lock, o.Update, res); err != nil {
			return nil, err
		}
	}
	reqs := image.Requirements(r)
	if len(reqs) == 0 {
		lock.Python = nil
	} else {
		base, _ := image.BaseRef(r.Environment, lock.Bases[r.Environment.Base.Image])
		if lock.Python != nil && !o.Update && image.PythonLockCurrent(r, base, lock.Python.Input, image.DefaultPlatform) {
			res.Packages = packagesOf(lock.Python)
		} else {
			var pkgs []image.Package
			var input string
			if o.InBase {
				input = image.RequirementsDigest(reqs, res.Base, image.DefaultPlatform)
				var err error
				if pkgs, err = b.ResolvePython(ctx, res.Base, image.DefaultPlatform, reqs); err != nil {
					return nil, err
				}
				res.Target = "in " + res.Base
			} else {
				t, err := RecipeTarget(r.Environment.Python, image.DefaultPlatform)
				if err != nil {
					return nil, err
				}
				t.Pip, t.IndexURL, t.Wheels = o.Pip, b.o.IndexURL, b.o.Wheels
				input = image.TargetedRequirementsDigest(reqs, r.Environment.Python, image.DefaultPlatform)
				if pkgs, err = ResolvePythonLocal(ctx, reqs, t); err != nil {
					return nil, err
				}
				res.Target = "for " + t.String()
			}
			lock.Python = &resolve.PythonLock{Input: input}
			for _, p := range pkgs {
				lock.Python.Packages = append(lock.Python.Packages, resolve.PythonPackage{Name: p.Name, Version: p.Version, Hashes: p.Hashes, Sdist: p.Sdist})
			}
			res.Resolved, res.Packages = true, pkgs
		}
	}
	if !o.InBase {
		if err := pinBase(ctx, r, lock, o.Update, res); err != nil {
			if len(reqs) > 0 {
				return res, fmt.Errorf("%w\n(the Python closure is locked: ftc env create can use it; ftc build needs the base pinned)", err)
			}
			return res, err
		}
	}
	return res, nil
}

// pinBase pins r's base tag in lock unless the profile or the lock has a
// digest (or update is set), and sets res.Base.
func pinBase(ctx context.Context, r *config.Recipe, lock *resolve.Lock, update bool, res *LockResult) error {
	env := r.Environment
	digest := env.Base.Digest
	if digest == "" {
		digest = lock.Bases[env.Base.Image]
		if digest == "" || update {
			d, err := PinBase(ctx, env.Base.Image)
			if err != nil {
				return err
			}
			if lock.Bases == nil {
				lock.Bases = map[string]string{}
			}
			lock.Bases[env.Base.Image], digest, res.BasePinned = d, d, true
		}
	}
	res.Base, _ = image.BaseRef(env, digest)
	return nil
}

func packagesOf(l *resolve.PythonLock) []image.Package {
	if l == nil {
		return nil
	}
	var out []image.Package
	for _, p := range l.Packages {
		out = append(out, image.Package{Name: p.Name, Version: p.Version, Hashes: p.Hashes, Sdist: p.Sdist})
	}
	return out
}

// SpecOptions are the parts of a spec that do not come from the recipe
// or the lock.
type SpecOptions struct {
	Entrypoints fs.FS
	Version     string
	Epoch       int64
}

// Spec compiles r's image spec from its lock. It fails with
// image.Unpinned when the lock lacks a pin.
func Spec(r *config.Recipe, lock *resolve.Lock, o SpecOptions) (*image.Spec, error) {
	in := image.Inputs{Entrypoints: o.Entrypoints, Version: o.Version, Epoch: o.Epoch}
	if lock != nil {
		in.BaseDigest = lock.Bases[r.Environment.Base.Image]
		if lock.Python != nil {
			in.Python, in.PythonInput = packagesOf(lock.Python), lock.Python.Input
		}
	}
	return image.Build(r, in)
}

// Attachments are the documents attached to a built image: its SBOM and
// its provenance statement.
func Attachments(spec *image.Spec, res *Result, r *config.Recipe, lock *resolve.Lock, version string) ([]Attachment, error) {
	sub := image.Subject{Name: r.Name, Digest: res.Digest.String()}
	sbom, err := image.SBOM(spec, sub, version)
	if err != nil {
		return nil, err
	}
	recipeDigest, err := image.RecipeDigest(r)
	if err != nil {
		return nil, err
	}
	lockSum := sha256.Sum256(lock.Bytes())
	prov, err := image.ProvenanceStatement(spec, sub, image.Provenance{
		RecipeDigest: recipeDigest, LockDigest: "sha256:" + hex.EncodeToString(lockSum[:]),
		Version: version, EnvironmentKey: string(res.EnvironmentKey),
	})
	if err != nil {
		return nil, err
	}
	return []Attachment{
		{ArtifactType: image.SBOMArtifactType, Title: "sbom.spdx.json", Data: sbom},
		{ArtifactType: image.ProvenanceArtifactType, Title: "provenance.intoto.json", Data: prov},
	}, nil
}
