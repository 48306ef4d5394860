package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/cli"
	"github.com/ftc-dev/ftc/internal/registrytest"
)

// buildEnv is a copy of the grpo-reward-funcs example (it has a reward
// function file) whose environment is a busybox base made on the spot,
// with one Python package ("hello", a wheel made here) installed by the
// environment's pip step.
type buildEnv struct {
	t        *testing.T
	dir      string // the recipe's directory
	recipe   string
	wheels   string
	wheel    string
	registry string
	buildkit string
	set      string // --set environment=…
}

func newBuildEnv(t *testing.T, buildkit string) *buildEnv {
	t.Helper()
	e := &buildEnv{t: t, dir: t.TempDir(), buildkit: buildkit}
	copyTree(t, "../../examples/grpo-reward-funcs", e.dir)
	e.recipe = filepath.Join(e.dir, "recipe.cue")
	e.registry = registrytest.InProcess(t)
	ref, _ := buildkittest.BusyboxBase(t, e.registry)
	e.wheels = t.TempDir()
	var err error
	e.wheel, err = buildkittest.Wheel(e.wheels, "hello", "1.0", map[string]string{"hello/__init__.py": "GREETING = 'installed by the environment step'\n"})
	if err != nil {
		t.Fatal(err)
	}
	// The base is named by tag: ftc pins its digest in ftc.lock.
	e.set = `environment={profile: "busybox-test", python: "3.11", cuda: "12.4", base: image: "` + ref + `", packages: hello: "1.0", optional: {}, features: []}`
	return e
}

// ftc runs the CLI in process with the environment override.
func (e *buildEnv) ftc(args ...string) (string, string, int) {
	e.t.Helper()
	full := append([]string{args[0], "--set", e.set}, args[1:]...)
	if e.buildkit != "" && (args[0] == "build" || args[0] == "lock") {
		full = append(full, "--buildkit", e.buildkit, "--progress", "plain")
	}
	full = append(full, e.recipe)
	var stdout, stderr bytes.Buffer
	code := cli.Run(full, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// build runs ftc build and returns the image digest (from --iidfile).
func (e *buildEnv) build(args ...string) string {
	e.t.Helper()
	iid := filepath.Join(e.t.TempDir(), "iid")
	out, errOut, code := e.ftc(append([]string{"build", "--iidfile", iid}, args...)...)
	if code != 0 {
		e.t.Fatalf("ftc build %v: exit %d\n%s\n%s", args, code, out, errOut)
	}
	b, err := os.ReadFile(iid)
	if err != nil {
		e.t.Fatal(err)
	}
	ref := strings.TrimSpace(string(b))
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[i+1:]
	}
	return ref
}

// copyTree copies an example's directory. Its committed ftc.lock is left out: it pins the stock
// profile, and these tests override the environment with their own.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if rel == "ftc.lock" {
			return nil
		}
		if d.IsDir() {
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

// layoutImage reads the image named name from an OCI layout.
func layoutImage(t *testing.T, dir, name string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == name {
			img, err := p.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no image %q in %s", name, dir)
	return nil
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// TestBuildExample is the acceptance path of `ftc build` against a real
// BuildKit daemon: lock (resolution inside BuildKit), build (the
// environment's RUN step installs a wheel), read back by skopeo and umoci,
// the digest unchanged by a learning-rate change and by a fresh daemon and
// cache, exactly one layer changed by a reward-file edit, push and pull
// back by digest with the SBOM and provenance attached.
func TestBuildExample(t *testing.T) {
	d := buildkittest.Start(t)
	e := newBuildEnv(t, d.Addr)
	cache1 := t.TempDir()
	out1 := filepath.Join(t.TempDir(), "oci")

	// ftc lock --in-base: the base tag pinned, the Python closure resolved
	// by pip (a stand-in in the busybox base) inside BuildKit, with the
	// wheel's hash. (Without --in-base it is resolved on this machine:
	// env_test.go.)
	out, errOut, code := e.ftc("lock", "--in-base", "--wheels", e.wheels, "--cache", cache1)
	if code != 0 {
		t.Fatalf("ftc lock: %d\n%s\n%s", code, out, errOut)
	}
	lock, _ := os.ReadFile(filepath.Join(e.dir, "ftc.lock"))
	sum, _, _ := v1.SHA256(bytes.NewReader(must(os.ReadFile(e.wheel))))
	for _, want := range []string{"\nbase " + e.registry + "/base/busybox:1 sha256:", "\npython hello==1.0 " + sum.String() + "\n", "\npython-input sha256:"} {
		if !strings.Contains(string(lock), want) {
			t.Fatalf("ftc.lock lacks %q:\n%s", want, lock)
		}
	}
	if !strings.Contains(out, "(resolved now in "+e.registry+"/base/busybox:1@sha256:") {
		t.Errorf("lock output: %s", out)
	}

	// ftc build --frozen: everything is pinned now.
	d1 := e.build("--frozen", "--wheels", e.wheels, "--cache", cache1, "-o", "oci:"+out1)
	img := layoutImage(t, out1, "grpo-reward-funcs")
	if got := must(img.Digest()).String(); got != d1 {
		t.Fatalf("layout holds %s, build said %s", got, d1)
	}
	fs := buildkittest.Files(t, img)
	if !strings.Contains(fs[image.SitePackages+"/hello/__init__.py"], "installed by the environment step") {
		t.Fatal("the environment's RUN step did not install the wheel")
	}
	if !strings.Contains(fs[image.RecipeDir+"/rewards.py"], "def format_reward") {
		t.Fatal("the reward functions are not in the image")
	}
	if _, ok := fs[image.PythonDir+"/ftc/__init__.py"]; !ok || fs[image.PythonDir+"/ftc/entry.py"] == "" {
		t.Fatal("the entrypoints package is not in the image")
	}
	for p := range fs {
		if strings.Contains(p, "__pycache__") || strings.HasSuffix(p, ".pyc") {
			t.Fatalf("bytecode in the image: %s", p)
		}
		if strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, "recipe.cue") {
			t.Fatalf("data or recipe in the image: %s", p)
		}
	}
	cf := must(img.ConfigFile())
	labels := cf.Config.Labels
	if labels[image.LabelRecipe] != "grpo-reward-funcs" || labels[image.LabelProfile] != "busybox-test" || labels[image.LabelVersion] != cli.Version {
		t.Fatalf("labels %v", labels)
	}

	t.Run("independent readers", func(t *testing.T) {
		ref := "oci:" + out1 + ":grpo-reward-funcs"
		b, err := exec.Command("skopeo", "inspect", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, b)
		}
		var insp struct {
			Digest string
			Labels map[string]string
			Layers []string
		}
		if err := json.Unmarshal(b, &insp); err != nil {
			t.Fatal(err)
		}
		if insp.Digest != d1 || insp.Labels[image.LabelRecipe] != "grpo-reward-funcs" || strings.Join(insp.Layers, " ") != strings.Join(layerDigests(t, img), " ") {
			t.Fatalf("skopeo sees %+v, want digest %s", insp, d1)
		}
		bundle := filepath.Join(t.TempDir(), "bundle")
		if b, err := exec.Command("umoci", "unpack", "--image", out1+":grpo-reward-funcs", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v\n%s", err, b)
		}
		got, err := os.ReadFile(filepath.Join(bundle, "rootfs", image.SitePackages, "hello", "__init__.py"))
		if err != nil || !strings.Contains(string(got), "installed by the environment step") {
			t.Fatalf("umoci's rootfs lacks the installed package: %v", err)
		}
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", image.RecipeDir, "rewards.py")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("learning rate changed: same digest", func(t *testing.T) {
		got := e.build("--frozen", "--wheels", e.wheels, "--cache", cache1, "-o", "oci:"+t.TempDir(),
			"--set", "stages.grpo.training.learningRate=3e-6")
		if got != d1 {
			t.Fatalf("a learning rate change changed the image: %s → %s", d1, got)
		}
	})

	t.Run("no-cache: built again, same digest", func(t *testing.T) {
		out, errOut, code := e.ftc("build", "--frozen", "--no-cache", "--wheels", e.wheels, "--cache", cache1, "-o", "oci:"+t.TempDir())
		if code != 0 || !strings.Contains(out, "image "+d1+" (environment built") || !strings.Contains(errOut, "installed hello 1.0") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("fresh daemon and cache: same digest", func(t *testing.T) {
		d2 := buildkittest.Start(t)
		e2 := *e
		e2.buildkit = d2.Addr
		got := e2.build("--frozen", "--wheels", e.wheels, "--cache", t.TempDir(), "-o", "oci:"+t.TempDir())
		if got != d1 {
			t.Fatalf("a fresh daemon root built %s, the first %s", got, d1)
		}
	})

	// The default ftc lock resolves on this machine for the profile's
	// Python, without BuildKit: the same closure, so the same image.
	t.Run("locked without the base: same digest", func(t *testing.T) {
		e2 := *e
		e2.buildkit = "unix:///nonexistent/buildkitd.sock"
		out, errOut, code := e2.ftc("lock", "--update", "--wheels", e.wheels, "--cache", cache1)
		if code != 0 || !strings.Contains(out, "(resolved now for cp311 manylinux_2_35_x86_64)") {
			t.Fatalf("ftc lock: %d\n%s\n%s", code, out, errOut)
		}
		if got := e.build("--frozen", "--wheels", e.wheels, "--cache", cache1, "-o", "oci:"+t.TempDir()); got != d1 {
			t.Fatalf("built from the closure resolved here: %s, from the one resolved in the base: %s", got, d1)
		}
	})

	t.Run("push and pull back by digest", func(t *testing.T) {
		reg := registrytest.DockerRegistry(t)
		out, errOut, code := e.ftc("build", "--frozen", "--wheels", e.wheels, "--cache", cache1, "--push", reg+"/ftc/grpo:v1")
		if code != 0 {
			t.Fatalf("push: %d\n%s\n%s", code, out, errOut)
		}
		want := reg + "/ftc/grpo@" + d1
		if !strings.Contains(out, "pushed "+want+"\n") || !strings.Contains(errOut, "pushed "+reg+"/ftc/grpo:v1") {
			t.Fatalf("push output:\n%s\n%s", out, errOut)
		}
		ref, err := name.NewDigest(want, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		if must(pulled.Digest()).String() != d1 || strings.Join(layerDigests(t, pulled), " ") != strings.Join(layerDigests(t, img), " ") {
			t.Fatal("the pulled image differs from the built one")
		}
		if fs := buildkittest.Files(t, pulled); !strings.Contains(fs[image.SitePackages+"/hello/__init__.py"], "installed") {
			t.Fatal("pulled image lacks the installed package")
		}
		if b, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+want).CombinedOutput(); err != nil || !strings.Contains(string(b), d1) {
			t.Fatalf("skopeo inspect docker://%s: %v\n%s", want, err, b)
		}
		// The SBOM and the provenance are attached as referrers.
		idx, err := remote.Referrers(ref)
		if err != nil {
			t.Fatal(err)
		}
		im := must(idx.IndexManifest())
		types := map[string]v1.Hash{}
		for _, m := range im.Manifests {
			types[m.ArtifactType] = m.Digest
		}
		for _, at := range []string{image.SBOMArtifactType, image.ProvenanceArtifactType} {
			dg, ok := types[at]
			if !ok {
				t.Fatalf("no %s referrer: %+v", at, im.Manifests)
			}
			art, err := remote.Image(ref.Context().Digest(dg.String()))
			if err != nil {
				t.Fatal(err)
			}
			ls := must(art.Layers())
			rc := must(ls[0].Uncompressed())
			doc, _ := io.ReadAll(rc)
			rc.Close()
			if !strings.Contains(string(doc), "hello") || !strings.Contains(string(doc), strings.TrimPrefix(d1, "sha256:")) {
				t.Fatalf("%s does not name the package and the image:\n%s", at, doc)
			}
		}

		// ftc plan --image: the plan names the image by digest; keys do
		// not change.
		var plain, withImage bytes.Buffer
		if code := cli.Run([]string{"plan", "--json", "--set", e.set, e.recipe}, &plain, io.Discard); code != 0 {
			t.Fatal("plan failed")
		}
		if code := cli.Run([]string{"plan", "--json", "--image", want, "--set", e.set, e.recipe}, &withImage, io.Discard); code != 0 {
			t.Fatal("plan --image failed")
		}
		var p1, p2 struct {
			Image  string
			Stages []struct{ Key string }
		}
		json.Unmarshal(plain.Bytes(), &p1)
		json.Unmarshal(withImage.Bytes(), &p2)
		if p2.Image != want || p1.Image != "" || len(p1.Stages) == 0 || p1.Stages[len(p1.Stages)-1].Key != p2.Stages[len(p2.Stages)-1].Key {
			t.Fatalf("plan --image: %+v vs %+v", p1, p2)
		}
	})

	// Last: the reward edit changes the recipe copy.
	t.Run("reward file edited: exactly one layer differs", func(t *testing.T) {
		rewards := filepath.Join(e.dir, "rewards.py")
		b := must(os.ReadFile(rewards))
		if err := os.WriteFile(rewards, append(b, []byte("\n# tuned\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		out2 := filepath.Join(t.TempDir(), "oci")
		got := e.build("--frozen", "--wheels", e.wheels, "--cache", cache1, "-o", "oci:"+out2)
		if got == d1 {
			t.Fatal("a reward edit did not change the image")
		}
		a, b2 := layerDigests(t, img), layerDigests(t, layoutImage(t, out2, "grpo-reward-funcs"))
		if len(a) != len(b2) {
			t.Fatalf("layer counts %d and %d", len(a), len(b2))
		}
		var differ []int
		for i := range a {
			if a[i] != b2[i] {
				differ = append(differ, i)
			}
		}
		if len(differ) != 1 || differ[0] != len(a)-1 {
			t.Fatalf("layers that differ: %v of %d (want only the last, the recipe files)", differ, len(a))
		}
	})
	t.Run("cache du and gc see the environment image", func(t *testing.T) {
		var out bytes.Buffer
		if code := cli.Run([]string{"cache", "du", "--cache", cache1}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "1 environment images") {
			t.Fatalf("du (exit %d):\n%s", code, out.String())
		}
		// Just built and reused: kept by --keep-days.
		out.Reset()
		if code := cli.Run([]string{"cache", "gc", "--keep-days", "1", "--cache", cache1}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "removed 0 environment images") {
			t.Fatalf("gc --keep-days 1 (exit %d):\n%s", code, out.String())
		}
		out.Reset()
		if code := cli.Run([]string{"cache", "gc", "--cache", cache1}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "removed 1 environment images") {
			t.Fatalf("gc (exit %d):\n%s", code, out.String())
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBuildFrozenRefusesUnpinned needs no daemon: nothing is pinned, so
// --frozen stops before any build.
func TestBuildFrozenRefusesUnpinned(t *testing.T) {
	e := &buildEnv{t: t, dir: t.TempDir(), buildkit: "unix:///nonexistent/buildkitd.sock"}
	copyTree(t, "../../examples/grpo-reward-funcs", e.dir)
	e.recipe = filepath.Join(e.dir, "recipe.cue")
	e.set = `environment={profile: "t", python: "3.11", cuda: "12.4", base: image: "127.0.0.1:1/base:1", packages: hello: "1.0", optional: {}, features: []}`
	out, errOut, code := e.ftc("build", "--frozen", "--cache", t.TempDir(), "-o", "oci:"+t.TempDir())
	if code != 1 || !strings.Contains(errOut, "--frozen: not pinned") ||
		!strings.Contains(errOut, "base image 127.0.0.1:1/base:1 has no digest") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// With the base pinned by digest in the recipe, the Python lock is
	// still missing.
	e.set = strings.Replace(e.set, `base: image: "127.0.0.1:1/base:1"`, `base: {image: "127.0.0.1:1/base:1", digest: "sha256:`+strings.Repeat("a", 64)+`"}`, 1)
	_, errOut, code = e.ftc("build", "--frozen", "--cache", t.TempDir(), "-o", "oci:"+t.TempDir())
	if code != 1 || !strings.Contains(errOut, "1 Python package(s) have no lock: run `ftc lock`") || strings.Contains(errOut, "base image") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "ftc.lock")); err == nil {
		t.Fatal("--frozen wrote a lock")
	}
	// --image must be a digest reference.
	_, errOut, code = e.ftc("plan", "--image", "registry/ftc:latest")
	if code != 2 || !strings.Contains(errOut, "want REF@sha256:") {
		t.Fatalf("plan --image with a tag: %d %s", code, errOut)
	}
}

// TestReproduceRebuildsTheImage is issue 16's "image digest matches": a
// recipe locked and built (a real BuildKit, the test base) and run (the
// stand-in trainer, --cpu), published with its image by digest; ftc
// reproduce --rebuild pulls it into another directory and builds the
// image there from the pulled recipe and lock, as ftc build --frozen does,
// to the published digest. An artifact naming another digest is reported.
func TestReproduceRebuildsTheImage(t *testing.T) {
	d := buildkittest.Start(t)
	e := newBuildEnv(t, d.Addr)
	cache := t.TempDir()
	if out, errOut, code := e.ftc("lock", "--in-base", "--wheels", e.wheels, "--cache", cache); code != 0 {
		t.Fatalf("ftc lock: %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code := e.ftc("build", "--frozen", "--wheels", e.wheels, "--cache", cache, "--push", e.registry+"/ftc/grpo")
	m := regexp.MustCompile(`pushed (\S+@(sha256:[0-9a-f]{64}))\n`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("ftc build: %d\n%s\n%s", code, out, errOut)
	}
	ref, digest := m[1], m[2]
	trainer := filepath.Join(t.TempDir(), "trainer.sh")
	if err := os.WriteFile(trainer, []byte(publishTrainer), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := e.ftc("run", "--offline", "--cpu", "--cache", cache, "--entrypoint", trainer); code != 0 {
		t.Fatalf("ftc run: %d\n%s\n%s", code, out, errOut)
	}
	ftc := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		code := cli.Run(args, &stdout, &stderr)
		return stdout.String(), stderr.String(), code
	}
	layout := filepath.Join(t.TempDir(), "layout")
	if out, errOut, code := ftc("publish", "--cache", cache, "--image", ref, "--layout", layout, e.recipe); code != 0 {
		t.Fatalf("ftc publish: %d\n%s\n%s", code, out, errOut)
	}
	here := filepath.Join(t.TempDir(), "here")
	out, errOut, code = ftc("reproduce", "--layout", layout, "--dir", here, "--rebuild", "--buildkit", d.Addr, "--wheels", e.wheels)
	row := regexp.MustCompile(`(?m)^image \(rebuilt\) +` + digest[7:19] + ` +` + digest[7:19] + ` +yes$`)
	if code != 0 || !row.MatchString(out) || !strings.Contains(out, "reproduced: every check matched") {
		t.Fatalf("ftc reproduce --rebuild: exit %d, want the row %s\n%s\n%s", code, row, out, errOut)
	}

	// The same recipe and lock, published as if built to another digest.
	other := strings.Replace(ref, digest, "sha256:"+strings.Repeat("0", 64), 1)
	layout2 := filepath.Join(t.TempDir(), "layout")
	if out, errOut, code := ftc("publish", "--cache", cache, "--image", other, "--layout", layout2, e.recipe); code != 0 {
		t.Fatalf("ftc publish: %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = ftc("reproduce", "--layout", layout2, "--dir", filepath.Join(t.TempDir(), "here"), "--rebuild", "--buildkit", d.Addr, "--wheels", e.wheels)
	if code != 1 || !regexp.MustCompile(`(?m)^image \(rebuilt\) +000000000000 +`+digest[7:19]+` +NO$`).MatchString(out) {
		t.Fatalf("reproduce --rebuild of an artifact naming another image: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestBuildUsageErrors: ftc build's flags are checked before anything is
// built, each a usage error (exit 2), as the library's typed errors map.
func TestBuildUsageErrors(t *testing.T) {
	e := &buildEnv{t: t, dir: t.TempDir()}
	copyTree(t, "../../examples/grpo-reward-funcs", e.dir)
	e.recipe = filepath.Join(e.dir, "recipe.cue")
	e.set = `name="grpo-reward-funcs"` // as the recipe has it: vet is never reached
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "-o", "docker:img"}, `--output "docker:img": want oci:DIR or oci-archive:FILE`},
		{[]string{"build", "-o", "oci:"}, `--output "oci:": want oci:DIR or oci-archive:FILE`},
		{[]string{"build", "--progress", "fancy"}, `--progress "fancy": want auto, plain, tty or quiet`},
		{[]string{"build", "--source-date-epoch", "-1"}, `--source-date-epoch "-1": want seconds since 1970`},
		{[]string{"build", "--wheels", "w", "--index-url", "http://x"}, `--wheels and --index-url: give one source of wheels`},
	} {
		out, errOut, code := e.ftc(append(c.args, "--cache", t.TempDir())...)
		if code != 2 || !strings.Contains(errOut, "ftc: "+c.want+"\n") || out != "" {
			t.Errorf("ftc %v: exit %d, want 2 and %q\n%s%s", c.args, code, c.want, out, errOut)
		}
	}
}
