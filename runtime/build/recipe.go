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
	// Base is the base image by digest.
	Base string
	// BasePinned is set when the base's digest was looked up now.
	BasePinned bool
	// Resolved is set when the Python closure was resolved now; Packages
	// is the closure (resolved or kept).
	Resolved bool
	Packages []image.Package
}

// Lock pins what r's image needs into lock: the base image's digest (from
// the registry, when the profile names a tag and the lock has none) and
// the Python closure (resolved inside BuildKit, in the base, when the
// lock has none for the current requirements, or update is set).
func Lock(ctx context.Context, b *Builder, r *config.Recipe, lock *resolve.Lock, update bool) (*LockResult, error) {
	env := r.Environment
	res := &LockResult{}
	digest := env.Base.Digest
	if digest == "" {
		digest = lock.Bases[env.Base.Image]
		if digest == "" || update {
			d, err := PinBase(ctx, env.Base.Image)
			if err != nil {
				return nil, err
			}
			if lock.Bases == nil {
				lock.Bases = map[string]string{}
			}
			lock.Bases[env.Base.Image], digest, res.BasePinned = d, d, true
		}
	}
	res.Base, _ = image.BaseRef(env, digest)

	reqs := image.Requirements(r)
	if len(reqs) == 0 {
		lock.Python = nil
		return res, nil
	}
	input := image.RequirementsDigest(reqs, res.Base, image.DefaultPlatform)
	if lock.Python != nil && lock.Python.Input == input && !update {
		res.Packages = packagesOf(lock.Python)
		return res, nil
	}
	pkgs, err := b.ResolvePython(ctx, res.Base, image.DefaultPlatform, reqs)
	if err != nil {
		return nil, err
	}
	lock.Python = &resolve.PythonLock{Input: input}
	for _, p := range pkgs {
		lock.Python.Packages = append(lock.Python.Packages, resolve.PythonPackage{Name: p.Name, Version: p.Version, Hashes: p.Hashes})
	}
	res.Resolved, res.Packages = true, pkgs
	return res, nil
}

func packagesOf(l *resolve.PythonLock) []image.Package {
	if l == nil {
		return nil
	}
	var out []image.Package
	for _, p := range l.Packages {
		out = append(out, image.Package{Name: p.Name, Version: p.Version, Hashes: p.Hashes})
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
