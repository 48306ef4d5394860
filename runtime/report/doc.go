// Package report writes a static run report: one HTML file, no scripts,
// with a table of stages (cached or run, time, key) and an SVG chart per
// metric a stage emitted (loss, reward, tokens/s), so a run can be read
// and shared without any service.
package report
