// Package build turns an image spec (compiler/image) into an image and
// publishes it.
//
//   - The environment image is solved by BuildKit (a daemon at --buildkit,
//     $BUILDKIT_HOST, or a docker-container:// / podman-container:// builder)
//     through the gateway API: the base image config is resolved and carried
//     into the result, which a raw LLB solve would drop. It is exported as an
//     OCI layout with the exporter options source-date-epoch and
//     rewrite-timestamp=true, which make its digest the same on every
//     daemon, and cached under its content key: an unchanged environment is
//     never solved again, and needs no daemon.
//   - The ftc layers are appended with go-containerregistry: each a tar with
//     sorted entries, uid/gid 0, fixed modes and the spec's epoch as every
//     mtime; history and created time are the epoch too.
//   - Publishers write the image and its attachments (SBOM and provenance
//     as OCI referrers) to an OCI layout directory, an OCI archive or a
//     registry (credentials from the docker config keychain).
//
// Resolution for `ftc lock` runs pip's resolver on this machine for the
// profile's CPython release and manylinux platform (ResolvePythonLocal,
// RecipeTarget: no daemon, no base image), or with --in-base inside
// BuildKit, in the base image; either against a local wheel directory or
// an index, reading the hashes of the chosen wheels from pip's
// installation report.
//
// Recipe is ftc build as a library (lock → spec → solve → append →
// publish), with an Observer the CLI implements to say each step, and
// LockRecipe ftc lock's image step; ftc reproduce --rebuild calls Recipe
// frozen, without publishers.
package build
