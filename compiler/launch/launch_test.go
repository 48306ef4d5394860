package launch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	kubeflowv1 "github.com/kubeflow/training-operator/pkg/apis/kubeflow.org/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/ftc-dev/ftc/compiler/config"
)

// DeepSpeed 0.16.2 field names: runtime/constants.py (top level),
// runtime/zero/config.py (zero_optimization, with its stage3_* aliases)
// and runtime/zero/offload_config.py (offload blocks).
var (
	dsTop = set("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
		"gradient_clipping", "bf16", "fp16", "steps_per_print", "wall_clock_breakdown", "zero_optimization",
		"optimizer", "scheduler", "zero_allow_untested_optimizer")
	dsZero = set("stage", "contiguous_gradients", "reduce_scatter", "reduce_bucket_size", "allgather_partitions",
		"allgather_bucket_size", "overlap_comm", "offload_param", "offload_optimizer", "sub_group_size",
		"stage3_prefetch_bucket_size", "stage3_param_persistence_threshold", "stage3_max_live_parameters",
		"stage3_max_reuse_distance", "stage3_gather_16bit_weights_on_model_save")
	dsOffload = set("device", "nvme_path", "buffer_count", "buffer_size", "max_in_cpu", "pin_memory")
	// Values the trainer arguments own: stating them in ds_config.json
	// could contradict trainer_args.json.
	dsOwnedByTrainer = []string{"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"}
)

// accelerate 1.3.0 field names: commands/config/config_args.py
// (ClusterConfig) and cluster.py (fsdp_config keys), and the values of
// utils/constants.py.
var (
	accTop = set("compute_environment", "distributed_type", "mixed_precision", "use_cpu", "debug", "num_processes",
		"machine_rank", "num_machines", "gpu_ids", "main_process_ip", "main_process_port", "rdzv_backend",
		"same_network", "main_training_function", "enable_cpu_affinity", "deepspeed_config", "fsdp_config",
		"megatron_lm_config", "ipex_config", "mpirun_config", "dynamo_config")
	accFSDP = set("fsdp_activation_checkpointing", "fsdp_auto_wrap_policy", "fsdp_backward_prefetch",
		"fsdp_cpu_ram_efficient_loading", "fsdp_forward_prefetch", "fsdp_min_num_params", "fsdp_offload_params",
		"fsdp_sharding_strategy", "fsdp_state_dict_type", "fsdp_sync_module_states",
		"fsdp_transformer_layer_cls_to_wrap", "fsdp_use_orig_params")
	accValues = map[string]map[string]bool{
		"fsdp_sharding_strategy": set("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "HYBRID_SHARD_ZERO2"),
		"fsdp_auto_wrap_policy":  set("TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP"),
		"fsdp_backward_prefetch": set("BACKWARD_PRE", "BACKWARD_POST", "NO_PREFETCH"),
		"fsdp_state_dict_type":   set("FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT"),
	}
)

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func TestDeepSpeedConfigUsesPinnedFieldNames(t *testing.T) {
	for _, strategy := range []config.Strategy{"zero2", "zero3"} {
		for _, off := range []config.Offload{{}, {Optimizer: true}, {Optimizer: true, Params: true}} {
			b, err := DeepSpeedConfig(strategy, off)
			if err != nil {
				t.Fatal(err)
			}
			var cfg map[string]any
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s %+v", strategy, off)
			checkKeys(t, name, cfg, dsTop)
			zero := cfg["zero_optimization"].(map[string]any)
			checkKeys(t, name+" zero_optimization", zero, dsZero)
			for _, k := range []string{"offload_param", "offload_optimizer"} {
				if o, ok := zero[k].(map[string]any); ok {
					checkKeys(t, name+" "+k, o, dsOffload)
				}
			}
			for _, k := range dsOwnedByTrainer {
				if cfg[k] != "auto" {
					t.Errorf("%s: %s = %v; it must be \"auto\" so only the trainer arguments state it", name, k, cfg[k])
				}
			}
			if want := map[config.Strategy]float64{"zero2": 2, "zero3": 3}[strategy]; zero["stage"] != want {
				t.Errorf("%s: stage %v", name, zero["stage"])
			}
			if _, ok := zero["offload_param"]; ok != (off.Params && strategy == "zero3") {
				t.Errorf("%s: offload_param present = %v", name, ok)
			}
		}
	}
}

func TestAccelerateConfigUsesPinnedFieldNames(t *testing.T) {
	for _, in := range []AccelerateInput{
		{Nodes: 1, Processes: 8, DType: "bf16", DecoderLayer: "Qwen2DecoderLayer"},
		{Nodes: 2, Processes: 16, DType: "fp32", OffloadParams: true, Port: 29500},
	} {
		b, err := AccelerateConfig(in)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		checkKeys(t, "accelerate", cfg, accTop)
		fsdp := cfg["fsdp_config"].(map[string]any)
		checkKeys(t, "fsdp_config", fsdp, accFSDP)
		for k, allowed := range accValues {
			if v, ok := fsdp[k].(string); ok && !allowed[v] {
				t.Errorf("fsdp_config.%s = %q is not a value accelerate 1.3.0 knows", k, v)
			}
		}
		for _, owned := range []string{"gradient_accumulation_steps", "gradient_clipping"} {
			if _, ok := cfg[owned]; ok {
				t.Errorf("accelerate config states %s, which the trainer arguments own", owned)
			}
		}
		if cfg["num_processes"] != float64(in.Processes) {
			t.Errorf("num_processes %v", cfg["num_processes"])
		}
	}
}

func checkKeys(t *testing.T, what string, m map[string]any, allowed map[string]bool) {
	t.Helper()
	for k := range m {
		if !allowed[k] {
			t.Errorf("%s: %q is not a field of the pinned version", what, k)
		}
	}
}

// strictDecode decodes one YAML document into out, refusing unknown fields
// and wrong types, as the API server's strict field validation does.
func strictDecode(t *testing.T, doc []byte, out any) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("strict decode into %T: %v\n%s", out, err, doc)
	}
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	hw := config.Hardware{Nodes: 2, GPUsPerNode: 8, Strategy: "ddp", Rendezvous: config.Rendezvous{Port: 29500, Backend: "c10d"},
		NCCL: config.NCCL{SocketIfname: "eth0", TimeoutMinutes: 30}}
	st := config.Stage{Name: "sft", Method: "sft"}
	for _, nodes := range []int{1, 2} {
		hw.Nodes = nodes
		p := Training(st, hw, "abc", false)
		for _, workload := range []string{"pytorchjob", "indexed-job"} {
			in := KubernetesInput{Recipe: "r", Stage: "sft", Key: "sha256:" + strings.Repeat("a", 64), ResumeKey: "sha256:" + strings.Repeat("b", 64),
				Image: "registry/ftc/env@sha256:" + strings.Repeat("c", 64), Plan: p, Secrets: []string{"HF_TOKEN"}, Port: 29500,
				Settings:     config.Kubernetes{Namespace: "ml", Workload: workload, CacheVolumeClaim: "ftc-cache", ServiceAccount: "sa"},
				GraceSeconds: 120}
			b, err := Kubernetes(in)
			if err != nil {
				t.Fatal(err)
			}
			docs := bytes.Split(b, []byte("---\n"))
			switch workload {
			case "pytorchjob":
				var job kubeflowv1.PyTorchJob
				strictDecode(t, docs[0], &job)
				master := job.Spec.PyTorchReplicaSpecs[kubeflowv1.PyTorchJobReplicaTypeMaster]
				c := master.Template.Spec.Containers[0]
				if c.Name != "pytorch" || c.Image != in.Image {
					t.Errorf("container %s image %s", c.Name, c.Image)
				}
				if q := c.Resources.Limits["nvidia.com/gpu"]; q.Value() != 8 {
					t.Errorf("GPU limit %v", q.String())
				}
				workers := job.Spec.PyTorchReplicaSpecs[kubeflowv1.PyTorchJobReplicaTypeWorker]
				if (workers != nil) != (nodes > 1) || workers != nil && *workers.Replicas != int32(nodes-1) {
					t.Errorf("%d nodes: workers %+v", nodes, workers)
				}
				checkSecretsByReference(t, c)
				if g := master.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 120+KubernetesKillMargin {
					t.Errorf("terminationGracePeriodSeconds %v, want the stage's grace and %ds", g, KubernetesKillMargin)
				}
			case "indexed-job":
				if len(docs) != 2 {
					t.Fatalf("want a Service and a Job, got %d documents", len(docs))
				}
				var svc corev1.Service
				strictDecode(t, docs[0], &svc)
				var job batchv1.Job
				strictDecode(t, docs[1], &job)
				if svc.Spec.ClusterIP != "None" || job.Spec.Template.Spec.Subdomain != svc.Name {
					t.Errorf("headless service %q, subdomain %q", svc.Spec.ClusterIP, job.Spec.Template.Spec.Subdomain)
				}
				if *job.Spec.CompletionMode != batchv1.IndexedCompletion || *job.Spec.Completions != int32(nodes) {
					t.Errorf("job mode %v completions %v", *job.Spec.CompletionMode, *job.Spec.Completions)
				}
				checkSecretsByReference(t, job.Spec.Template.Spec.Containers[0])
			}
		}
	}
}

func checkSecretsByReference(t *testing.T, c corev1.Container) {
	t.Helper()
	found := false
	for _, e := range c.Env {
		if e.Name == "HF_TOKEN" {
			found = true
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("secret HF_TOKEN is not passed by reference: %+v", e)
			}
		}
	}
	if !found {
		t.Error("secret HF_TOKEN missing from the container's environment")
	}
}

func TestTrainingLaunchers(t *testing.T) {
	hw := config.Hardware{Nodes: 1, GPUsPerNode: 8, Rendezvous: config.Rendezvous{Port: 29500, Backend: "c10d"}}
	for strategy, want := range map[config.Strategy]string{
		"ddp":   "torchrun --nnodes=1 --nproc-per-node=8 -m ftc.entry sft",
		"zero3": "torchrun --nnodes=1 --nproc-per-node=8 -m ftc.entry sft",
		"fsdp":  "accelerate launch --config_file accelerate.yaml --num_processes 8 --num_machines 1 -m ftc.entry sft",
	} {
		hw.Strategy = strategy
		p := Training(config.Stage{Name: "s", Method: "sft"}, hw, "id", false)
		if got := strings.Join(p.Argv, " "); !strings.HasPrefix(got, want) || p.Processes != 8 {
			t.Errorf("%s: %s (%d processes)", strategy, got, p.Processes)
		}
	}
	// GRPO with a vLLM server: the server takes the first GPUs and starts
	// first; the trainers get the rest and count as the world.
	hw.Strategy = "ddp"
	st := config.Stage{Name: "g", Method: "grpo", GRPO: &config.GRPO{Generation: config.Generation{Engine: "vllm", GPUs: 2, Port: 8000, GroupPort: 51216, MemoryUtilization: 0.9}}}
	p := Training(st, hw, "id", false)
	if p.Server == nil || fmt.Sprint(p.Server.GPUs) != "[0 1]" || fmt.Sprint(p.GPUs) != "[2 3 4 5 6 7]" || p.Processes != 6 {
		t.Fatalf("vLLM split: server %+v, trainers %v, %d processes", p.Server, p.GPUs, p.Processes)
	}
	// Two nodes: the rendezvous is on the first node, named by variable.
	hw.Nodes = 2
	p = Training(config.Stage{Name: "s", Method: "sft"}, hw, "id", false)
	if got := strings.Join(p.Argv, " "); !strings.Contains(got, "--nnodes=2") || !strings.Contains(got, "--rdzv-endpoint=$FTC_MASTER_ADDR:29500") {
		t.Errorf("multi-node argv %s", got)
	}
}

func TestScriptQuotesEveryValue(t *testing.T) {
	p := Plan{
		Nodes: 2, ProcsPerNode: 2, GPUs: []int{2, 3},
		Argv: []string{"torchrun", "--rdzv-endpoint=$FTC_MASTER_ADDR:29500", "$(touch PWNED)"},
		Env:  map[string]string{"NCCL_SOCKET_IFNAME": "eth0; touch PWNED", "NCCL_DEBUG": "INFO"},
		Server: &Server{Argv: []string{"trl", "vllm-serve", "--model", "my model"}, GPUs: []int{0, 1},
			Env: map[string]string{"VLLM_X": "`id`"}},
	}
	got, err := Script("sft\nrm -rf /", "sft", "sha256:ab", p)
	if err != nil {
		t.Fatal(err)
	}
	want := `#!/bin/sh
# sft rm -rf / (sft), key sha256:ab
# Run in the stage's run directory, next to stage.json.
set -e
# On every node, with FTC_MASTER_ADDR (the first node's address) and FTC_NODE_RANK (0 to 1) set.
export NCCL_DEBUG=INFO
export NCCL_SOCKET_IFNAME='eth0; touch PWNED'
# the generation server first, on GPUs 0,1
CUDA_VISIBLE_DEVICES=0,1 VLLM_X='` + "`id`" + `' trl vllm-serve --model 'my model' &
export CUDA_VISIBLE_DEVICES=2,3
torchrun --rdzv-endpoint="$FTC_MASTER_ADDR":29500 '$(touch PWNED)'
`
	if got != want {
		t.Errorf("Script =\n%s\nwant\n%s", got, want)
	}
	p.Env["BAD NAME"] = "x"
	if _, err := Script("sft", "sft", "k", p); err == nil || !strings.Contains(err.Error(), `environment variable name "BAD NAME"`) {
		t.Errorf("a bad variable name gave %v", err)
	}
}
