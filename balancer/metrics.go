package balancer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exposes the balancer's counters to Prometheus. The hot path only
// touches atomics in Backend; this collector reads them at scrape time, so
// a removed backend's series disappear with it.
type metrics struct {
	lb       *Balancer
	registry *prometheus.Registry

	requests, errors, inflight, healthy, draining, ejections, retries, noBackend, refused, budgetOut, queued, queueTimeouts, ejectSkipped *prometheus.Desc
}

var statusClasses = [6]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newMetrics(lb *Balancer, reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		lb:            lb,
		registry:      reg,
		requests:      prometheus.NewDesc("statelab_lb_requests_total", "Attempts sent to a backend, by response class (error: no response).", []string{"backend", "code"}, nil),
		errors:        prometheus.NewDesc("statelab_lb_errors_total", "Failed attempts without a response, by kind (dial, timeout, upstream).", []string{"backend", "kind"}, nil),
		inflight:      prometheus.NewDesc("statelab_lb_inflight", "Requests in flight to a backend.", []string{"backend"}, nil),
		healthy:       prometheus.NewDesc("statelab_lb_backend_healthy", "1 if the backend takes new requests (active checks pass, not ejected).", []string{"backend"}, nil),
		draining:      prometheus.NewDesc("statelab_lb_backend_draining", "1 if the backend is draining.", []string{"backend"}, nil),
		ejections:     prometheus.NewDesc("statelab_lb_ejections_total", "Passive ejections of a backend.", []string{"backend"}, nil),
		retries:       prometheus.NewDesc("statelab_lb_retries_total", "Attempts beyond the first of a request.", nil, nil),
		budgetOut:     prometheus.NewDesc("statelab_lb_retry_budget_exhausted_total", "Retries not made because the retry budget was spent.", nil, nil),
		queued:        prometheus.NewDesc("statelab_lb_queued", "Requests waiting for a backend below its connection limit.", nil, nil),
		queueTimeouts: prometheus.NewDesc("statelab_lb_queue_timeouts_total", "Requests answered 503 after waiting the whole queue timeout.", nil, nil),
		ejectSkipped:  prometheus.NewDesc("statelab_lb_ejections_skipped_total", "Ejections not made because the share of ejected backends was at its cap.", nil, nil),
		noBackend:     prometheus.NewDesc("statelab_lb_no_backend_total", "Requests answered 503 because no backend could take them.", nil, nil),
		refused:       prometheus.NewDesc("statelab_lb_refused_total", "Requests refused as the client's error before reaching a backend (bad version, header, target, missing Host).", nil, nil),
	}
	// Registering a fresh collector on a fresh or caller-owned registry can
	// only fail on a name clash, which is the caller's configuration error;
	// report it through the logger rather than panicking.
	if err := reg.Register(m); err != nil {
		lb.log.Error("balancer: registering metrics", "err", err)
	}
	return m
}

// Describe implements prometheus.Collector. The collector is unchecked: its
// per-backend histograms come and go with the backends.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, b := range m.lb.allBackends() {
		for i, class := range statusClasses {
			ch <- prometheus.MustNewConstMetric(m.requests, prometheus.CounterValue, float64(b.statusClass[i].Load()), b.id, class)
		}
		ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(b.errDial.Load()), b.id, "dial")
		ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(b.errTimeout.Load()), b.id, "timeout")
		ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(b.errUpstream.Load()), b.id, "upstream")
		ch <- prometheus.MustNewConstMetric(m.inflight, prometheus.GaugeValue, float64(b.inflight.Load()), b.id)
		st := b.Status()
		ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, boolFloat(st.Healthy), b.id)
		ch <- prometheus.MustNewConstMetric(m.draining, prometheus.GaugeValue, boolFloat(st.Draining), b.id)
		ch <- prometheus.MustNewConstMetric(m.ejections, prometheus.CounterValue, float64(b.ejections.Load()), b.id)
		b.latency.Collect(ch)
	}
	ch <- prometheus.MustNewConstMetric(m.retries, prometheus.CounterValue, float64(m.lb.retries.Load()))
	ch <- prometheus.MustNewConstMetric(m.budgetOut, prometheus.CounterValue, float64(m.lb.budgetOut.Load()))
	ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(m.lb.queued.Load()))
	ch <- prometheus.MustNewConstMetric(m.queueTimeouts, prometheus.CounterValue, float64(m.lb.queueTimeouts.Load()))
	ch <- prometheus.MustNewConstMetric(m.ejectSkipped, prometheus.CounterValue, float64(m.lb.ejectSkipped.Load()))
	ch <- prometheus.MustNewConstMetric(m.noBackend, prometheus.CounterValue, float64(m.lb.noBackend.Load()))
	ch <- prometheus.MustNewConstMetric(m.refused, prometheus.CounterValue, float64(m.lb.refused.Load()))
}

func boolFloat(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
