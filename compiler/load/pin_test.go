package load

import (
	"errors"
	"testing"
)

func TestRewritePins(t *testing.T) {
	src := `package recipe

// kept
datasets: a: file: path: "a.jsonl" // after a
datasets: b: file: {path: "b.jsonl", sha256: "old"}
datasets: c: {
	file: {
		path: "c.jsonl"
	}
}
datasets: d: file: {path: "missing.jsonl"}
datasets: e: file: {path: _p, sha256: "old"}
stages: s: data: train: {file: {path: "a.jsonl", sha256: "A"}, format: "text"}
_p: "e.jsonl"
`
	want := `package recipe

// kept
datasets: a: file: {path: "a.jsonl", sha256: "A"} // after a
datasets: b: file: {path: "b.jsonl", sha256: "B"}
datasets: c: {
	file: {
		path:   "c.jsonl"
		sha256: "C"
	}
}
datasets: d: file: {path: "missing.jsonl"}
datasets: e: file: {path: _p, sha256: "old"}
stages: s: data: train: {file: {path: "a.jsonl", sha256: "A"}, format: "text"}
_p: "e.jsonl"
`
	sums := map[string]string{"a.jsonl": "A", "b.jsonl": "B", "c.jsonl": "C"}
	out, sites, err := RewritePins("r.cue", []byte(src), func(p string) (string, error) {
		if s, ok := sums[p]; ok {
			return s, nil
		}
		return "", errors.New("no such file")
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	var changed, failed, current int
	for _, s := range sites {
		switch {
		case s.Err != nil:
			failed++
		case s.Changed():
			changed++
		default:
			current++
		}
	}
	// e's path is not a literal: not a site at all.
	if changed != 3 || failed != 1 || current != 1 {
		t.Errorf("changed %d, failed %d, current %d; want 3, 1, 1: %+v", changed, failed, current, sites)
	}
}
