package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
	"github.com/ftc-dev/ftc/internal/registrytest"
	"github.com/ftc-dev/ftc/runtime/build"
)

// TestJourneyStockProfile is issue 13's journey on a stock profile, as a
// user with a machine that reaches the registries would type it:
//
//	ftc lock recipe.cue                  # the real PyPI
//	ftc build recipe.cue --frozen --push # a real BuildKit, the profile's real wheels
//	ftc run recipe.cue --backend podman --image REF@sha256:… --cpu
//
// The stock base (python:3.11-slim-bookworm, Docker Hub) is not reachable
// here: a base of the same shape — Debian 12 with its Python 3.11 and pip,
// `python` on PATH — is made by debootstrap and served from a loopback
// registry (Debian's docker-registry), and every command names it with
// --set environment.base.image, which the lock records.
//
// podman pulls the image by digest and the profile's libraries load in it;
// `ftc run --backend podman` runs prepare and sft of a tiny Qwen2 on the
// CPU inside it; a rerun is fully cached; a second build gives the same
// digest. Measured on a shared 2-core machine: 14 to 22 minutes, nearly
// all of it the build and the pull; the training part takes under a
// minute (README, "Python entrypoints"): all of it runs in CI. `make
// journey` runs it alone.
func TestJourneyStockProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: resolves against PyPI and builds a several-GB image")
	}
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (scripts/test.sh installs podman and runc): %v", bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	lap := stopwatch(t)

	reg := registrytest.DockerRegistry(t)
	base := pushPythonBase(ctx, t, reg)
	lap("debian python base pushed")
	setBase := "environment.base.image=" + base

	dir := t.TempDir()
	copyDir(t, "testdata/journey", filepath.Join(dir, "recipe"))
	e := &env{t: t, recipe: filepath.Join(dir, "recipe", "recipe.cue"), cache: filepath.Join(dir, "cache")}
	// The real entrypoints, not the test trainer.
	noTrainer := []string{"FTC_ENTRYPOINT="}

	// ftc lock: the closure from PyPI for CPython 3.11, the base's digest
	// from the loopback registry.
	r := e.ftc(noTrainer, "lock", e.recipe, "--set", setBase)
	if r.code != 0 || !regexp.MustCompile(`base `+regexp.QuoteMeta(base)+`@sha256:[0-9a-f]{64}, \d+ Python package\(s\) \(resolved now for cp311 `).MatchString(r.out) {
		t.Fatalf("ftc lock: exit %d\n%s", r.code, r.out)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "recipe", "ftc.lock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"base " + base + " sha256:", "python torch==2.5.0 sha256:", "python transformers==4.48.2 sha256:", "python trl==0.16.0 sha256:"} {
		if !strings.Contains(string(lock), want) {
			t.Fatalf("ftc.lock lacks %q:\n%s", want, lock)
		}
	}
	lap("ftc lock (PyPI)")

	// ftc build: BuildKit installs the locked closure, hash-checked. The
	// wheels are PyPI's, downloaded here: this network reaches PyPI
	// through a TLS proxy whose CA only this host trusts, so pip inside
	// the base (its own CA bundle) cannot, and ftc build takes them
	// with --wheels as a machine without PyPI would.
	wheels := lockedWheels(ctx, t, string(lock))
	lap("wheels of the lock (pip download)")
	bk := buildkittest.Start(t)
	buildEnv := append(noTrainer, "BUILDKIT_HOST="+bk.Addr)
	r = e.ftc(buildEnv, "build", e.recipe, "--frozen", "--set", setBase, "--wheels", wheels, "--progress", "plain", "--push", reg+"/ftc/journey:v1")
	m := regexp.MustCompile(`pushed (\S+@sha256:[0-9a-f]{64})\n`).FindStringSubmatch(r.out)
	if r.code != 0 || m == nil {
		t.Fatalf("ftc build: exit %d\n%s", r.code, tailString(r.out, 6000))
	}
	ref := m[1]
	digest := ref[strings.Index(ref, "@")+1:]
	lap("ftc build --push (BuildKit, PyPI wheels)")
	// The daemon's root holds the wheels and the installed closure twice
	// over (about 14 GB): free it before podman stores the image.
	if err := bk.Stop(); err != nil {
		t.Fatal(err)
	}

	// podman pulls the image by digest; the profile's libraries import
	// in it, at the locked versions, with ftc's entrypoints.
	conf := podmanStorage(t, reg)
	out, err := podman(conf, "pull", "--quiet", ref)
	if err != nil {
		t.Fatalf("podman pull %s: %v\n%s", ref, err, out)
	}
	lap("podman pull")
	out, err = podman(conf, "run", "--rm", ref, "python", "-c",
		"import torch, transformers, trl, peft, datasets, accelerate, ftc.entry; print('versions', torch.__version__, transformers.__version__, trl.__version__, peft.__version__, datasets.__version__, accelerate.__version__)")
	if err != nil || !strings.Contains(out, "versions 2.5.0+cu124 4.48.2 0.16.0 0.14.0 4.0.0 1.3.0") {
		t.Fatalf("the profile's libraries in the image: %v\n%s", err, out)
	}
	lap("import in the image")

	// A tiny Qwen2 where the Hub cache holds the pinned
	// Qwen2.5-0.5B-Instruct, made in the image itself (its transformers
	// and tokenizers), under the cache the container backend mounts.
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	hf := filepath.Join(e.cache, "hf")
	snapshot := filepath.Join(hf, "hub", "models--Qwen--Qwen2.5-0.5B-Instruct", "snapshots", qwen05Revision)
	if err := os.MkdirAll(snapshot, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = podman(conf, "run", "--rm", "-v", filepath.Join(repo, "bench", "gpu")+":/assets:ro", "-v", snapshot+":/out", ref, "python", "-c", `
import sys
sys.path.insert(0, "/assets")
import assets
tok = assets.build_tokenizer("/out", vocab_size=600)
cfg = assets.qwen2_config(tok, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, vocab=640, max_pos=1024)
assets.build_model("/out", cfg, tok)
`)
	if err != nil {
		t.Fatalf("building the tiny model in the image: %v\n%s", err, out)
	}
	lap("tiny model")

	runEnv := append(append([]string{}, conf...), "FTC_ENTRYPOINT=", "HF_HOME="+hf, "HF_HUB_OFFLINE=1")
	r = e.run(runEnv, "--backend", "podman", "--image", ref, "--set", setBase, "--cpu")
	expect(t, r, 0, 0, 2)
	if !outputFileQuiet(e, "sft", "model.safetensors") {
		t.Fatalf("the cached output of sft has no weights:\n%s", r.out)
	}
	lap("ftc run --backend podman (prepare, sft)")
	expect(t, e.run(runEnv, "--backend", "podman", "--image", ref, "--set", setBase, "--cpu"), 0, 2, 0)
	lap("ftc run again (cached)")

	// A second build: the same digest, from the cached environment image
	// with no daemon, pushed again (the registry has every blob). A fresh
	// daemon root giving the same digest is runtime/build's and
	// internal/cli's test, on small images: here it would cost the whole
	// install again.
	r = e.ftc(append(noTrainer, "BUILDKIT_HOST=unix:///nonexistent/buildkitd.sock"), "build", e.recipe, "--frozen", "--set", setBase, "--wheels", wheels, "--progress", "plain", "--push", reg+"/ftc/journey:v2")
	if r.code != 0 || !strings.Contains(r.out, "pushed "+ref+"\n") {
		t.Fatalf("second build: exit %d, want %s\n%s", r.code, digest, tailString(r.out, 6000))
	}
	lap("second build, same digest")
}

// lockedWheels downloads the wheels ftc.lock names, for CPython 3.11 on
// manylinux x86_64, into a directory kept in buildkittest.CacheDir (pip
// keeps a file already there when its hash is right, and takes a wheel
// from scripts/pyvenv.sh's wheelhouse before the index when it has it).
// Every file is checked against the lock's sha256 (--require-hashes).
func lockedWheels(ctx context.Context, t *testing.T, lock string) string {
	t.Helper()
	var reqs strings.Builder
	for _, line := range strings.Split(lock, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "python" && strings.HasPrefix(f[2], "sha256:") {
			fmt.Fprintf(&reqs, "%s --hash=%s\n", f[1], f[2])
		}
	}
	dir := filepath.Join(buildkittest.CacheDir(), "journey-wheels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	req := filepath.Join(t.TempDir(), "requirements.txt")
	if err := os.WriteFile(req, []byte(reqs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes", "--disable-pip-version-check",
		"--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "-d", dir, "-r", req}
	for _, p := range build.ManylinuxPlatforms(image.LockGlibc) {
		args = append(args, "--platform", p)
	}
	wheelhouse := os.Getenv("FTC_PYVENVS")
	if wheelhouse == "" {
		wheelhouse = "/var/cache/ftc-pyenvs"
	}
	if fi, err := os.Stat(filepath.Join(wheelhouse, "wheels")); err == nil && fi.IsDir() {
		args = append(args, "--find-links", filepath.Join(wheelhouse, "wheels"))
	}
	cmd := exec.CommandContext(ctx, "python3", args...)
	cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE=/dev/null", "PIP_FIND_LINKS=", "PIP_EXTRA_INDEX_URL=", "PIP_INDEX_URL=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download of the locked wheels: %v\n%s", err, tailString(string(out), 4000))
	}
	return dir
}

// pushPythonBase pushes a base of the stock bases' shape to reg: Debian
// 12 with python3 (3.11) and pip, and `python` on PATH as the official
// images have it. It returns the reference by tag.
func pushPythonBase(ctx context.Context, t *testing.T, reg string) string {
	t.Helper()
	tarPath, err := buildkittest.DebianPythonTar(ctx)
	if err != nil {
		t.Fatal(err)
	}
	debian, err := tarball.LayerFromFile(tarPath, tarball.WithCompressedCaching, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildkittest.Tar([]buildkittest.Entry{
		{Path: "usr/local/bin/python", Link: "/usr/bin/python3", Mode: 0o777},
		{Path: "usr/local/bin/pip", Link: "/usr/bin/pip3", Mode: 0o777},
	})
	if err != nil {
		t.Fatal(err)
	}
	links, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	ref, _, err := buildkittest.PushBaseLayers(ctx, reg+"/library/python:3.11-slim-bookworm", []v1.Layer{debian, links},
		[]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"})
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// podmanStorage is podmanConfig with overlay storage: the journey's image
// is several GB, and vfs copies every layer in full.
func podmanStorage(t *testing.T, reg string) []string {
	t.Helper()
	conf := podmanConfig(t, reg)
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage.conf")
	graph := filepath.Join(dir, "graph")
	s := fmt.Sprintf("[storage]\ndriver = \"overlay\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "run"), graph)
	if err := os.WriteFile(storage, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	// Overlay mounts left by a failed container must go before the
	// directory can be removed (cleanups run last in, first out).
	t.Cleanup(func() { buildkittest.Unmount(dir) })
	for i, kv := range conf {
		if strings.HasPrefix(kv, "CONTAINERS_STORAGE_CONF=") {
			conf[i] = "CONTAINERS_STORAGE_CONF=" + storage
		}
	}
	return conf
}

func podman(conf []string, args ...string) (string, error) {
	cmd := exec.Command("podman", args...)
	cmd.Env = append(os.Environ(), conf...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// stopwatch logs the time of each step of a long test.
func stopwatch(t *testing.T) func(string) {
	start, last := time.Now(), time.Now()
	return func(step string) {
		now := time.Now()
		t.Logf("%-45s %6.1fs (total %6.1fs)", step, now.Sub(last).Seconds(), now.Sub(start).Seconds())
		last = now
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
