//go:build kubernetes

// These tests need a real API server built from source (8 minutes cold):
// run them with `make k8s-test`.

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/load"
	"github.com/ftc-dev/ftc/internal/kubetest"
	"github.com/ftc-dev/ftc/runtime/backend"
)

// pytorchJobCRD is the CRD shipped in the training-operator module.
func pytorchJobCRD(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kubeflow/training-operator").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "manifests", "base", "crds", "kubeflow.org_pytorchjobs.yaml")
}

// TestServerDryRunOfEveryExample renders every example for target
// kubernetes, with both workloads, and has a real API server validate
// the manifests (server-side dry run, strict field validation).
func TestServerDryRunOfEveryExample(t *testing.T) {
	c := kubetest.Start(t)
	if out, err := c.Kubectl("apply", "--server-side", "-f", pytorchJobCRD(t)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c.Kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/pytorchjobs.kubeflow.org")
	c.Kubectl("create", "namespace", "ml-training")
	recipes, _ := filepath.Glob("../../examples/*/recipe.cue")
	n := 0
	for _, r := range recipes {
		for _, workload := range []string{"pytorchjob", "indexed-job"} {
			sets := []load.Override{{Path: "hardware.target", Value: "kubernetes"}, {Path: "hardware.kubernetes.workload", Value: workload}}
			p, diags, err := compiler.Plan(r, sets)
			if err != nil && strings.Contains(diags.Error(), "slurm settings given") {
				// A Slurm recipe keeps its slurm block; --set cannot remove it.
				t.Logf("%s: written for Slurm, not re-targeted", r)
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v\n%v", r, err, diags)
			}
			for _, s := range p.Stages {
				m, ok := s.Files["kubernetes.yaml"]
				if !ok {
					continue
				}
				f := filepath.Join(t.TempDir(), "m.yaml")
				os.WriteFile(f, []byte(m), 0o644)
				if out, err := c.Kubectl("apply", "--dry-run=server", "--validate=strict", "-f", f); err != nil {
					t.Errorf("%s %s (%s): %v\n%s", r, s.Name, workload, err, out)
				}
				n++
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d manifests validated", n)
	}
	// And the server does refuse a bad one.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {bogusField: 1, template: {spec: {restartPolicy: Never, containers: [{name: c, image: i}]}}}\n"), 0o644)
	if out, err := c.Kubectl("apply", "--dry-run=server", "--validate=strict", "-f", bad); err == nil {
		t.Fatalf("an unknown field was accepted:\n%s", out)
	}
	t.Logf("%d manifests validated by the API server", n)
}

// TestKubernetesBackend applies a stage's manifests through the backend
// and follows the workload; with no controllers in the test cluster, the
// test plays the training operator and writes the workload's status.
func TestKubernetesBackend(t *testing.T) {
	c := kubetest.Start(t)
	if out, err := c.Kubectl("apply", "--server-side", "-f", pytorchJobCRD(t)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c.Kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/pytorchjobs.kubeflow.org")
	p, diags, err := compiler.Plan("../../examples/sft-trl-single/recipe.cue", []load.Override{{Path: "hardware.target", Value: "kubernetes"}})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	manifest := p.Stages[len(p.Stages)-1].Files["kubernetes.yaml"]
	be := backend.Kubernetes{Args: []string{"--kubeconfig", c.Kubeconfig}, Poll: 100 * time.Millisecond}

	for _, want := range []string{"Succeeded", "Failed", "cancel"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "kubernetes.yaml"), []byte(manifest), 0o644)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var out bytes.Buffer
		go func() { done <- be.Run(ctx, backend.Job{Name: "sft", Dir: dir, Output: &out}) }()
		name := waitForObject(t, c)
		switch want {
		case "cancel":
			cancel()
		default:
			patch := `{"status":{"conditions":[{"type":"` + want + `","status":"True","reason":"Test","message":"set by the test","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`
			if o, err := c.Kubectl("patch", "pytorchjob", name, "--subresource=status", "--type=merge", "-p", patch); err != nil {
				t.Fatalf("%v\n%s", err, o)
			}
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the backend did not notice", want)
		}
		var ee *backend.ExitError
		switch want {
		case "Succeeded":
			if err != nil {
				t.Errorf("succeeded workload: %v\n%s", err, out.String())
			}
		case "Failed":
			if !errors.As(err, &ee) {
				t.Errorf("failed workload: got %v", err)
			}
		case "cancel":
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled: got %v", err)
			}
		}
		cancel()
		// The backend deleted what it applied.
		deadline := time.Now().Add(20 * time.Second)
		for {
			o, _ := c.Kubectl("get", "pytorchjobs", "-o", "name")
			if strings.TrimSpace(string(o)) == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: objects left behind: %s", want, o)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func waitForObject(t *testing.T, c *kubetest.Cluster) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		o, _ := c.Kubectl("get", "pytorchjobs", "-o", "jsonpath={.items[0].metadata.name}")
		if s := strings.TrimSpace(string(o)); s != "" && !strings.Contains(s, "error") {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the backend applied nothing")
	return ""
}
