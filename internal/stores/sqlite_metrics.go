package stores

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session/sqlitestore"
)

// sqliteMetrics exports s's waits for the file's single writer on reg (nil:
// none) and returns what unregisters them, for the backend's close.
func sqliteMetrics(reg prometheus.Registerer, s *sqlitestore.Store) (unregister func(), err error) {
	if reg == nil {
		return func() {}, nil
	}
	counter := func(name, help string, v func(sqlitestore.LockWaits) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "statelab", Subsystem: "sqlitestore", Name: name, Help: help},
			func() float64 { return v(s.LockWaits()) })
	}
	cs := []prometheus.Collector{
		counter("busy_retries_total", "Writes the file's write lock refused (SQLITE_BUSY: another process held it), each tried again after a wait.",
			func(w sqlitestore.LockWaits) float64 { return float64(w.BusyRetries) }),
		counter("busy_wait_seconds_total", "Time writes spent waiting to try again after the file's write lock refused them, summed over writes.",
			func(w sqlitestore.LockWaits) float64 { return w.BusyWait.Seconds() }),
		counter("writer_queued_total", "Writes that waited for this process's one writer connection.",
			func(w sqlitestore.LockWaits) float64 { return float64(w.Queued) }),
		counter("writer_queue_seconds_total", "Time writes waited for this process's one writer connection, summed over writes.",
			func(w sqlitestore.LockWaits) float64 { return w.QueueWait.Seconds() }),
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("stores: sqlite store metrics: %w", err)
		}
	}
	return func() {
		for _, c := range cs {
			reg.Unregister(c)
		}
	}, nil
}
