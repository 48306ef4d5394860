// Package sysproc holds the process attributes ftc gives the processes it
// starts, where they differ between operating systems: on Linux a child
// is also told to die with ftc (Pdeathsig), which other systems lack, so
// there a killed ftc leaves its process group to the caller.
package sysproc
