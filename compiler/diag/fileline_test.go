package diag

import (
	"strings"
	"testing"
)

func TestFileLinePrintsAndSorts(t *testing.T) {
	var l List
	l.DataErrorf(FileLine{File: "/r/data/x.jsonl", Line: 17}, "datasets.x", "bad row").WithHint("want {}")
	l.DataErrorf(FileLine{File: "/r/data/x.jsonl", Line: 3}, "datasets.x", "bad row")
	l.DataErrorf(FileLine{File: "/r/data/x.jsonl"}, "datasets.x", "empty")
	l.DataErrorf(FileLine{File: "/r/data/x.jsonl", Line: 3}, "datasets.x", "bad row") // a duplicate
	var b strings.Builder
	l.Sort().Print(&b, "/r")
	want := "data/x.jsonl: datasets.x: empty\n" +
		"data/x.jsonl:3: datasets.x: bad row\n" +
		"data/x.jsonl:17: datasets.x: bad row\n\thint: want {}\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := l[1].Error(); got != "/r/data/x.jsonl:3: datasets.x: bad row" {
		t.Errorf("Error() = %q", got)
	}
}
