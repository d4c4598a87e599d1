package session

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what a Manager does. The counters always exist; they are
// exported only when Config.Registerer is set.
type metrics struct {
	updates   prometheus.Counter // successful Updates
	conflicts prometheus.Counter // compare-and-swap conflicts that caused a retry
	created   prometheus.Counter // sessions created
	invalid   prometheus.Counter // cookies that were malformed, forged or garbled
}

// newMetrics builds the Manager's counters and registers them on reg when it
// is not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_session_updates_total",
			Help: "Session updates that were stored.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_session_update_conflicts_total",
			Help: "Compare-and-swap conflicts met by session updates (each caused a retry or, past MaxAttempts, an error).",
		}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_session_created_total",
			Help: "Sessions created.",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_session_invalid_cookies_total",
			Help: "Session cookies ignored because they were malformed, forged or garbled.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.updates, m.conflicts, m.created, m.invalid} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("session: register metrics: %w", err)
		}
	}
	return m, nil
}
