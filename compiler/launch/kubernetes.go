package launch

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/ftc-dev/ftc/compiler/config"
	"github.com/ftc-dev/ftc/compiler/launch/shq"
)

// KubernetesFile is the name of a stage's manifests.
const KubernetesFile = "kubernetes.yaml"

// KubernetesInput is what a stage's manifests are rendered from.
type KubernetesInput struct {
	Recipe, Stage string
	// Key is the stage key; ResumeKey names its run directory on the
	// cache volume.
	Key, ResumeKey string
	// Image is the stage image by digest.
	Image    string
	Plan     Plan
	Settings config.Kubernetes
	// Secrets are variable names, each read from the Secret "ftc-secrets"
	// (by reference: no value is ever written into a manifest).
	Secrets []string
	Port    int
}

// jobName is a DNS-1035 label unique to the stage's key.
func jobName(recipe, stage, key string) string {
	clean := func(s string) string {
		s = strings.ToLower(s)
		var b strings.Builder
		for _, r := range s {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				b.WriteRune(r)
			} else {
				b.WriteByte('-')
			}
		}
		return strings.Trim(b.String(), "-")
	}
	k := shortKey(key, 10)
	name := clean(recipe) + "-" + clean(stage)
	if len(name) > 50 {
		name = name[:50]
	}
	return strings.Trim(name, "-") + "-" + k
}

func shortKey(key string, n int) string {
	k := strings.TrimPrefix(key, "sha256:")
	return k[:min(n, len(k))]
}

// Kubernetes renders the manifests of a stage: a Kubeflow PyTorchJob, or an
// indexed Job with a headless Service for its pods' DNS names.
func Kubernetes(in KubernetesInput) ([]byte, error) {
	name := jobName(in.Recipe, in.Stage, in.Key)
	labels := map[string]string{
		"app.kubernetes.io/managed-by": "ftc",
		"ftc.dev/recipe":               in.Recipe,
		"ftc.dev/stage":                strings.ReplaceAll(in.Stage, ".", "-"),
		"ftc.dev/key":                  shortKey(in.Key, 16),
	}
	meta := map[string]any{"name": name, "namespace": in.Settings.Namespace, "labels": labels}
	gpus := in.Plan.ProcsPerNode
	if in.Plan.Server != nil {
		gpus += len(in.Plan.Server.GPUs)
	}
	runDir := "/ftc/cache/runs/" + strings.TrimPrefix(in.ResumeKey, "sha256:")

	env := []any{map[string]any{"name": "FTC_STAGE_CONFIG", "value": StageConfigFile}}
	for _, k := range SortedEnv(in.Plan.Env) {
		n, v, _ := strings.Cut(k, "=")
		env = append(env, map[string]any{"name": n, "value": v})
	}
	for _, s := range in.Secrets {
		env = append(env, map[string]any{"name": s, "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": "ftc-secrets", "key": s, "optional": true}}})
	}

	container := func(cname, master, rank string) map[string]any {
		// One shell line per node: the launcher's argv refers to
		// $FTC_MASTER_ADDR and $FTC_NODE_RANK, set from what the workload
		// provides.
		// master and rank are the workload's own variables ($MASTER_ADDR,
		// $RANK, $JOB_COMPLETION_INDEX) or the first pod's DNS name.
		script := fmt.Sprintf("export %s=%s %s=%s; exec %s", EnvMasterAddr, master, EnvNodeRank, rank,
			shq.Join(in.Plan.Argv, EnvMasterAddr, EnvNodeRank))
		c := map[string]any{
			"name":       cname,
			"image":      in.Image,
			"command":    []string{"/bin/sh", "-c", script},
			"workingDir": runDir,
			"env":        env,
			"resources": map[string]any{
				"limits": map[string]any{"nvidia.com/gpu": gpus},
			},
			"volumeMounts": []any{
				map[string]any{"name": "ftc-cache", "mountPath": "/ftc/cache"},
				map[string]any{"name": "dshm", "mountPath": "/dev/shm"},
			},
		}
		return c
	}
	podSpec := func(c map[string]any, restart string) map[string]any {
		spec := map[string]any{
			"restartPolicy": restart,
			"containers":    []any{c},
			"volumes": []any{
				map[string]any{"name": "ftc-cache", "persistentVolumeClaim": map[string]any{"claimName": in.Settings.CacheVolumeClaim}},
				// NCCL and data loader workers need more shared memory
				// than a container's default 64 MiB.
				map[string]any{"name": "dshm", "emptyDir": map[string]any{"medium": "Memory"}},
			},
		}
		if in.Settings.ServiceAccount != "" {
			spec["serviceAccountName"] = in.Settings.ServiceAccount
		}
		return spec
	}

	var docs []any
	switch in.Settings.Workload {
	case "indexed-job":
		svc := map[string]any{
			"apiVersion": "v1", "kind": "Service", "metadata": meta,
			"spec": map[string]any{
				"clusterIP": "None",
				"selector":  map[string]any{"ftc.dev/job": name},
				"ports":     []any{map[string]any{"name": "rendezvous", "port": in.Port}},
			},
		}
		master := shq.Quote(fmt.Sprintf("%s-0.%s", name, name))
		spec := podSpec(container("trainer", master, `"$JOB_COMPLETION_INDEX"`), "Never")
		spec["subdomain"] = name
		podLabels := map[string]string{"ftc.dev/job": name}
		for k, v := range labels {
			podLabels[k] = v
		}
		job := map[string]any{
			"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
			"spec": map[string]any{
				"completionMode": "Indexed",
				"completions":    in.Plan.Nodes,
				"parallelism":    in.Plan.Nodes,
				"backoffLimit":   0,
				"template": map[string]any{
					"metadata": map[string]any{"labels": podLabels},
					"spec":     spec,
				},
			},
		}
		docs = []any{svc, job}
	default: // pytorchjob
		replicas := map[string]any{
			"Master": map[string]any{
				"replicas":      1,
				"restartPolicy": "Never",
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec":     podSpec(container("pytorch", `"$MASTER_ADDR"`, `"$RANK"`), "Never"),
				},
			},
		}
		if in.Plan.Nodes > 1 {
			replicas["Worker"] = map[string]any{
				"replicas":      in.Plan.Nodes - 1,
				"restartPolicy": "Never",
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec":     podSpec(container("pytorch", `"$MASTER_ADDR"`, `"$RANK"`), "Never"),
				},
			}
		}
		docs = []any{map[string]any{
			"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": meta,
			"spec": map[string]any{
				"runPolicy":           map[string]any{"cleanPodPolicy": "None", "backoffLimit": 0},
				"pytorchReplicaSpecs": replicas,
			},
		}}
	}
	var out []byte
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
