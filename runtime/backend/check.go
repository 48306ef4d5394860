package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Checker is a backend that can say, before any stage runs, whether the
// place its jobs would run can be reached: the client commands are
// installed and the cluster or daemon answers. `ftc run` (a dry run too)
// asks it first, so that a missing sbatch or an unreachable cluster is
// not found only when the first stage is submitted.
type Checker interface {
	Check(ctx context.Context) error
}

// checkTimeout bounds each command a check runs.
const checkTimeout = 20 * time.Second

// probe runs a client command, bounded, and returns its stdout.
func probe(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("%s %s did not answer within %s", name, strings.Join(args, " "), checkTimeout)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return stdout.String(), nil
}

// Check implements Checker: sbatch, squeue and sinfo are installed, the
// controller answers sinfo, and the recipe's partition (if any) exists.
func (s Slurm) Check(ctx context.Context) error {
	for _, c := range []string{"sbatch", "squeue", "sinfo"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s is not installed: the slurm backend submits from a host with Slurm's client commands (sbatch, squeue, sinfo, scancel)", c)
		}
	}
	if s.Settings.Container != "" && s.Settings.Container != "none" && s.Image == "" {
		return fmt.Errorf("hardware.slurm.container %q runs each job in the stage image: give --image REF@sha256:… (ftc build prints it)", s.Settings.Container)
	}
	out, err := probe(ctx, s.Env, "sinfo", "--noheader", "--format=%P")
	if err != nil {
		return fmt.Errorf("cannot reach the Slurm controller: %v", err)
	}
	if p := s.Settings.Partition; p != "" {
		var parts []string
		for _, l := range strings.Fields(out) {
			parts = append(parts, strings.TrimSuffix(l, "*")) // the default is starred
		}
		if !slices.Contains(parts, p) {
			return fmt.Errorf("hardware.slurm.partition %q is not a partition of this cluster; sinfo lists %s", p, strings.Join(parts, ", "))
		}
	}
	return nil
}

// Check implements Checker: kubectl is installed and the cluster answers.
func (k Kubernetes) Check(ctx context.Context) error {
	bin := k.Kubectl
	if bin == "" {
		bin = "kubectl"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("%s is not installed: the kubernetes backend applies each stage's manifests with it", bin)
	}
	args := append(append([]string(nil), k.Args...), "version", "--request-timeout=15s")
	if _, err := probe(ctx, nil, bin, args...); err != nil {
		return fmt.Errorf("cannot reach the Kubernetes cluster: %v", err)
	}
	return nil
}

// Check implements Checker: the engine is installed and its daemon (or
// podman's service) answers.
func (c Container) Check(ctx context.Context) error {
	if _, err := exec.LookPath(c.Engine); err != nil {
		return fmt.Errorf("%s is not installed: the %s backend runs each stage in the stage image with it", c.Engine, c.Engine)
	}
	format := "{{.ServerVersion}}"
	if c.Engine == "podman" {
		format = "{{.Version.Version}}"
	}
	if _, err := probe(ctx, nil, c.Engine, "info", "--format", format); err != nil && c.Engine == "docker" {
		return fmt.Errorf("cannot reach the docker daemon: %v", err)
	} else if err != nil {
		return fmt.Errorf("%s cannot run containers here: %v", c.Engine, err)
	}
	return nil
}
