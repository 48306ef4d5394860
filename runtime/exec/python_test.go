package exec

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ftc-dev/ftc/compiler/key"
	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/backend"
	"github.com/ftc-dev/ftc/runtime/cas"
)

// recorder is a fake cluster backend: it records each job's command and
// fails it, which is all these tests need from a run.
type recorder struct {
	mu    sync.Mutex
	argvs [][]string
}

func (*recorder) Name() string { return "recorder" }

func (b *recorder) Run(_ context.Context, job backend.Job) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.argvs = append(b.argvs, job.Argv)
	return errors.New("recorded")
}

// TestPythonIsThisMachinesOnly: --python names an interpreter on this
// machine, so it replaces "python" only in commands run here; a job on a
// cluster node (or in a container) keeps "python", the image's.
func TestPythonIsThisMachinesOnly(t *testing.T) {
	store, err := cas.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Recipe: "r", Stages: []*plan.Stage{{
		Name: "sft", Kind: "sft",
		Key:       key.Key("sha256:" + strings.Repeat("a", 64)),
		ResumeKey: key.Key("sha256:" + strings.Repeat("b", 64)),
		Config:    map[string]any{},
		Launch:    launch.Plan{Launcher: "python", Argv: []string{"python", "-m", "ftc.entry", "sft"}, Nodes: 1, ProcsPerNode: 1, Processes: 1},
	}}}
	be := &recorder{}
	events, err := NewEventLog("", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), p, Options{Store: store, RunsDir: t.TempDir(), Backend: be, Cluster: true,
		Python: "/home/me/venv/bin/python", Events: events})
	if err == nil {
		t.Fatal("the recorder fails every job; the run must fail")
	}
	if len(be.argvs) != 1 {
		t.Fatalf("jobs run on the cluster backend: %v", be.argvs)
	}
	if got := be.argvs[0][0]; got != "python" {
		t.Errorf("a cluster job runs %q; want the image's python, not this machine's --python", got)
	}
}

// TestPrepareOnCluster: prepare stages of a cluster run run on this
// machine unless PrepareOnCluster sends them to the cluster backend, as
// one process without GPUs; the image's python runs them there.
func TestPrepareOnCluster(t *testing.T) {
	for _, onCluster := range []bool{false, true} {
		store, err := cas.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		p := &plan.Plan{Recipe: "r", Stages: []*plan.Stage{{
			Name: "sft.prepare", Kind: "prepare",
			Key:       key.Key("sha256:" + strings.Repeat("c", 64)),
			ResumeKey: key.Key("sha256:" + strings.Repeat("d", 64)),
			Config:    map[string]any{},
			Launch:    launch.Plan{Launcher: "python", Argv: []string{"python", "-m", "ftc.entry", "prepare"}, Nodes: 1, ProcsPerNode: 1, Processes: 1},
		}}}
		be := &recorder{}
		events, err := NewEventLog("", nil)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Store: store, RunsDir: t.TempDir(), Backend: be, Cluster: true, PrepareOnCluster: onCluster,
			Python: "/home/me/venv/bin/python", Events: events}
		if !onCluster {
			// Here, a stand-in that fails: the recorder must not see it.
			opts.Entrypoint = []string{"false"}
		}
		if _, err := Run(context.Background(), p, opts); err == nil {
			t.Fatal("both the recorder and the stand-in fail; the run must fail")
		}
		switch {
		case !onCluster && len(be.argvs) != 0:
			t.Errorf("prepare went to the cluster backend without PrepareOnCluster: %v", be.argvs)
		case onCluster && len(be.argvs) != 1:
			t.Errorf("with PrepareOnCluster, jobs on the cluster backend: %v, want the prepare stage", be.argvs)
		case onCluster && be.argvs[0][0] != "python":
			t.Errorf("prepare on the cluster runs %q; want the image's python", be.argvs[0][0])
		}
	}
}
