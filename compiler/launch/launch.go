package launch

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/ftc-dev/ftc/compiler/config"
)

// Entrypoint is the Python module shipped in every image that runs a
// stage from its stage config.
const Entrypoint = "ftc.entry"

// StageConfigFile is the name of the stage config in a stage's run
// directory; the runtime writes it there before starting the launcher.
const StageConfigFile = "stage.json"

// Plan is how one stage starts.
type Plan struct {
	// Launcher is the program that starts the training processes.
	Launcher string `json:"launcher"`
	// Argv is the command run on each node.
	Argv []string `json:"argv"`
	// Nodes and ProcsPerNode give the process layout of the trainers;
	// Processes is their product.
	Nodes        int `json:"nodes"`
	ProcsPerNode int `json:"procsPerNode"`
	Processes    int `json:"processes"`
	// GPUs lists the device indices the training processes use on the
	// first node (all of them unless a server takes some).
	GPUs []int `json:"gpus,omitempty"`
	// Env holds environment settings for the launcher.
	Env map[string]string `json:"env,omitempty"`
	// Files names the launcher config files the stage needs next to its
	// stage config (accelerate and DeepSpeed configs).
	Files []string `json:"files,omitempty"`
	// Server is a process to start before the trainers (the vLLM
	// generation server of GRPO).
	Server *Server `json:"server,omitempty"`
}

// Server is a helper process started before the trainers.
type Server struct {
	Argv []string          `json:"argv"`
	GPUs []int             `json:"gpus"`
	Env  map[string]string `json:"env,omitempty"`
	// Ports the server listens on; trainers connect to them.
	Ports []int `json:"ports"`
}

// Environment variables the runtime sets on every node of a multi-node
// job; argv refers to them so one command serves every node.
const (
	EnvMasterAddr = "FTC_MASTER_ADDR"
	EnvNodeRank   = "FTC_NODE_RANK"
)

// Prepare is the launch plan of a data preparation stage: one CPU
// process.
func Prepare() Plan { return cpuStage("prepare") }

// Export is the launch plan of an export stage: one CPU process (merging
// an adapter is a sum per weight, no GPU needed).
func Export() Plan { return cpuStage("export") }

// OneDevice is the launch plan of a stage of kind that needs one device
// and no launcher (DPO's reference log-probabilities, an evaluation): one
// process on the first GPU, or on the CPU.
func OneDevice(kind string, cpu bool) Plan {
	p := cpuStage(kind)
	if cpu {
		p.Env = map[string]string{"CUDA_VISIBLE_DEVICES": ""}
	} else {
		p.GPUs = []int{0}
	}
	return p
}

func cpuStage(kind string) Plan {
	return Plan{
		Launcher:     "python",
		Argv:         []string{"python", "-m", Entrypoint, kind, "--config", StageConfigFile},
		Nodes:        1,
		ProcsPerNode: 1,
		Processes:    1,
	}
}

// Training is the launch plan of a training stage on hw. rdzvID names the
// rendezvous; pass something unique to the stage (its key). On cpu, the
// processes are the same and use no device: CUDA_VISIBLE_DEVICES is empty,
// so torch sees no GPU even on a machine that has some.
func Training(st config.Stage, hw config.Hardware, rdzvID string, cpu bool) Plan {
	p := onGPUs(st, hw, rdzvID)
	if cpu {
		p.GPUs = nil
		if p.Env == nil {
			p.Env = map[string]string{}
		}
		p.Env["CUDA_VISIBLE_DEVICES"] = ""
	}
	return p
}

func onGPUs(st config.Stage, hw config.Hardware, rdzvID string) Plan {
	entry := []string{"-m", Entrypoint, st.Method, "--config", StageConfigFile}
	p := Plan{Nodes: hw.Nodes, ProcsPerNode: hw.GPUsPerNode, Env: ncclEnv(hw)}

	gpus := make([]int, hw.GPUsPerNode)
	for i := range gpus {
		gpus[i] = i
	}
	if st.GRPO != nil && st.GRPO.Generation.Engine == "vllm" {
		g := st.GRPO.Generation
		n := min(g.GPUs, len(gpus))
		p.Server = &Server{
			Argv: []string{"trl", "vllm-serve",
				"--model", "model", // the runtime links the policy's weights here
				"--tensor-parallel-size", strconv.Itoa(n),
				"--port", strconv.Itoa(g.Port),
				"--gpu-memory-utilization", strconv.FormatFloat(g.MemoryUtilization, 'f', -1, 64)},
			GPUs:  gpus[:n],
			Ports: []int{g.Port, g.GroupPort},
		}
		gpus = gpus[n:]
		p.ProcsPerNode = len(gpus)
	}
	p.GPUs = gpus
	p.Processes = p.Nodes * p.ProcsPerNode
	if p.ProcsPerNode == 0 {
		p.Processes = 0
	}

	switch {
	case hw.Strategy == "single" && p.Processes <= 1:
		p.Launcher = "python"
		p.Argv = append([]string{"python"}, entry...)
	case hw.Strategy == "fsdp":
		p.Launcher = "accelerate"
		p.Files = []string{"accelerate.yaml"}
		p.Argv = []string{"accelerate", "launch", "--config_file", "accelerate.yaml",
			"--num_processes", strconv.Itoa(p.Processes), "--num_machines", strconv.Itoa(p.Nodes)}
		if p.Nodes > 1 {
			p.Argv = append(p.Argv, "--machine_rank", "$"+EnvNodeRank,
				"--main_process_ip", "$"+EnvMasterAddr,
				"--main_process_port", strconv.Itoa(hw.Rendezvous.Port))
		}
		p.Argv = append(p.Argv, entry...)
	default:
		// DDP and ZeRO both start under torchrun; the entrypoint hands
		// DeepSpeed its config through TrainingArguments, so there is one
		// launcher to get right rather than two.
		p.Launcher = "torchrun"
		if hw.Strategy == "zero2" || hw.Strategy == "zero3" {
			p.Files = []string{"ds_config.json"}
		}
		p.Argv = []string{"torchrun", "--nnodes=" + strconv.Itoa(p.Nodes), "--nproc-per-node=" + strconv.Itoa(p.ProcsPerNode)}
		if p.Nodes > 1 {
			if hw.Rendezvous.Backend == "static" {
				p.Argv = append(p.Argv, "--node-rank=$"+EnvNodeRank,
					"--master-addr=$"+EnvMasterAddr, fmt.Sprintf("--master-port=%d", hw.Rendezvous.Port))
			} else {
				p.Argv = append(p.Argv, "--rdzv-backend=c10d",
					fmt.Sprintf("--rdzv-endpoint=$%s:%d", EnvMasterAddr, hw.Rendezvous.Port),
					"--rdzv-id="+rdzvID)
			}
		}
		p.Argv = append(p.Argv, entry...)
	}
	return p
}

func ncclEnv(hw config.Hardware) map[string]string {
	env := map[string]string{}
	if hw.NCCL.SocketIfname != "" {
		env["NCCL_SOCKET_IFNAME"] = hw.NCCL.SocketIfname
	}
	if hw.NCCL.IBHCA != "" {
		env["NCCL_IB_HCA"] = hw.NCCL.IBHCA
	}
	if hw.NCCL.Debug != "" {
		env["NCCL_DEBUG"] = hw.NCCL.Debug
	}
	if len(env) == 0 {
		return nil
	}
	return env
}

// SortedEnv returns env as sorted NAME=value pairs.
func SortedEnv(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
