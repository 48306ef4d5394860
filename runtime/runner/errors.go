package runner

// UsageError is an error in how the pipeline was called: the options (the
// command line) ask for something the recipe or the machine cannot do.
// The CLI exits with its usage status for it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// IsUsage marks the error for callers that recognise usage errors of any
// runtime package by this method.
func (UsageError) IsUsage() bool { return true }
