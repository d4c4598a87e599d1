package game

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/session"
)

// Defaults of the Config durations.
const (
	DefaultTick         = 50 * time.Millisecond
	DefaultCheckpoint   = time.Second
	DefaultLease        = 3 * time.Second
	DefaultStoreTimeout = 2 * time.Second
	DefaultIdleTimeout  = 10 * time.Minute
)

// forwardedHeader marks a request one replica forwarded to the room's
// owner; a replica never forwards such a request again (no loops while
// replicas disagree about the members).
const forwardedHeader = "X-Statelab-Forwarded-By"

// Config configures a Server. Zero durations mean the defaults.
type Config struct {
	// ID names this replica (X-Served-By, the lease owner); required. It
	// must equal Placement.Self().Name.
	ID string
	// Strategy is where rooms live; required.
	Strategy Strategy
	// Store keeps the records of the checkpoint and external strategies;
	// required by them, unused by memory.
	Store session.Store
	// Placement says which replica owns a room; nil means this replica
	// alone owns every room.
	Placement Placement
	// Tick is the room tick period (DefaultTick).
	Tick time.Duration
	// Checkpoint is how often an owner writes its rooms (checkpoint
	// strategy; DefaultCheckpoint).
	Checkpoint time.Duration
	// Lease is how long an owner's lease lasts without renewal
	// (DefaultLease); it is renewed every min(Checkpoint, Lease/3).
	Lease time.Duration
	// Secret is the key material replicas share; the replicated strategy
	// requires it (it authenticates the copies sent to backups).
	Secret string
	// IdleTimeout is how long a room with no input and no WebSocket stays
	// in memory before it is passivated: written to the store, its lease
	// released, resumed on the next request. Zero means DefaultIdleTimeout;
	// negative means never. Rooms of the memory strategy never are.
	IdleTimeout time.Duration
	// StoreTimeout bounds every store operation (DefaultStoreTimeout).
	StoreTimeout time.Duration
	// Registry gets the metrics and is what /metrics serves; nil means a
	// fresh registry.
	Registry *prometheus.Registry
	// Logger receives the Server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the game service: the HTTP and WebSocket API, the rooms this
// replica owns, forwarding to the owners of the others. It is safe for
// concurrent use.
type Server struct {
	id           string
	strategy     Strategy
	info         StrategyInfo
	store        session.Store
	records      *recordStore
	keeper       keeper
	placement    Placement
	tick         time.Duration
	storeTimeout time.Duration
	registry     *prometheus.Registry
	log          *slog.Logger
	metrics      *metrics
	handler      http.Handler
	draining     atomic.Bool
	observeLag   func(time.Duration) // if set (benchmarks), sees every tick's lag
	replicas     *replicaSet         // replicated strategy only
	replTimeout  time.Duration
	idleTimeout  time.Duration
	persistQuit  chan struct{} // closed by Close to stop persistLoop
	persistDone  chan struct{} // closed when persistLoop has returned
	persistOnce  sync.Once

	mu      sync.Mutex
	rooms   map[string]*room
	proxies map[string]*httputil.ReverseProxy // by owner HTTP address
	closed  bool
}

// NewServer returns a Server for cfg, or an error naming what is wrong.
func NewServer(cfg Config) (*Server, error) {
	info, ok := Lookup(string(cfg.Strategy))
	switch {
	case cfg.ID == "":
		return nil, errors.New("game: Config.ID is required")
	case !ok:
		return nil, fmt.Errorf("game: unknown strategy %q", cfg.Strategy)
	case info.NeedsStore && cfg.Store == nil:
		return nil, fmt.Errorf("game: strategy %s needs Config.Store", cfg.Strategy)
	case cfg.Tick < 0, cfg.Checkpoint < 0, cfg.Lease < 0, cfg.StoreTimeout < 0:
		return nil, errors.New("game: negative duration in Config")
	}
	s := &Server{
		id: cfg.ID, strategy: cfg.Strategy, info: info, store: cfg.Store, placement: cfg.Placement,
		tick:         cmp.Or(cfg.Tick, DefaultTick),
		storeTimeout: cmp.Or(cfg.StoreTimeout, DefaultStoreTimeout),
		idleTimeout:  cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout),
		registry:     cfg.Registry, log: cfg.Logger,
		rooms: make(map[string]*room), proxies: make(map[string]*httputil.ReverseProxy),
	}
	if s.placement == nil {
		s.placement = SinglePlacement{Member{Name: cfg.ID}}
	}
	if s.placement.Self().Name != cfg.ID {
		return nil, fmt.Errorf("game: Config.ID %q is not the placement's self %q", cfg.ID, s.placement.Self().Name)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.metrics, err = newMetrics(s.registry, s.id, string(s.strategy), s.roomCount); err != nil {
		return nil, err
	}
	s.records = &recordStore{store: cfg.Store, timeout: s.storeTimeout, metrics: s.metrics}
	lease := cmp.Or(cfg.Lease, DefaultLease)
	switch s.strategy {
	case StrategyMemory:
		s.keeper = &memoryKeeper{}
	case StrategyCheckpoint:
		s.keeper = &checkpointKeeper{rs: s.records, owner: s.id, lease: lease, checkpoint: cmp.Or(cfg.Checkpoint, DefaultCheckpoint)}
	case StrategyReplicated:
		// A backup that does not answer within a few ticks is treated as
		// gone until membership says otherwise.
		s.replTimeout = min(max(4*s.tick, 100*time.Millisecond), lease/3)
		if s.replicas, err = newReplicaSet(cfg.Secret, s.replTimeout, s.metrics); err != nil {
			return nil, err
		}
		s.keeper = &replicatedKeeper{
			checkpointKeeper: checkpointKeeper{rs: s.records, owner: s.id, lease: lease, checkpoint: cmp.Or(cfg.Checkpoint, DefaultCheckpoint)},
			copies:           s.replicas,
			placement:        s.placement,
			log:              s.log,
		}
	}
	s.handler = s.routes()
	s.placement.OnChange(s.rebalance)
	s.persistQuit, s.persistDone = make(chan struct{}), make(chan struct{})
	if every := s.persistEvery(); every > 0 {
		go s.persistLoop(s.persistQuit, s.persistDone)
	} else {
		close(s.persistDone)
	}
	return s, nil
}

// ServeHTTP serves the game API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes /readyz answer 503 from now on.
func (s *Server) Drain() { s.draining.Store(true) }

// Close stops every room this replica owns, writing a final checkpoint and
// releasing each lease (checkpoint strategy), and refuses new rooms.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rooms {
		wg.Go(func() { r.shutdown(ErrRoomMoved, "shutdown") })
	}
	wg.Wait()
	s.stopPersisting()
	if s.replicas != nil {
		s.replicas.close()
	}
}

// persistEvery is how often persistLoop runs: 0 when nothing is persisted
// (memory) or rooms have no owner (external).
func (s *Server) persistEvery() time.Duration {
	if s.keeper == nil {
		return 0
	}
	every, _ := s.keeper.interval()
	return every
}

// stopPersisting ends persistLoop (once) and waits for it.
func (s *Server) stopPersisting() {
	s.persistOnce.Do(func() { close(s.persistQuit) })
	<-s.persistDone
}

// roomCount is the number of rooms this replica owns.
func (s *Server) roomCount() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(len(s.rooms))
}

// owner returns the member that owns room by placement.
func (s *Server) owner(room string) Member {
	return Owners(room, s.placement.Members())[0]
}

// roomFor returns the active room id, activating it (taking its lease)
// if this replica does not run it yet.
func (s *Server) roomFor(ctx context.Context, id string) (*room, error) {
	if !s.joined() {
		return nil, ErrNotJoined
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrRoomMoved
	}
	r := s.rooms[id]
	if r == nil {
		r = &room{id: id, srv: s, ready: make(chan struct{}), done: make(chan struct{}), quit: make(chan struct{}),
			subs: make(map[chan Snapshot]struct{})}
		s.rooms[id] = r
		go r.activate()
	}
	s.mu.Unlock()
	select {
	case <-r.ready:
		return r, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// joined reports whether the placement can be trusted (see Joiner).
func (s *Server) joined() bool {
	j, ok := s.placement.(Joiner)
	return !ok || j.Joined()
}

// forget removes r from the rooms if it is still the active one.
func (s *Server) forget(r *room) {
	s.mu.Lock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	s.mu.Unlock()
}

// rebalance stops, handing them over, the rooms placement no longer gives
// this replica.
func (s *Server) rebalance() {
	s.mu.Lock()
	var moved []*room
	for id, r := range s.rooms {
		if s.owner(id).Name != s.id {
			moved = append(moved, r)
		}
	}
	s.mu.Unlock()
	for _, r := range moved {
		go r.shutdown(ErrRoomMoved, "moved")
	}
}

// shutdown stops an activated room, handing it over.
func (r *room) shutdown(reason error, label string) {
	<-r.ready
	if r.err != nil {
		return
	}
	r.stop(reason, true, label)
}

// proxyTo returns the reverse proxy to the owner at addr.
func (s *Server) proxyTo(addr string) *httputil.ReverseProxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.proxies[addr]; p != nil {
		return p
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr
			pr.Out.Header.Set(forwardedHeader, s.id)
		},
		ModifyResponse: func(res *http.Response) error {
			res.Header.Set(forwardedHeader, s.id)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("X-Served-By", s.id)
			httpapi.WriteError(w, apiErr(http.StatusServiceUnavailable, "owner_unreachable", "the room's owner did not answer: "+err.Error()))
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.proxies[addr] = p
	return p
}

// forward sends r to the room's owner and reports whether it did: it does
// not when this replica is the owner, when the strategy has no owners, or
// when r was already forwarded once (the replicas disagree about the
// members; the caller serves or refuses it).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, roomID string) (bool, error) {
	if !s.info.Owned {
		return false, nil
	}
	o := s.owner(roomID)
	if o.Name == s.id {
		return false, nil
	}
	if r.Header.Get(forwardedHeader) != "" {
		return true, fmt.Errorf("%w: placement here says %s owns room %s", ErrRoomMoved, o.Name, roomID)
	}
	s.metrics.forwarded.Inc()
	w.Header().Del("X-Served-By") // the owner's answer names the owner
	s.proxyTo(o.HTTP).ServeHTTP(w, r)
	return true, nil
}

// fail answers with the API error err maps to, logging what is not the
// client's fault.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err)
	if e.Status >= 500 && e.Code != "canceled" {
		s.log.Warn("game: request failed", "path", r.URL.Path, "code", e.Code, "err", err)
	}
	httpapi.WriteError(w, e)
}

// routes builds the handler tree.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, route string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(route, h))
	}
	handle("GET /rooms/{id}", "room", s.handleRoom)
	handle("POST /rooms/{id}/inputs", "inputs", s.handleInput)
	handle("GET /rooms/{id}/ws", "ws", s.handleWS)
	handle("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.SetInstance(w.Header())
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": s.id})
	})
	handle("GET /readyz", "readyz", s.handleReadyz)
	handle("POST "+replicationPath, "replica", s.handleReplica)
	handle("GET "+replicationPath+"/{room}", "replica_copy", s.handleReplicaCopy)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	handle("/", "not_found", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, apiErr(http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", s.id)
		mux.ServeHTTP(w, r)
	})
}

// instrument counts the route's requests by status code.
func (s *Server) instrument(route string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next(sw, r)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and the WebSocket hijack) reach
// the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handleReadyz answers 200 when the replica can serve: not draining,
// joined to its cluster, and its store (if any) answers a ping.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	httpapi.SetInstance(w.Header())
	if s.draining.Load() {
		httpapi.WriteError(w, apiErr(http.StatusServiceUnavailable, "draining", "the replica is shutting down"))
		return
	}
	if !s.joined() {
		s.fail(w, r, ErrNotJoined)
		return
	}
	if p, ok := s.store.(session.Pinger); ok && s.info.NeedsStore {
		ctx, cancel := context.WithTimeout(r.Context(), s.storeTimeout)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "id": s.id, "members": len(s.placement.Members())})
}

// localRoom reads and checks the room id of a /rooms/{id} request and
// forwards the request to the room's owner when that is another replica.
// It returns false when the request was answered (forwarded or refused).
func (s *Server) localRoom(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if err := ValidateID(id); err != nil {
		s.fail(w, r, err)
		return "", false
	}
	if done, err := s.forward(w, r, id); done {
		if err != nil {
			s.fail(w, r, err)
		}
		return "", false
	}
	return id, true
}

// roomSnapshot returns the room's current snapshot: from the room this
// replica owns (activating it if needed), or from the store for the
// external strategy, where no replica holds rooms (rm is nil then).
func (s *Server) roomSnapshot(ctx context.Context, id string) (rm *room, snap Snapshot, err error) {
	if !s.info.Owned {
		snap, err = s.externalSnapshot(ctx, id)
		return nil, snap, err
	}
	if rm, err = s.roomFor(ctx, id); err != nil {
		return nil, Snapshot{}, err
	}
	snap, err = rm.snapshot()
	return rm, snap, err
}

// handleRoom serves GET /rooms/{id}: the room's snapshot, from its owner
// (or, for the external strategy, from the store).
func (s *Server) handleRoom(w http.ResponseWriter, r *http.Request) {
	id, local := s.localRoom(w, r)
	if !local {
		return
	}
	_, snap, err := s.roomSnapshot(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, snap)
}

// handleInput serves POST /rooms/{id}/inputs: it applies one input
// ({"player","seq","move"}) and answers its Ack once a tick applied it.
func (s *Server) handleInput(w http.ResponseWriter, r *http.Request) {
	id, local := s.localRoom(w, r)
	if !local {
		return
	}
	var in Input
	if err := httpapi.DecodeBody(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := in.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	ack, err := s.Submit(r.Context(), id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ack)
}

// Submit applies in to room on this replica (which must own it, or serve
// any room under the external strategy) and returns its Ack.
func (s *Server) Submit(ctx context.Context, roomID string, in Input) (Ack, error) {
	if !s.info.Owned {
		return s.externalInput(ctx, roomID, in)
	}
	rm, err := s.roomFor(ctx, roomID)
	if err != nil {
		return Ack{}, err
	}
	reply, err := rm.enqueue(in)
	if err != nil {
		return Ack{}, err
	}
	return rm.wait(ctx, reply)
}
