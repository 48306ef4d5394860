// Package mlflowtest starts a real MLflow tracking server for tests: mlflow
// from PyPI by exact version and hash (stdlib/python/envs/mlflow-server.txt,
// built by scripts/pyvenv.sh server mlflow-server), on a SQLite database
// in the test's temporary directory, by PID, with a bounded wait for it to
// answer, stopped (its whole process group) when the test ends. The same
// environment's MLflow client reads back what the server holds.
package mlflowtest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/pyenvtest"
	"github.com/ftc-dev/ftc/internal/sysproc"
)

// startBound is how long the server gets to answer /health (about 6 s on
// two cores).
const startBound = 120 * time.Second

// Server is a running MLflow tracking server.
type Server struct {
	// URI is its address (http://127.0.0.1:PORT); Python the interpreter
	// of the environment it runs in, whose mlflow client reads it back.
	URI, Python string
	// Log is the file its output goes to.
	Log string
}

// Start starts a server for t and stops it when t ends. Without the
// environment (no python3.11, no network for a cold wheelhouse) it ends
// the test through needs: a skip on a developer's machine, a failure
// under CI.
func Start(t testing.TB) *Server {
	t.Helper()
	py := pyenvtest.Server(t, "mlflow-server")
	dir := t.TempDir()
	// A port found free may be taken before the server binds it: then it
	// exits at once, and another is tried.
	var last string
	for try := 0; try < 3; try++ {
		s, log, err := start(t, py, dir, try)
		if err == nil {
			return s
		}
		last = fmt.Sprintf("%v\n%s", err, log)
		if !bytes.Contains(log, []byte("already in use")) {
			break
		}
	}
	t.Fatalf("the MLflow server did not start: %s", last)
	return nil
}

func start(t testing.TB, py, dir string, try int) (*Server, []byte, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("server-%d.log", try))
	log, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer log.Close()
	cmd := exec.Command(py, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"),
		"--default-artifact-root", filepath.Join(dir, "artifacts"), "--workers", "1")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group (uvicorn runs as its child), killed with it
	// if the test binary dies.
	cmd.SysProcAttr = sysproc.Attr(true, syscall.SIGKILL)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=", "PYTHONDONTWRITEBYTECODE=1")
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	uri := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(startBound)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return nil, b, fmt.Errorf("mlflow server exited: %v", err)
		default:
		}
		if resp, err := client.Get(uri + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			b, _ := os.ReadFile(logPath)
			return nil, b, fmt.Errorf("no answer on %s/health within %s", uri, startBound)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(stop)
	return &Server{URI: uri, Python: py, Log: logPath}, nil, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
