package main

import "runtime"

// lbProcs gives statelab lb twice the runtime's default number of Go
// scheduler slots (GOMAXPROCS), the CPUs the process may use, unless the
// GOMAXPROCS environment variable (env, its value) sets the number; it
// returns the number in force.
//
// A proxy spends most of its time in short read and write system calls.
// When every slot is busy, the runtime's monitor thread takes the slot of a
// thread that has been in a system call for 20 µs or more (on a loaded
// machine a loopback write often takes that long: the writer is preempted
// by the reader it woke), hands it to another thread, and then wakes every
// 20 µs again: thread wake-ups and monitor time that cost the balancer about
// a tenth of its CPU per request. With spare slots there usually is an idle
// one, and the monitor leaves the others alone. On 2 CPUs, 4 slots cost
// 7% less CPU per request than 3 and 3 about 9% less than 2; 6 were no
// better than 4 (docs/benchmarks.md).
func lbProcs(env string) int {
	if env != "" {
		return runtime.GOMAXPROCS(0)
	}
	runtime.SetDefaultGOMAXPROCS()
	n := 2 * runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(n)
	return n
}
