// Package registrytest starts real OCI registries for tests: Debian's
// docker-registry (distribution 2.8) as an independent server process, and
// go-containerregistry's registry in process. Both listen on loopback only.
package registrytest

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/ftc-dev/ftc/internal/proctest"
)

// DockerRegistry starts /usr/bin/docker-registry on a free loopback port
// with storage in a temporary directory and returns its host:port. The
// process is stopped by PID when the test ends. scripts/test.sh installs
// the package; without it the test fails and says how to install it.
func DockerRegistry(t *testing.T) string {
	t.Helper()
	bin := needs.Program(t, "docker-registry", "scripts/test.sh installs it: apt-get install docker-registry")
	addr := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, dir, "registry", 5*time.Second, bin, "serve", cfg)
	// Bounded wait for the API to answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not answer on %s within 10s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// InProcess starts go-containerregistry's registry on loopback and
// returns its host:port.
func InProcess(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}
