// Package buildkittest runs a real BuildKit daemon for tests and
// benchmarks: buildkitd built from this module's own buildkit version
// (go.mod's tool directive), started by PID with a fresh root, waited for
// with a bound, stopped, and cleaned up — including the overlay mounts an
// unclean stop leaves behind. It also makes small base images on the spot
// and pushes them to a registry, since none can be pulled here.
//
// It installs nothing: scripts/test.sh installs runc (and skopeo, umoci,
// busybox-static, debootstrap for the tests that use them).
package buildkittest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/gofrs/flock"
	bkclient "github.com/moby/buildkit/client"

	"github.com/ftc-dev/ftc/internal/sysproc"
)

// CacheDir is where built binaries and base image root file systems are
// kept between test packages and runs: $FTC_TEST_CACHE, else
// $TMPDIR/ftc-test-cache. CI reuses it within one run, so buildkitd is
// built once per run.
func CacheDir() string {
	if d := os.Getenv("FTC_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "ftc-test-cache")
}

// BuildkitdBinary builds buildkitd from the module's buildkit version
// into CacheDir, once: concurrent callers (test packages run in parallel)
// wait on a file lock for the first build. A cold build takes minutes.
func BuildkitdBinary(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/moby/buildkit").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m github.com/moby/buildkit: %w", err)
	}
	version := strings.TrimSpace(string(out))
	dir := CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "buildkitd-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	lock := flockFor(bin)
	if ok, err := lock.TryLockContext(ctx, 500*time.Millisecond); err != nil || !ok {
		return "", fmt.Errorf("locking %s: %v", bin+".lock", err)
	}
	defer lock.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built while we waited
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp,
		"-ldflags", "-X github.com/moby/buildkit/version.Version="+version,
		"github.com/moby/buildkit/cmd/buildkitd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building buildkitd %s: %v\n%s", version, err, b)
	}
	return bin, os.Rename(tmp, bin)
}

// flockFor is the lock guarding the making of path.
func flockFor(path string) *flock.Flock { return flock.New(path + ".lock") }

// Daemon is a running buildkitd.
type Daemon struct {
	// Addr is the daemon's address (unix://…).
	Addr string
	// Root is its state directory.
	Root string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Log returns the daemon's log.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "buildkitd.log"))
	return string(b)
}

// StartDaemon starts bin with a fresh root and socket in a new temporary
// directory and waits, at most 30 s, until it lists its workers.
func StartDaemon(ctx context.Context, bin string) (*Daemon, error) {
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, errors.New("runc is not installed (scripts/test.sh installs it: apt-get install runc)")
	}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "bk")
	if err != nil {
		return nil, err
	}
	d := &Daemon{Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), Root: filepath.Join(dir, "root"), dir: dir, done: make(chan struct{})}
	cfg := filepath.Join(dir, "buildkitd.toml")
	conf := "[worker.oci]\n  enabled = true\n  gc = false\n[worker.containerd]\n  enabled = false\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	d.cmd = exec.Command(bin, "--config", cfg, "--root", d.Root, "--addr", d.Addr)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = sysproc.Attr(false, syscall.SIGKILL)
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := d.ping(ctx); err == nil {
			return d, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			log := d.Log()
			d.Kill()
			return nil, fmt.Errorf("buildkitd did not answer within 30s: %v\n%s", err, log)
		}
		select {
		case <-d.done:
			log := d.Log()
			d.cleanup()
			return nil, fmt.Errorf("buildkitd exited: %v\n%s", d.cmd.ProcessState, log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Daemon) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := bkclient.New(ctx, d.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.ListWorkers(ctx)
	return err
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Stop stops the daemon with SIGTERM (SIGKILL after 15 s) and removes its
// directory.
func (d *Daemon) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	return d.cleanup()
}

// Kill stops the daemon with SIGKILL, as a crash would, and cleans up
// after it: the overlay mounts of running steps stay behind and must be
// unmounted before the root can be removed.
//
// The processes of steps that were running keep running as orphans; they
// are found by their root directory (under the daemon's root) and killed
// by PID.
func (d *Daemon) Kill() error {
	orphans := processesUnder(d.dir)
	d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("buildkitd (pid %d) did not exit after SIGKILL", d.PID())
	}
	for _, pid := range orphans {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return d.cleanup()
}

// processesUnder lists the processes whose root directory is under dir:
// the containers of a daemon's running steps.
func processesUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		root, err := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if err == nil && strings.HasPrefix(root, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (d *Daemon) cleanup() error {
	if err := Unmount(d.dir); err != nil {
		return err
	}
	return os.RemoveAll(d.dir)
}

// Mounts lists the mount points under dir, deepest first.
func Mounts(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		target := unescape(fields[4])
		if strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, sc.Err()
}

// Unmount unmounts everything mounted under dir, deepest first, lazily
// where a mount is still busy.
func Unmount(dir string) error {
	mounts, err := Mounts(dir)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, 0); err != nil {
			if err := unmountDetached(m); err != nil && !errors.Is(err, syscall.EINVAL) {
				return fmt.Errorf("unmounting %s: %w", m, err)
			}
		}
	}
	return nil
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Start builds buildkitd (once per CacheDir), starts a daemon with a fresh
// root and stops it when the test ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	needs.Root(t, "buildkitd runs rootful here (runc, overlay mounts)")
	needs.Program(t, "runc", "scripts/test.sh installs it: apt-get install runc")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := BuildkitdBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := StartDaemon(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stopping buildkitd: %v", err)
		}
	})
	return d
}
