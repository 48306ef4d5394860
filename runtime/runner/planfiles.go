package runner

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftc-dev/ftc/compiler/launch"
	"github.com/ftc-dev/ftc/compiler/plan"
)

// WritePlanFiles writes the plan as files that can be read, diffed and
// committed (ftc plan --out): DIR/plan.json, and per stage
// DIR/<stage>/stage-config.json, launch.sh and the launcher files.
func WritePlanFiles(dir string, p *plan.Plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for _, s := range p.Stages {
		sd := filepath.Join(dir, s.Name)
		if err := os.MkdirAll(sd, 0o755); err != nil {
			return err
		}
		cfg, _ := json.MarshalIndent(s.Config, "", "  ")
		script, err := launch.Script(s.Name, string(s.Kind), string(s.Key), s.Launch)
		if err != nil {
			return err
		}
		files := map[string]string{"stage-config.json": string(cfg) + "\n", launch.ScriptFile: script}
		for n, c := range s.Files {
			files[n] = c
		}
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(sd, n), []byte(c), 0o644); err != nil {
				return err
			}
		}
		// A job file this plan does not write must not survive from an
		// earlier one (another image, another key).
		for _, n := range []string{launch.SbatchFile, launch.KubernetesFile} {
			if _, ok := files[n]; !ok {
				if err := os.Remove(filepath.Join(sd, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
		}
	}
	return nil
}

// MissingImage lists the stages whose job files a plan made without the
// stage image cannot complete: on a Slurm target with a container, no
// sbatch script (Sbatch); Kubernetes manifests naming plan.ImageNotBuilt
// (Kubernetes).
type MissingImage struct {
	Sbatch, Kubernetes []string
}

// JobFilesMissingImage is what WritePlanFiles of p could not complete
// without the image.
func JobFilesMissingImage(p *plan.Plan) MissingImage {
	var m MissingImage
	for _, s := range p.Stages {
		if s.CPUOnly() {
			continue
		}
		_, hasSbatch := s.Files[launch.SbatchFile]
		if p.Hardware.Target == "slurm" && !hasSbatch {
			m.Sbatch = append(m.Sbatch, s.Name)
		}
		if k, ok := s.Files[launch.KubernetesFile]; ok && strings.Contains(k, plan.ImageNotBuilt) {
			m.Kubernetes = append(m.Kubernetes, s.Name)
		}
	}
	return m
}
