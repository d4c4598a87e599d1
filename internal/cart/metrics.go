package cart

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session"
)

// metrics are a Server's Prometheus collectors (statelab_app_*).
type metrics struct {
	requests    *prometheus.CounterVec   // by route and status code
	latency     *prometheus.HistogramVec // by route
	storeErrors *prometheus.CounterVec   // by operation
	depErrors   *prometheus.CounterVec   // by operation
	replays     prometheus.Counter       // checkouts the Ledger refused
}

// newMetrics registers s's collectors on reg.
func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_app_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "statelab_app_request_duration_seconds",
			Help:    "Time from receiving a request to finishing its answer, queueing and --work included, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_app_store_errors_total",
			Help: "Session store operations that failed because the store was unavailable, by operation.",
		}, []string{"op"}),
		depErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_app_dependency_errors_total",
			Help: "Requests answered 503 because the catalog or pricing service was unavailable, by operation.",
		}, []string{"op"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_app_replayed_checkouts_total",
			Help: "Checkouts refused (409 already_checked_out) because the checkout ledger had already seen the cart: an old copy of a client-held cart sent again.",
		}),
	}
	cs := []prometheus.Collector{
		m.requests, m.latency, m.storeErrors, m.depErrors, m.replays,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_app_inflight_requests",
			Help: "Shop requests (API and page) being served now, queued ones included.",
		}, func() float64 { return float64(s.inflight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_app_queued_requests",
			Help: "Requests waiting for a capacity slot (--max-inflight) now.",
		}, func() float64 { return float64(s.limiter.Queued()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_app_rejected_requests_total",
			Help: "Requests refused with 503 because every capacity slot and queue place was taken.",
		}, func() float64 { return float64(s.limiter.Rejected()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_app_capacity_busy_seconds_total",
			Help: "Time requests held a capacity slot (--work and the handler), summed over requests.",
		}, func() float64 { return s.limiter.BusySeconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_app_capacity_held_total",
			Help: "Requests that held a capacity slot and finished.",
		}, func() float64 { return float64(s.limiter.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_app_capacity_slots",
			Help: "Capacity slots (--max-inflight); 0 when unlimited.",
		}, func() float64 { return float64(s.limiter.Slots()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "statelab_app_info",
			Help:        "Always 1; its labels name the replica and its store.",
			ConstLabels: prometheus.Labels{"id": s.id, "store": s.storeName},
		}, func() float64 { return 1 }),
	}
	if counter, ok := s.store.(session.Counter); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_app_sessions",
			Help: "Live sessions the replica's store holds (for a replicated store: copies held by this replica); -1 when the store cannot be counted now.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := counter.Count(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cart: register metrics: %w", err)
		}
	}
	return m, nil
}
