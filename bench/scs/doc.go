// Package scsbench compares statelab's session middleware with
// alexedwards/scs v2, both keeping sessions in the same Redis: throughput of
// uncontended updates, and how many updates each loses when many requests of
// one session change it at once. It holds only tests and benchmarks; see
// docs/bench-session.md for the commands and the numbers.
package scsbench
