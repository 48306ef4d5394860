package load_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ftc-dev/ftc/compiler/diag"
	"github.com/ftc-dev/ftc/compiler/load"
)

// bigRecipe is recipe with n more datasets, declared one by one, and
// comment lines of comment bytes in all.
func bigRecipe(n, comment int) string {
	var b strings.Builder
	b.WriteString(recipe)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "datasets: d%d: {file: {path: \"d.jsonl\", sha256: %q}, format: \"text\"}\n", i, strings.Repeat("0", 64))
	}
	line := "// " + strings.Repeat("x", 77) + "\n"
	for i := 0; i < comment/len(line); i++ {
		b.WriteString(line)
	}
	return b.String()
}

// TestFieldBound: a struct with more fields than load.MaxFields is
// refused before CUE evaluates it (in a time that grows with the square
// of the fields), at the first field past the bound; one at the bound
// loads. 30,000 datasets took 15-25 s to vet before the bound.
func TestFieldBound(t *testing.T) {
	mustLoad(t, write(t, bigRecipe(load.MaxFields-1, 0)))
	_, err := load.Load(write(t, bigRecipe(load.MaxFields, 0)), nil)
	var l diag.List
	if !errors.As(err, &l) || len(l) != 1 {
		t.Fatalf("want one diagnostic, got %v", err)
	}
	if want := fmt.Sprintf("datasets.d%d: datasets has more than %d fields", load.MaxFields-1, load.MaxFields); !strings.Contains(l[0].Error(), want) {
		t.Errorf("got %v, want %q", l[0], want)
	}
}

// TestLongComments: 5 MB of comments load (comments are not evaluated).
func TestLongComments(t *testing.T) {
	mustLoad(t, write(t, bigRecipe(0, 5<<20)))
}

// TestComprehensionBound: fields and elements that comprehensions make
// count too: those whose size the syntax shows are refused before any
// evaluation, the others once the user's value is evaluated alone.
func TestComprehensionBound(t *testing.T) {
	src := strings.Replace(recipe, `import (`, "import (\n\t\"list\"", 1)
	for _, c := range []struct{ name, add, want string }{
		{"range", "x: {for i in list.Range(0, 30000, 1) {\"d\\(i)\": i}}", "x: this comprehension makes 30000 fields or elements, more than 1000"},
		{"nested-literals", "x: [for a in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] for b in list.Range(0, 100, 1) {a * b}]", "x: this comprehension makes 1100 fields or elements"},
		{"through-references", "_l: [for i in list.Range(0, 40, 1) {i}]\nx: {for a in _l for b in _l {\"k\\(a)-\\(b)\": 1}}", "x has more than 1000 fields"},
		{"list", "secrets: [" + strings.Repeat(`"A", `, 1001) + "]", "secrets.1000: secrets has more than 1000 elements"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load.Load(write(t, src+c.add+"\n"), nil)
			var l diag.List
			if !errors.As(err, &l) || len(l) != 1 {
				t.Fatalf("want one diagnostic, got %v", err)
			}
			if !strings.Contains(l[0].Error(), c.want) {
				t.Errorf("got %v, want %q", l[0], c.want)
			}
		})
	}
}

// TestStageBound: a recipe with more than load.MaxStages stages is
// refused before evaluation; a chain of MaxStages stages, each training
// on the previous one's output (CUE's slowest shape: 999 took a minute),
// loads.
func TestStageBound(t *testing.T) {
	chain := func(n int) string {
		var b strings.Builder
		b.WriteString(recipe)
		prev := "s"
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "stages: t%d: {method: \"sft\", model: stages.%s.output, data: train: datasets.d, training: epochs: 1}\n", i, prev)
			prev = fmt.Sprintf("t%d", i)
		}
		return b.String()
	}
	mustLoad(t, write(t, chain(load.MaxStages)))
	_, err := load.Load(write(t, chain(load.MaxStages+1)), nil)
	var l diag.List
	if !errors.As(err, &l) || len(l) != 1 {
		t.Fatalf("want one diagnostic, got %v", err)
	}
	if want := fmt.Sprintf("stages.t%d: the recipe has more than %d stages", load.MaxStages, load.MaxStages); !strings.Contains(l[0].Error(), want) {
		t.Errorf("got %v, want %q", l[0], want)
	}
}

// TestTotalBound: more than load.MaxTotalFields fields in all are refused
// before evaluation (vet's time is linear in them), also when each struct
// is within its own bound.
func TestTotalBound(t *testing.T) {
	var b strings.Builder
	b.WriteString(recipe)
	for i := 0; i < load.MaxTotalFields/200+1; i++ {
		fmt.Fprintf(&b, "datasets: w%d: {file: {path: \"d.jsonl\", sha256: %q}, format: \"text\", columns: {", i, strings.Repeat("0", 64))
		for j := 0; j < 200; j++ {
			fmt.Fprintf(&b, "c%d: \"x\", ", j)
		}
		b.WriteString("}}\n")
	}
	_, err := load.Load(write(t, b.String()), nil)
	var l diag.List
	if !errors.As(err, &l) || len(l) != 1 {
		t.Fatalf("want one diagnostic, got %v", err)
	}
	if want := fmt.Sprintf("the recipe has more than %d fields and list elements", load.MaxTotalFields); !strings.Contains(l[0].Error(), want) {
		t.Errorf("got %v, want %q", l[0], want)
	}
}
