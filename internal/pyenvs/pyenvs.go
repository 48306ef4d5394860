// Package pyenvs holds the locked Python test environments: for each stock
// profile, a recipe on it (stdlib/python/envs/PROFILE/recipe.cue) and the
// closure of its Python packages with hashes (requirements.txt beside it),
// resolved by ftc lock's own resolution (compiler/image.Requirements,
// runtime/build's pip report) without BuildKit, for CI's CPython 3.11.
// scripts/pyvenv.sh installs a file with pip --require-hashes; the tests
// of the entrypoints run there, on exactly what `ftc build` installs.
package pyenvs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/runtime/build"
)

// Dir is the folder of the environments, relative to the repository root.
const Dir = "stdlib/python/envs"

// Profiles are the environments, by profile name.
var Profiles = []string{"pinned-2025q1", "current-2026"}

// PythonVersion is the interpreter the environments are for: CI's. A
// profile naming another version is locked for this one with the same
// package versions, and the file's header says so.
const PythonVersion = "3.11"

// Target is what the environments are resolved for: CPython 3.11 wheels
// for x86_64 Linux up to glibc 2.35 (Ubuntu 22.04, the oldest stock base;
// Debian 12 has 2.36).
func Target() build.LocalTarget {
	return build.LocalTarget{PythonVersion: PythonVersion, Platforms: build.ManylinuxPlatforms(35)}
}

// Env is one environment: its recipe and what it requires.
type Env struct {
	Profile string
	Recipe  *config.Recipe
	// Requirements are the recipe's top-level packages (the profile's).
	Requirements []image.Requirement
}

// RecipePath and RequirementsPath are an environment's files under root.
func RecipePath(root, profile string) string {
	return filepath.Join(root, Dir, profile, "recipe.cue")
}

func RequirementsPath(root, profile string) string {
	return filepath.Join(root, Dir, profile, "requirements.txt")
}

// SdistRequirementsPath is the environment's sdists (image.SourceBuilt),
// which scripts/pyvenv.sh builds after installing the wheels; absent when
// the closure has none.
func SdistRequirementsPath(root, profile string) string {
	return filepath.Join(root, Dir, profile, "requirements-sdist.txt")
}

// Load vets an environment's recipe.
func Load(root, profile string) (*Env, error) {
	r, _, err := compiler.Vet(RecipePath(root, profile), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RecipePath(root, profile), err)
	}
	if r.Environment.Profile != profile {
		return nil, fmt.Errorf("%s: profile %q, want %q", RecipePath(root, profile), r.Environment.Profile, profile)
	}
	return &Env{Profile: profile, Recipe: r, Requirements: image.Requirements(r)}, nil
}

// Input identifies a resolution: the requirements and the target. A file
// resolved for another input is stale.
func (e *Env) Input() string {
	return image.RequirementsDigest(e.Requirements, Target().String(), image.DefaultPlatform)
}

// Render is the requirements file: a header naming what was resolved and
// for what, then image.RequirementsTxt, the very file an image installs.
// The closure's sdists (image.InstallPasses' second pass) are a file of
// their own, sdists (nil when there are none), whose header gives pip's
// options and the build's environment ("# pip-args", "# build-env") for
// scripts/pyvenv.sh.
func (e *Env) Render(pkgs []image.Package) (wheels, sdists []byte) {
	passes, err := image.InstallPasses(pkgs)
	if err != nil {
		panic(err) // ftc lock's resolution gives no other sdists
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The Python test environment of profile %s: %s resolved by ftc lock's resolution\n", e.Profile, filepath.ToSlash(filepath.Join(Dir, e.Profile, "recipe.cue")))
	py := e.Recipe.Environment.Python
	note := ""
	if py != PythonVersion {
		note = fmt.Sprintf(" (the profile names Python %s; same package versions)", py)
	}
	fmt.Fprintf(&b, "# for CPython %s%s, %s.\n", PythonVersion, note, Target().Platforms[0])
	fmt.Fprintf(&b, "# Regenerate: go run ./internal/pyenvs/pylock (network); go test ./internal/pyenvs checks it is current.\n")
	fmt.Fprintf(&b, "# input %s\n", e.Input())
	var reqs []string
	for _, r := range e.Requirements {
		reqs = append(reqs, r.Name+"=="+r.Version)
	}
	fmt.Fprintf(&b, "# requires %s\n", strings.Join(reqs, " "))
	b.Write(image.RequirementsTxt(passes[0].Packages, e.Profile))
	for _, p := range passes[1:] {
		var s bytes.Buffer
		fmt.Fprintf(&s, "# The sdists of the Python test environment of profile %s (see requirements.txt beside it), built\n", e.Profile)
		fmt.Fprintf(&s, "# after its wheels are installed, by pip install with these options and environment.\n")
		fmt.Fprintf(&s, "# input %s\n", e.Input())
		fmt.Fprintf(&s, "# pip-args %s\n", strings.Join(p.Args, " "))
		fmt.Fprintf(&s, "# build-env %s\n", strings.Join(p.Env, " "))
		s.Write(image.RequirementsTxt(p.Packages, e.Profile))
		sdists = s.Bytes()
	}
	return b.Bytes(), sdists
}

// Locked is a parsed requirements file.
type Locked struct {
	Input    string
	Packages map[string]image.Package // by normalized name
}

// Parse reads a file Render wrote.
func Parse(b []byte) (*Locked, error) {
	l := &Locked{Packages: map[string]image.Package{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "# input "); ok {
			l.Input = v
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		name, version, ok := strings.Cut(f[0], "==")
		if !ok || len(f) < 2 {
			return nil, fmt.Errorf("line %d: want NAME==VERSION --hash=sha256:HEX...", n)
		}
		p := image.Package{Name: name, Version: version}
		for _, h := range f[1:] {
			hex, ok := strings.CutPrefix(h, "--hash=sha256:")
			if !ok || len(hex) != 64 {
				return nil, fmt.Errorf("line %d: %q is not --hash=sha256:<64 hex>", n, h)
			}
			p.Hashes = append(p.Hashes, "sha256:"+hex)
		}
		l.Packages[image.Normalize(name)] = p
	}
	if l.Input == "" {
		return nil, fmt.Errorf("no \"# input\" line")
	}
	return l, sc.Err()
}

// Check reports why the committed file is stale for e, without network:
// another input (the profile's packages or the target changed), or a
// top-level package missing or at another version.
func (e *Env) Check(root string) error {
	path := RequirementsPath(root, e.Profile)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (go run ./internal/pyenvs/pylock writes it)", err)
	}
	l, err := Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	if sb, err := os.ReadFile(SdistRequirementsPath(root, e.Profile)); err == nil {
		s, err := Parse(sb)
		if err != nil {
			return fmt.Errorf("%s: %w", SdistRequirementsPath(root, e.Profile), err)
		}
		if s.Input != l.Input {
			problems = append(problems, fmt.Sprintf("%s was resolved for input %s, %s for %s", SdistRequirementsPath(root, e.Profile), s.Input, path, l.Input))
		}
		for n, p := range s.Packages {
			p.Sdist = true
			l.Packages[n] = p
		}
	}
	var pkgs []image.Package
	for _, p := range l.Packages {
		pkgs = append(pkgs, p)
	}
	if err := image.CheckSdists(pkgs); err != nil {
		problems = append(problems, err.Error())
	}
	for _, r := range e.Requirements {
		p, ok := l.Packages[image.Normalize(r.Name)]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is not locked", r.Name))
		case p.Version != r.Version:
			problems = append(problems, fmt.Sprintf("%s is locked at %s, the profile pins %s", r.Name, p.Version, r.Version))
		}
	}
	if l.Input != e.Input() {
		problems = append(problems, fmt.Sprintf("resolved for input %s, the recipe and target now give %s", l.Input, e.Input()))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s is stale (go run ./internal/pyenvs/pylock):\n\t%s", path, strings.Join(problems, "\n\t"))
	}
	return nil
}
