// Package stageschema owns the JSON Schema of stage.json, the file the
// runtime writes into a stage's run directory and the Python entrypoints
// read (runtime/exec.StageFile, with the plan's stage config inside).
//
// The schema is generated from the Go types by reflection (Generate), so
// it cannot drift from what encoding/json writes: json tags name the
// properties, omitempty makes one optional, a pointer makes one nullable,
// a named string type with a fixed set of values becomes an enum, and
// every object is closed (additionalProperties: false), so a field the
// Go side adds and Python does not know fails validation on both sides.
//
// The generated file is committed as stdlib/python/ftc/stage.schema.json:
// it ships with the entrypoints and both test suites read it. A test
// fails when it is stale; FTC_UPDATE_GOLDEN=1 rewrites it.
//
// Validate is a minimal validator for exactly the keywords Generate emits
// (stdlib/python/tests/test_stage_schema.py has its twin): compiling a
// schema that uses any other keyword is an error, so neither validator
// can silently ignore a keyword the generator starts to emit.
package stageschema
