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
case "$1" in
get) cat "$STATUS_FILE" ;;
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
