package launch

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/config"
)

// The port vet checks the vLLM server against (config.Recipe.LauncherPort)
// is the one Training hands the launcher, or the launcher's default when
// it hands none, and 0 exactly when no launcher opens a rendezvous.
func TestLauncherPortMatchesTraining(t *testing.T) {
	portArg := regexp.MustCompile(`(?:--master-port=|--rdzv-endpoint=\$\w+:|--main_process_port )(\d+)`)
	for _, strategy := range []config.Strategy{"single", "ddp", "fsdp", "zero2", "zero3"} {
		for _, nodes := range []int{1, 2} {
			for _, gpus := range []int{1, 3} {
				for _, backend := range []string{"c10d", "static"} {
					hw := config.Hardware{Nodes: nodes, GPUsPerNode: gpus, Strategy: strategy, Rendezvous: config.Rendezvous{Port: 31000, Backend: backend}}
					r := &config.Recipe{Hardware: hw}
					st := config.Stage{Name: "s", Method: "sft"}
					p := Training(st, hw, "id", false)
					argv := strings.Join(p.Argv, " ")
					want := 0
					switch {
					case p.Launcher == "python":
					case portArg.MatchString(argv):
						want, _ = strconv.Atoi(portArg.FindStringSubmatch(argv)[1])
					default:
						want = config.DefaultMasterPort
					}
					if got := r.LauncherPort(st); got != want {
						t.Errorf("%s, %d node(s) × %d, %s: LauncherPort %d, launcher %q uses %d", strategy, nodes, gpus, backend, got, argv, want)
					}
				}
			}
		}
	}
}
