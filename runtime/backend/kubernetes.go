package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Kubernetes runs a stage as the workload in its kubernetes.yaml (written
// into the run directory from the plan): it applies the manifests with
// kubectl, follows the workload until it succeeds or fails, streams the
// first pod's log, and deletes the objects when done or interrupted.
//
// The pods run in the stage's run directory on the cache volume
// (kubernetes: cacheVolumeClaim), so the cache directory ftc uses here must
// be that volume's contents, e.g. a shared file system mounted on both.
type Kubernetes struct {
	// Kubectl is the kubectl binary (default "kubectl"); Args are passed
	// before each command (e.g. --kubeconfig, --context).
	Kubectl string
	Args    []string
	// Poll is how often the workload's status is read.
	Poll time.Duration
	// Keep leaves the objects in the cluster after the stage ends.
	Keep bool
}

// Name implements Backend.
func (Kubernetes) Name() string { return "kubernetes" }

// ManifestFile is the manifest a Kubernetes job applies.
const ManifestFile = "kubernetes.yaml"

// workload is the object whose status decides the stage.
type workload struct {
	Kind, Name, Namespace string
}

func (k Kubernetes) kubectl(ctx context.Context, out io.Writer, args ...string) ([]byte, error) {
	bin := k.Kubectl
	if bin == "" {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, append(append([]string(nil), k.Args...), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if out != nil {
		cmd.Stdout = io.MultiWriter(&stdout, out)
	}
	err := cmd.Run()
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Run implements Backend.
func (k Kubernetes) Run(ctx context.Context, job Job) error {
	manifest := filepath.Join(job.Dir, ManifestFile)
	w, err := readWorkload(manifest)
	if err != nil {
		return err
	}
	if _, err := k.kubectl(ctx, job.Output, "apply", "-f", manifest); err != nil {
		return err
	}
	fmt.Fprintf(job.Output, "ftc: applied %s/%s in namespace %s\n", strings.ToLower(w.Kind), w.Name, w.Namespace)
	cleanup := func() {
		if k.Keep {
			return
		}
		// A fresh context: the run's may be cancelled already.
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := k.kubectl(c, nil, "delete", "--ignore-not-found", "--wait=false", "-f", manifest); err != nil {
			fmt.Fprintf(job.Output, "ftc: cleaning up: %v\n", err)
		}
	}
	defer cleanup()

	poll := k.Poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		state, msg, err := k.state(ctx, w)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(job.Output, "ftc: reading status: %v\n", err)
		}
		switch state {
		case "succeeded":
			k.logs(w, job.Output)
			return nil
		case "failed":
			k.logs(w, job.Output)
			fmt.Fprintf(job.Output, "ftc: %s/%s failed: %s\n", strings.ToLower(w.Kind), w.Name, msg)
			return &ExitError{Code: 1}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// readWorkload finds the Job or PyTorchJob in a manifest file.
func readWorkload(path string) (workload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return workload{}, fmt.Errorf("kubernetes backend: %w (is hardware.target \"kubernetes\"?)", err)
	}
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return workload{}, err
		}
		if obj.Kind == "Job" || obj.Kind == "PyTorchJob" {
			ns := obj.Metadata.Namespace
			if ns == "" {
				ns = "default"
			}
			return workload{obj.Kind, obj.Metadata.Name, ns}, nil
		}
	}
	return workload{}, errors.New("kubernetes backend: no Job or PyTorchJob in " + path)
}

// state reads whether the workload succeeded, failed or is still running,
// from its conditions (Complete/Failed for a Job, Succeeded/Failed for a
// PyTorchJob).
func (k Kubernetes) state(ctx context.Context, w workload) (string, string, error) {
	resource := "job"
	if w.Kind == "PyTorchJob" {
		resource = "pytorchjob"
	}
	out, err := k.kubectl(ctx, nil, "get", resource, w.Name, "-n", w.Namespace, "-o", "json")
	if err != nil {
		return "running", "", err
	}
	var obj struct {
		Status struct {
			Conditions []struct {
				Type, Status, Message string
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &obj); err != nil {
		return "running", "", err
	}
	for _, c := range obj.Status.Conditions {
		if c.Status != "True" {
			continue
		}
		switch c.Type {
		case "Complete", "Succeeded":
			return "succeeded", c.Message, nil
		case "Failed":
			return "failed", c.Message, nil
		}
	}
	return "running", "", nil
}

// logs copies the first pod's log into out, best effort.
func (k Kubernetes) logs(w workload, out io.Writer) {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	selector := "ftc.dev/job=" + w.Name
	if w.Kind == "PyTorchJob" {
		selector = "training.kubeflow.org/job-name=" + w.Name
	}
	_, _ = k.kubectl(c, out, "logs", "-n", w.Namespace, "-l", selector, "--tail=-1", "--prefix")
}
