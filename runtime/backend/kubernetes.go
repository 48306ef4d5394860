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
	// The wait is bounded where a workload cannot make progress, so a
	// run does not hang on a pod that will never start:
	//   - StartTimeout (default 30 min): no pod has left Pending, e.g.
	//     nothing can schedule it ("0/4 nodes are available:
	//     insufficient nvidia.com/gpu");
	//   - PullGrace (default 5 min): a container has been waiting on
	//     an image or configuration error (ImagePullBackOff,
	//     CreateContainerConfigError, …), which rarely heals itself;
	//   - StatusTimeout (default 5 min): the workload's status could not
	//     be read at all.
	// Giving up deletes the objects (unless Keep) and says why.
	StartTimeout, PullGrace, StatusTimeout time.Duration
}

// stuckReasons are the container waiting reasons that mean the pod
// cannot start as it is.
var stuckReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
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
	applied := time.Now()
	var unreadSince time.Time // zero while the status reads
	started := false          // some pod has left Pending
	for {
		state, msg, err := k.state(ctx, w)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(job.Output, "ftc: reading status: %v\n", err)
			if unreadSince.IsZero() {
				unreadSince = time.Now()
			}
			if d := orDefault(k.StatusTimeout, 5*time.Minute); time.Since(unreadSince) > d {
				return fmt.Errorf("kubernetes: gave up on %s/%s: its status could not be read for %v: %v",
					strings.ToLower(w.Kind), w.Name, d, err)
			}
		} else if err == nil {
			unreadSince = time.Time{}
		}
		if state == "running" && ctx.Err() == nil {
			var why string
			started, why = k.stuck(ctx, w, started, time.Since(applied))
			if why != "" {
				k.logs(w, job.Output)
				return fmt.Errorf("kubernetes: gave up on %s/%s after %v: %s", strings.ToLower(w.Kind), w.Name,
					time.Since(applied).Round(time.Second), why)
			}
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

// stuck reads the workload's pods and says why it will not make progress,
// or "" while it may: see Kubernetes.StartTimeout and PullGrace. started
// carries over between polls: once a pod has run, a pod Pending again
// (a restarted replica) is not a scheduling failure of the first start.
func (k Kubernetes) stuck(ctx context.Context, w workload, started bool, elapsed time.Duration) (bool, string) {
	selector := "ftc.dev/job=" + w.Name
	if w.Kind == "PyTorchJob" {
		selector = "training.kubeflow.org/job-name=" + w.Name
	}
	out, err := k.kubectl(ctx, nil, "get", "pods", "-n", w.Namespace, "-l", selector, "-o", "json")
	if err != nil {
		return started, "" // the status timeout covers an API that does not answer
	}
	var pods struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Status   struct {
				Phase      string `json:"phase"`
				Conditions []struct {
					Type, Status, Reason, Message string
				} `json:"conditions"`
				ContainerStatuses []struct {
					Name  string `json:"name"`
					State struct {
						Waiting *struct{ Reason, Message string } `json:"waiting"`
					} `json:"state"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &pods); err != nil {
		return started, ""
	}
	pending := ""
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if wt := c.State.Waiting; wt != nil && stuckReasons[wt.Reason] && elapsed > orDefault(k.PullGrace, 5*time.Minute) {
				return started, fmt.Sprintf("pod %s, container %s: %s: %s", p.Metadata.Name, c.Name, wt.Reason, wt.Message)
			}
		}
		if p.Status.Phase != "Pending" {
			started = true
			continue
		}
		if pending == "" {
			pending = fmt.Sprintf("pod %s is Pending", p.Metadata.Name)
			for _, c := range p.Status.Conditions {
				if c.Type == "PodScheduled" && c.Status == "False" {
					pending = fmt.Sprintf("pod %s cannot be scheduled: %s", p.Metadata.Name, c.Message)
				}
			}
		}
	}
	timeout := orDefault(k.StartTimeout, 30*time.Minute)
	if started || elapsed <= timeout {
		return started, ""
	}
	if len(pods.Items) == 0 {
		return started, fmt.Sprintf("no pod was created within %v (is the training operator installed? kubectl describe shows the events)", timeout)
	}
	return started, fmt.Sprintf("no pod started within %v: %s", timeout, pending)
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
