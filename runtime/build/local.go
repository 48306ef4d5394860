package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftc-dev/ftc/compiler/image"
)

// LocalTarget is what a resolution without BuildKit is for: pip runs on
// this machine, with pip's --platform/--python-version options standing in
// for the base image's interpreter.
type LocalTarget struct {
	// Pip is the interpreter that runs pip (python3 when empty); its own
	// version does not matter, PythonVersion does.
	Pip string
	// PythonVersion is the target interpreter, "3.11".
	PythonVersion string
	// Platforms are pip --platform tags, newest first (ManylinuxPlatforms).
	Platforms []string
	// IndexURL and Wheels as in Options; neither: pip's default index.
	IndexURL, Wheels string
}

// ManylinuxPlatforms are the x86_64 wheel platform tags a glibc of
// version 2.maxMinor accepts, newest first: pip --platform does not
// expand a tag into the older ones it implies.
func ManylinuxPlatforms(maxMinor int) []string {
	var out []string
	for m := maxMinor; m >= 5; m-- {
		out = append(out, fmt.Sprintf("manylinux_2_%d_x86_64", m))
	}
	return append(out, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
}

// RecipeTarget is what ftc lock resolves a profile's packages for when it
// resolves without the base image: the profile's CPython release and
// wheels for glibc up to 2.image.LockGlibc on the image platform (the
// identity image.TargetedRequirementsDigest hashes).
func RecipeTarget(python string, p image.Platform) (LocalTarget, error) {
	if p.OS != "linux" || p.Architecture != "amd64" {
		return LocalTarget{}, fmt.Errorf("resolving Python packages for %s without the base: only linux/amd64 is supported (ftc lock --in-base resolves in the base)", p)
	}
	return LocalTarget{PythonVersion: python, Platforms: ManylinuxPlatforms(image.LockGlibc)}, nil
}

// String names the target in lock headers and input digests.
func (t LocalTarget) String() string {
	p := ""
	if len(t.Platforms) > 0 {
		p = t.Platforms[0]
	}
	return fmt.Sprintf("cp%s %s", strings.ReplaceAll(t.PythonVersion, ".", ""), p)
}

// resolveWheelsLocal resolves the requirement lines in (wheels only) for
// t with pip on this machine (ResolvePythonLocal).
func resolveWheelsLocal(ctx context.Context, in []byte, t LocalTarget) ([]image.Package, error) {
	if t.PythonVersion == "" || len(t.Platforms) == 0 {
		return nil, fmt.Errorf("resolving Python packages: no target Python version or platform")
	}
	dir, err := os.MkdirTemp("", "ftc-resolve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	inPath, report := filepath.Join(dir, "requirements.in"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(inPath, in, 0o644); err != nil {
		return nil, err
	}
	abi := "cp" + strings.ReplaceAll(t.PythonVersion, ".", "")
	args := []string{"-m", "pip", "install", "--dry-run", "--ignore-installed", "--disable-pip-version-check",
		"--only-binary=:all:", "--python-version", t.PythonVersion, "--implementation", "cp", "--abi", abi,
		"--target", filepath.Join(dir, "target"), "--report", report, "-r", inPath}
	for _, p := range t.Platforms {
		args = append(args, "--platform", p)
	}
	switch {
	case t.Wheels != "":
		args = append(args, "--no-index", "--find-links", t.Wheels, "--no-cache-dir")
	case t.IndexURL != "":
		args = append(args, "--index-url", t.IndexURL)
	}
	py := t.Pip
	if py == "" {
		py = "python3"
	}
	cmd := exec.CommandContext(ctx, py, args...)
	// The machine's pip configuration (find-links, extra indexes) is not
	// part of the resolution.
	cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE=/dev/null", "PIP_FIND_LINKS=", "PIP_EXTRA_INDEX_URL=", "PIP_INDEX_URL=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tail := out.String()
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return nil, fmt.Errorf("resolving Python packages with pip: %w\n%s", err, tail)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		return nil, fmt.Errorf("pip wrote no report (pip ≥ 22.2 is needed): %w", err)
	}
	wheels := ""
	if t.Wheels != "" {
		if wheels, err = filepath.Abs(t.Wheels); err != nil {
			return nil, err
		}
	}
	pkgs, err := packagesFromReport(b, wheels)
	if err != nil {
		return nil, err
	}
	sortPackages(pkgs)
	return pkgs, nil
}

func sortPackages(pkgs []image.Package) {
	sort.Slice(pkgs, func(i, j int) bool { return image.Normalize(pkgs[i].Name) < image.Normalize(pkgs[j].Name) })
}
