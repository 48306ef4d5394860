package datacheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// TestRows runs the table of rows the prepare entrypoint's tests read too
// (stdlib/python/tests/test_datacheck.py), so the two agree on what a valid
// row is.
func TestRows(t *testing.T) {
	b, err := os.ReadFile("testdata/rows.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Format  string            `json:"format"`
		Prompt  string            `json:"prompt"`
		Columns map[string]string `json:"columns"`
		Row     any               `json:"row"`
		OK      bool              `json:"ok"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // as Check decodes rows
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		s := Spec{Format: c.Format, Prompt: c.Prompt, Columns: c.Columns}
		msg := s.CheckRow(c.Row)
		if (msg == "") != c.OK {
			row, _ := json.Marshal(c.Row)
			t.Errorf("case %d: %s %s %v %s: got %q, want ok=%v", i, c.Format, c.Prompt, c.Columns, row, msg, c.OK)
		}
	}
}

func check(t *testing.T, data string, s Spec, enc string) string {
	t.Helper()
	fsys := fstest.MapFS{"d.jsonl": {Data: []byte(data)}}
	l := Check(fsys, Dataset{Spec: s, Path: "datasets.d", File: "d.jsonl", Abs: "/r/d.jsonl", Encoding: enc}, diag.Positions{})
	var b strings.Builder
	l.Print(&b, "/r")
	return b.String()
}

var chat = Spec{Format: "messages"}

const good = `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}`

func TestSampleRows(t *testing.T) {
	// A bad row past the first SampleRows rows is not read.
	data := strings.Repeat(good+"\n", SampleRows) + "not json\n"
	if got := check(t, data, chat, "jsonl"); got != "" {
		t.Errorf("row %d was judged:\n%s", SampleRows+1, got)
	}
	data = strings.Repeat(good+"\n", SampleRows-1) + "not json\n"
	if got := check(t, data, chat, "jsonl"); !strings.HasPrefix(got, fmt.Sprintf("d.jsonl:%d: ", SampleRows)) {
		t.Errorf("row %d was not judged: %q", SampleRows, got)
	}
}

func TestSampleBytes(t *testing.T) {
	// Rows of 1 MiB: the fifth crosses 4 MiB and is not judged, nor are
	// the bad rows after it.
	big := `{"text": "` + strings.Repeat("x", 1<<20) + `"}`
	data := strings.Repeat(big+"\n", 4) + "not json\n" + "not json either\n"
	s := Spec{Format: "text"}
	if got := check(t, data, s, "jsonl"); got != "" {
		t.Errorf("rows past 4 MiB were judged:\n%s", got)
	}
	data = strings.Repeat(big+"\n", 3) + `{"text": 3}` + "\n"
	if got := check(t, data, s, "jsonl"); !strings.HasPrefix(got, "d.jsonl:4: datasets.d: \"text\" must be a string, got a number") {
		t.Errorf("a row after long rows: %q", got)
	}
	// One line longer than the whole budget is not judged either.
	huge := `{"text": "` + strings.Repeat("x", SampleBytes+10) + `"}` + "\n"
	if got := check(t, huge, s, "jsonl"); got != "" {
		t.Errorf("a line past the budget was judged:\n%s", got)
	}
}

func TestFiles(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"empty", "", "d.jsonl: datasets.d: the file is empty"},
		{"blank", "\n  \n\n", "d.jsonl: datasets.d: the file has no rows, only blank lines"},
		{"nul", good + "\n\x00\x00\n", "d.jsonl: datasets.d: not JSON Lines: the file is binary (it holds NUL bytes)"},
		{"gzip", "\x1f\x8b\x08\x00", "d.jsonl: datasets.d: not JSON Lines: the file is gzip-compressed"},
		{"parquet", "PAR1....PAR1", "d.jsonl: datasets.d: not JSON Lines: the file is a Parquet file"},
		{"bom", "\xef\xbb\xbf" + good + "\n", "d.jsonl: datasets.d: the file starts with a UTF-8 byte-order mark"},
		{"array", "[\n" + good + "\n]\n", "d.jsonl: datasets.d: the file holds a JSON array"},
		{"latin1", good + "\n{\"text\": \"caf\xe9\"}\n", "d.jsonl:2: datasets.d: the line is not UTF-8 text"},
		{"syntax", good + "\n{\"messages\": [}\n", "d.jsonl:2: datasets.d: invalid JSON: invalid character '}' looking for beginning of value at column 15"},
		{"no final newline", good + "\n" + `{"messages": []}`, `d.jsonl:2: datasets.d: "messages" is an empty list`},
		{"crlf", good + "\r\n" + good + "\r\n", ""},
		{"two values", good + " {}\n", "d.jsonl:1: datasets.d: invalid JSON: invalid character '{' after top-level value at column"},
		{"huge number", strings.TrimSuffix(good, "}") + `, "n": 1e400}` + "\n", ""},
	} {
		got := check(t, c.data, chat, "jsonl")
		if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %q, want %q...", c.name, got, c.want)
		}
	}
}

func TestParquet(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"ok", "PAR1" + strings.Repeat("\x00", 8) + "PAR1", ""},
		{"json", good + "\n", `d.jsonl: datasets.d: not a Parquet file: it does not start with "PAR1"`},
		{"short", "PAR1\x00", "d.jsonl: datasets.d: the Parquet file is truncated (5 bytes)"},
		{"empty", "", "d.jsonl: datasets.d: the file is empty"},
	} {
		got := check(t, c.data, chat, "parquet")
		if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %q, want %q...", c.name, got, c.want)
		}
	}
}

func TestShownRows(t *testing.T) {
	// Twelve bad rows among twenty: five shown, one line counting the rest.
	var b strings.Builder
	for i := 1; i <= 20; i++ {
		if i%5 == 0 || i > 12 {
			b.WriteString("{}\n")
		} else {
			b.WriteString(good + "\n")
		}
	}
	got := check(t, b.String(), chat, "jsonl")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if n := strings.Count(got, "\n"); n != 7 { // five rows, a hint, the count
		t.Errorf("got %d lines:\n%s", n, got)
	}
	if last := lines[len(lines)-1]; last != "d.jsonl:16: datasets.d: and 5 more bad rows from here on: 10 of the file's 20 rows are bad" {
		t.Errorf("last line %q", last)
	}
}

func TestSharedProblem(t *testing.T) {
	// Every row lacks the column: said once, at the recipe field, and not
	// per row.
	pos := diag.Positions{}
	data := `{"conversations": []}` + "\n" + `{"conversations": []}` + "\n"
	fsys := fstest.MapFS{"d.jsonl": {Data: []byte(data)}}
	l := Check(fsys, Dataset{Spec: chat, Path: "datasets.d", File: "d.jsonl", Abs: "/r/d.jsonl", Encoding: "jsonl"}, pos)
	if len(l) != 1 || l[0].Path != "datasets.d.format" || l[0].Hint != `rename it with columns: {messages: "conversations"}` {
		t.Errorf("got %v", l)
	}
	// One row of two lacks it: a row problem.
	data = good + "\n" + `{"conversations": []}` + "\n"
	fsys = fstest.MapFS{"d.jsonl": {Data: []byte(data)}}
	l = Check(fsys, Dataset{Spec: chat, Path: "datasets.d", File: "d.jsonl", Abs: "/r/d.jsonl", Encoding: "jsonl"}, pos)
	if len(l) != 1 || l[0].Line == nil || l[0].Line.Line != 2 {
		t.Errorf("got %v", l)
	}
}

// TestSample checks the row count the plan's steps come from: counted
// when the sample is the whole file, else the sample's rows and the bytes
// they span (a row cut by the byte budget counts in neither).
func TestSample(t *testing.T) {
	sample := func(data string) Sample {
		fsys := fstest.MapFS{"d.jsonl": {Data: []byte(data)}}
		_, s := CheckSample(fsys, Dataset{Spec: Spec{Format: "text"}, Path: "datasets.d", File: "d.jsonl", Encoding: "jsonl"}, nil)
		return s
	}
	row := `{"text": "hello"}` + "\n"
	if got, want := sample(strings.Repeat(row, 7)+"\n"), (Sample{Rows: 7, Bytes: int64(7*len(row) + 1), Complete: true}); got != want {
		t.Errorf("whole file: got %+v, want %+v", got, want)
	}
	if got, want := sample(strings.Repeat(row, SampleRows+5)), (Sample{Rows: SampleRows, Bytes: int64(SampleRows * len(row))}); got != want {
		t.Errorf("past SampleRows: got %+v, want %+v", got, want)
	}
	big := `{"text": "` + strings.Repeat("x", 1<<20) + `"}` + "\n"
	if got, want := sample(strings.Repeat(big, 6)), (Sample{Rows: 3, Bytes: int64(3 * len(big))}); got != want {
		t.Errorf("past SampleBytes: got %+v, want %+v", got, want)
	}
}

// TestSampleCountsLabels: the good rows of format "unpaired-preference"
// are counted by label, through a rename; bad rows count in neither.
func TestSampleCountsLabels(t *testing.T) {
	data := `{"p": "a", "completion": "b", "meta": {"ok": true}}
{"p": "a", "completion": "c", "meta": {"ok": false}}
{"p": "a", "completion": "d", "meta": {"ok": true}}
{"p": "a", "completion": "e", "meta": {"ok": 1}}
`
	fsys := fstest.MapFS{"d.jsonl": {Data: []byte(data)}}
	spec := Spec{Format: "unpaired-preference", Columns: map[string]string{"prompt": "p", "label": "meta.ok"}}
	_, s := CheckSample(fsys, Dataset{Spec: spec, Path: "datasets.d", File: "d.jsonl", Abs: "/r/d.jsonl", Encoding: "jsonl"}, nil)
	if s.Desirable != 2 || s.Undesirable != 1 || s.Rows != 4 || !s.Complete {
		t.Errorf("got %+v, want 2 desirable and 1 undesirable of 4 rows, complete", s)
	}
}
