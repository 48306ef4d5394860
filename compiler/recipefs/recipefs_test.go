package recipefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// tree makes a recipe directory and, beside it, a "volume" directory:
//
//	recipe/inside.txt
//	recipe/sub/real.txt
//	recipe/link-inside -> sub/real.txt
//	recipe/subdir -> sub
//	recipe/sub/deep/ (a directory)
//	recipe/deeplink -> sub/deep
//	recipe/chain -> deeplink/../../escape   (leaves through another link;
//	                lexically it would stay inside)
//	recipe/escape -> ../volume
//	recipe/data -> <abs>/volume
//	recipe/passwd -> /etc/passwd
//	recipe/dangling -> /nonexistent/elsewhere
//	volume/x.jsonl
func tree(t *testing.T) (dir, volume string) {
	t.Helper()
	tmp := t.TempDir()
	dir, volume = filepath.Join(tmp, "recipe"), filepath.Join(tmp, "volume")
	for _, d := range []string{filepath.Join(dir, "sub/deep"), volume} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range map[string]string{
		filepath.Join(dir, "inside.txt"):   "in",
		filepath.Join(dir, "sub/real.txt"): "real",
		filepath.Join(volume, "x.jsonl"):   "{}\n",
	} {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"link-inside": "sub/real.txt",
		"subdir":      "sub",
		"deeplink":    "sub/deep",
		"chain":       "deeplink/../../escape",
		"escape":      "../volume",
		"data":        volume,
		"passwd":      "/etc/passwd",
		"dangling":    "/nonexistent/elsewhere",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, volume
}

func TestResolve(t *testing.T) {
	dir, volume := tree(t)
	strict := New(dir)
	data := strict.Data([]string{volume})
	for _, c := range []struct {
		name       string
		view       *Dir
		wantLink   string // an *EscapeError through this link
		wantErr    error  // else this error
		wantInside bool   // else a path inside dir
	}{
		{name: "inside.txt", view: strict, wantInside: true},
		{name: "link-inside", view: strict, wantInside: true},
		{name: "subdir/real.txt", view: strict, wantInside: true},
		{name: "passwd", view: strict, wantLink: "passwd"},
		{name: "passwd", view: data, wantLink: "passwd"},
		{name: "escape/x.jsonl", view: strict, wantLink: "escape"},
		{name: "data/x.jsonl", view: strict, wantLink: "data"},
		{name: "dangling", view: strict, wantLink: "dangling"},
		{name: "chain/x.jsonl", view: strict, wantLink: "chain"},
		{name: "chain/x.jsonl", view: data},
		{name: "data/x.jsonl", view: data},
		{name: "escape/x.jsonl", view: data},
		{name: "missing.txt", view: strict, wantErr: fs.ErrNotExist},
		// A declared root that is not mounted: the file is missing.
		{name: "dangling", view: strict.Data([]string{"/nonexistent"}), wantErr: fs.ErrNotExist},
		{name: "../inside.txt", view: strict, wantErr: fs.ErrInvalid},
		{name: "/etc/passwd", view: data, wantErr: fs.ErrInvalid},
	} {
		got, err := c.view.Resolve(c.name)
		var esc *EscapeError
		switch {
		case c.wantLink != "":
			if !errors.As(err, &esc) || esc.Link != c.wantLink || esc.Name != c.name {
				t.Errorf("%s (roots %v): got %q, %v; want an escape through %s", c.name, c.view.roots, got, err, c.wantLink)
			}
		case c.wantErr != nil:
			if !errors.Is(err, c.wantErr) {
				t.Errorf("%s: got %q, %v; want %v", c.name, got, err, c.wantErr)
			}
		case err != nil:
			t.Errorf("%s (roots %v): %v", c.name, c.view.roots, err)
		case c.wantInside != within(got, strict.real):
			t.Errorf("%s: resolved to %s", c.name, got)
		}
	}
}

func TestEscapeErrorNamesTheLinkAndSuggestsARoot(t *testing.T) {
	dir, volume := tree(t)
	_, err := New(dir).Resolve("escape/x.jsonl")
	var esc *EscapeError
	if !errors.As(err, &esc) {
		t.Fatal(err)
	}
	want := "leaves the recipe's directory through the symlink escape -> ../volume (" + volume + ")"
	if esc.Error() != want || esc.Root != volume {
		t.Errorf("got %q, root %s; want %q, root %s", esc.Error(), esc.Root, want, volume)
	}
	_, err = New(dir).Resolve("passwd")
	if !errors.As(err, &esc) || esc.Error() != "leaves the recipe's directory through the symlink passwd -> /etc/passwd" || esc.Root != "/etc" {
		t.Errorf("got %v (root %s)", err, esc.Root)
	}
}

// The strict view (what may enter an image) refuses every escape, and a
// data root does not widen it; the data view reads through the root.
func TestOpen(t *testing.T) {
	dir, volume := tree(t)
	if b, err := fs.ReadFile(New(dir), "link-inside"); err != nil || string(b) != "real" {
		t.Errorf("link inside: %q, %v", b, err)
	}
	var esc *EscapeError
	if _, err := fs.ReadFile(New(dir), "data/x.jsonl"); !errors.As(err, &esc) {
		t.Errorf("strict view read through an escaping link: %v", err)
	}
	if _, err := fs.Stat(New(dir), "passwd"); !errors.As(err, &esc) {
		t.Errorf("strict view stat'ed /etc/passwd: %v", err)
	}
	data := New(dir).WithDataRoots([]string{volume})
	if b, err := fs.ReadFile(data, "data/x.jsonl"); err != nil || string(b) != "{}\n" {
		t.Errorf("data view through its root: %q, %v", b, err)
	}
	if _, err := fs.ReadFile(data, "passwd"); !errors.As(err, &esc) {
		t.Errorf("data view read /etc/passwd: %v", err)
	}
}
