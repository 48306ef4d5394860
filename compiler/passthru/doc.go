// Package passthru holds the field tables a stage's passthrough settings
// are checked against: for each stock profile, the keyword fields of the
// config classes ftc builds (transformers.TrainingArguments, trl's
// SFTConfig, RewardConfig, GRPOConfig and PPOConfig, peft's LoraConfig)
// and the value types their type hints admit.
//
// The tables are stdlib/python/envs/PROFILE/fields.json, written by
// stdlib/python/envs/fieldtable.py from the libraries installed in the
// profile's locked environment and checked against them by a library test
// in each environment, so they cannot drift from what the images install.
// They are embedded (stdlib.FieldTables); the package is pure data and
// functions of it. compiler/config uses it to vet `trainer: {...}` and
// `peft: {...}`; compiler/libknobs says which keywords ftc decides itself.
package passthru
