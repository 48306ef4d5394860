package config

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDataFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"d/a.jsonl":               {Data: []byte("{}\n")},
		"d/sub/b.parquet":         {Data: []byte("PAR1")},
		"d/dataset_info.json":     {Data: []byte("{}")},
		"d/.cache/x.jsonl":        {Data: []byte("{}\n")},
		"d/README.md":             {Data: []byte("hi")},
		"one.jsonl":               {Data: []byte("{}\n")},
		"shards/train-00.jsonl":   {Data: []byte("{}\n")},
		"shards/train-01.jsonl":   {Data: []byte("{}\n")},
		"shards/valid-00.jsonl":   {Data: []byte("{}\n")},
		"empty/notes.txt":         {Data: []byte("x")},
		"json/part-0.json":        {Data: []byte("{}\n")},
		"shards/nested/x-0.jsonl": {Data: []byte("{}\n")},
	}
	for _, c := range []struct {
		path, enc string
		want      []string
		set       bool
		err       string
	}{
		{path: "one.jsonl", want: []string{"one.jsonl"}},
		// A directory: its .jsonl and .parquet files, recursively, not
		// .json metadata nor hidden folders.
		{path: "d", want: []string{"d/a.jsonl", "d/sub/b.parquet"}, set: true},
		{path: "d", enc: "parquet", want: []string{"d/sub/b.parquet"}, set: true},
		{path: "shards/train-*.jsonl", want: []string{"shards/train-00.jsonl", "shards/train-01.jsonl"}, set: true},
		{path: "json/*.json", want: []string{"json/part-0.json"}, set: true},
		{path: "shards/x-*.jsonl", set: true, err: "matches no file"},
		{path: "shards/[.jsonl", set: true, err: "not a valid glob"},
		{path: "empty", set: true, err: "empty is a directory with no .jsonl or .parquet files"},
	} {
		got, set, err := DataFiles(fsys, c.path, c.enc)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.path, err, c.err)
			}
			continue
		}
		if err != nil || set != c.set || !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %v %v %v, want %v %v", c.path, c.enc, got, set, err, c.want, c.set)
		}
	}
	if _, err := SetEncoding([]string{"d/a.jsonl", "d/sub/b.parquet"}, ""); err == nil {
		t.Error("a set of JSON Lines and Parquet files has no one encoding")
	}
}
