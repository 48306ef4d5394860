// Package image compiles a recipe's environment into an image spec: plain
// data that runtime/build turns into BuildKit LLB (the environment image)
// and go-containerregistry layers (the ftc layers). It imports no BuildKit
// or registry package and does nothing with side effects, so the spec of a
// recipe is the same on every machine and can be tested without a daemon.
//
// An image has two tiers (DESIGN.md §3 rule 4):
//
//   - the environment: the base image by digest and the profile's Python
//     dependencies installed from a lock with hashes. It changes rarely and
//     is cached by its key (EnvironmentKey), shared by every recipe on the
//     same environment;
//   - the ftc layers: the entrypoints package (stdlib/python/ftc) and the
//     recipe's own files (reward functions, chat templates), one layer each,
//     with sorted entries, uid/gid 0, fixed modes and the build's epoch as
//     every timestamp.
//
// Hyperparameters never enter the image: they travel in the plan. The image
// config carries the recipe's name, the profile and ftc's version as
// labels, and no secret.
//
// The package also renders the attachments of a built image: an SPDX SBOM
// of its Python packages and an in-toto provenance statement (recipe
// digest, lock digest, ftc version), both byte-for-byte reproducible.
package image
