package shq

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"
)

// Hostile are values a recipe or a flag could carry into a script.
var Hostile = []string{
	"$(touch PWNED)", "; touch PWNED", "`touch PWNED`", "a'b", `a"b`, "it's \"$(touch PWNED)\"",
	"line\nbreak; touch PWNED", "*", "~", "=x", "#not a comment", "a b\tc", `back\slash`, "${HOME}",
	"$FTC_MASTER_ADDRX", "{a,b}", "&& touch PWNED", "| touch PWNED", "> PWNED", "!!", "'", "",
	"ünïcode", "\r\n", "%", "-n",
}

// The shells the scripts run under: /bin/sh (dash on Debian) and bash.
func shells(t *testing.T) []string {
	var out []string
	for _, s := range []string{"sh", "bash"} {
		if p, err := exec.LookPath(s); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		needs.Missing(t, "a POSIX shell (sh, bash or dash) on PATH")
	}
	return out
}

// run runs script under sh in a fresh directory and returns what it
// printed; no command may have run that the script does not spell.
func run(t *testing.T, sh, script string, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(sh, "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -c %q: %v\n%s", sh, script, err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
		t.Fatalf("%s -c %q ran an injected command", sh, script)
	}
	return string(out)
}

func TestQuoteReadsBackLiterally(t *testing.T) {
	for _, sh := range shells(t) {
		for _, s := range Hostile {
			got := run(t, sh, "printf '%s' "+Quote(s))
			if got != s {
				t.Errorf("%s: Quote(%q) = %s reads back as %q", sh, s, Quote(s), got)
			}
		}
	}
}

func TestJoinIsOneArgumentPerElement(t *testing.T) {
	for _, sh := range shells(t) {
		got := run(t, sh, "printf '<%s>' "+Join(Hostile))
		want := "<" + strings.Join(Hostile, "><") + ">"
		if got != want {
			t.Errorf("%s: Join(hostile) reads back as\n%q\nwant\n%q", sh, got, want)
		}
	}
}

func TestWordExpandsOnlyTheNamedVariables(t *testing.T) {
	vars := []string{"FTC_MASTER_ADDR", "FTC_NODE_RANK"}
	cases := map[string]string{
		"--rdzv-endpoint=$FTC_MASTER_ADDR:29500": "--rdzv-endpoint=node-1:29500",
		"--node-rank=${FTC_NODE_RANK}":           "--node-rank=3",
		"$FTC_NODE_RANK":                         "3",
		"$FTC_MASTER_ADDRX $HOME $(touch PWNED)": "$FTC_MASTER_ADDRX $HOME $(touch PWNED)",
		"'$FTC_NODE_RANK'":                       "'3'",
	}
	for _, sh := range shells(t) {
		for in, want := range cases {
			w := Word(in, vars...)
			got := run(t, sh, "printf '%s' "+w, "FTC_MASTER_ADDR=node-1", "FTC_NODE_RANK=3", "HOME=/home/x")
			if got != want {
				t.Errorf("%s: Word(%q) = %s reads back as %q, want %q", sh, in, w, got, want)
			}
		}
	}
}

func TestJoinQuotesAnAssignmentLikeCommand(t *testing.T) {
	if got := Join([]string{"A=b", "c=d"}); got != "'A=b' c=d" {
		t.Errorf("Join = %s", got)
	}
}

func TestBareKeepsCommonArgumentsReadable(t *testing.T) {
	for _, s := range []string{"torchrun", "--nnodes=2", "stage.json", "ftc.entry", "REG/x@sha256:ab", "eth0,eth1", "a#b"} {
		if Quote(s) != s {
			t.Errorf("Quote(%q) = %s, want it bare", s, Quote(s))
		}
	}
}

func TestComment(t *testing.T) {
	if got := Comment("a\nb\r\nc"); got != "a b c" {
		t.Errorf("Comment = %q", got)
	}
}

func TestIsName(t *testing.T) {
	for s, want := range map[string]bool{"NCCL_DEBUG": true, "_x1": true, "1x": false, "": false, "A-B": false, "A B": false} {
		if IsName(s) != want {
			t.Errorf("IsName(%q) = %v", s, !want)
		}
	}
}
