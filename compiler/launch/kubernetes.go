package launch

import (
	"encoding/json"
	"fmt"
	"strings"

	kubeflowv1 "github.com/kubeflow/training-operator/pkg/apis/kubeflow.org/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	// GraceSeconds, when positive, is the time a training stage has after
	// SIGTERM to save a checkpoint (hardware.preemption.graceSeconds): the
	// pods' terminationGracePeriodSeconds is that and KubernetesKillMargin
	// more (Kubernetes' default, 30 s, would cut the save short).
	GraceSeconds int
}

// KubernetesKillMargin is the time, in seconds, a pod has after its
// stage's grace period before Kubernetes kills it: the launcher and the
// shell exit after the trainers.
const KubernetesKillMargin = 15

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
// indexed Job with a headless Service for its pods' DNS names. They are
// built as the API's own types (k8s.io/api, the training operator's), so
// a misspelt or misplaced field does not compile.
func Kubernetes(in KubernetesInput) ([]byte, error) {
	name := jobName(in.Recipe, in.Stage, in.Key)
	labels := map[string]string{
		"app.kubernetes.io/managed-by": "ftc",
		"ftc.dev/recipe":               in.Recipe,
		"ftc.dev/stage":                strings.ReplaceAll(in.Stage, ".", "-"),
		"ftc.dev/key":                  shortKey(in.Key, 16),
	}
	meta := metav1.ObjectMeta{Name: name, Namespace: in.Settings.Namespace, Labels: labels}
	gpus := in.Plan.ProcsPerNode
	if in.Plan.Server != nil {
		gpus += len(in.Plan.Server.GPUs)
	}
	runDir := "/ftc/cache/runs/" + strings.TrimPrefix(in.ResumeKey, "sha256:")

	env := []corev1.EnvVar{{Name: "FTC_STAGE_CONFIG", Value: StageConfigFile}}
	for _, k := range SortedEnv(in.Plan.Env) {
		n, v, _ := strings.Cut(k, "=")
		env = append(env, corev1.EnvVar{Name: n, Value: v})
	}
	for _, s := range in.Secrets {
		// By reference: no secret's value is ever written into a manifest.
		env = append(env, corev1.EnvVar{Name: s, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "ftc-secrets"}, Key: s, Optional: ptr(true)}}})
	}

	container := func(cname, master, rank string) corev1.Container {
		// One shell line per node: the launcher's argv refers to
		// $FTC_MASTER_ADDR and $FTC_NODE_RANK, set from what the workload
		// provides.
		// master and rank are the workload's own variables ($MASTER_ADDR,
		// $RANK, $JOB_COMPLETION_INDEX) or the first pod's DNS name.
		script := fmt.Sprintf("export %s=%s %s=%s; exec %s", EnvMasterAddr, master, EnvNodeRank, rank,
			shq.Join(in.Plan.Argv, EnvMasterAddr, EnvNodeRank))
		return corev1.Container{
			Name:       cname,
			Image:      in.Image,
			Command:    []string{"/bin/sh", "-c", script},
			WorkingDir: runDir,
			Env:        env,
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				"nvidia.com/gpu": *resource.NewQuantity(int64(gpus), resource.DecimalSI)}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "ftc-cache", MountPath: "/ftc/cache"},
				{Name: "dshm", MountPath: "/dev/shm"},
			},
		}
	}
	podSpec := func(c corev1.Container) corev1.PodSpec {
		var grace *int64
		if in.GraceSeconds > 0 {
			g := int64(in.GraceSeconds + KubernetesKillMargin)
			grace = &g
		}
		return corev1.PodSpec{
			TerminationGracePeriodSeconds: grace,
			RestartPolicy:                 corev1.RestartPolicyNever,
			Containers:                    []corev1.Container{c},
			ServiceAccountName:            in.Settings.ServiceAccount,
			Volumes: []corev1.Volume{
				{Name: "ftc-cache", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: in.Settings.CacheVolumeClaim}}},
				// NCCL and data loader workers need more shared memory
				// than a container's default 64 MiB.
				{Name: "dshm", VolumeSource: corev1.VolumeSource{
					EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			},
		}
	}

	var docs []any
	switch in.Settings.Workload {
	case "indexed-job":
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: meta,
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone,
				Selector:  map[string]string{"ftc.dev/job": name},
				// targetPort spelt out: the typed struct's zero value would
				// say 0 rather than leave the port's default.
				Ports: []corev1.ServicePort{{Name: "rendezvous", Port: int32(in.Port), TargetPort: intstr.FromInt32(int32(in.Port))}},
			},
		}
		master := shq.Quote(fmt.Sprintf("%s-0.%s", name, name))
		spec := podSpec(container("trainer", master, `"$JOB_COMPLETION_INDEX"`))
		spec.Subdomain = name
		podLabels := map[string]string{"ftc.dev/job": name}
		for k, v := range labels {
			podLabels[k] = v
		}
		job := &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: meta,
			Spec: batchv1.JobSpec{
				CompletionMode: ptr(batchv1.IndexedCompletion),
				Completions:    ptr(int32(in.Plan.Nodes)),
				Parallelism:    ptr(int32(in.Plan.Nodes)),
				BackoffLimit:   ptr(int32(0)),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
					Spec:       spec,
				},
			},
		}
		docs = []any{svc, job}
	default: // pytorchjob
		replica := func(n int) *kubeflowv1.ReplicaSpec {
			return &kubeflowv1.ReplicaSpec{
				Replicas:      ptr(int32(n)),
				RestartPolicy: kubeflowv1.RestartPolicyNever,
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       podSpec(container("pytorch", `"$MASTER_ADDR"`, `"$RANK"`)),
				},
			}
		}
		replicas := map[kubeflowv1.ReplicaType]*kubeflowv1.ReplicaSpec{kubeflowv1.PyTorchJobReplicaTypeMaster: replica(1)}
		if in.Plan.Nodes > 1 {
			replicas[kubeflowv1.PyTorchJobReplicaTypeWorker] = replica(in.Plan.Nodes - 1)
		}
		docs = []any{&kubeflowv1.PyTorchJob{
			TypeMeta:   metav1.TypeMeta{APIVersion: "kubeflow.org/v1", Kind: "PyTorchJob"},
			ObjectMeta: meta,
			Spec: kubeflowv1.PyTorchJobSpec{
				RunPolicy:           kubeflowv1.RunPolicy{CleanPodPolicy: ptr(kubeflowv1.CleanPodPolicyNone), BackoffLimit: ptr(int32(0))},
				PyTorchReplicaSpecs: replicas,
			},
		}}
	}
	var out []byte
	for i, d := range docs {
		b, err := manifest(d)
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

// manifest is an object as YAML without what the API server fills in:
// the typed structs marshal an empty status and a null creationTimestamp,
// which a manifest should not carry.
func manifest(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	prune(m)
	return yaml.Marshal(m)
}

// prune removes, at any depth, the status and creationTimestamp the API
// server owns, and the empty objects left behind (resources: {}).
func prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "status")
		delete(v, "creationTimestamp")
		for k, e := range v {
			prune(e)
			if m, ok := e.(map[string]any); ok && len(m) == 0 {
				delete(v, k)
			}
		}
	case []any:
		for _, e := range v {
			prune(e)
		}
	}
}

func ptr[T any](v T) *T { return &v }
