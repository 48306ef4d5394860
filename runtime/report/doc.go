// Package report writes a static run report: one self-contained HTML file
// (no scripts, fonts, stylesheets or anything else to fetch) that says, per
// stage, what the plan estimated next to what was measured (wall time, peak
// GPU memory, tokens/s), draws the stage graph and the curves of the
// metrics the stages emitted as inline SVG (a metric logged once is shown
// as its value), lists evaluation metrics, and says where the outputs are
// in the cache. internal/cli writes it at the end of every ftc run that
// is not a dry run, into the run's record directory.
package report
