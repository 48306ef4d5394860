package image_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/load"
)

const env = `environment={profile: "t", python: "3.11", cuda: "12.4", base: image: "registry.example/base:1",
	packages: {"Hello_World": "1.0", torch: "2.5.0"}, optional: {deepspeed: "0.16.2", vllm: "0.7.3"}, features: ["deepspeed", "bitsandbytes"]}`

func vet(t *testing.T, sets ...string) *config.Recipe {
	t.Helper()
	return vetFile(t, "../../examples/grpo-reward-funcs/recipe.cue", sets...)
}

func vetFile(t *testing.T, file string, sets ...string) *config.Recipe {
	t.Helper()
	var ovs []load.Override
	for _, s := range append([]string{env}, sets...) {
		o, err := load.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		ovs = append(ovs, o)
	}
	r, diags, err := compiler.Vet(file, ovs)
	if err != nil {
		t.Fatalf("%v\n%v", err, diags)
	}
	return r
}

var entrypoints = fstest.MapFS{
	"ftc/__init__.py":              {Data: []byte("")},
	"ftc/entry.py":                 {Data: []byte("def main(): pass\n")},
	"ftc/sub/mod.py":               {Data: []byte("x = 1\n")},
	"ftc/__pycache__/entry.pyc":    {Data: []byte("bytecode")},
	"ftc/.DS_Store":                {Data: []byte("junk")},
	"ftc/entry.cpython-311.pyc":    {Data: []byte("bytecode")},
	"tests/test_not_shipped.py":    {Data: []byte("")},
	"ftc/.pytest_cache/v/lastfail": {Data: []byte("{}")},
}

const hashA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// inputs are pins for r: the base digest and a lock for its requirements.
func inputs(r *config.Recipe) image.Inputs {
	in := image.Inputs{BaseDigest: "sha256:" + strings.Repeat("b", 64), Entrypoints: entrypoints, Version: "v1.2.3", Epoch: 1700000000}
	base, _ := image.BaseRef(r.Environment, in.BaseDigest)
	reqs := image.Requirements(r)
	for _, q := range reqs {
		in.Python = append(in.Python, image.Package{Name: q.Name, Version: q.Version, Hashes: []string{hashA}})
	}
	in.Python = append(in.Python, image.Package{Name: "numpy", Version: "2.0.0", Hashes: []string{hashA}}) // a dependency
	in.PythonInput = image.RequirementsDigest(reqs, base, image.DefaultPlatform)
	return in
}

func TestRequirementsAddOptionalPackagesTheRecipeNeeds(t *testing.T) {
	got := func(r *config.Recipe) string {
		var s []string
		for _, q := range image.Requirements(r) {
			s = append(s, q.Name+"=="+q.Version)
		}
		return strings.Join(s, " ")
	}
	if g := got(vet(t)); g != "Hello_World==1.0 torch==2.5.0" {
		t.Errorf("single GPU: %s", g)
	}
	zero := vetFile(t, "../../examples/sft-zero3/recipe.cue")
	if g := got(zero); g != "deepspeed==0.16.2 Hello_World==1.0 torch==2.5.0" {
		t.Errorf("zero3: %s", g)
	}
	if image.Normalize("Hello_World.x") != "hello-world-x" {
		t.Error(image.Normalize("Hello_World.x"))
	}
}

func TestBuildRefusesWhatIsNotPinned(t *testing.T) {
	r := vet(t)
	in := inputs(r)

	noBase := in
	noBase.BaseDigest = ""
	_, err := image.Build(r, noBase)
	var u image.Unpinned
	if !errors.As(err, &u) || len(u) != 1 || !strings.Contains(u[0], "base image registry.example/base:1 has no digest") {
		t.Fatalf("no base digest: %v", err)
	}

	noLock := in
	noLock.Python, noLock.PythonInput = nil, ""
	if _, err := image.Build(r, noLock); !errors.As(err, &u) || !strings.Contains(err.Error(), "2 Python package(s) have no lock") {
		t.Fatalf("no lock: %v", err)
	}

	// The profile changed since the lock was resolved.
	stale := vet(t, `environment.packages.torch="2.6.0"`)
	if _, err := image.Build(stale, in); !errors.As(err, &u) || !strings.Contains(err.Error(), "resolved for other requirements") {
		t.Fatalf("stale lock: %v", err)
	}

	// Resolved without the base (ftc lock's default): current for the
	// profile's Python whatever the base, stale for another Python.
	targeted := inputs(r)
	targeted.PythonInput = image.TargetedRequirementsDigest(image.Requirements(r), r.Environment.Python, image.DefaultPlatform)
	if _, err := image.Build(r, targeted); err != nil {
		t.Fatalf("a lock resolved for the profile's Python without the base: %v", err)
	}
	newBase := vet(t, `environment.base.image="registry.example/other:2"`)
	if _, err := image.Build(newBase, targeted); err != nil {
		t.Fatalf("a base change made a lock resolved without the base stale: %v", err)
	}
	if _, err := image.Build(newBase, in); !errors.As(err, &u) || !strings.Contains(err.Error(), "resolved for other requirements, another Python or another base") {
		t.Fatalf("a lock resolved in the old base: %v", err)
	}
	otherPython := vet(t, `environment.python="3.12"`)
	if _, err := image.Build(otherPython, targeted); !errors.As(err, &u) || !strings.Contains(err.Error(), "resolved for other requirements") {
		t.Fatalf("a lock resolved for Python 3.11, profile on 3.12: %v", err)
	}

	noHash := inputs(r)
	noHash.Python[0].Hashes = nil
	if _, err := image.Build(r, noHash); !errors.As(err, &u) || !strings.Contains(err.Error(), "has no hash") {
		t.Fatalf("no hash: %v", err)
	}

	missing := inputs(r)
	missing.Python = missing.Python[1:]
	if _, err := image.Build(r, missing); !errors.As(err, &u) || !strings.Contains(err.Error(), "is not in the lock") {
		t.Fatalf("missing package: %v", err)
	}

	// A digest in the profile needs no lock entry.
	pinned := vet(t, `environment.base.digest="sha256:`+strings.Repeat("c", 64)+`"`)
	pin := inputs(pinned)
	pin.BaseDigest = ""
	s, err := image.Build(pinned, pin)
	if err != nil || s.Environment.Base != "registry.example/base:1@sha256:"+strings.Repeat("c", 64) {
		t.Fatalf("profile digest: %v %+v", err, s)
	}
}

func TestSpec(t *testing.T) {
	r := vet(t)
	s, err := image.Build(r, inputs(r))
	if err != nil {
		t.Fatal(err)
	}
	e := s.Environment
	if e.Base != "registry.example/base:1@sha256:"+strings.Repeat("b", 64) || len(e.Steps) != 2 || e.Steps[0].File == nil || e.Steps[1].Run == nil {
		t.Fatalf("environment: %+v", e)
	}
	req := string(e.Steps[0].File.Content)
	for _, want := range []string{"\nHello_World==1.0 --hash=sha256:aaaa", "\nnumpy==2.0.0 --hash=sha256:aaaa", "\ntorch==2.5.0 --hash="} {
		if !strings.Contains(req, want) {
			t.Errorf("requirements lack %q:\n%s", want, req)
		}
	}
	args := strings.Join(e.Steps[1].Run.Args, " ")
	for _, want := range []string{"--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile", "--target " + image.SitePackages} {
		if !strings.Contains(args, want) {
			t.Errorf("pip args lack %s: %s", want, args)
		}
	}
	var paths []string
	for _, l := range s.Layers {
		for _, f := range l.Files {
			paths = append(paths, f.Path)
		}
	}
	want := "/opt/ftc/python/ftc/__init__.py /opt/ftc/python/ftc/entry.py /opt/ftc/python/ftc/sub/mod.py /opt/ftc/recipe/rewards.py"
	if got := strings.Join(paths, " "); got != want || len(s.Layers) != 2 {
		t.Fatalf("layers (%d): %s\nwant %s", len(s.Layers), got, want)
	}
	if s.Config.Labels[image.LabelRecipe] != "grpo-reward-funcs" || s.Config.Labels[image.LabelProfile] != "t" || s.Config.Labels[image.LabelVersion] != "v1.2.3" {
		t.Fatalf("labels %v", s.Config.Labels)
	}
}

func TestNoSecretInTheSpec(t *testing.T) {
	t.Setenv("HF_TOKEN", "hf_secretvalue")
	r := vet(t, `secrets=["HF_TOKEN"]`)
	s, err := image.Build(r, inputs(r))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	if strings.Contains(string(b), "HF_TOKEN") || strings.Contains(string(b), "hf_secretvalue") {
		t.Fatal("a secret's name or value is in the image spec")
	}
}

// The environment key is what decides whether the environment image is
// rebuilt: hyperparameters, recipe files and the recipe's name never
// touch it; the base and the lock do.
func TestEnvironmentKey(t *testing.T) {
	r := vet(t)
	k := func(r *config.Recipe, in image.Inputs) string {
		t.Helper()
		s, err := image.Build(r, in)
		if err != nil {
			t.Fatal(err)
		}
		key, err := s.EnvironmentKey()
		if err != nil {
			t.Fatal(err)
		}
		return string(key)
	}
	k0 := k(r, inputs(r))
	same := []*config.Recipe{vet(t, `stages.grpo.training.learningRate=1e-6`), vet(t, `name="other"`)}
	files := vet(t)
	files.Files["rewards.py"] = config.File{SHA256: "x", Content: []byte("edited")}
	same = append(same, files)
	for i, r2 := range same {
		if got := k(r2, inputs(r2)); got != k0 {
			t.Errorf("variant %d changed the environment key", i)
		}
	}
	in := inputs(r)
	in.Python[1].Hashes = []string{"sha256:" + strings.Repeat("f", 64)}
	if k(r, in) == k0 {
		t.Error("a wheel hash did not change the key")
	}
	in = inputs(r)
	in.Epoch++
	if k(r, in) == k0 {
		t.Error("the epoch did not change the key")
	}
}

func TestAttachmentsAreReproducible(t *testing.T) {
	r := vet(t)
	s, _ := image.Build(r, inputs(r))
	sub := image.Subject{Name: r.Name, Digest: "sha256:" + strings.Repeat("d", 64)}
	a, err := image.SBOM(s, sub, "v1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := image.SBOM(s, sub, "v1")
	if string(a) != string(b) || !json.Valid(a) {
		t.Fatal("SBOM not stable or not JSON")
	}
	for _, want := range []string{`"spdxVersion": "SPDX-2.3"`, `"pkg:pypi/hello-world@1.0"`, `"created": "2023-11-14T22:13:20Z"`, `"referenceLocator": "pkg:pypi/numpy@2.0.0"`} {
		if !strings.Contains(string(a), want) {
			t.Errorf("SBOM lacks %s", want)
		}
	}
	rd, err := image.RecipeDigest(r)
	if err != nil {
		t.Fatal(err)
	}
	lr, _ := image.RecipeDigest(vet(t, `stages.grpo.training.learningRate=1e-6`))
	if rd == lr {
		t.Fatal("the recipe digest ignores the learning rate")
	}
	p, err := image.ProvenanceStatement(s, sub, image.Provenance{RecipeDigest: rd, LockDigest: hashA, Version: "v1", EnvironmentKey: "sha256:e"})
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Type          string `json:"_type"`
		PredicateType string
		Subject       []struct{ Digest map[string]string }
		Predicate     struct {
			BuildDefinition struct {
				ExternalParameters struct {
					Recipe struct{ Digest string }
					Lock   struct{ Digest string }
				}
			}
			RunDetails struct {
				Builder struct{ Version map[string]string }
			}
		}
	}
	if err := json.Unmarshal(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "https://in-toto.io/Statement/v1" || st.Subject[0].Digest["sha256"] != strings.Repeat("d", 64) ||
		st.Predicate.BuildDefinition.ExternalParameters.Recipe.Digest != rd || st.Predicate.BuildDefinition.ExternalParameters.Lock.Digest != hashA ||
		st.Predicate.RunDetails.Builder.Version["ftc"] != "v1" {
		t.Fatalf("provenance: %s", p)
	}
}

func TestByDigest(t *testing.T) {
	for ref, want := range map[string]bool{
		"r.io/ftc/x@sha256:" + strings.Repeat("a", 64):   true,
		"r.io/ftc/x:1@sha256:" + strings.Repeat("a", 64): true,
		"r.io/ftc/x:latest":                              false,
		"r.io/ftc/x@sha256:abc":                          false,
	} {
		if image.ByDigest(ref) != want {
			t.Errorf("ByDigest(%q) != %v", ref, want)
		}
	}
}

// TestRecipeLayerTakesOnlyFilesInsideTheRecipe: the recipe layer holds the
// recipe's own files, read at vet time through the recipe's directory. A
// reward function linked outside it never reaches a layer, even when the
// place it links to is a declared data root; one linked inside does.
func TestRecipeLayerTakesOnlyFilesInsideTheRecipe(t *testing.T) {
	tmp := t.TempDir()
	dir, outside := filepath.Join(tmp, "recipe"), filepath.Join(tmp, "outside")
	copyDir(t, "../../examples/grpo-reward-funcs", dir)
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	rewards := filepath.Join(dir, "rewards.py")
	b, err := os.ReadFile(rewards)
	if err != nil {
		t.Fatal(err)
	}
	secret := append(b, []byte("\n# not the recipe's\n")...)
	if err := os.WriteFile(filepath.Join(outside, "rewards.py"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	ovs := overrides(t, env)
	file := filepath.Join(dir, "recipe.cue")

	// Linked outside: refused, with or without a data root.
	os.Remove(rewards)
	if err := os.Symlink("../outside/rewards.py", rewards); err != nil {
		t.Fatal(err)
	}
	for _, roots := range [][]string{nil, {outside}, {tmp}} {
		r, diags, err := compiler.VetWith(file, ovs, compiler.Options{DataRoots: roots})
		if err == nil || !strings.Contains(diags.Error(), "leaves the recipe's directory through the symlink rewards.py -> ../outside/rewards.py") {
			t.Fatalf("roots %v: a reward function linked outside was accepted: %v\n%v", roots, err, diags)
		}
		if r != nil {
			if _, ok := r.Files["rewards.py"]; ok {
				t.Fatalf("roots %v: the outside file was read for the image", roots)
			}
		}
	}

	// Linked inside: followed, and the layer holds what the link leads to.
	os.Remove(rewards)
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lib", "rewards.py"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib/rewards.py", rewards); err != nil {
		t.Fatal(err)
	}
	r, diags, err := compiler.VetWith(file, ovs, compiler.Options{})
	if err != nil {
		t.Fatalf("%v\n%v", err, diags)
	}
	spec, err := image.Build(r, inputs(r))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range spec.Layers {
		for _, f := range l.Files {
			if f.Path == image.RecipeDir+"/rewards.py" {
				found = true
				if string(f.Content) != string(b) {
					t.Errorf("layer %q holds other content for rewards.py", l.Name)
				}
			}
		}
	}
	if !found {
		t.Error("no layer holds rewards.py")
	}
}

func overrides(t *testing.T, sets ...string) []load.Override {
	t.Helper()
	var ovs []load.Override
	for _, s := range sets {
		o, err := load.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		ovs = append(ovs, o)
	}
	return ovs
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
