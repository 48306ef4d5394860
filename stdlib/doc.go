// Package stdlib embeds ftc's CUE presets: model families with their
// architecture facts, GPU kinds, topologies, distribution strategies and
// pinned environment profiles.
//
// Presets are plain CUE values that recipes import and unify with; the
// loader overlays them in memory, so recipes never vendor them.
package stdlib
