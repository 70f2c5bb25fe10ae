// Package cputime reads the CPU time a process or a thread has used, for
// benchmarks that report it beside wall time: on a shared machine wall time
// also counts the time spent waiting for a core, CPU time does not.
package cputime
