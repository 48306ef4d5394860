// Package backend starts a stage's processes somewhere: on this machine
// (local), in a container (docker or podman), and — with the launch-plan
// work — on Slurm and Kubernetes. The interface is one method, so a
// backend is easy to add and to fake.
package backend
