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
	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/compiler/plan"
	"github.com/ftc-dev/ftc/runtime/cas"
	"github.com/ftc-dev/ftc/runtime/envcheck"
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
	if t := r.Tracking; t != nil && t.WandB != nil && t.WandB.Auth.APIKey != "" {
		out = append(out, trackingVar{"tracking.wandb.auth.apiKey", t.WandB.Auth.APIKey})
	}
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
func openTrackers(ctx context.Context, o Options) ([]tracker, error) {
	r := o.Recipe
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
		out = append(out, &track.TensorBoard{Dir: filepath.Join(r.Dir, filepath.FromSlash(t.TensorBoard.Dir))})
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
		ml := &track.MLflow{URI: m.URI, Experiment: name, Recipe: r.Name, Header: h}
		if err := ml.Open(ctx); err != nil {
			closeTrackers(out)
			return nil, fmt.Errorf("tracking.mlflow: %w", err)
		}
		out = append(out, ml)
	}
	if w := t.WandB; w != nil {
		python, err := wandbEnv(ctx, o)
		if err != nil {
			closeTrackers(out)
			return nil, fmt.Errorf("tracking.wandb: %w", err)
		}
		project := w.Project
		if project == "" {
			project = r.Name
		}
		var env []string
		if w.Auth.APIKey != "" {
			env = append(env, "WANDB_API_KEY="+os.Getenv(w.Auth.APIKey))
		}
		wb := &track.WandB{Python: python, Dir: filepath.Join(r.Dir, filepath.FromSlash(w.Dir)), Project: project, Entity: w.Entity,
			Mode: w.Mode, Recipe: r.Name, Env: env}
		if err := wb.Open(ctx); err != nil {
			closeTrackers(out)
			return nil, fmt.Errorf("tracking.wandb: %w", err)
		}
		out = append(out, wb)
	}
	return out, nil
}

// wandbEnv is the interpreter of the environment holding W&B's library
// (track.WandBRequirements), made in the cache's envs/ on first use, by
// hash, from PyPI (or --wheels DIR, --index-url URL), with the first
// CPython 3.11–3.13 found: --python, then python3.11, python3.12,
// python3.13, python3.
func wandbEnv(ctx context.Context, o Options) (string, error) {
	pkgs, err := requirements(track.WandBRequirements)
	if err != nil {
		return "", err
	}
	var tried []string
	for _, py := range []string{o.Python, "python3.11", "python3.12", "python3.13", "python3"} {
		if py == "" {
			continue
		}
		release, err := envcheck.PythonRelease(ctx, py)
		if err != nil {
			continue
		}
		if release != "3.11" && release != "3.12" && release != "3.13" {
			tried = append(tried, py+" is "+release)
			continue
		}
		key := envcheck.VenvKey(release, pkgs)
		dir := envcheck.VenvDir(o.Dirs.Envs, key)
		if v, ok := envcheck.FindVenv(dir, key); ok {
			return v.Interpreter(), nil
		}
		var log strings.Builder
		v, err := envcheck.CreateVenv(ctx, envcheck.VenvOptions{Python: py, Release: release, Profile: "wandb", Packages: pkgs, Dir: dir,
			Wheels: o.Wheels, IndexURL: o.IndexURL, Log: &log})
		if err != nil {
			hint := "; without network, give its wheels with --wheels DIR (ftc env wandb-requirements lists them) or an index with --index-url"
			if o.Wheels != "" || o.IndexURL != "" {
				hint = " (ftc env wandb-requirements lists the wheels it needs)"
			}
			return "", fmt.Errorf("making W&B's environment with %s: %w%s", py, err, hint)
		}
		return v.Interpreter(), nil
	}
	return "", fmt.Errorf("W&B's library runs beside ftc in CPython 3.11, 3.12 or 3.13, and none was found (%s); install one, or give it with --python",
		strings.Join(append(tried, "looked for python3.11, python3.12, python3.13, python3"), "; "))
}

// requirements reads a requirements file of pinned, hashed packages
// (NAME==VERSION --hash=sha256:HEX ...), comments aside.
func requirements(text string) ([]image.Package, error) {
	var out []image.Package
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		name, version, ok := strings.Cut(f[0], "==")
		if !ok || len(f) < 2 {
			return nil, fmt.Errorf("requirements line %d: %q is not NAME==VERSION with hashes", i+1, line)
		}
		p := image.Package{Name: name, Version: version}
		for _, h := range f[1:] {
			d, ok := strings.CutPrefix(h, "--hash=")
			if !ok {
				return nil, fmt.Errorf("requirements line %d: %q is not a hash", i+1, h)
			}
			p.Hashes = append(p.Hashes, d)
		}
		out = append(out, p)
	}
	return out, nil
}

// configure gives the trackers the plan's stage configs (the plan as it
// runs, after this machine's preparation) and the cache, whose entries
// hold a cached stage's metrics.
func configure(ts []tracker, p *plan.Plan, store *cas.Store) {
	configs := map[string]any{}
	for _, s := range p.Stages {
		configs[s.Name] = s.Config
	}
	cached := cachedMetrics(store)
	for _, t := range ts {
		switch t := t.(type) {
		case *track.TensorBoard:
			t.Cached = cached
		case *track.MLflow:
			t.Configs, t.Cached = configs, cached
		case *track.WandB:
			t.Configs, t.Cached = configs, cached
		}
	}
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
