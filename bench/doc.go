// Package bench holds ftc's benchmarks. Each reports its result next to a
// baseline measured in the same run (process start-up, a reference tool),
// so numbers from different machines compare as ratios. Tests never assert
// on wall time; these benchmarks are how performance is tracked.
package bench
