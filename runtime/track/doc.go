// Package track sends a run's metrics to experiment trackers as the run
// makes them, beside ftc's own records: TensorBoard event files
// (TensorBoard), an MLflow tracking server through its REST API (MLflow),
// and Weights & Biases through W&B's own library, in a process beside ftc
// run (WandB). A tracker sees the metric events the runtime records
// (exec.EventMetric), never a key or a stage input, so turning tracking on
// or off reruns nothing; a stage found in the cache sends the metrics its
// entry holds, once per stage and key.
//
// The event files and requests are made here (and W&B's files by a
// process started here), not by the training process: no tracking
// library enters the stage image or its environment, and every backend
// (local, container, Slurm, Kubernetes) is tracked the same way, from the
// metrics the runtime already follows.
package track
