// Package libknobs is the one table of the trainer-config keywords ftc's
// Python entrypoints pass (stdlib/python/ftc: every kwargs dict given to
// compat.make_config) and the library versions whose config classes
// accept them: transformers.TrainingArguments, which every trl config
// extends, and trl's SFTConfig, RewardConfig, GRPOConfig and PPOConfig.
//
// Three places read it, so a recipe setting either reaches the library or
// is refused, never silently dropped:
//
//   - `ftc vet` (compiler/config) refuses, at the recipe field, a setting
//     whose keyword the recipe's profile's libraries lack;
//   - the entrypoints (compat.make_config) refuse any keyword the
//     installed class lacks, except where the table says the library
//     without it does what ftc asks (Knob.Without) or ftc does it itself
//     (Knob.Handled); they read the table from stdlib/python/ftc/knobs.json,
//     which JSON writes (a golden test keeps it current);
//   - stdlib/python/libtests/test_knobs.py checks the table's claims for
//     each stock profile against the installed libraries' dataclass fields,
//     in each profile's locked environment.
//
// Version bounds other than the stock profiles' were read in the
// libraries' sources at the named tags (Knob.Source). The package is pure
// data and functions of version strings.
package libknobs
