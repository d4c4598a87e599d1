package balancer

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Errors returned by New, AddBackend and RemoveBackend. Callers branch on
// them with errors.Is; the package wraps them with context using %w.
var (
	// ErrUnknownPolicy is returned when Config.Policy names no policy.
	ErrUnknownPolicy = errors.New("balancer: unknown policy")

	// ErrInvalidBackend is returned when a BackendConfig has a missing or
	// malformed URL, an invalid ID or a negative weight.
	ErrInvalidBackend = errors.New("balancer: invalid backend")

	// ErrDuplicateBackend is returned when a backend's ID is already in use.
	ErrDuplicateBackend = errors.New("balancer: duplicate backend id")

	// ErrUnknownBackend is returned when no backend has the given ID.
	ErrUnknownBackend = errors.New("balancer: unknown backend")

	// ErrInvalidConfig is returned when a Config field other than the policy
	// and the backends is out of range (a negative duration or count, a
	// hash factor below 1, a panic threshold outside [0,1]).
	ErrInvalidConfig = errors.New("balancer: invalid config")

	// ErrTooManyBackends is returned by AddBackend when the balancer already
	// has Config.MaxBackends backends.
	ErrTooManyBackends = errors.New("balancer: too many backends")

	// ErrClosed is returned by Serve and AddBackend after Close.
	ErrClosed = errors.New("balancer: closed")
)

// The policy names accepted in Config.Policy.
const (
	// PolicyRoundRobin spreads requests in smooth weighted round robin.
	PolicyRoundRobin = "round_robin"
	// PolicyLeastRequest picks the less busy of two random backends.
	PolicyLeastRequest = "least_request"
	// PolicySticky pins each client to a backend with a signed cookie.
	PolicySticky = "sticky"
	// PolicyHash maps a session key to a backend by consistent hashing with
	// bounded loads.
	PolicyHash = "hash"
)

// Policies lists every policy name, in the order the CLI documents them.
var Policies = []string{PolicyRoundRobin, PolicyLeastRequest, PolicySticky, PolicyHash}

// Config configures a Balancer. The zero value of every field except
// Backends means "use the default" documented on the field; DefaultConfig
// returns a Config with every default filled in.
type Config struct {
	// Policy names the selection policy: "round_robin" (default),
	// "least_request", "sticky" or "hash".
	Policy string

	// Backends are the initial backends. It may be empty: backends can be
	// added later with AddBackend or the admin API.
	Backends []BackendConfig

	// Pools are named pools of backends besides the default one (Policy and
	// Backends above), each with its own policy; Routes send requests to
	// them by path prefix. Empty: one pool, every request goes to it.
	Pools []PoolConfig

	// Routes send requests to Pools by path prefix (the longest matching
	// prefix wins); unmatched requests go to the default pool.
	Routes []Route

	// StickyCookie is the name of the cookie the sticky policy sets.
	// Default "statelab_backend".
	StickyCookie string

	// HashCookie is the name of the session cookie whose value the hash
	// policy hashes; a request without it is hashed by client address.
	// Default "statelab_session".
	HashCookie string

	// HashKey, if set, replaces HashCookie: what the hash policy hashes,
	// as "cookie:NAME", "header:NAME" or "path:/PREFIX/" (the path
	// segment right after PREFIX, e.g. the room of /rooms/{room}/ws with
	// "path:/rooms/"). A request without the key is hashed by client
	// address. Empty means "cookie:" + HashCookie.
	HashKey string

	// HashFactor is the bounded-load factor of the hash policy: no backend
	// takes a new request while its in-flight count is at or above
	// ceil(HashFactor × mean in-flight). Default 1.25; must be ≥ 1.
	HashFactor float64

	// Secret keys the HMAC that turns a backend ID into its sticky cookie
	// value. Balancers that must honour each other's cookies need the same
	// Secret. Empty means a random secret (cookies do not survive a restart).
	Secret []byte

	// HealthPath is the path of the active health check (GET, 2xx or 3xx is
	// a pass). Empty disables active checks.
	HealthPath string

	// HealthInterval is the time between two active checks of a backend.
	// Default 2s.
	HealthInterval time.Duration

	// HealthTimeout bounds one active check. Default 1s (capped at
	// HealthInterval).
	HealthTimeout time.Duration

	// Rise is how many consecutive passing checks make a down backend
	// healthy. Default 2.
	Rise int

	// Fall is how many consecutive failing checks make a healthy backend
	// down. Default 3.
	Fall int

	// EjectAfter is how many consecutive failed attempts (connection errors,
	// timeouts or 5xx responses) eject a backend passively. Default 5;
	// negative disables passive ejection.
	EjectAfter int

	// EjectOn says which responses count as failed attempts for EjectAfter
	// (connection errors and timeouts always do): "5xx" (default) every
	// 5xx, "gateway" only 502, 503 and 504.
	EjectOn string

	// EjectLatency, when positive, makes a response whose header took
	// longer than this to arrive count as a failed attempt for EjectAfter
	// (the response is still passed on): consecutive slow answers eject
	// a backend like consecutive errors do. Default 0: latency is not
	// judged.
	EjectLatency time.Duration

	// MaxEjectedShare caps the share of a pool's (non-draining) backends
	// that may be ejected at once; one may always be. Default 0.5;
	// negative: no cap.
	MaxEjectedShare float64

	// EjectBase is the first ejection's duration; each further ejection
	// doubles it, one step less for every EjectMax the backend stayed in
	// since its last ejection ended. Default 1s.
	EjectBase time.Duration

	// EjectMax caps the ejection duration. Default 30s.
	EjectMax time.Duration

	// SlowStart, when positive, ramps up the weight of a backend that was
	// added at run time, came back up after failing active checks,
	// restarted between two checks (a new InstanceHeader value, or an
	// answer after a refused connection), or came back from a passive
	// ejection: its effective weight grows linearly from 10% to 100% of
	// its weight over SlowStart, so a restarted replica with cold caches
	// is not flattened. The round robin
	// and least request policies (and sticky's placement of new clients)
	// honour it; the hash policy does not (its ring would move keys).
	// Default 0: off.
	SlowStart time.Duration

	// PanicThreshold is the fraction of non-draining backends that must be
	// available (healthy and not ejected) for health to be honoured; below
	// it the balancer ignores health and spreads over every non-draining
	// backend, so that a total outage never ejects everything (Envoy's
	// panic mode). Default 0.5; negative disables panic mode.
	PanicThreshold float64

	// MaxTries is the try budget of one request: the first attempt plus its
	// retries. Default 3.
	MaxTries int

	// RetryBudget is the share of the requests in flight that may be
	// retrying at once (Envoy's retry budget): a retry beyond
	// max(RetryBudgetMin, RetryBudget × requests in flight) is not made, and
	// the request gets the answer it has. It keeps a sick pool from being
	// hit by a retry storm. Default 0.2; negative disables the budget
	// (MaxTries alone limits retries).
	RetryBudget float64

	// RetryBudgetMin is how many requests may be retrying at once whatever
	// RetryBudget says, so that retries work at low traffic. Default 3;
	// negative means none.
	RetryBudgetMin int

	// DialTimeout bounds connecting to a backend. Default 2s.
	DialTimeout time.Duration

	// ResponseTimeout bounds one upstream attempt from writing the request to
	// reading the last byte of the response. Default 60s; negative means
	// no limit (for long streams).
	ResponseTimeout time.Duration

	// ReadTimeout bounds reading a client's request (header and body).
	// Default 10s.
	ReadTimeout time.Duration

	// IdleTimeout is how long a client keep-alive connection may wait for
	// its next request. Default 60s.
	IdleTimeout time.Duration

	// MaxRequestBodySize is the largest request body accepted; larger ones
	// get 413 (announced ones before anything is sent, chunked ones when
	// they pass the limit). Default 10 MiB.
	MaxRequestBodySize int

	// MaxBufferedBody is the largest request body, announced by
	// Content-Length, that is read whole before a backend is chosen (so the
	// request can be retried elsewhere); larger and chunked bodies are
	// streamed to the backend. Default 64 KiB.
	MaxBufferedBody int

	// BufferedBodyBudget caps the bytes of all request bodies buffered at
	// once; beyond it bodies are streamed even when small. Default 32 MiB.
	BufferedBodyBudget int64

	// MaxHeaderBytes is the largest request line plus header block accepted
	// (431 beyond it), and the largest response header block read from a
	// backend. Default 16 KiB, which fits a 4 KiB sealed cookie with room
	// to spare.
	MaxHeaderBytes int

	// BackendTLS configures connections to https:// backends: RootCAs for
	// a private CA, InsecureSkipVerify to skip verification (testing
	// only). ServerName defaults to each backend's host. Nil means the
	// system roots.
	BackendTLS *tls.Config

	// TLS, when set, makes Serve terminate TLS: its listener is wrapped in
	// a TLS listener with this configuration (Certificates or
	// GetCertificate must be set; ALPN is limited to http/1.1 and the
	// floor raised to TLS 1.2). Requests that came over TLS reach backends
	// with X-Forwarded-Proto: https. Nil serves plain HTTP.
	TLS *tls.Config

	// DenyPaths are path prefixes never forwarded: a request whose
	// normalised path is one of them, or under one ("/metrics" also denies
	// "/metrics/x" but not "/metricsx"), gets 404 from the balancer. Use it
	// to keep backends' internal endpoints (metrics, status) off the public
	// port. Each must start with "/".
	DenyPaths []string

	// MaxBackends caps the number of backends (initial and added). Default
	// 256.
	MaxBackends int

	// AdminToken, when set, is the bearer token every AdminHandler request
	// must carry (Authorization: Bearer TOKEN). Without it the admin API
	// only answers requests whose Host is an IP literal or localhost (DNS
	// rebinding protection) and must be served on loopback.
	AdminToken string

	// BackendMaxConn, when positive, caps the proxied requests in flight
	// to one backend (HAProxy's maxconn; WebSocket tunnels and the rest of
	// a streamed response body are not counted). A request finding every
	// backend it could use at its limit waits in a queue for up to
	// QueueTimeout, then gets 503 with Retry-After. Default 0: no limit.
	BackendMaxConn int

	// QueueTimeout is the longest a request waits in the BackendMaxConn
	// queue. Default 5s.
	QueueTimeout time.Duration

	// MaxConnsPerBackend caps the pooled connections to one backend.
	// Default 1024.
	MaxConnsPerBackend int

	// DrainQuiet is how long a draining backend must have had no request
	// (and none in flight) before RemoveBackend removes it. Default 500ms.
	DrainQuiet time.Duration

	// DrainTimeout caps how long RemoveBackend waits for a draining backend.
	// Default 10s.
	DrainTimeout time.Duration

	// ShutdownTimeout caps how long Serve waits for in-flight requests after
	// its context is done. Default 30s.
	ShutdownTimeout time.Duration

	// Logger receives health transitions, ejections and (with AccessLog)
	// one record per request. Default slog.Default().
	Logger *slog.Logger

	// AccessLog logs every proxied request at Info level.
	AccessLog bool

	// Engine serves the proxy: EngineFastHTTP (the default) or EngineEpoll
	// (Linux; plain HTTP/1.1 from an event loop, see engine.go and
	// docs/balancer.md for what it hands to fasthttp).
	Engine string

	// Registry is where the balancer registers its metrics, and what
	// AdminHandler's /metrics serves. Nil means a new private registry. Give
	// each Balancer its own registry: two on one registry would export
	// clashing series.
	Registry *prometheus.Registry
}

// DefaultConfig returns a Config with every default filled in and no
// backends.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Policy = cmp.Or(c.Policy, PolicyRoundRobin)
	c.StickyCookie = cmp.Or(c.StickyCookie, "statelab_backend")
	c.HashCookie = cmp.Or(c.HashCookie, "statelab_session")
	c.HashFactor = cmp.Or(c.HashFactor, 1.25)
	c.HealthInterval = cmp.Or(c.HealthInterval, 2*time.Second)
	c.HealthTimeout = cmp.Or(c.HealthTimeout, time.Second)
	if c.HealthTimeout > c.HealthInterval && c.HealthInterval > 0 {
		c.HealthTimeout = c.HealthInterval
	}
	c.Rise = cmp.Or(c.Rise, 2)
	c.Fall = cmp.Or(c.Fall, 3)
	c.EjectAfter = cmp.Or(c.EjectAfter, 5)
	c.EjectBase = cmp.Or(c.EjectBase, time.Second)
	c.EjectMax = cmp.Or(c.EjectMax, 30*time.Second)
	c.EjectOn = cmp.Or(c.EjectOn, Eject5xx)
	c.MaxEjectedShare = cmp.Or(c.MaxEjectedShare, 0.5)
	c.PanicThreshold = cmp.Or(c.PanicThreshold, 0.5)
	c.MaxTries = cmp.Or(c.MaxTries, 3)
	c.RetryBudget = cmp.Or(c.RetryBudget, 0.2)
	c.RetryBudgetMin = cmp.Or(c.RetryBudgetMin, 3)
	c = c.withTimeoutDefaults()
	c.MaxRequestBodySize = cmp.Or(c.MaxRequestBodySize, 10<<20)
	c.MaxBufferedBody = cmp.Or(c.MaxBufferedBody, 64<<10)
	c.BufferedBodyBudget = cmp.Or(c.BufferedBodyBudget, 32<<20)
	c.MaxBackends = cmp.Or(c.MaxBackends, 256)
	c.MaxHeaderBytes = cmp.Or(c.MaxHeaderBytes, 16<<10)
	c.MaxConnsPerBackend = cmp.Or(c.MaxConnsPerBackend, 1024)
	c.DrainQuiet = cmp.Or(c.DrainQuiet, 500*time.Millisecond)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 10*time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// withTimeoutDefaults returns c with the connection and queue timeouts
// filled in.
func (c Config) withTimeoutDefaults() Config {
	c.DialTimeout = cmp.Or(c.DialTimeout, 2*time.Second)
	c.ResponseTimeout = cmp.Or(c.ResponseTimeout, 60*time.Second)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, 10*time.Second)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, 60*time.Second)
	c.QueueTimeout = cmp.Or(c.QueueTimeout, 5*time.Second)
	return c
}

// validate checks c after withDefaults.
func (c *Config) validate() error {
	switch {
	case c.HashFactor < 1:
		return fmt.Errorf("%w: hash factor %v is below 1", ErrInvalidConfig, c.HashFactor)
	case c.PanicThreshold > 1:
		return fmt.Errorf("%w: panic threshold %v is above 1", ErrInvalidConfig, c.PanicThreshold)
	case !validDenyPaths(c.DenyPaths):
		return fmt.Errorf("%w: deny paths must start with /", ErrInvalidConfig)
	case c.HealthInterval < 0, c.HealthTimeout < 0, c.EjectBase < 0, c.EjectMax < 0,
		c.DialTimeout < 0, c.ReadTimeout < 0, c.IdleTimeout < 0, c.DrainQuiet < 0,
		c.DrainTimeout < 0, c.ShutdownTimeout < 0, c.QueueTimeout < 0, c.SlowStart < 0, c.EjectLatency < 0:
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	case c.Rise < 0, c.Fall < 0, c.MaxTries < 0, c.MaxRequestBodySize < 0, c.MaxConnsPerBackend < 0, c.MaxHeaderBytes < 0, c.MaxBackends < 0,
		c.MaxBufferedBody < 0, c.BufferedBodyBudget < 0, c.BackendMaxConn < 0:
		return fmt.Errorf("%w: negative count", ErrInvalidConfig)
	case c.EjectOn != Eject5xx && c.EjectOn != EjectGateway:
		return fmt.Errorf("%w: EjectOn %q (want 5xx or gateway)", ErrInvalidConfig, c.EjectOn)
	case c.HealthPath != "" && c.HealthPath[0] != '/':
		return fmt.Errorf("%w: health path %q must start with /", ErrInvalidConfig, c.HealthPath)
	case c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil:
		return fmt.Errorf("%w: TLS without a certificate", ErrInvalidConfig)
	case c.Engine != "" && c.Engine != EngineFastHTTP && c.Engine != EngineEpoll:
		return fmt.Errorf("%w: engine %q (want fasthttp or epoll)", ErrInvalidConfig, c.Engine)
	case c.initialBackends() > c.MaxBackends:
		return fmt.Errorf("%w: %d backends, more than MaxBackends %d", ErrInvalidConfig, c.initialBackends(), c.MaxBackends)
	case !validCookieName(c.StickyCookie) || !validCookieName(c.HashCookie):
		return fmt.Errorf("%w: invalid cookie name", ErrInvalidConfig)
	}
	if c.HashKey != "" {
		if _, err := parseHashKeySpec(c.HashKey); err != nil {
			return err
		}
	}
	return nil
}

func validCookieName(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch <= ' ' || ch >= 0x7f || ch == '=' || ch == ';' || ch == ',' || ch == '"' {
			return false
		}
	}
	return s != ""
}

// Balancer is a load-balancing reverse proxy. It is safe for concurrent use;
// backends can be added and removed while it serves.
type Balancer struct {
	cfg     Config
	log     *slog.Logger
	hashKey hashKeySpec
	secret  []byte
	metrics *metrics

	mu           sync.Mutex // serialises pool changes
	groups       map[string]*poolGroup
	order        []*poolGroup // the default pool first, then Config.Pools
	defaultGroup *poolGroup
	routes       []route // longest prefix first
	started      bool
	closed       bool
	done         chan struct{} // closed by Close
	wg           sync.WaitGroup

	retries   atomic.Uint64
	active    atomic.Int64  // requests in forward now
	retrying  atomic.Int64  // of them, those holding a retry-budget slot
	budgetOut atomic.Uint64 // retries not made for want of budget

	ejectMu      sync.Mutex // serialises ejections (MaxEjectedShare)
	ejectSkipped atomic.Uint64

	queued        atomic.Int64 // requests waiting for a backend slot
	queueTimeouts atomic.Uint64
	wakeMu        sync.Mutex
	wake          chan struct{} // closed (and replaced) when a slot frees
	noBackend     atomic.Uint64
	refused       atomic.Uint64 // requests refused as the client's error
	buffered      atomic.Int64  // bytes of request bodies buffered now

	srvMu   sync.Mutex
	servers []*fasthttp.Server
}

// New validates cfg and returns a Balancer. It starts no goroutines: health
// checks begin with Start or Serve.
func New(cfg Config) (*Balancer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lb := &Balancer{cfg: cfg, log: cfg.Logger, secret: cfg.Secret, done: make(chan struct{}), wake: make(chan struct{})}
	lb.hashKey = hashKeySpec{source: "cookie", name: cfg.HashCookie}
	if cfg.HashKey != "" {
		lb.hashKey, _ = parseHashKeySpec(cfg.HashKey) // validated above
	}
	if len(lb.secret) == 0 {
		lb.secret = make([]byte, 32)
		_, _ = rand.Read(lb.secret) // crypto/rand.Read never fails (Go ≥ 1.24)
		if cfg.Policy == PolicySticky {
			lb.log.Info("balancer: no secret given, using a random one; sticky cookies will not survive a restart")
		}
	}
	if err := lb.newGroups(cfg); err != nil {
		return nil, err
	}
	lb.metrics = newMetrics(lb, cfg.Registry)
	return lb, nil
}

func newSelector(policy string, hashFactor float64) (Selector, error) {
	switch policy {
	case PolicyRoundRobin:
		return &RoundRobinSelection{}, nil
	case PolicyLeastRequest:
		return &LeastRequestSelection{}, nil
	case PolicySticky:
		return &StickySelection{}, nil
	case PolicyHash:
		return &HashSelection{Factor: hashFactor}, nil
	}
	return nil, fmt.Errorf("%w: %q (want one of round_robin, least_request, sticky, hash)", ErrUnknownPolicy, policy)
}

// Config returns the balancer's configuration with defaults filled in. Its
// Backends field is the initial list; Backends reports the current one.
func (lb *Balancer) Config() Config { return lb.cfg }

// Start begins active health checking. It is idempotent; Serve calls it.
func (lb *Balancer) Start() {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.started || lb.closed {
		return
	}
	lb.started = true
	for _, b := range lb.allBackends() {
		lb.startHealth(b)
	}
}

// Serve serves the proxy on ln until ctx is done, then stops accepting,
// waits up to Config.ShutdownTimeout for in-flight requests and returns nil.
// It closes ln. A Balancer may Serve several listeners at once.
func (lb *Balancer) Serve(ctx context.Context, ln net.Listener) error {
	lb.Start()
	if lb.cfg.TLS != nil {
		ln = tls.NewListener(ln, serverTLS(lb.cfg.TLS))
	}
	srv := lb.newServer()
	lb.srvMu.Lock()
	if lb.isClosed() {
		lb.srvMu.Unlock()
		ln.Close()
		return ErrClosed
	}
	lb.servers = append(lb.servers, srv)
	lb.srvMu.Unlock()

	if lb.cfg.Engine == EngineEpoll {
		why := engineReason(&lb.cfg)
		if why == "" {
			return lb.serveEpoll(ctx, ln, srv)
		}
		lb.log.Warn("balancer: the epoll engine does not support "+why+"; serving with fasthttp", "listener", ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if lb.isClosed() {
			return nil
		}
		return fmt.Errorf("balancer: serve: %w", err)
	case <-ctx.Done():
	case <-lb.done:
	}
	sctx, cancel := context.WithTimeout(context.Background(), lb.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("balancer: shutdown: %w", err)
	}
	<-errc
	return nil
}

func (lb *Balancer) isClosed() bool {
	select {
	case <-lb.done:
		return true
	default:
		return false
	}
}

// Close stops health checks and pending drains, and makes every Serve call
// shut down gracefully and return. It is idempotent.
func (lb *Balancer) Close() error {
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return nil
	}
	lb.closed = true
	lb.srvMu.Lock()
	close(lb.done)
	lb.srvMu.Unlock()
	lb.mu.Unlock()
	lb.wg.Wait()
	for _, b := range lb.allBackends() {
		b.client.CloseIdleConnections()
		b.health.CloseIdleConnections()
	}
	return nil
}

// AddBackend adds a backend to the pool bc.Pool names (empty: the default
// pool) and returns its status. New clients may be sent to it at once; it
// starts healthy, and is health checked if Start was called. A duplicate ID
// (in any pool) returns ErrDuplicateBackend; a bad URL or weight,
// ErrInvalidBackend; an unknown pool, ErrUnknownPool; one backend too many
// (all pools together), ErrTooManyBackends.
func (lb *Balancer) AddBackend(bc BackendConfig) (BackendStatus, error) {
	name := bc.Pool
	if name == "" {
		name = DefaultPool
	}
	g := lb.groups[name]
	if g == nil {
		return BackendStatus{}, fmt.Errorf("%w: %q", ErrUnknownPool, name)
	}
	b, err := lb.newBackend(bc)
	if err != nil {
		return BackendStatus{}, err
	}
	b.pool = name
	b.upSince.Store(time.Now().UnixNano()) // a new backend starts slowly
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return BackendStatus{}, ErrClosed
	}
	if _, dup := lb.findBackend(b.id); dup != nil {
		return BackendStatus{}, fmt.Errorf("%w: %q", ErrDuplicateBackend, b.id)
	}
	if len(lb.allBackends()) >= lb.cfg.MaxBackends {
		return BackendStatus{}, fmt.Errorf("%w: the limit is %d", ErrTooManyBackends, lb.cfg.MaxBackends)
	}
	old := g.pool.Load()
	g.pool.Store(newPool(append(append([]*Backend(nil), old.backends...), b)))
	if lb.started {
		lb.startHealth(b)
	}
	lb.log.Info("balancer: backend added", "backend", b.id, "pool", name, "url", b.url)
	return b.Status(), nil
}

// DrainBackend marks the backend draining: it gets no new clients, but
// requests from clients already stuck to it (sticky policy) still reach it.
// It returns the backend's status, or ErrUnknownBackend.
func (lb *Balancer) DrainBackend(id string) (BackendStatus, error) {
	_, b := lb.findBackend(id)
	if b == nil {
		return BackendStatus{}, fmt.Errorf("%w: %q", ErrUnknownBackend, id)
	}
	if !b.draining.Swap(true) {
		b.lastUse.Store(time.Now().UnixNano())
		lb.log.Info("balancer: backend draining", "backend", id)
	}
	return b.Status(), nil
}

// RemoveBackend drains the backend, waits until it has had no request for
// Config.DrainQuiet and none in flight (at most Config.DrainTimeout, or until
// ctx is done or the balancer closes), then removes it. Requests still in
// flight when it is removed complete normally; later requests carrying its
// sticky cookie are redispatched. It returns ErrUnknownBackend for an unknown
// ID, and nil otherwise (a cut-short drain still removes the backend).
func (lb *Balancer) RemoveBackend(ctx context.Context, id string) error {
	if _, err := lb.DrainBackend(id); err != nil {
		return err
	}
	g, b := lb.findBackend(id)
	if b == nil {
		return nil // removed concurrently
	}
	lb.waitDrained(ctx, b)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	old := g.pool.Load()
	if old.byID[id] != b {
		return nil
	}
	keep := make([]*Backend, 0, len(old.backends))
	for _, x := range old.backends {
		if x != b {
			keep = append(keep, x)
		}
	}
	g.pool.Store(newPool(keep))
	b.stop()
	b.client.CloseIdleConnections()
	b.health.CloseIdleConnections()
	lb.log.Info("balancer: backend removed", "backend", id)
	return nil
}

// waitDrained polls b until it is quiet, DrainTimeout passes, ctx is done or
// the balancer closes.
func (lb *Balancer) waitDrained(ctx context.Context, b *Backend) {
	deadline := time.Now().Add(lb.cfg.DrainTimeout)
	tick := time.NewTicker(min(lb.cfg.DrainQuiet/4+time.Millisecond, 50*time.Millisecond))
	defer tick.Stop()
	for {
		now := time.Now()
		if !now.Before(deadline) {
			lb.log.Warn("balancer: drain timed out", "backend", b.id, "inflight", b.inflight.Load())
			return
		}
		if b.inflight.Load() == 0 && now.UnixNano()-b.lastUse.Load() >= int64(lb.cfg.DrainQuiet) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-lb.done:
			return
		case <-tick.C:
		}
	}
}

// Backends reports the status of every current backend of every pool, the
// default pool's first, each pool's in the order they were added.
func (lb *Balancer) Backends() []BackendStatus {
	bs := lb.allBackends()
	out := make([]BackendStatus, len(bs))
	for i, b := range bs {
		out[i] = b.Status()
	}
	return out
}

// Backend reports the status of the backend with the given ID, or
// ErrUnknownBackend.
func (lb *Balancer) Backend(id string) (BackendStatus, error) {
	_, b := lb.findBackend(id)
	if b == nil {
		return BackendStatus{}, fmt.Errorf("%w: %q", ErrUnknownBackend, id)
	}
	return b.Status(), nil
}
