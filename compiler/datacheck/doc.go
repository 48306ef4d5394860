// Package datacheck reads a bounded sample of a local dataset and says
// whether its rows have the shape the recipe declares for them.
//
// `ftc vet` (and so plan, build and run) reads the first SampleRows rows or
// SampleBytes bytes of each file, whichever comes first, through the fs.FS
// the recipe was decoded with: an empty file, a binary file, a malformed
// JSON line, a chat without an assistant turn or a column the recipe
// promises and the file lacks is reported at the data file's line
// (diag.FileLine), before any stage starts. A problem every row read shares
// (a `columns` rename naming no column of the file, prompt: "explicit"
// without a prompt column) is said once, at the recipe field that promised
// it. The rules are those of the prepare entrypoint
// (stdlib/python/ftc/data.py), which checks every row at run time; the two
// read one table of cases (testdata/rows.json) in their tests.
//
// Parquet files are checked for their magic bytes at both ends only:
// reading their rows needs a Parquet reader ftc does not carry.
//
// The package is pure: it reads only through fs.FS.
package datacheck
