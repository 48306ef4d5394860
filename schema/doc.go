// Package schema embeds the versioned CUE schema of ftc recipes.
//
// The schema is data, not code: compiler/load overlays these files into every
// load so users never vendor them, and unifies the user's recipe with
// #Recipe. Every field carries a doc comment; the comments are the reference
// documentation shown in the README.
package schema
