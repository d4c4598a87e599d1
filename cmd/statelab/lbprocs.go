package main

import "runtime"

// lbProcs gives statelab lb one Go scheduler slot (GOMAXPROCS) more than
// the runtime's default, the CPUs the process may use, unless the
// GOMAXPROCS environment variable (env, its value) sets the number; it
// returns the number in force.
//
// A proxy spends most of its time in short read and write system calls.
// When every slot is busy, the runtime's monitor thread takes the slot of a
// thread that has been in a system call for 20 µs or more (on a loaded
// machine a loopback write often takes that long: the writer is preempted
// by the reader it woke), hands it to another thread, and then wakes every
// 20 µs again: thread wake-ups and monitor time that cost the balancer about
// a tenth of its CPU per request (docs/benchmarks.md). With one spare slot
// there usually is an idle one, and the monitor leaves the others alone.
func lbProcs(env string) int {
	if env != "" {
		return runtime.GOMAXPROCS(0)
	}
	runtime.SetDefaultGOMAXPROCS()
	n := runtime.GOMAXPROCS(0) + 1
	runtime.GOMAXPROCS(n)
	return n
}
