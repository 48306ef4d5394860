// Package export copies a stage's exported model out of the cache into a
// user's directory and writes its model card.
//
// The folder's files are hard links to the store's read-only blobs where
// the file system allows, else copies; nothing is ever written through
// them into the store: the card is a new file, and --force removes a
// colliding name before linking, never writes into it. The card is made
// from the plan, the lock, the recipe's bytes and the action records, so
// it describes the recipe the folder came from, not the machine or the
// hour (no clock, no environment).
package export
