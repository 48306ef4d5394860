package build

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/internal/needs"

	"github.com/ftc-dev/ftc/compiler/image"
	"github.com/ftc-dev/ftc/internal/buildkittest"
)

// Resolution without BuildKit, from a local wheel directory (no network):
// the closure follows dependencies, each wheel's sha256 is the file's.
func TestResolvePythonLocal(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		needs.Missing(t, "python3 on PATH")
	}
	wheels := t.TempDir()
	a, err := buildkittest.WheelRequires(wheels, "ftc-a", "1.0", []string{"ftc-b>=2"}, map[string]string{"ftc_a/__init__.py": ""})
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildkittest.Wheel(wheels, "ftc-b", "2.1", map[string]string{"ftc_b/__init__.py": ""})
	if err != nil {
		t.Fatal(err)
	}
	target := LocalTarget{PythonVersion: "3.11", Platforms: ManylinuxPlatforms(28), Wheels: wheels}
	pkgs, err := ResolvePythonLocal(context.Background(), []image.Requirement{{Name: "ftc-a", Version: "1.0"}}, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || image.Normalize(pkgs[0].Name) != "ftc-a" || image.Normalize(pkgs[1].Name) != "ftc-b" || pkgs[1].Version != "2.1" {
		t.Fatalf("resolved %+v, want ftc-a 1.0 and ftc-b 2.1", pkgs)
	}
	if pkgs[0].Hashes[0] != "sha256:"+must(fileSHA256(a)) || pkgs[1].Hashes[0] != "sha256:"+must(fileSHA256(b)) {
		t.Fatalf("hashes %v %v are not the wheels'", pkgs[0].Hashes, pkgs[1].Hashes)
	}
	// A version that is not there is an error naming it, not a partial closure.
	_, err = ResolvePythonLocal(context.Background(), []image.Requirement{{Name: "ftc-a", Version: "9"}}, target)
	if err == nil || !strings.Contains(err.Error(), "ftc-a==9") {
		t.Fatalf("err = %v, want pip's failure naming ftc-a==9", err)
	}
}

func TestManylinuxPlatforms(t *testing.T) {
	p := ManylinuxPlatforms(35)
	if p[0] != "manylinux_2_35_x86_64" || p[len(p)-1] != "manylinux1_x86_64" || !strings.Contains(strings.Join(p, " "), "manylinux_2_17_x86_64 ") {
		t.Fatalf("%v", p)
	}
}
