// Package kubetest starts a real Kubernetes API server for tests: etcd and
// kube-apiserver built from the Go module proxy by scripts/kube-apiserver.sh
// (about 8 minutes cold, so these tests are opt-in: `make k8s-test`, build
// tag "kubernetes"). There is no scheduler or controller manager: objects
// are validated and stored, no pod runs.
package kubetest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/ftc-dev/ftc/internal/proctest"
)

// Cluster is a running API server.
type Cluster struct {
	// Kubeconfig is a kubeconfig file for kubectl.
	Kubeconfig string
}

// BinDir is where the binaries are: $FTC_KUBE_BIN or ~/.cache/ftc/kube-bin.
func BinDir() string {
	if d := os.Getenv("FTC_KUBE_BIN"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ftc", "kube-bin")
}

// Start runs etcd and kube-apiserver on free loopback ports, waits (at
// most 60 s) until the server is ready, and stops both by PID when the
// test ends.
func Start(t *testing.T) *Cluster {
	t.Helper()
	bin := BinDir()
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			needs.Missing(t, "%s built in %s (run scripts/kube-apiserver.sh %s; make k8s-test does)", b, bin, bin)
		}
	}
	needs.Program(t, "kubectl", "apt-get install kubernetes-client")
	dir := t.TempDir()
	etcdPort, peerPort, apiPort := proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t)
	proctest.Start(t, dir, "etcd", 10*time.Second, filepath.Join(bin, "etcd"), "--name", "ci", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("ci=http://127.0.0.1:%d", peerPort))

	key := filepath.Join(dir, "sa.key")
	writeKey(t, key)
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("ftc-test-token,ftc-test,1,system:masters\n"), 0o600)
	proctest.Start(t, dir, "kube-apiserver", 10*time.Second, filepath.Join(bin, "kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort), "--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+key, "--service-account-signing-key-file="+key,
		"--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC", "--token-auth-file="+tokens, "--allow-privileged=true")

	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: ci
  cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}
users:
- name: ci
  user: {token: ftc-test-token}
contexts:
- name: ci
  context: {cluster: ci, user: ci}
current-context: ci
`, apiPort)), 0o600)
	c := &Cluster{Kubeconfig: kc}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := c.Kubectl("get", "--raw", "/readyz")
		if err == nil && string(out) == "ok" {
			return c
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "kube-apiserver.log"))
			t.Fatalf("kube-apiserver not ready within 60s: %v %s\n%s", err, out, tail(b))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kubectl runs kubectl against the cluster.
func (c *Cluster) Kubectl(args ...string) ([]byte, error) {
	return exec.Command("kubectl", append([]string{"--kubeconfig", c.Kubeconfig}, args...)...).CombinedOutput()
}

func writeKey(t *testing.T, path string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte) []byte {
	if len(b) > 3000 {
		return b[len(b)-3000:]
	}
	return b
}
