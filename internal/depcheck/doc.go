// Package depcheck holds no code: its tests enforce the import rules of
// DESIGN.md §2 on the whole module, so a layering mistake fails CI instead
// of waiting for review.
package depcheck
