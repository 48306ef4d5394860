// Package slurmtest starts a private Slurm cluster on this machine for
// tests: munged, slurmctld and two slurmd daemons (two "nodes" on one
// host), each a child process of the test started by PID, with their
// configuration, state, logs and fake GPUs under one temporary directory.
// Nothing is installed here: scripts/test.sh installs slurm-wlm and munge.
//
// The fake GPUs are GRES device files made with mknod, so Slurm sets
// CUDA_VISIBLE_DEVICES for jobs that ask for GPUs, as on a real cluster.
// The daemons use free ports and talk over loopback only; slurmd and srun
// bind 127.0.0.1 (slurmctld 22.05 binds every interface regardless).
package slurmtest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/ftc-dev/ftc/internal/sysproc"
)

// Cluster is a running private cluster.
type Cluster struct {
	// Dir holds the configuration, state, logs and device files.
	Dir string
	// Conf is slurm.conf; Env points Slurm's commands at it.
	Conf string
	Env  []string
	// Partition is the default partition: one node. MultiPartition
	// holds both nodes; the first of them (in Slurm's order) is this
	// host's own name, which resolves, so a rendezvous on it works.
	Partition, MultiPartition string
	// Nodes are the node names, in Slurm's order.
	Nodes []string
	// CPUs and GPUs are what each node offers (the CPU count is
	// configured, not measured, like the GPUs).
	CPUs, GPUs int

	daemons []*exec.Cmd
	marker  string
}

// Options size the cluster.
type Options struct {
	// CPUs per node (default 128, as GPU nodes have; slurmd is told to
	// take the configuration's word for it) and GPUs per node (default 8).
	CPUs, GPUs int
}

// Programs are the programs the cluster needs.
var Programs = []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"}

// Start starts a cluster and stops it when the test ends. It fails the
// test when Slurm is not installed (scripts/test.sh installs it) and
// skips it when not running as root (mknod and SlurmUser=root need it).
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	for _, p := range Programs {
		needs.Program(t, p, "scripts/test.sh installs it: apt-get install slurm-wlm munge")
	}
	needs.Root(t, "a private Slurm cluster makes GPU device files (mknod) and runs as SlurmUser=root")
	if o.CPUs == 0 {
		o.CPUs = 128
	}
	if o.GPUs == 0 {
		o.GPUs = 8
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	if host == "" || host == "localhost" {
		// Slurm treats a node called localhost specially; a second
		// node beside it breaks its lookups.
		needs.Missing(t, "a host name other than %q: the test cluster names its first node after the host", host)
	}
	// A short path: the munge socket must fit a sockaddr_un.
	dir, err := os.MkdirTemp("", "ftc-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{
		Dir: dir, Conf: filepath.Join(dir, "etc", "slurm.conf"),
		Partition: "one", MultiPartition: "two",
		// Slurm orders nodes by name; "HOST-b" comes after "HOST".
		Nodes: []string{host, host + "-b"},
		CPUs:  o.CPUs, GPUs: o.GPUs,
		marker: "FTC_SLURMTEST=" + dir,
	}
	c.Env = []string{"SLURM_CONF=" + c.Conf, c.marker}
	t.Cleanup(func() { c.stop(t) })
	if err := c.start(); err != nil {
		t.Fatalf("starting Slurm: %v\n%s", err, c.Logs())
	}
	return c
}

func (c *Cluster) start() error {
	for _, d := range []string{"etc", "state", "log", "munge", "dev", "spool/" + c.Nodes[0], "spool/" + c.Nodes[1]} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// munged refuses a socket directory that others cannot enter.
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "munge")} {
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	key := make([]byte, 128)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "munge", "munge.key"), key, 0o400); err != nil {
		return err
	}
	for i := 0; i < c.GPUs; i++ {
		dev := filepath.Join(c.Dir, "dev", fmt.Sprintf("nvidia%d", i))
		// Character devices with NVIDIA's major number: slurmd checks
		// the type, and never opens them.
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(mkdev(195, uint32(i)))); err != nil {
			return fmt.Errorf("mknod %s: %w", dev, err)
		}
	}
	ports, err := freePorts(1 + len(c.Nodes))
	if err != nil {
		return err
	}
	socket := filepath.Join(c.Dir, "munge", "munge.socket.2")
	if err := os.WriteFile(c.Conf, []byte(c.config(socket, ports)), 0o644); err != nil {
		return err
	}
	gres := fmt.Sprintf("NodeName=%s Name=gpu File=%s/dev/nvidia[0-%d]\n", strings.Join(c.Nodes, ","), c.Dir, c.GPUs-1)
	if err := os.WriteFile(filepath.Join(c.Dir, "etc", "gres.conf"), []byte(gres), 0o644); err != nil {
		return err
	}

	m := filepath.Join(c.Dir, "munge")
	if err := c.daemon("munged", "munged", "--foreground", "--socket="+socket, "--key-file="+m+"/munge.key",
		"--pid-file="+m+"/munged.pid", "--log-file="+m+"/munged.log", "--seed-file="+m+"/munged.seed"); err != nil {
		return err
	}
	if err := waitFor(10*time.Second, func() bool { _, err := os.Stat(socket); return err == nil }); err != nil {
		return fmt.Errorf("munged did not create its socket: %w", err)
	}
	if err := c.daemon("slurmctld", "slurmctld", "-D", "-f", c.Conf); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if err := c.daemon("slurmd-"+n, "slurmd", "-D", "-N", n, "-f", c.Conf); err != nil {
			return err
		}
	}
	var last string
	err = waitFor(30*time.Second, func() bool {
		out, err := c.Command("sinfo", "--noheader", "--Node", "--format=%N %t").Output()
		last = string(out)
		if err != nil {
			return false
		}
		idle := 0
		for _, l := range strings.Split(strings.TrimSpace(last), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "idle" {
				idle++
			}
		}
		// sinfo lists a node once per partition it is in.
		return idle == 3
	})
	if err != nil {
		return fmt.Errorf("the nodes are not idle: %w; sinfo says:\n%s", err, last)
	}
	return nil
}

func (c *Cluster) config(socket string, ports []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `ClusterName=ftctest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=%[1]s
CredType=cred/munge
SlurmctldPort=%[2]d
SlurmdPort=%[3]d
# slurmd and srun bind their node's address (loopback), not every interface.
CommunicationParameters=NoInAddrAny
StateSaveLocation=%[4]s/state
SlurmdSpoolDir=%[4]s/spool/%%n
SlurmctldPidFile=%[4]s/slurmctld.pid
SlurmdPidFile=%[4]s/slurmd-%%n.pid
SlurmctldLogFile=%[4]s/log/slurmctld.log
SlurmdLogFile=%[4]s/log/slurmd-%%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=%[4]s/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
# The node sizes below are configured, not measured (like the GPUs).
SlurmdParameters=config_overrides
GresTypes=gpu
`, socket, ports[0], ports[1], c.Dir)
	for i, n := range c.Nodes {
		fmt.Fprintf(&b, "NodeName=%s NodeAddr=127.0.0.1 Port=%d CPUs=%d Gres=gpu:%d State=UNKNOWN\n", n, ports[1+i], c.CPUs, c.GPUs)
	}
	fmt.Fprintf(&b, "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP\n", c.Partition, c.Nodes[0])
	fmt.Fprintf(&b, "PartitionName=%s Nodes=%s MaxTime=INFINITE State=UP\n", c.MultiPartition, strings.Join(c.Nodes, ","))
	return b.String()
}

// daemon starts a daemon in the foreground as a child of the test, which
// the kernel kills if the test process dies.
func (c *Cluster) daemon(name, prog string, args ...string) error {
	log, err := os.Create(filepath.Join(c.Dir, "log", name+".out"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysproc.Attr(true, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", prog, err)
	}
	c.daemons = append(c.daemons, cmd)
	return nil
}

// Command returns a Slurm command aimed at this cluster.
func (c *Cluster) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	return cmd
}

// Run runs a Slurm command and returns its combined output; it fails the
// test when the command fails.
func (c *Cluster) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := c.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Queue returns the IDs of the jobs pending, running or completing.
func (c *Cluster) Queue() ([]string, error) {
	out, err := c.Command("squeue", "--noheader", "--format=%A").Output()
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Logs returns the tail of every daemon log, for failure messages.
func (c *Cluster) Logs() string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "log", "*"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(l), strings.Join(lines, "\n"))
	}
	return b.String()
}

// stop cancels every job, stops the daemons by PID, kills whatever still
// carries the cluster's marker (job steps are not the daemons' children)
// and removes the directory.
func (c *Cluster) stop(t testing.TB) {
	if ids, err := c.Queue(); err == nil && len(ids) > 0 {
		_ = c.Command("scancel", ids...).Run()
		_ = waitFor(15*time.Second, func() bool { ids, err := c.Queue(); return err != nil || len(ids) == 0 })
	}
	for i := len(c.daemons) - 1; i >= 0; i-- {
		stopProcess(c.daemons[i], 5*time.Second)
	}
	for _, pid := range c.marked() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := waitFor(5*time.Second, func() bool { return len(c.marked()) == 0 }); err != nil {
		t.Errorf("processes of the test cluster outlived it: %v", c.marked())
	}
	if t.Failed() {
		t.Logf("Slurm logs:\n%s", c.Logs())
	}
	os.RemoveAll(c.Dir)
}

func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// marked lists the live processes whose environment carries the
// cluster's marker: slurmstepd and job processes.
func (c *Cluster) marked() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == c.marker {
				if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && !zombie(st) {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func mkdev(major, minor uint32) uint64 {
	return uint64(major&0xfff)<<8 | uint64(minor&0xff) | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// FreePort returns a free loopback TCP port (for rendezvous endpoints).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
