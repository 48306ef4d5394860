package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ftc-dev/ftc/internal/registrytest"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// TestContainerBackendPodman runs the pipeline with --backend podman: a
// real podman (vfs storage, runc) pulls the stage image by digest from a
// loopback registry and runs the test trainer in it, with the run
// directory mounted and a GPU passed through. The GPU is a fake: a CDI
// spec whose device only sets an environment variable, since this
// machine has no GPU; it proves the device request reaches the container.
func TestContainerBackendPodman(t *testing.T) {
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (scripts/test.sh installs podman and runc): %v", bin, err)
		}
	}
	reg := registrytest.InProcess(t)
	image := pushTrainerImage(t, reg)
	conf := podmanConfig(t, reg)

	e := newEnv(t)
	r := e.run(conf, "--backend", "podman", "--image", image, "--entrypoint", "/testtrainer")
	expect(t, r, 0, 0, 4)
	expect(t, e.run(conf, "--backend", "podman", "--image", image, "--entrypoint", "/testtrainer"), 0, 4, 0)

	devices := outputFile(t, e, "ppo", "devices.txt")
	if !strings.Contains(devices, "FTC_FAKE_GPU=0") {
		t.Errorf("the GPU did not reach the container; devices.txt:\n%s", devices)
	}
	if ins := outputFile(t, e, "ppo", "inputs.txt"); !strings.Contains(ins, "reward ") {
		t.Errorf("inputs did not reach the container:\n%s", ins)
	}

	// An image by tag is refused before anything runs.
	r = e.run(conf, "--backend", "podman", "--image", reg+"/ftc/trainer:latest", "--entrypoint", "/testtrainer", "--force", "ppo")
	if r.code == 0 || !strings.Contains(r.out, "not pinned by digest") {
		t.Errorf("an image by tag was used:\n%s", r.out)
	}
}

// pushTrainerImage builds an image holding only the statically linked
// test trainer and pushes it; it returns the reference by digest.
func pushTrainerImage(t *testing.T, reg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testtrainer")
	cmd := exec.Command("go", "build", "-o", bin, "../testtrainer")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the static trainer: %v\n%s", err, out)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "testtrainer", Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.WriteHeader(&tar.Header{Name: "tmp/", Mode: 0o1777, Typeflag: tar.TypeDir})
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(reg+"/ftc/trainer:test", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return reg + "/ftc/trainer@" + d.String()
}

// podmanConfig writes podman's configuration for this machine (no
// CAP_SYS_RESOURCE, no systemd, a hybrid cgroup tree) into a temporary
// directory and returns the environment that points podman at it.
func podmanConfig(t *testing.T, reg string) []string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	containers := write("containers.conf", `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`)
	storage := write("storage.conf", fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "run"), filepath.Join(dir, "graph")))
	registries := write("registries.conf", fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg))

	// podman 4.3 reads CDI specs from /etc/cdi and /var/run/cdi only, and
	// refuses a device two specs define: the fake GPU is machine-wide
	// state. One test at a time holds it (a file lock, across test
	// processes: two e2e runs on one machine), and a spec left by a run
	// that was killed before its cleanup is removed first.
	const cdiDir = "/var/run/cdi"
	spec := fmt.Sprintf("%s/ftc-e2e-fake-gpu-%d.json", cdiDir, os.Getpid())
	if err := os.MkdirAll(cdiDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := flock.New(filepath.Join(cdiDir, ".ftc-e2e-fake-gpu.lock"))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	if ok, err := lock.TryLockContext(ctx, time.Second); err != nil || !ok {
		t.Fatalf("waiting for the fake GPU's CDI spec lock (another e2e run holds it): %v", err)
	}
	t.Cleanup(func() { lock.Unlock() })
	stale, _ := filepath.Glob(filepath.Join(cdiDir, "ftc-e2e-fake-gpu-*.json"))
	for _, f := range stale {
		os.Remove(f) // under the lock, every other one is stale
	}
	fake := `{"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": [{"name": "0", "containerEdits": {"env": ["FTC_FAKE_GPU=0"]}}]}`
	if err := os.WriteFile(spec, []byte(fake), 0o644); err != nil {
		t.Fatal(err)
	}
	// vfs layers are plain directories under dir: nothing stays mounted,
	// and the temporary directory's removal cleans podman's storage up.
	t.Cleanup(func() { os.Remove(spec) })
	return []string{"CONTAINERS_CONF=" + containers, "CONTAINERS_STORAGE_CONF=" + storage, "CONTAINERS_REGISTRIES_CONF=" + registries}
}

// outputFile reads a file of a stage's committed output.
func outputFile(t *testing.T, e *env, stage, file string) string {
	t.Helper()
	s, ok := readOutput(e, stage, file)
	if !ok {
		t.Fatalf("no %s in the output of %s", file, stage)
	}
	return s
}

func outputFileQuiet(e *env, stage, file string) bool {
	_, ok := readOutput(e, stage, file)
	return ok
}

// readOutput reads a file of the newest committed output of a stage.
func readOutput(e *env, stage, file string) (string, bool) {
	return readStored(e, stage, "output", file)
}

// readStored reads a file of a stage's committed tree out ("output" or
// "logs").
func readStored(e *env, stage, out, file string) (string, bool) {
	store, err := cas.Open(filepath.Join(e.cache, "cas"))
	if err != nil {
		return "", false
	}
	acts, _ := store.Actions()
	for _, a := range acts {
		if a.Name != stage {
			continue
		}
		tr, err := store.ReadTree(a.Outputs[out])
		if err != nil {
			return "", false
		}
		for _, en := range tr.Entries {
			if en.Path == file {
				b, _ := store.ReadBlob(en.Digest)
				return string(b), true
			}
		}
	}
	return "", false
}
