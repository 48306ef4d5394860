// Package envcheck prepares and checks the machine the local backend runs
// stages on, before any stage starts.
//
// The training entrypoints are embedded in ftc (stdlib/python/ftc), not
// installed: Entrypoints materialises them once into the cache, in a
// directory named by their digest (the one every key hashes), read-only,
// written the way the store commits (temporary directory on the same file
// system, fsync, verify, rename), and verified on every reuse. The runtime
// puts that directory on PYTHONPATH.
//
// Probe runs a small Python snippet with the chosen interpreter and reads
// what it finds: the Python version, the installed version of every
// package the profile pins (importlib.metadata; torch is imported only
// when the run needs GPUs), CUDA and the visible GPUs. Check compares that
// with what the recipe asks for (pure, table-driven tests) and classifies
// every row: a library set other than the profile's is refused unless the
// user goes on anyway, and then keys name the environment that ran
// (Report.Ran, plan.Options.RanIn); too few GPUs, or none, is always
// refused, since nothing could launch.
//
// CreateVenv makes the profile's environment on this machine from the
// lock (ftc env create): a virtual environment holding exactly the locked
// closure, installed with pip --require-hashes --no-deps, in a cache
// directory named by VenvKey (closure and Python release) that ftc run
// finds by itself.
//
// Container, Slurm and Kubernetes backends run stages in the image, which
// holds the profile's environment: nothing here applies to them.
//
// Prepare is the check ftc run makes before any stage starts on the local
// backend, and ftc env check alone; CreateLocked is ftc env create.
package envcheck
