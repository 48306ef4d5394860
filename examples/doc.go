// Package examples holds one recipe per supported scenario. Its test
// compiles every example and compares the stage list and keys with a
// golden file, so a change that moves a key is seen and made on purpose.
package examples
