// Package diag holds ftc's positioned diagnostics.
//
// Every problem a user can fix is reported at the position of the field they
// wrote (file:line:col), with the recipe path, a message and, where one
// helps, a hint. CUE's own errors are converted into diagnostics at the position in
// the user's file, so they and ftc's semantic checks travel in one list and
// are sorted and printed alike.
package diag
