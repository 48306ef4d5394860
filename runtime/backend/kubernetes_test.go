package backend

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeKubectl is a stand-in for kubectl (a test fixture; the real API
// server test is `make k8s-test`): it logs its arguments and answers
// "get" with the status in $STATUS_FILE.
const fakeKubectl = `#!/bin/sh
echo "$*" >> "$KUBECTL_LOG"
case "$1 $2" in
"get pods") cat "$PODS_FILE" 2>/dev/null || echo '{"items":[]}' ;;
get*) cat "$STATUS_FILE" ;;
esac
`

func TestKubernetesBackendFlow(t *testing.T) {
	dir := t.TempDir()
	kubectl := filepath.Join(dir, "kubectl")
	os.WriteFile(kubectl, []byte(fakeKubectl), 0o755)
	log, status := filepath.Join(dir, "log"), filepath.Join(dir, "status.json")
	t.Setenv("KUBECTL_LOG", log)
	t.Setenv("STATUS_FILE", status)
	run := filepath.Join(dir, "run")
	os.MkdirAll(run, 0o755)
	os.WriteFile(filepath.Join(run, ManifestFile), []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: ml}\n"), 0o644)

	for cond, wantErr := range map[string]bool{"Complete": false, "Failed": true} {
		os.WriteFile(status, []byte(`{"status":{"conditions":[]}}`), 0o644)
		os.Remove(log)
		go func() {
			time.Sleep(150 * time.Millisecond)
			os.WriteFile(status, []byte(`{"status":{"conditions":[{"type":"`+cond+`","status":"True","message":"m"}]}}`), 0o644)
		}()
		var out bytes.Buffer
		err := Kubernetes{Kubectl: kubectl, Poll: 20 * time.Millisecond}.Run(context.Background(), Job{Dir: run, Output: &out})
		var ee *ExitError
		if wantErr != errors.As(err, &ee) || !wantErr && err != nil {
			t.Errorf("%s: got %v", cond, err)
		}
		b, _ := os.ReadFile(log)
		calls := string(b)
		for _, want := range []string{"apply -f " + filepath.Join(run, ManifestFile), "get job j -n ml -o json", "delete --ignore-not-found --wait=false -f"} {
			if !strings.Contains(calls, want) {
				t.Errorf("%s: kubectl was not called with %q:\n%s", cond, want, calls)
			}
		}
	}
}

// A workload that cannot start is given up on, with the reason, and
// deleted; one that starts late but within the bounds is waited for.
func TestKubernetesBackendGivesUpOnAStuckWorkload(t *testing.T) {
	dir := t.TempDir()
	kubectl := filepath.Join(dir, "kubectl")
	os.WriteFile(kubectl, []byte(fakeKubectl), 0o755)
	log, status, pods := filepath.Join(dir, "log"), filepath.Join(dir, "status.json"), filepath.Join(dir, "pods.json")
	t.Setenv("KUBECTL_LOG", log)
	t.Setenv("STATUS_FILE", status)
	t.Setenv("PODS_FILE", pods)
	run := filepath.Join(dir, "run")
	os.MkdirAll(run, 0o755)
	os.WriteFile(filepath.Join(run, ManifestFile), []byte("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: ml}\n"), 0o644)
	os.WriteFile(status, []byte(`{"status":{"conditions":[]}}`), 0o644)

	unschedulable := `{"items":[{"metadata":{"name":"j-0"},"status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/4 nodes are available: 4 Insufficient nvidia.com/gpu."}]}}]}`
	pullBackOff := `{"items":[{"metadata":{"name":"j-0"},"status":{"phase":"Pending","containerStatuses":[{"name":"trainer","state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"reg/ftc@sha256:abc\""}}}]}}]}`
	running := `{"items":[{"metadata":{"name":"j-0"},"status":{"phase":"Running"}}]}`
	k := Kubernetes{Kubectl: kubectl, Poll: 10 * time.Millisecond, StartTimeout: 200 * time.Millisecond, PullGrace: 100 * time.Millisecond}
	for _, c := range []struct {
		name, pods string
		want       string // in the error; "" when the run goes on
	}{
		{"unschedulable", unschedulable, "no pod started within 200ms: pod j-0 cannot be scheduled: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu."},
		{"no pods", `{"items":[]}`, "no pod was created within 200ms"},
		{"image pull", pullBackOff, "pod j-0, container trainer: ImagePullBackOff: Back-off pulling image"},
		{"running", running, ""},
	} {
		os.WriteFile(pods, []byte(c.pods), 0o644)
		os.Remove(log)
		// Generous for the give-ups (they end as soon as they give up,
		// however slow the machine); the running pod is watched for
		// three times the start timeout.
		wait := 30 * time.Second
		if c.want == "" {
			wait = 600 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		var out bytes.Buffer
		err := k.Run(ctx, Job{Dir: run, Output: &out})
		cancel()
		if c.want == "" {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: a running pod must be waited for (until the context ends), got %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "gave up on job/j") {
			t.Errorf("%s: got %v, want it to say %q", c.name, err, c.want)
		}
		if b, _ := os.ReadFile(log); !strings.Contains(string(b), "delete --ignore-not-found") {
			t.Errorf("%s: the objects were not deleted:\n%s", c.name, b)
		}
	}

	// The status cannot be read at all: bounded too.
	os.WriteFile(status, []byte("not json"), 0o644)
	os.WriteFile(pods, []byte(running), 0o644)
	k.StatusTimeout = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := k.Run(ctx, Job{Dir: run, Output: &out}); err == nil || !strings.Contains(err.Error(), "its status could not be read for 100ms") {
		t.Errorf("unreadable status: got %v", err)
	}
}
