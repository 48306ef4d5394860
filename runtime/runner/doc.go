// Package runner is ftc run's pipeline as a library: resolve → plan →
// checks of where the stages run → cache lookups → backend → commit →
// records, with options structs, the way crane's commands call pkg/crane.
//
// It exists so that internal/cli keeps flags, printing and exit codes
// only (DESIGN.md: only internal/cli prints): the pipeline decides, and
// says what happened through a Reporter the command implements and
// through typed results and errors. A UsageError is how the caller called
// it (a flag that names no stage, a backend that cannot run the recipe's
// topology): the CLI exits 2 for it, 1 for any other error.
//
// The same decisions serve the commands that plan a recipe as ftc run
// does without running it (ftc export, ftc cache gc --keep, push, pull,
// ftc plan --out): ResolveAndPlan, Keys, Export and WritePlanFiles, so
// that they find the keys the run used. Every command vets and plans
// through Vet and Plan (the lock's architectures, a bound on evaluation),
// finds the cache's directories through CacheRoot and DirsAt, and ftc env
// check and ftc pin are CheckHere and PinFile. What the commands show is
// rendered by runtime/display.
package runner
