// Package arch owns what ftc knows about model architectures: the facts
// a model's config.json gives (Facts, read by FromConfigJSON), the
// parameter count computed from them, and the family table (Families):
// per transformers model type, the decoder layer class FSDP wraps, the
// linear modules LoRA can target, how packed rows get per-document
// attention, and the first transformers release that has the model type.
//
// It is pure: config.json arrives as bytes (runtime/resolve fetches it
// when `ftc lock` pins a model) and the facts leave as plain Go values,
// recorded in ftc.lock and read back by vet and plan.
package arch
