package datacheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ftc-dev/ftc/compiler/diag"
)

// The sample vet reads from each file: the first SampleRows rows or
// SampleBytes bytes, whichever comes first. A row cut by the byte limit is
// not judged.
const (
	SampleRows  = 1000
	SampleBytes = 4 << 20
	// ShownRows is how many bad rows of a file are reported one by one;
	// the rest are counted, so a broken file does not flood the output.
	ShownRows = 5
)

// Dataset is one local data file to check.
type Dataset struct {
	Spec
	// Path is the dataset's recipe path, "datasets.chat".
	Path string
	// File is the file's path in the fs.FS (relative to the recipe).
	File string
	// Abs is the file's name in diagnostics (absolute, like CUE's).
	Abs string
	// Encoding is "jsonl" or "parquet".
	Encoding string
}

// Check reads the sample of d from fsys and returns its problems:
// row problems at the data file's lines, problems every row shares at
// the recipe field (positions from pos). A file that cannot be opened
// yields nothing: the recipe checks report that.
func Check(fsys fs.FS, d Dataset, pos diag.Positions) diag.List {
	l, _ := CheckSample(fsys, d, pos)
	return l
}

// Sample is what the read sample says about a file's size in rows.
type Sample struct {
	// Rows is the number of non-blank rows read, Bytes the bytes they
	// span.
	Rows  int
	Bytes int64
	// Complete is set when the sample is the whole file: Rows is then its
	// row count.
	Complete bool
	// Desirable and Undesirable count the good rows of format
	// "unpaired-preference" by label (true, false).
	Desirable, Undesirable int
}

// CheckSample is Check that also returns the sample's row count (zero
// for Parquet files, whose rows are not read).
func CheckSample(fsys fs.FS, d Dataset, pos diag.Positions) (diag.List, Sample) {
	f, err := fsys.Open(d.File)
	if err != nil {
		return nil, Sample{}
	}
	defer f.Close()
	c := &checker{d: d, pos: pos}
	if d.Encoding == "parquet" {
		c.parquet(f)
	} else {
		c.jsonl(f)
	}
	return c.diags, c.sample
}

type checker struct {
	d      Dataset
	pos    diag.Positions
	diags  diag.List
	sample Sample
}

func (c *checker) fileError(format string, args ...any) *diag.Diagnostic {
	return c.diags.DataErrorf(diag.FileLine{File: c.d.Abs}, c.d.Path, format, args...)
}

// magic are file signatures that say a file is not JSON Lines text.
var magic = []struct {
	prefix, what, hint string
}{
	{"\x7fELF", "an ELF executable", ""},
	{"PAR1", "a Parquet file", `set encoding: "parquet" (or name it .parquet)`},
	{"\x1f\x8b", "gzip-compressed", "decompress it: ftc reads plain JSON Lines"},
	{"PK\x03\x04", "a zip archive", "unpack it: ftc reads plain JSON Lines"},
	{"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it: ftc reads plain JSON Lines"},
	{"\xfd7zXZ\x00", "xz-compressed", "decompress it: ftc reads plain JSON Lines"},
	{"BZh", "bzip2-compressed", "decompress it: ftc reads plain JSON Lines"},
	{"SQLite format 3\x00", "an SQLite database", ""},
	{"\x89HDF", "an HDF5 file", ""},
	{"ARROW1", "an Arrow file", ""},
}

func (c *checker) jsonl(f fs.File) {
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(8000)
	if len(head) == 0 {
		c.fileError("the file is empty").WithHint("%s, one JSON object per line", c.d.Want())
		return
	}
	for _, m := range magic {
		if bytes.HasPrefix(head, []byte(m.prefix)) {
			d := c.fileError("not JSON Lines: the file is %s", m.what)
			if m.hint != "" {
				d.WithHint("%s", m.hint)
			} else {
				d.WithHint("check the path; %s, one JSON object per line", c.d.Want())
			}
			return
		}
	}
	if bytes.IndexByte(head, 0) >= 0 {
		c.fileError("not JSON Lines: the file is binary (it holds NUL bytes)").
			WithHint("%s, one JSON object per line", c.d.Want())
		return
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		c.fileError("the file starts with a UTF-8 byte-order mark, which JSON does not allow").
			WithHint("save it as UTF-8 without a BOM")
		return
	}
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		c.fileError("the file holds a JSON array; ftc reads JSON Lines, one object per line").
			WithHint("%s; convert with: jq -c '.[]' FILE", c.d.Want())
		return
	}

	var (
		rows, bad int
		labels    [2]int // good unpaired-preference rows: false, true
		shown     []row
		more      int // line of the first bad row not shown
		read      int
		complete  bool
	)
	groups := map[string]int{}
	var groupRows []row      // rows whose problem may be shared
	var first map[string]any // the first row that is an object
	for line := 1; rows < SampleRows; line++ {
		b, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it, within the byte budget.
			acc := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) && read+len(acc) <= SampleBytes {
				b, err = br.ReadSlice('\n')
				acc = append(acc, b...)
			}
			b = acc
			if errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		read += len(b)
		if read > SampleBytes || errors.Is(err, bufio.ErrBufferFull) {
			read -= len(b) // the sample's bytes are its whole rows'
			break          // the row is cut: the sample ends before it
		}
		if err != nil && err != io.EOF {
			c.fileError("reading: %v", err)
			return
		}
		if len(bytes.TrimSpace(b)) > 0 {
			rows++
			var p *problem
			if !utf8.Valid(b) {
				p = &problem{msg: "the line is not UTF-8 text"}
			} else {
				if v, jerr := decode(b); jerr != nil {
					p = &problem{msg: "invalid JSON: " + jsonError(jerr, b)}
				} else {
					if o, ok := v.(map[string]any); ok && first == nil {
						first = o
					}
					p = c.d.checkRow(v)
					if l, ok := c.d.label(v); p == nil && ok {
						labels[btoi(l)]++
					}
				}
			}
			if p != nil {
				if p.group != "" {
					groups[p.group]++
				}
				bad++
				r := row{line: line, problem: *p}
				groupRows = append(groupRows, r)
			}
		}
		if err == io.EOF {
			complete = true
			break
		}
	}
	c.sample = Sample{Rows: rows, Bytes: int64(read), Complete: complete, Desirable: labels[1], Undesirable: labels[0]}
	if rows == 0 {
		if complete {
			c.fileError("the file has no rows, only blank lines").WithHint("%s, one JSON object per line", c.d.Want())
		}
		return
	}
	// A problem every row read shares is the recipe's or the file's as a
	// whole: say it once, at the recipe field that promised otherwise.
	shared := map[string]bool{}
	for g, n := range groups {
		if n == rows {
			shared[g] = true
			c.sharedError(g, rows, first)
		}
	}
	for _, r := range groupRows {
		if shared[r.group] {
			bad--
			continue
		}
		if len(shown) < ShownRows {
			shown = append(shown, r)
		} else if more == 0 {
			more = r.line
		}
	}
	for i, r := range shown {
		d := c.diags.DataErrorf(diag.FileLine{File: c.d.Abs, Line: r.line}, c.d.Path, "%s", r.msg)
		if i == 0 {
			d.WithHint("%s", c.d.Want())
		}
	}
	if more > 0 {
		of := fmt.Sprintf("the %d rows read", rows)
		if complete {
			of = fmt.Sprintf("the file's %d rows", rows)
		}
		c.diags.DataErrorf(diag.FileLine{File: c.d.Abs, Line: more}, c.d.Path,
			"and %d more bad rows from here on: %d of %s are bad", bad-len(shown), bad, of)
	}
}

type row struct {
	line int
	problem
}

// sharedError reports a problem every row read has, at the recipe field
// behind it.
func (c *checker) sharedError(group string, rows int, first map[string]any) {
	every := fmt.Sprintf("every row of %s (%d read)", c.d.File, rows)
	has := "the first has " + keyList(first)
	if group == groupImplicit {
		path := c.d.Path + ".prompt"
		c.diags.Errorf(c.pos.At(path), path, "%s has a %q column, but the dataset declares prompt: \"implicit\"", every, c.d.source("prompt")).
			WithHint("declare prompt: \"explicit\" so the prompt is kept (trl's RewardTrainer would drop it)")
		return
	}
	want := strings.TrimPrefix(group, groupMissing)
	if src, ok := c.d.Columns[want]; ok {
		path := c.d.Path + ".columns." + want
		d := c.diags.Errorf(c.pos.At(path), path, "column %q (renamed to %q) is missing from %s; %s", src, want, every, has)
		if at := pathBreak(first, src); at != "" {
			d.WithHint("in the first row, %s (a dotted path walks nested objects; a number indexes a list)", at)
		} else {
			d.WithHint("columns maps {wanted: source}: name a column the file has")
		}
		return
	}
	if want == "prompt" && c.d.Format == "preference" && c.d.Prompt == "explicit" {
		path := c.d.Path + ".prompt"
		c.diags.Errorf(c.pos.At(path), path, "prompt: \"explicit\" promises a %q column, which is missing from %s; %s", want, every, has).
			WithHint("declare prompt: \"implicit\" if chosen and rejected hold the whole conversation, or add the prompt column")
		return
	}
	path := c.d.Path + ".format"
	d := c.diags.Errorf(c.pos.At(path), path, "format %q needs a %q column, which is missing from %s; %s", c.d.Format, want, every, has)
	if alt := guessColumn(want, first); alt != "" && want == "messages" && isShareGPT(first[alt]) {
		d.WithHint("%q holds ShareGPT turns ({from, value}): declare format: \"sharegpt\"", alt)
	} else if alt != "" {
		d.WithHint("rename it with columns: {%s: %q}", want, alt)
	} else {
		d.WithHint("%s", c.d.Want())
	}
}

// guessColumn picks the column of a row that likely holds what want
// names, for a hint.
func guessColumn(want string, row map[string]any) string {
	alike := map[string][]string{
		"messages":      {"conversations", "conversation", "chat", "dialog", "turns"},
		"conversations": {"conversation", "messages", "chat", "dialog", "turns"},
		"instruction":   {"prompt", "question", "query"},
		"output":        {"response", "answer", "completion"},
		"prompt":        {"question", "instruction", "input", "query"},
		"completion":    {"answer", "response", "output"},
		"text":          {"content", "document", "body"},
		"chosen":        {"preferred", "accepted", "positive"},
		"rejected":      {"dispreferred", "negative"},
	}
	for _, k := range alike[want] {
		if _, ok := row[k]; ok {
			return k
		}
	}
	return ""
}

// isShareGPT says whether v looks like ShareGPT turns, for a hint.
func isShareGPT(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return false
	}
	o, ok := l[0].(map[string]any)
	if !ok {
		return false
	}
	_, from := o["from"]
	_, value := o["value"]
	return from && value
}

// decode decodes one JSON value, numbers as json.Number: Python reads
// 1e400 (as inf), so vet must not refuse it as a float64 would.
func decode(line []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, after := dec.Token(); after != io.EOF {
			err = errors.New("more than one value")
		}
	}
	if err != nil {
		// Unmarshal's errors say what is wrong and where.
		var w any
		if uerr := json.Unmarshal(line, &w); uerr != nil {
			return nil, uerr
		}
		return nil, err
	}
	return v, nil
}

// jsonError says where in the line JSON broke, in characters.
func jsonError(err error, line []byte) string {
	var se *json.SyntaxError
	if !errors.As(err, &se) || strings.Contains(se.Error(), "unexpected end") {
		return err.Error()
	}
	// Offset counts the bytes read up to and including the bad one.
	col := utf8.RuneCount(line[:min(int(se.Offset), len(line))])
	return se.Error() + " at column " + strconv.Itoa(col)
}

// parquet checks the magic bytes at both ends of a Parquet file.
func (c *checker) parquet(f fs.File) {
	st, err := f.Stat()
	if err != nil {
		return
	}
	if st.Size() == 0 {
		c.fileError("the file is empty")
		return
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	if n < 4 || string(head) != "PAR1" {
		d := c.fileError("not a Parquet file: it does not start with \"PAR1\"")
		if n > 0 && (head[0] == '{' || head[0] == '[') {
			d.WithHint("it looks like JSON: set encoding: \"jsonl\"")
		}
		return
	}
	if ra, ok := f.(io.ReaderAt); ok && st.Size() >= 12 {
		tail := make([]byte, 4)
		if _, err := ra.ReadAt(tail, st.Size()-4); err == nil && string(tail) != "PAR1" {
			c.fileError("the Parquet file is truncated: it does not end with \"PAR1\"")
		}
	} else if st.Size() < 12 {
		c.fileError("the Parquet file is truncated (%d bytes)", st.Size())
	}
}
