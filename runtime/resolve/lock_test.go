package resolve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockWithImagePinsRoundTrips(t *testing.T) {
	h := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	l := &Lock{
		Pins:  map[Ref]string{{Kind: "model", Repo: "a/m", Revision: "main"}: strings.Repeat("c", 40)},
		Bases: map[string]string{"nvidia/cuda:12.4.1-runtime-ubuntu22.04": h("1")},
		Python: &PythonLock{Input: h("2"), Packages: []PythonPackage{
			{Name: "torch", Version: "2.5.0", Hashes: []string{h("3"), h("4")}},
			{Name: "accelerate", Version: "1.3.0", Hashes: []string{h("5")}},
			{Name: "deepspeed", Version: "0.16.2", Hashes: []string{h("6")}, Sdist: true},
		}},
	}
	p := filepath.Join(t.TempDir(), LockFile)
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := []string{
		"base nvidia/cuda:12.4.1-runtime-ubuntu22.04 " + h("1"),
		"model a/m@main " + strings.Repeat("c", 40),
		"python accelerate==1.3.0 " + h("5"),
		"python torch==2.5.0 " + h("3") + " " + h("4"),
		"python-input " + h("2"),
		"python-sdist deepspeed==0.16.2 " + h("6"),
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if strings.Join(lines[2:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("lock:\n%s", b)
	}
	back, err := ReadLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Bytes()) != string(b) || back.Python.Packages[0].Name != "accelerate" || back.Bases["nvidia/cuda:12.4.1-runtime-ubuntu22.04"] != h("1") ||
		!back.Python.Packages[1].Sdist || back.Python.Packages[2].Sdist {
		t.Fatalf("does not round-trip: %+v", back)
	}
	// ftc run adds Hub pins and keeps the image pins.
	up := UpdatedLock(back, &Result{Pins: map[Ref]string{{Kind: "dataset", Repo: "a/d", Revision: "v1"}: strings.Repeat("d", 40)}})
	if up.Python == nil || len(up.Bases) != 1 || len(up.Pins) != 2 {
		t.Fatalf("UpdatedLock dropped image pins: %+v", up)
	}
}

func TestLockRejectsMalformedImagePins(t *testing.T) {
	for _, line := range []string{
		"base nvidia/cuda:12 sha256:abc",
		"python torch==2.5.0",
		"python torch 2.5.0 sha256:" + strings.Repeat("a", 64),
		"python torch==2.5.0 md5:abc",
		"python-input sha256:" + strings.Repeat("c", 64) + "\npython-sdist deepspeed==0.16.2",
		"python-input sha256:" + strings.Repeat("c", 64) + "\npython-sdist deepspeed==0.16.2 sha256:" + strings.Repeat("a", 64) + " sha256:" + strings.Repeat("b", 64),
		"python-input nope",
		"python torch==2.5.0 sha256:" + strings.Repeat("a", 64), // no python-input
		"image foo bar",
	} {
		p := filepath.Join(t.TempDir(), LockFile)
		os.WriteFile(p, []byte(line+"\n"), 0o644)
		if _, err := ReadLock(p); err == nil {
			t.Errorf("accepted %q", line)
		}
	}
}
