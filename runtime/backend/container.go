package backend

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Container runs jobs in a container with docker or podman: the stage's
// image by digest, its run directory and inputs mounted, GPUs passed
// through, and only the environment the job names (secrets by name).
type Container struct {
	// Engine is "docker" or "podman".
	Engine string
	// Image is the stage image, by digest.
	Image string
	// Mounts are extra host:container bind mounts (the cache, so the
	// hard-linked inputs resolve).
	Mounts []string
	// Extra are extra engine flags (e.g. "--ulimit", "nofile=65536").
	Extra []string
}

// Name implements Backend.
func (c Container) Name() string { return c.Engine }

// WorkDir is where the run directory is mounted in the container.
const WorkDir = "/ftc/run"

// Command returns the engine command line for job.
func (c Container) Command(job Job) ([]string, error) {
	if c.Engine != "docker" && c.Engine != "podman" {
		return nil, fmt.Errorf("container engine %q: want docker or podman", c.Engine)
	}
	if !strings.Contains(c.Image, "@sha256:") {
		return nil, fmt.Errorf("image %q is not pinned by digest", c.Image)
	}
	argv := []string{c.Engine, "run", "--rm", "--init", "--network=host", "--ipc=host",
		"-v", job.Dir + ":" + WorkDir, "-w", WorkDir}
	for _, m := range c.Mounts {
		argv = append(argv, "-v", m)
	}
	if len(job.GPUs) > 0 {
		if c.Engine == "docker" {
			argv = append(argv, "--gpus", `"device=`+visibleDevices(job.GPUs)+`"`)
		} else {
			for _, g := range job.GPUs {
				argv = append(argv, "--device", fmt.Sprintf("nvidia.com/gpu=%d", g))
			}
		}
	}
	for _, e := range job.Env {
		argv = append(argv, "-e", e)
	}
	argv = append(argv, c.Extra...)
	argv = append(argv, c.Image)
	return append(argv, job.Argv...), nil
}

// Run implements Backend.
func (c Container) Run(ctx context.Context, job Job) error {
	argv, err := c.Command(job)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath(c.Engine); err != nil {
		return errors.New(c.Engine + " is not installed")
	}
	return Local{}.Run(ctx, Job{Name: job.Name, Dir: job.Dir, Argv: argv, Output: job.Output})
}
