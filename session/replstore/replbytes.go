package replstore

import "github.com/prometheus/client_golang/prometheus"

// newReplicatedBytes is the counter of bytes a primary sent its backups:
// the replication traffic, which the lab's scaling sweep reads per second
// next to the copies per second.
func newReplicatedBytes(labels prometheus.Labels) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Namespace:   "statelab",
		Subsystem:   "replstore",
		Name:        "replicated_bytes_total",
		Help:        "Bytes of writes this replica sent to its backups: each replication request as encoded, without the RPC frame's header and MAC; a request sent again counts again.",
		ConstLabels: labels,
	})
}

// countReplicated adds one replication request of n bytes to the counter.
func (s *Store) countReplicated(n int) { s.metrics.replicatedBytes.Add(float64(n)) }
