// Command hashbench measures ftc's file hashing (the streamed sha256 that
// checks datasets and fills the cache) against sha256sum and b3sum on the
// same 1 GiB file in the same run, and prints throughput and ratios.
//
//	go run ./bench/hashbench            # 1 GiB in $TMPDIR, 3 rounds
//	go run ./bench/hashbench -size 4096 -rounds 5
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/ftc-dev/ftc/runtime/resolve"
)

func main() {
	sizeMiB := flag.Int("size", 1024, "file size in MiB")
	rounds := flag.Int("rounds", 3, "rounds per tool (the best is reported)")
	flag.Parse()

	f, err := os.CreateTemp("", "ftc-hashbench-*")
	if err != nil {
		fail(err)
	}
	defer os.Remove(f.Name())
	if _, err := io.CopyN(f, rand.Reader, int64(*sizeMiB)<<20); err != nil {
		fail(err)
	}
	f.Close()
	path := f.Name()
	size := float64(int64(*sizeMiB) << 20)

	type tool struct {
		name string
		run  func() error
	}
	tools := []tool{
		{"ftc (sha256, Go)", func() error { _, err := (&resolve.Hasher{}).SHA256(path); return err }},
		{"sha256sum", func() error { return exec.Command("sha256sum", path).Run() }},
		{"b3sum --num-threads 1", func() error { return exec.Command("b3sum", "--num-threads", "1", path).Run() }},
		{"b3sum (all cores)", func() error { return exec.Command("b3sum", path).Run() }},
	}
	// Warm the page cache so every tool reads from memory.
	_ = tools[1].run()

	best := map[string]time.Duration{}
	for r := 0; r < *rounds; r++ {
		for _, t := range tools {
			start := time.Now()
			if err := t.run(); err != nil {
				best[t.name] = -1
				continue
			}
			if d := time.Since(start); best[t.name] == 0 || d < best[t.name] {
				best[t.name] = d
			}
		}
	}
	ftc := best[tools[0].name]
	fmt.Printf("hashing a %d MiB file (page cache warm), best of %d, %s %s, %d cores\n", *sizeMiB, *rounds, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Printf("%-24s %10s %10s %14s\n", "tool", "seconds", "GB/s", "ftc speed ×")
	names := make([]string, 0, len(tools))
	for _, t := range tools {
		names = append(names, t.name)
	}
	sort.SliceStable(names, func(i, j int) bool { return false })
	for _, n := range names {
		d := best[n]
		if d < 0 {
			fmt.Printf("%-24s %10s\n", n, "not installed")
			continue
		}
		fmt.Printf("%-24s %10.3f %10.2f %14.2f\n", n, d.Seconds(), size/d.Seconds()/1e9, d.Seconds()/ftc.Seconds())
	}
	_ = filepath.Base
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hashbench:", err)
	os.Exit(1)
}
