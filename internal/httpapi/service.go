package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// ID names this replica in X-Served-By and the health answers; required.
	ID string
	// Name is the service's name in its metric names
	// (statelab_<Name>_requests_total, …); required, e.g. "pricing".
	Name string
	// Limiter is the capacity model applied to the API routes (not to
	// /healthz, /readyz and /metrics); nil means unlimited.
	Limiter *Limiter
	// Registry is where the Service registers its metrics and what /metrics
	// serves; nil means a fresh registry.
	Registry *prometheus.Registry
	// Ready reports whether the replica can serve (for a database-backed
	// service: its database answers); nil means always ready. /readyz calls
	// it with a 2-second deadline.
	Ready func(ctx context.Context) error
}

// Service is the HTTP skeleton of a stateless service: API routes behind
// the capacity model with per-route metrics, X-Served-By on every
// response, /healthz, /readyz (503 once draining or when Ready fails),
// /metrics and a JSON 404. A Service is safe for concurrent use once its
// routes are registered.
type Service struct {
	id       string
	limiter  *Limiter
	registry *prometheus.Registry
	ready    func(ctx context.Context) error
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inflight atomic.Int64
	draining atomic.Bool
}

// NewService returns a Service with its operational endpoints registered.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.ID == "" || cfg.Name == "" {
		return nil, errors.New("httpapi: ServiceConfig.ID and Name are required")
	}
	s := &Service{id: cfg.ID, limiter: cfg.Limiter, registry: cfg.Registry, ready: cfg.Ready, mux: http.NewServeMux()}
	if s.limiter == nil {
		s.limiter = NewLimiter(0, 0, 0)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if err := s.registerMetrics(cfg.Name); err != nil {
		return nil, err
	}
	ops := func(route string, h http.HandlerFunc) http.Handler {
		return s.instrument(route, false, ByMethod(map[string]http.HandlerFunc{http.MethodGet: h}))
	}
	s.mux.Handle("/healthz", ops("healthz", s.handleHealthz))
	s.mux.Handle("/readyz", ops("readyz", s.handleReadyz))
	s.mux.Handle("/metrics", ops("metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP))
	s.mux.Handle("/", s.instrument("not_found", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, &Error{http.StatusNotFound, "not_found", "no such route: " + r.URL.Path})
	})))
	return s, nil
}

func (s *Service) registerMetrics(name string) error {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statelab_" + name + "_requests_total",
		Help: "HTTP requests answered, by route and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "statelab_" + name + "_request_duration_seconds",
		Help:    "Time from receiving a request to finishing its answer, queueing and --work included, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	cs := []prometheus.Collector{
		s.requests, s.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_" + name + "_inflight_requests",
			Help: "API requests being served now, queued ones included.",
		}, func() float64 { return float64(s.inflight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "statelab_" + name + "_queued_requests",
			Help: "Requests waiting for a capacity slot (--max-inflight) now.",
		}, func() float64 { return float64(s.limiter.Queued()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "statelab_" + name + "_rejected_requests_total",
			Help: "Requests refused with 503 because every capacity slot and queue place was taken.",
		}, func() float64 { return float64(s.limiter.Rejected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "statelab_" + name + "_info",
			Help:        "Always 1; its label names the replica.",
			ConstLabels: prometheus.Labels{"id": s.id},
		}, func() float64 { return 1 }),
	}
	for _, c := range cs {
		if err := s.registry.Register(c); err != nil {
			return fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return nil
}

// ID returns the replica's ID.
func (s *Service) ID() string { return s.id }

// Handle registers an API route: pattern (a http.ServeMux pattern without a
// method) served by methods, behind the capacity model, counted in the
// metrics under route.
func (s *Service) Handle(pattern, route string, methods map[string]http.HandlerFunc) {
	s.mux.Handle(pattern, s.instrument(route, true, s.limiter.Wrap(ByMethod(methods))))
}

// ServeHTTP serves the service, setting X-Served-By on every response.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", s.id)
	s.mux.ServeHTTP(w, r)
}

// Drain makes /readyz answer 503 from now on, so that a balancer stops
// sending new requests before the process shuts down. Requests still
// arriving are served normally.
func (s *Service) Drain() { s.draining.Store(true) }

// Inflight returns the number of API requests being served now.
func (s *Service) Inflight() int { return int(s.inflight.Load()) }

func (s *Service) instrument(route string, api bool, next http.Handler) http.Handler {
	var inflight *atomic.Int64
	if api {
		inflight = &s.inflight
	}
	return Instrument(route, s.requests, s.latency, inflight, next)
}

// Instrument wraps next, the handler of route, so that its requests are
// counted in requests (labels route and status code) and timed in latency
// (label route); when inflight is not nil, it also holds each request in
// *inflight while it is served.
func Instrument(route string, requests *prometheus.CounterVec, latency *prometheus.HistogramVec, inflight *atomic.Int64, next http.Handler) http.Handler {
	observe := latency.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if inflight != nil {
			inflight.Add(1)
			defer inflight.Add(-1)
		}
		sw := NewStatusWriter(w)
		next.ServeHTTP(sw, r)
		observe.Observe(time.Since(start).Seconds())
		requests.WithLabelValues(route, strconv.Itoa(sw.Status())).Inc()
	})
}

func (s *Service) handleHealthz(w http.ResponseWriter, r *http.Request) {
	SetInstance(w.Header())
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": s.id})
}

func (s *Service) handleReadyz(w http.ResponseWriter, r *http.Request) {
	SetInstance(w.Header())
	if s.draining.Load() {
		WriteError(w, &Error{http.StatusServiceUnavailable, "draining", "the replica is shutting down"})
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			WriteError(w, &Error{http.StatusServiceUnavailable, "not_ready", err.Error()})
			return
		}
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready", "id": s.id})
}

// StatusWriter is a ResponseWriter that remembers the status code written
// through it.
type StatusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

// NewStatusWriter wraps w; the status is 200 until one is written.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w, status: http.StatusOK}
}

// Status returns the status code written, or 200.
func (w *StatusWriter) Status() int { return w.status }

// WriteHeader implements http.ResponseWriter.
func (w *StatusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *StatusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
