package runner

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/exec"
	"github.com/ftc-dev/ftc/runtime/track"
)

// tracker is one experiment tracker a run sends its events to.
type tracker interface {
	Event(e exec.Event) error
	Close() error
}

// trackingVar is a variable the recipe's tracking reads a credential
// from, with the field that names it.
type trackingVar struct{ path, name string }

func trackingVars(r *config.Recipe) []trackingVar {
	var out []trackingVar
	if t := r.Tracking; t != nil && t.MLflow != nil {
		a := t.MLflow.Auth
		for _, v := range []trackingVar{{"token", a.Token}, {"username", a.Username}, {"password", a.Password}} {
			if v.name != "" {
				out = append(out, trackingVar{"tracking.mlflow.auth." + v.path, v.name})
			}
		}
	}
	return out
}

// TrackingWarnings are vet's warnings about this environment: each
// credential variable the recipe's tracking names and the environment
// lacks (ftc run would stop before any stage).
func TrackingWarnings(r *config.Recipe) diag.List {
	var l diag.List
	for _, v := range trackingVars(r) {
		if _, ok := os.LookupEnv(v.name); !ok {
			l.Warnf(r.Pos.At(v.path), v.path, "%s is not set in this environment; ftc run stops before any stage until it is", v.name).
				WithHint("export %s=… where ftc run runs (only its name is recorded)", v.name)
		}
	}
	return l
}

// openTrackers makes the recipe's trackers ready before any stage runs:
// a credential variable the environment lacks, an unreachable MLflow
// server or refused credentials stop the run here.
func openTrackers(ctx context.Context, r *config.Recipe, store *cas.Store) ([]tracker, error) {
	t := r.Tracking
	if t == nil {
		return nil, nil
	}
	var missing []string
	for _, v := range trackingVars(r) {
		if _, ok := os.LookupEnv(v.name); !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", v.name, v.path))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("tracking names credentials this environment does not set: %s; export them, or remove tracking from the recipe", strings.Join(missing, ", "))
	}
	var out []tracker
	if t.TensorBoard != nil {
		out = append(out, &track.TensorBoard{Dir: filepath.Join(r.Dir, filepath.FromSlash(t.TensorBoard.Dir)), Cached: cachedMetrics(store)})
	}
	if m := t.MLflow; m != nil {
		name := m.Experiment
		if name == "" {
			name = r.Name
		}
		h := http.Header{}
		switch a := m.Auth; {
		case a.Token != "":
			h.Set("Authorization", "Bearer "+os.Getenv(a.Token))
		case a.Username != "":
			req := http.Request{Header: h}
			req.SetBasicAuth(os.Getenv(a.Username), os.Getenv(a.Password))
		}
		ml := &track.MLflow{URI: m.URI, Experiment: name, Recipe: r.Name, Header: h, Cached: cachedMetrics(store)}
		if err := ml.Open(ctx); err != nil {
			closeTrackers(out)
			return nil, fmt.Errorf("tracking.mlflow: %w", err)
		}
		out = append(out, ml)
	}
	return out, nil
}

func closeTrackers(ts []tracker) error {
	var first error
	for _, t := range ts {
		if err := t.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
