// Command buildbench measures `ftc build` against a real BuildKit daemon
// in one run: a cold build (fresh daemon root, empty environment cache)
// next to a no-op rebuild, a rebuild after a learning-rate change and a
// rebuild after a reward-file edit, and `ftc version` as the start-up
// baseline. The recipe is examples/grpo-reward-funcs with a base made on
// the spot (busybox with a stand-in pip, or, with -base debian, a
// debootstrap'd Debian 12 with real pip) and one locally built wheel as its
// Python dependency.
//
//	go run ./bench/buildbench                  # busybox base, 5 rounds
//	go run ./bench/buildbench -base debian -rounds 3
//
// It needs root, runc and busybox-static (debootstrap for -base debian),
// as the tests do; buildkitd is built once into buildkittest.CacheDir.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ftc-dev/ftc/internal/buildkittest"
)

func main() {
	rounds := flag.Int("rounds", 5, "rounds per measurement (the median is reported)")
	baseKind := flag.String("base", "busybox", "base image: busybox (stand-in pip) or debian (real pip; debootstrap the first time)")
	flag.Parse()
	ctx := context.Background()

	work, err := os.MkdirTemp("", "ftc-buildbench-")
	check(err)
	defer os.RemoveAll(work)
	ftc := filepath.Join(work, "ftc")
	run("go", "build", "-o", ftc, "./cmd/ftc")
	bkd, err := buildkittest.BuildkitdBinary(ctx)
	check(err)

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	var layer v1.Layer
	switch *baseKind {
	case "busybox":
		entries, err := buildkittest.BusyboxEntries()
		check(err)
		b, err := buildkittest.Tar(entries)
		check(err)
		layer, err = tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		check(err)
	case "debian":
		p, err := buildkittest.DebianPythonTar(ctx)
		check(err)
		layer, err = tarball.LayerFromFile(p, tarball.WithCompressedCaching)
		check(err)
	default:
		check(fmt.Errorf("-base %q: want busybox or debian", *baseKind))
	}
	baseRef, _, err := buildkittest.PushBase(ctx, reg+"/base/"+*baseKind+":1", layer, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
	check(err)
	wheels := filepath.Join(work, "wheels")
	check(os.MkdirAll(wheels, 0o755))
	_, err = buildkittest.Wheel(wheels, "hello", "1.0", map[string]string{"hello/__init__.py": "GREETING = 'hi'\n"})
	check(err)
	set := `environment={profile: "bench", python: "3.11", cuda: "12.4", base: image: "` + baseRef + `", packages: hello: "1.0", optional: {}, features: []}`

	recipeDir := filepath.Join(work, "recipe")
	run("cp", "-r", "examples/grpo-reward-funcs", recipeDir)
	recipe := filepath.Join(recipeDir, "recipe.cue")
	rewards := filepath.Join(recipeDir, "rewards.py")
	original, err := os.ReadFile(rewards)
	check(err)

	// One lock for all rounds: resolution inside BuildKit, timed once.
	d, err := buildkittest.StartDaemon(ctx, bkd)
	check(err)
	lockTime := timed(func() {
		run(ftc, "lock", "--in-base", "--set", set, "--buildkit", d.Addr, "--wheels", wheels, "--progress", "quiet", "--cache", filepath.Join(work, "lockcache"), recipe)
	})
	check(d.Stop())

	build := func(addr, cache string, extra ...string) {
		args := append([]string{"build", "--frozen", "--set", set, "--buildkit", addr, "--wheels", wheels, "--progress", "quiet",
			"--cache", cache, "-o", "oci:" + filepath.Join(work, "out")}, extra...)
		run(ftc, append(args, recipe)...)
	}
	var startup, cold, noop, lr, reward []time.Duration
	for i := 0; i < *rounds; i++ {
		startup = append(startup, timed(func() { run(ftc, "version") }))
		// Cold: a fresh daemon root and an empty environment cache.
		d, err := buildkittest.StartDaemon(ctx, bkd)
		check(err)
		cache := filepath.Join(work, fmt.Sprintf("cache%d", i))
		cold = append(cold, timed(func() { build(d.Addr, cache) }))
		noop = append(noop, timed(func() { build(d.Addr, cache) }))
		lr = append(lr, timed(func() { build(d.Addr, cache, "--set", "stages.grpo.training.learningRate=3e-6") }))
		check(os.WriteFile(rewards, append(append([]byte{}, original...), fmt.Sprintf("\n# edit %d\n", i)...), 0o644))
		reward = append(reward, timed(func() { build(d.Addr, cache) }))
		check(os.WriteFile(rewards, original, 0o644))
		check(d.Stop())
		check(os.RemoveAll(cache))
	}

	c := median(cold)
	fmt.Printf("ftc build, examples/grpo-reward-funcs on a %s base (median of %d rounds, %d cores)\n\n", *baseKind, *rounds, runtime.NumCPU())
	fmt.Printf("%-46s %10s %10s\n", "", "ms", "× cold")
	row := func(label string, t time.Duration) {
		fmt.Printf("%-46s %10.1f %10.3f\n", label, float64(t.Microseconds())/1000, float64(t)/float64(c))
	}
	row("ftc version (start-up baseline)", median(startup))
	row("ftc lock (resolution in BuildKit), once", lockTime)
	row("cold build (fresh daemon root, empty cache)", c)
	row("no-op rebuild", median(noop))
	row("rebuild after a learning-rate change", median(lr))
	row("rebuild after a reward-file edit", median(reward))
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		check(fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildbench:", err)
		os.Exit(1)
	}
}
