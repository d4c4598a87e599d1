package replstore

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors. A Store built without a
// Registerer still updates them; they are just not exported.
type metrics struct {
	replication  prometheus.Histogram
	rereplicated prometheus.Counter
	forwarded    *prometheus.CounterVec
	members      prometheus.GaugeFunc
	refused      prometheus.Counter
	refusedReads prometheus.Counter
	// replicatedBytes: see newReplicatedBytes.
	replicatedBytes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, node string, members func() float64) (*metrics, error) {
	labels := prometheus.Labels{"node": node}
	m := &metrics{
		replication: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace:   "statelab",
			Subsystem:   "replstore",
			Name:        "replication_seconds",
			Help:        "Time a primary spent copying one write to its backups (synchronous mode).",
			Buckets:     prometheus.ExponentialBuckets(0.0001, 2, 16),
			ConstLabels: labels,
		}),
		rereplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace:   "statelab",
			Subsystem:   "replstore",
			Name:        "rereplicated_records_total",
			Help:        "Records pushed to new owners after a membership change, a handover or a tidy pass.",
			ConstLabels: labels,
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace:   "statelab",
			Subsystem:   "replstore",
			Name:        "forwarded_requests_total",
			Help:        "Requests this replica sent to another member because it does not own the key, by operation.",
			ConstLabels: labels,
		}, []string{"op"}),
		members: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   "statelab",
			Subsystem:   "replstore",
			Name:        "members",
			Help:        "Live cluster members as this replica sees them, itself included.",
			ConstLabels: labels,
		}, members),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace:   "statelab",
			Subsystem:   "replstore",
			Name:        "quorum_refused_writes_total",
			Help:        "Writes this replica refused because it did not see a quorum of the cluster's members.",
			ConstLabels: labels,
		}),
		refusedReads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace:   "statelab",
			Subsystem:   "replstore",
			Name:        "quorum_refused_reads_total",
			Help:        "Reads this replica refused because it saw no more than half of the cluster's members (its copies may be stale).",
			ConstLabels: labels,
		}),
	}
	m.replicatedBytes = newReplicatedBytes(labels)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.replication, m.rereplicated, m.forwarded, m.members, m.refused, m.refusedReads, m.replicatedBytes} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("replstore: metrics for node %q already registered: %w", node, err)
			}
			return nil, fmt.Errorf("replstore: register metrics: %w", err)
		}
	}
	return m, nil
}
