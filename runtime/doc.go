// Package runtime is the part of ftc with side effects: resolving inputs,
// the content-addressed cache, executing stages and talking to registries.
// The compiler never imports it.
package runtime
