package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
)

// DefaultPlatform is the platform images are built for; stages run there
// (plan.Platform).
var DefaultPlatform = Platform{OS: "linux", Architecture: "amd64"}

// Inputs are what a spec needs beyond the recipe: the pins from ftc.lock
// and the files ftc ships.
type Inputs struct {
	// BaseDigest pins the base image when the profile names a tag only
	// (from ftc.lock); ignored when the profile has a digest.
	BaseDigest string
	// Python is the locked closure of the environment's Python
	// dependencies, and PythonInput the digest it was resolved for
	// (TargetedRequirementsDigest or RequirementsDigest).
	Python      []Package
	PythonInput string
	// Entrypoints holds the entrypoints package as ftc/… at its root.
	Entrypoints fs.FS
	// Version is ftc's version, for the label.
	Version string
	// Epoch is SOURCE_DATE_EPOCH.
	Epoch int64
}

// Unpinned lists what a build needs pinned and is not: each entry says
// what and how to fix it. `ftc build --frozen` refuses it; a plain build
// pins (ftc lock) and retries.
type Unpinned []string

func (u Unpinned) Error() string {
	return "not pinned:\n\t" + strings.Join(u, "\n\t")
}

// Requirement is a Python distribution at the exact version a profile
// pins.
type Requirement struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Requirements are the Python distributions a recipe's environment
// installs: the profile's packages, and the optional ones the recipe needs
// (deepspeed for ZeRO, vllm for a GRPO vLLM server, flash-attn for
// flash_attention_2), sorted by normalized name.
func Requirements(r *config.Recipe) []Requirement {
	env := r.Environment
	var out []Requirement
	for n, v := range env.Packages {
		out = append(out, Requirement{n, v})
	}
	for _, n := range neededOptional(r) {
		if v, ok := env.Optional[n]; ok {
			out = append(out, Requirement{n, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return Normalize(out[i].Name) < Normalize(out[j].Name) })
	return out
}

func neededOptional(r *config.Recipe) []string {
	var need []string
	if s := r.Hardware.Strategy; s == "zero2" || s == "zero3" {
		need = append(need, "deepspeed")
	}
	vllm, flash := false, false
	for _, name := range r.SortedStageNames() {
		st := r.Stages[name]
		if st.GRPO != nil && st.GRPO.Generation.Engine == "vllm" {
			vllm = true
		}
		for _, m := range []*config.Model{st.Model, st.Policy, st.Reference, st.Reward, st.Value} {
			if m != nil && m.Attention == "flash_attention_2" {
				flash = true
			}
		}
	}
	if vllm {
		need = append(need, "vllm")
	}
	if flash {
		need = append(need, "flash-attn")
	}
	return need
}

var normRE = regexp.MustCompile(`[-_.]+`)

// Normalize is a distribution name as PEP 503 compares them.
func Normalize(name string) string { return strings.ToLower(normRE.ReplaceAllString(name, "-")) }

// RequirementsIn is the resolver's input: one "name==version" line per
// requirement.
func RequirementsIn(reqs []Requirement) []byte {
	var b strings.Builder
	for _, q := range reqs {
		fmt.Fprintf(&b, "%s==%s\n", q.Name, q.Version)
	}
	return []byte(b.String())
}

// RequirementsDigest identifies a resolution: the requirements, the base
// they were resolved in (its Python decides markers and wheels) and the
// platform. A lock resolved for another digest is stale.
func RequirementsDigest(reqs []Requirement, base string, p Platform) string {
	h := sha256.New()
	fmt.Fprintf(h, "ftc python requirements v1\nbase %s\nplatform %s\n", base, p)
	h.Write(RequirementsIn(reqs))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// LockGlibc is the newest glibc, 2.LockGlibc, whose wheels ftc lock may
// choose when it resolves without the base image: Ubuntu 22.04's, the
// oldest glibc of a stock base. Any newer glibc runs them (manylinux tags
// are minimums), so one closure serves every base with the profile's
// Python.
const LockGlibc = 35

// TargetedRequirementsDigest identifies a resolution made without the base
// image (ftc lock's default, and what ftc env create installs): the
// requirements, the profile's CPython release, the glibc of LockGlibc and
// the platform. It names no base: the closure is the same in any base that
// has that Python, so a base change does not make it stale.
func TargetedRequirementsDigest(reqs []Requirement, python string, p Platform) string {
	h := sha256.New()
	fmt.Fprintf(h, "ftc python requirements v1\ntarget cp%s manylinux_2_%d\nplatform %s\n", strings.ReplaceAll(python, ".", ""), LockGlibc, p)
	h.Write(RequirementsIn(reqs))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// PythonLockCurrent reports whether a lock's Python input (lockInput) is a
// resolution of r's requirements now: made for the profile's Python
// without the base (TargetedRequirementsDigest), or inside the base by
// digest (RequirementsDigest, ftc lock --in-base; base "" when the base has
// no digest).
func PythonLockCurrent(r *config.Recipe, base, lockInput string, p Platform) bool {
	reqs := Requirements(r)
	if lockInput == TargetedRequirementsDigest(reqs, r.Environment.Python, p) {
		return true
	}
	return base != "" && lockInput == RequirementsDigest(reqs, base, p)
}

// BaseRef is the base image reference by digest, or "" and false when no
// digest is known.
func BaseRef(env config.Environment, lockedDigest string) (string, bool) {
	d := env.Base.Digest
	if d == "" {
		d = lockedDigest
	}
	if d == "" {
		return "", false
	}
	ref := env.Base.Image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	return ref + "@" + d, true
}

// Build compiles a recipe and its pins into an image spec. It fails with
// Unpinned when the base digest or the Python lock is missing or stale.
func Build(r *config.Recipe, in Inputs) (*Spec, error) {
	env := r.Environment
	s := &Spec{Platform: DefaultPlatform, Epoch: in.Epoch}
	var unpinned Unpinned
	base, ok := BaseRef(env, in.BaseDigest)
	if !ok {
		unpinned = append(unpinned, fmt.Sprintf("base image %s has no digest: set environment.base.digest or run `ftc lock`", env.Base.Image))
	}
	reqs := Requirements(r)
	var pkgs []Package
	if len(reqs) > 0 && !ok && len(in.Python) == 0 {
		unpinned = append(unpinned, fmt.Sprintf("%d Python package(s) have no lock: run `ftc lock`", len(reqs)))
	}
	if len(reqs) > 0 && ok {
		var err error
		pkgs, err = checkLock(reqs, in, PythonLockCurrent(r, base, in.PythonInput, s.Platform))
		var u Unpinned
		if errors.As(err, &u) {
			unpinned = append(unpinned, u...)
		} else if err != nil {
			return nil, err
		}
	}
	if len(unpinned) > 0 {
		return nil, unpinned
	}

	s.Environment = Environment{Base: base, Profile: env.Profile, Packages: pkgs,
		Config: Config{Labels: map[string]string{LabelProfile: env.Profile}}}
	pythonPath := []string{PythonDir}
	if len(pkgs) > 0 {
		s.Environment.Steps = pipSteps(pkgs, env.Profile, in.Epoch)
		s.Environment.Config.Env = []string{"PYTHONPATH=" + SitePackages}
		s.Environment.Config.PathPrefix = []string{SitePackages + "/bin"}
		pythonPath = append(pythonPath, SitePackages)
	}

	if in.Entrypoints != nil {
		l, err := entrypointsLayer(in.Entrypoints)
		if err != nil {
			return nil, fmt.Errorf("entrypoints: %w", err)
		}
		s.Layers = append(s.Layers, l)
	}
	if l := recipeLayer(r); len(l.Files) > 0 {
		s.Layers = append(s.Layers, l)
	}
	s.Config = Config{
		Env: []string{
			"PYTHONPATH=" + strings.Join(pythonPath, ":"),
			"PYTHONUNBUFFERED=1",
			"FTC_RECIPE_FILES=" + RecipeDir,
		},
		Cmd: []string{"python3", "-m", "ftc.entry"},
		Labels: map[string]string{
			LabelRecipe:  r.Name,
			LabelProfile: env.Profile,
			LabelVersion: in.Version,
		},
	}
	return s, nil
}

// checkLock returns the locked packages when they were resolved for
// exactly these requirements and pin every one of them with a hash.
func checkLock(reqs []Requirement, in Inputs, current bool) ([]Package, error) {
	if len(in.Python) == 0 {
		return nil, Unpinned{fmt.Sprintf("%d Python package(s) have no lock: run `ftc lock`", len(reqs))}
	}
	if !current {
		return nil, Unpinned{"the Python lock was resolved for other requirements, another Python or another base: run `ftc lock`"}
	}
	if err := CheckSdists(in.Python); err != nil {
		return nil, Unpinned{err.Error()}
	}
	locked := map[string]Package{}
	for _, p := range in.Python {
		if len(p.Hashes) == 0 {
			return nil, Unpinned{fmt.Sprintf("Python package %s==%s has no hash in the lock: run `ftc lock`", p.Name, p.Version)}
		}
		for _, h := range p.Hashes {
			if !isSHA256(h) {
				return nil, fmt.Errorf("Python package %s==%s: hash %q is not sha256:<64 hex>", p.Name, p.Version, h)
			}
		}
		locked[Normalize(p.Name)] = p
	}
	var missing Unpinned
	for _, q := range reqs {
		if p, ok := locked[Normalize(q.Name)]; !ok || p.Version != q.Version {
			missing = append(missing, fmt.Sprintf("Python package %s==%s is not in the lock: run `ftc lock`", q.Name, q.Version))
		}
	}
	if len(missing) > 0 {
		return nil, missing
	}
	out := append([]Package(nil), in.Python...)
	sort.Slice(out, func(i, j int) bool { return Normalize(out[i].Name) < Normalize(out[j].Name) })
	return out, nil
}

func isSHA256(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// RequirementsTxt renders the locked closure for `pip install
// --require-hashes`.
func RequirementsTxt(pkgs []Package, profile string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Python dependencies of environment %s, from ftc.lock (installed with --require-hashes).\n", profile)
	for _, p := range pkgs {
		fmt.Fprintf(&b, "%s==%s", p.Name, p.Version)
		for _, h := range p.Hashes {
			fmt.Fprintf(&b, " --hash=sha256:%s", strings.TrimPrefix(h, "sha256:"))
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// pipSteps install the locked closure: wheels only (an sdist would run a
// build backend, whose output is not reproducible), no dependency
// resolution (the lock is the closure), no bytecode (.pyc files embed
// source mtimes and are not reproducible), into SitePackages. The
// closure's sdists (SourceBuilt, InstallPasses) are built after, in a
// step of their own, against the installed wheels (PYTHONPATH: torch and
// the locked setuptools); their scripts are not installed (pip --target
// keeps the existing bin/).
func pipSteps(pkgs []Package, profile string, epoch int64) []Step {
	passes, err := InstallPasses(pkgs)
	if err != nil {
		panic(err) // checkLock refused the closure before
	}
	env := []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(epoch, 10), "PYTHONHASHSEED=0", "PIP_ROOT_USER_ACTION=ignore"}
	mounts := []Mount{{Input: WheelsInput, Target: WheelsMount}}
	steps := []Step{
		{Name: "requirements", File: &File{Path: RequirementsFile, Mode: 0o644, Content: RequirementsTxt(passes[0].Packages, profile)}},
		{Name: "install Python packages", Run: &Run{
			Args: []string{"python3", "-m", "pip", "install",
				"--no-deps", "--no-compile", "--no-cache-dir", "--disable-pip-version-check",
				"--no-warn-script-location", "--only-binary=:all:", "--require-hashes",
				"--find-links", WheelsMount, "--target", SitePackages, "-r", RequirementsFile},
			Env:    env,
			Mounts: mounts,
		}},
	}
	for _, p := range passes[1:] {
		args := append([]string{"python3", "-m", "pip", "install"}, p.Args...)
		args = append(args, "--no-compile", "--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location",
			"--find-links", WheelsMount, "--target", SitePackages, "-r", SdistRequirementsFile)
		steps = append(steps,
			Step{Name: "sdist requirements", File: &File{Path: SdistRequirementsFile, Mode: 0o644, Content: RequirementsTxt(p.Packages, profile)}},
			Step{Name: "build Python packages from sdists", Run: &Run{
				Args: args,
				// The build imports the installed wheels (setuptools, torch):
				// without PYTHONDONTWRITEBYTECODE, Python would write their
				// bytecode caches into the image, mtimes and all.
				Env:    append(append(append([]string(nil), env...), "PYTHONPATH="+SitePackages, "PYTHONDONTWRITEBYTECODE=1"), p.Env...),
				Mounts: mounts,
			}})
	}
	return steps
}

// ResolveStep is the resolution run by `ftc lock`: pip resolves the
// requirements against the wheel source without installing anything and
// writes its installation report (names, versions, hashes of the chosen
// wheels) to reportPath.
func ResolveStep(reqsPath, reportPath string) Run {
	return Run{
		Args: []string{"python3", "-m", "pip", "install",
			"--dry-run", "--ignore-installed", "--no-cache-dir", "--disable-pip-version-check",
			"--only-binary=:all:", "--find-links", WheelsMount, "--report", reportPath, "-r", reqsPath},
		Env:    []string{"PIP_ROOT_USER_ACTION=ignore"},
		Mounts: []Mount{{Input: WheelsInput, Target: WheelsMount}},
	}
}

// entrypointsLayer holds the ftc package from fsys (ftc/… at its root),
// without bytecode caches or hidden files.
func entrypointsLayer(fsys fs.FS) (Layer, error) {
	l := Layer{Name: "entrypoints"}
	err := fs.WalkDir(fsys, "ftc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == "__pycache__" || (strings.HasPrefix(name, ".") && p != ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, ".pyo") || !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		l.Files = append(l.Files, File{Path: path.Join(PythonDir, p), Mode: 0o644, Content: b})
		return nil
	})
	if err != nil {
		return Layer{}, err
	}
	if len(l.Files) == 0 {
		return Layer{}, errors.New("no files under ftc/")
	}
	sortFiles(l.Files)
	return l, nil
}

// recipeLayer holds the recipe's own files (reward functions, chat
// templates) under RecipeDir. Data files are not in it: they are stage
// inputs, mounted at run time.
func recipeLayer(r *config.Recipe) Layer {
	l := Layer{Name: "recipe files"}
	for p, f := range r.Files {
		l.Files = append(l.Files, File{Path: path.Join(RecipeDir, path.Clean("/"+p)), Mode: 0o644, Content: f.Content})
	}
	sortFiles(l.Files)
	return l
}

func sortFiles(fs []File) { sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path }) }

var byDigestRE = regexp.MustCompile(`^[^@\s]+@sha256:[0-9a-f]{64}$`)

// ByDigest reports whether ref names an image by digest (REF@sha256:…),
// the only way plans and job files name images.
func ByDigest(ref string) bool { return byDigestRE.MatchString(ref) }
