// Package proctest starts the service processes tests need (registries,
// etcd, API servers) the same way everywhere: logged to a file, killed
// with the test binary, and stopped by PID when the test ends — SIGTERM,
// then SIGKILL after a bounded wait.
package proctest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/sysproc"
)

// Start runs bin with args, logging to dir/name.log, and stops it when
// the test ends, waiting at most grace after SIGTERM.
func Start(t *testing.T, dir, name string, grace time.Duration, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysproc.Attr(false, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

// FreePort returns a TCP port free on the loopback interface.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
