package sysproc

import (
	"os/exec"
	"syscall"
	"testing"
)

// A child started with Attr(true, …) leads its own process group, so a
// cancelled stage's whole tree can be signalled at once.
func TestAttrGivesTheChildItsOwnGroup(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	cmd.SysProcAttr = Attr(true, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pgid, err := syscall.Getpgid(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != cmd.Process.Pid {
		t.Errorf("child %d is in group %d, want its own", cmd.Process.Pid, pgid)
	}
}
