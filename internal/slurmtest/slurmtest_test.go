package slurmtest

import (
	"strings"
	"testing"
)

// TestClusterGivesFakeGPUsOnTwoNodes checks the cluster itself: a job
// step on both nodes, each with the GPUs it asked for as
// CUDA_VISIBLE_DEVICES, and nothing left running afterwards.
func TestClusterGivesFakeGPUsOnTwoNodes(t *testing.T) {
	c := Start(t, Options{})
	out := c.Run(t, "srun", "--partition="+c.MultiPartition, "--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=3",
		"bash", "-c", `echo "$SLURMD_NODENAME $SLURM_NODEID $CUDA_VISIBLE_DEVICES"`)
	for i, n := range c.Nodes {
		if want := n + " " + string(rune('0'+i)) + " 0,1,2"; !strings.Contains(out, want) {
			t.Errorf("srun output lacks %q:\n%s", want, out)
		}
	}
	// A request beyond the node is refused at submission.
	if out, err := c.Command("sbatch", "--test-only", "--gpus-per-node=9", "--wrap=true").CombinedOutput(); err == nil {
		t.Errorf("9 GPUs accepted on 8-GPU nodes:\n%s", out)
	}
}
