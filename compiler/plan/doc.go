// Package plan compiles a validated recipe into its stage graph.
//
// Every dataset a training stage reads gets a prepare stage (formatting,
// tokenization, packing) keyed by the data's pin, the tokenizer and the
// tokenization settings only, so a hyperparameter change never re-tokenizes.
// Training stages are keyed by their resolved config, the keys of their
// inputs, the environment and the topology. Stages come out in a
// deterministic topological order.
//
// One file per stage kind builds its stage config and key material; the
// kinds are listed in an explicit table, not registered by init().
package plan
