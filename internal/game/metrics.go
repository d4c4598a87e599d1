package game

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session"
)

// metrics are a Server's Prometheus collectors (statelab_game_*).
type metrics struct {
	requests    *prometheus.CounterVec // by route and status code
	inputs      *prometheus.CounterVec // by result
	tickLag     prometheus.Histogram
	ticks       prometheus.Counter
	storeOps    *prometheus.CounterVec // by op and result
	activations *prometheus.CounterVec // by how the room started
	stops       *prometheus.CounterVec // by reason
	forwarded   prometheus.Counter

	replication     *prometheus.CounterVec // messages to backups, by result
	replicatedBytes prometheus.Counter
}

// newMetrics registers the collectors on reg; rooms reports the active
// room count.
func newMetrics(reg prometheus.Registerer, id, strategy string, rooms func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_game_requests_total", Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_game_inputs_total", Help: "Player inputs handled by this replica, by result (applied, duplicate, refused, unavailable).",
		}, []string{"result"}),
		tickLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "statelab_game_tick_lag_seconds",
			Help:    "How late a room's tick ran after it was due.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		ticks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_game_ticks_total", Help: "Room ticks run by this replica.",
		}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_game_store_ops_total", Help: "Store operations, by operation (get, put) and result (ok, conflict, not_found, unavailable, error).",
		}, []string{"op", "result"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_game_activations_total", Help: "Rooms this replica became owner of, by origin (new, resumed).",
		}, []string{"origin"}),
		stops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_game_room_stops_total", Help: "Rooms this replica stopped owning, by reason (moved, fenced, idle, shutdown).",
		}, []string{"reason"}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_game_forwarded_total", Help: "Requests forwarded to the room's owner.",
		}),
		replication: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statelab_game_replication_messages_total", Help: "Ticks and full states sent to backups (replicated strategy), by result (ok, need_full, error).",
		}, []string{"result"}),
		replicatedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "statelab_game_replicated_bytes_total", Help: "Bytes of replication messages backups accepted.",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.inputs, m.tickLag, m.ticks, m.storeOps, m.activations, m.stops, m.forwarded,
		m.replication, m.replicatedBytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "statelab_game_rooms", Help: "Rooms this replica owns now."}, rooms),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_game_info", Help: "Always 1; its labels name the replica and its strategy.",
			ConstLabels: prometheus.Labels{"id": id, "strategy": strategy},
		}, func() float64 { return 1 }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("game: register metrics: %w", err)
		}
	}
	return m, nil
}

// storeOp counts one store operation by its outcome.
func (m *metrics) storeOp(op string, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, session.ErrConflict):
		result = "conflict"
	case errors.Is(err, session.ErrNotFound):
		result = "not_found"
	case errors.Is(err, session.ErrUnavailable):
		result = "unavailable"
	default:
		result = "error"
	}
	m.storeOps.WithLabelValues(op, result).Inc()
}
