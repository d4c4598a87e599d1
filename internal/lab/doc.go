// Package lab measures the statelab strategies: it starts a real cluster
// (package cluster), drives virtual shoppers through its balancer at an
// open-loop arrival rate, injects the faults of a scenario, records every
// operation in a history, checks that history (lost items, stale reads, lost
// updates, per-cart linearizability with porcupine), and reports the results
// as results.json, a terminal table and a self-contained report.html whose
// claims section judges each statement of the seed lesson on the numbers.
//
// The lab talks to the cluster only over HTTP and through process signals,
// as a user would. It owns the workload, the history, the checkers and the
// report; it does not own process management (package cluster) nor the
// command line (cmd/statelab).
package lab
