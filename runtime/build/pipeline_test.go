package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftc-dev/ftc/compiler"
	"github.com/ftc-dev/ftc/compiler/image"
)

func TestDestinations(t *testing.T) {
	for _, c := range []struct {
		d    Destinations
		want []string // the publishers, in order
	}{
		{Destinations{}, []string{"build.Layout ftc-image"}},
		{Destinations{Output: "oci:out"}, []string{"build.Layout out"}},
		{Destinations{Output: "oci-archive:out.tar", Push: "reg/img"}, []string{"build.Archive out.tar", "build.Registry reg/img"}},
		{Destinations{Push: "reg/img"}, []string{"build.Registry reg/img"}},
	} {
		ps, err := c.d.Publishers()
		if err != nil {
			t.Fatalf("%+v: %v", c.d, err)
		}
		var got []string
		for _, p := range ps("tiny") {
			switch p := p.(type) {
			case Layout:
				if p.Name != "tiny" {
					t.Errorf("layout named %q", p.Name)
				}
				got = append(got, "build.Layout "+p.Dir)
			case Archive:
				got = append(got, "build.Archive "+p.Path)
			case Registry:
				got = append(got, "build.Registry "+p.Ref)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v: publishers %q, want %q", c.d, got, c.want)
		}
	}
	// --name names the image in a layout or archive instead of the recipe.
	ps, err := (Destinations{Output: "oci-archive:out.tar", Name: "given"}).Publishers()
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := ps("tiny")[0].(Archive); !ok || a.Name != "given" {
		t.Errorf("with Name: %+v", ps("tiny")[0])
	}
	for _, bad := range []string{"oci:", "docker:img", "img"} {
		if _, err := (Destinations{Output: bad}).Publishers(); !errors.Is(err, ErrDestination) {
			t.Errorf("output %q: %v, want ErrDestination", bad, err)
		}
	}
}

// TestRecipeFrozenRefusesUnpinned: a frozen build of a recipe whose lock
// pins nothing stops at the spec, before any daemon, with image.Unpinned,
// and writes no lock; the observer hears nothing.
func TestRecipeFrozenRefusesUnpinned(t *testing.T) {
	r, diags, err := compiler.Vet("../../examples/sft-trl-single/recipe.cue", nil)
	if err != nil {
		t.Fatalf("%v\n%v", err, diags)
	}
	r.Dir = t.TempDir() // no ftc.lock there
	var heard recorder
	_, err = Recipe(context.Background(), r, RecipeOptions{
		Builder: New(Options{BuildKit: "unix:///nonexistent/buildkitd.sock"}), Frozen: true, Observer: &heard,
		Publishers: func(string) []Publisher { t.Fatal("publishers made for an image never built"); return nil },
	})
	var u image.Unpinned
	if !errors.As(err, &u) {
		t.Fatalf("got %v, want image.Unpinned", err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "ftc.lock")); err == nil {
		t.Error("a frozen build wrote a lock")
	}
	if len(heard) > 0 {
		t.Errorf("observer heard %q", heard)
	}
}

type recorder []string

func (r *recorder) Locked(path string, _ *LockResult) { *r = append(*r, "locked "+path) }
func (r *recorder) Built(b *Built)                    { *r = append(*r, "built "+b.Ref) }
func (r *recorder) Published(where string, _ bool)    { *r = append(*r, "published "+where) }
