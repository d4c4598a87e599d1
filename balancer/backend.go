package balancer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// BackendConfig describes one backend.
type BackendConfig struct {
	// ID names the backend in the admin API, metrics and logs, and is what
	// the sticky cookie identifies (through an HMAC). Empty means the URL's
	// host:port. At most 64 bytes of [A-Za-z0-9._:-] (and [] for IPv6).
	ID string `json:"id,omitempty"`

	// URL is the backend's base URL, "http://host:port" or
	// "https://host:port". Any path is ignored: requests keep theirs.
	URL string `json:"url"`

	// Weight is the backend's share relative to the others (round robin,
	// least request, hash). Zero means 1.
	Weight int `json:"weight,omitempty"`

	// Pool names the pool the backend joins (AddBackend and the admin
	// API); empty means the default pool.
	Pool string `json:"pool,omitempty"`
}

// BackendStatus is a snapshot of one backend, as GET /admin/backends shows it.
type BackendStatus struct {
	// ID is the backend's ID.
	ID string `json:"id"`
	// Pool is the pool it belongs to.
	Pool string `json:"pool"`
	// URL is the backend's base URL.
	URL string `json:"url"`
	// Healthy is true when the backend takes new requests: it passes its
	// active checks and is not passively ejected.
	Healthy bool `json:"healthy"`
	// Draining is true once removal has begun: no new clients are sent to it.
	Draining bool `json:"draining"`
	// Inflight is the number of requests it is serving now.
	Inflight int64 `json:"inflight"`
	// Requests is the number of attempts sent to it since it was added.
	Requests uint64 `json:"requests"`
	// Weight is its weight.
	Weight int `json:"weight"`
	// EffectiveWeight is the weight selection uses now: Weight, or less
	// while the backend is in its slow start (Config.SlowStart).
	EffectiveWeight float64 `json:"effective_weight"`
	// Restarts counts the restarts the balancer noticed while the backend
	// stayed up: a new InstanceHeader value, or an answer after a refused
	// connection. Each begins a slow start.
	Restarts uint64 `json:"restarts"`
}

// Backend is a backend's runtime state: its configuration, its connection
// pool and atomic counters. A Backend must not be copied.
type Backend struct {
	id, url string
	pool    string // the pool's name
	weight  int
	client  *fasthttp.HostClient // proxied requests
	health  *fasthttp.HostClient // active health checks
	isTLS   bool
	scheme  string // "http" or "https", set on each forwarded request
	addr    string // host:port for dialing

	// stickyValue is the HMAC cookie value naming this backend.
	stickyValue string

	inflight     atomic.Int64
	engineConns  atomic.Int64 // connections the epoll engine's loops hold open to it (at most Config.MaxConnsPerBackend)
	maxConn      int64        // Config.BackendMaxConn (0: no limit)
	slowStart    int64        // Config.SlowStart in nanoseconds (0: off)
	upSince      atomic.Int64 // unix nanos it was added at run time, came back up or restarted (0: from the start)
	sawRefused   atomic.Bool  // a connection was refused since its last answer (restart.go)
	restarts     atomic.Uint64
	requests     atomic.Uint64
	statusClass  [6]atomic.Uint64 // 0: errors without a response, 1..5: 1xx..5xx
	healthy      atomic.Bool      // active checks
	ejectedUntil atomic.Int64     // unix nanos; passive ejection
	consecFails  atomic.Int64
	ejectLevel   atomic.Int64 // ejections since the last success
	ejections    atomic.Uint64
	draining     atomic.Bool
	lastUse      atomic.Int64 // unix nanos, maintained while draining
	errDial      atomic.Uint64
	errUpstream  atomic.Uint64
	errTimeout   atomic.Uint64

	latency prometheus.Histogram

	// rrCurrent is the smooth round-robin current weight, guarded by the
	// RoundRobinSelection's mutex.
	rrCurrent int64

	stopOnce sync.Once
	stopc    chan struct{}
}

// ID returns the backend's ID.
func (b *Backend) ID() string { return b.id }

// URL returns the backend's base URL.
func (b *Backend) URL() string { return b.url }

// Weight returns the backend's weight (at least 1).
func (b *Backend) Weight() int { return b.weight }

// Inflight returns the number of requests the backend is serving now.
func (b *Backend) Inflight() int64 { return b.inflight.Load() }

// slowStartFloor is the share of its weight a backend gets at the start of
// its slow start, in thousandths (Envoy's min_weight_percent is 10%).
const slowStartFloor = 100

// effectiveMilli returns b's weight at now in thousandths: its weight, or
// during its slow start a share growing linearly from 10% to 100%. The
// slow start begins when b was added at run time, came back up after
// failing active checks, restarted (restart.go), or its passive ejection
// ended, whichever is last.
func (b *Backend) effectiveMilli(now int64) int64 {
	full := int64(b.weight) * 1000
	if b.slowStart <= 0 {
		return full
	}
	since := max(b.upSince.Load(), b.ejectedUntil.Load())
	elapsed := now - since
	if since == 0 || elapsed >= b.slowStart {
		return full
	}
	share := max(slowStartFloor, min(1000, max(elapsed, 0)*1000/b.slowStart))
	return full * share / 1000
}

// EffectiveWeight returns the weight selection gives b at now (unix
// nanoseconds): Weight, or less during its slow start (Config.SlowStart).
func (b *Backend) EffectiveWeight(now int64) float64 {
	return float64(b.effectiveMilli(now)) / 1000
}

// Draining reports whether the backend is being drained.
func (b *Backend) Draining() bool { return b.draining.Load() }

// Available reports whether the backend takes new requests at now (unix
// nanoseconds): it passes its active checks and is not ejected.
func (b *Backend) Available(now int64) bool {
	return b.healthy.Load() && now >= b.ejectedUntil.Load()
}

// Status returns a snapshot of the backend.
func (b *Backend) Status() BackendStatus {
	now := time.Now().UnixNano()
	return BackendStatus{
		ID: b.id, Pool: b.pool, URL: b.url, Weight: b.weight,
		EffectiveWeight: float64(b.effectiveMilli(now)) / 1000,
		Healthy:         b.Available(time.Now().UnixNano()),
		Draining:        b.draining.Load(),
		Inflight:        b.inflight.Load(),
		Requests:        b.requests.Load(),
		Restarts:        b.restarts.Load(),
	}
}

func (b *Backend) stop() { b.stopOnce.Do(func() { close(b.stopc) }) }

// recordSuccess notes an attempt that got a response that does not count
// as a failure.
func (b *Backend) recordSuccess(now int64) {
	// Load before storing: most requests succeed, and a store on every one
	// would bounce the cache line between cores.
	if b.consecFails.Load() != 0 {
		b.consecFails.Store(0)
	}
}

// ejectLevelAt returns the ejection level b would have at now: its level
// at its last ejection, lowered by one for every maxD that passed since
// that ejection ended. A repeat offender keeps a high level (and long
// ejections); a backend that behaved for a while is forgiven step by step.
func (b *Backend) ejectLevelAt(now int64, maxD time.Duration) int64 {
	level := b.ejectLevel.Load()
	if until := b.ejectedUntil.Load(); level > 0 && now > until && maxD > 0 {
		level -= (now - until) / int64(maxD)
	}
	return max(level, 0)
}

// recordFailure notes a failed attempt and, after cfg.EjectAfter
// consecutive failures, asks allow (the cap on the share of a pool
// ejected) whether b may be ejected; if so it ejects b for EjectBase ×
// 2^(level-1) capped at EjectMax, the level being one more than
// ejectLevelAt. It returns the ejection's duration and whether b was
// ejected now.
func (b *Backend) recordFailure(now int64, cfg *Config, allow func() bool) (time.Duration, bool) {
	n := b.consecFails.Add(1)
	if cfg.EjectAfter < 0 || n < int64(cfg.EjectAfter) || now < b.ejectedUntil.Load() {
		return 0, false
	}
	if allow != nil && !allow() {
		return 0, false
	}
	b.consecFails.Store(0)
	level := b.ejectLevelAt(now, cfg.EjectMax) + 1
	b.ejectLevel.Store(level)
	d := cfg.EjectBase
	for i := int64(1); i < level && d < cfg.EjectMax; i++ {
		d *= 2
	}
	d = min(d, cfg.EjectMax)
	b.ejectedUntil.Store(now + int64(d))
	b.ejections.Add(1)
	return d, true
}

// newBackend validates bc and builds its runtime state.
func (lb *Balancer) newBackend(bc BackendConfig) (*Backend, error) {
	u, err := url.Parse(bc.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: url %q: %v", ErrInvalidBackend, bc.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("%w: url %q: want http://host:port or https://host:port", ErrInvalidBackend, bc.URL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: url %q: port %s out of 1..65535", ErrInvalidBackend, bc.URL, p)
		}
	}
	if strings.Contains(u.Hostname(), ":") && !strings.HasPrefix(u.Host, "[") {
		return nil, fmt.Errorf("%w: url %q: an IPv6 address goes in brackets, http://[::1]:8080", ErrInvalidBackend, bc.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	if bc.Weight < 0 || bc.Weight > 1000 {
		return nil, fmt.Errorf("%w: weight %d out of 0..1000", ErrInvalidBackend, bc.Weight)
	}
	if bc.ID == "" {
		bc.ID = u.Host
	}
	if !validID(bc.ID) {
		return nil, fmt.Errorf("%w: id %q: want 1-64 bytes of [A-Za-z0-9._:-]", ErrInvalidBackend, bc.ID)
	}
	w := max(bc.Weight, 1)
	b := &Backend{
		id: bc.ID, url: u.Scheme + "://" + u.Host, weight: w, addr: addr,
		isTLS: u.Scheme == "https", scheme: u.Scheme, maxConn: int64(lb.cfg.BackendMaxConn),
		slowStart: int64(lb.cfg.SlowStart),
		stopc:     make(chan struct{}),
	}
	b.healthy.Store(true)
	mac := hmac.New(sha256.New, lb.secret)
	mac.Write([]byte("statelab-sticky\x00" + b.id))
	b.stickyValue = base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
	b.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "statelab_lb_request_duration_seconds",
		Help:        "Time from picking a backend to its response header, per backend.",
		ConstLabels: prometheus.Labels{"backend": b.id},
		Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	b.client = lb.newHostClient(b, proxyTransport{})
	b.health = lb.newHostClient(b, nil)
	return b, nil
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-' || r == '[' || r == ']')
	}) < 0
}
