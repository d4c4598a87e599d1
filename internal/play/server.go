package play

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// Limits of the controls.
const (
	// MaxReplicas is the most replicas a playground cluster may have.
	MaxReplicas = 9
	// MaxShopperRate is the highest background shopper rate, in requests
	// per second.
	MaxShopperRate = 200.0
)

// Config configures a Server. The zero value of every field but Start has a
// documented default.
type Config struct {
	// Strategy is the strategy of the first cluster. Empty means
	// strategy.Sticky.
	Strategy strategy.Strategy
	// Replicas is the number of replicas each cluster starts with, 1 to
	// MaxReplicas. Zero means 3.
	Replicas int
	// Start starts a cluster. It is required.
	Start StartFunc
	// Shoppers starts background shoppers. Nil means the dashboard offers
	// none.
	Shoppers ShoppersFunc
	// ShopperRate is the initial background shopper rate, in requests per
	// second. Zero means 5.
	ShopperRate float64
	// PollInterval is how often the balancer and replicas are polled for
	// the dashboard. Zero means 500ms.
	PollInterval time.Duration
	// ActionTimeout bounds each control (rebuilding a cluster, restarting a
	// replica). Zero means 2 minutes.
	ActionTimeout time.Duration
	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger
	// StartGame starts game clusters for the game view. Nil means the
	// dashboard has no game view.
	StartGame GameStartFunc
}

// withDefaults returns c with zero fields set to their defaults, or an
// error for a value out of range.
func (c Config) withDefaults() (Config, error) {
	if c.Strategy == "" {
		c.Strategy = strategy.Sticky
	}
	if _, err := strategy.Parse(string(c.Strategy)); err != nil {
		return c, err
	}
	if c.Replicas == 0 {
		c.Replicas = 3
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return c, fmt.Errorf("play: replicas must be 1 to %d, not %d", MaxReplicas, c.Replicas)
	}
	if c.Start == nil {
		return c, errors.New("play: Config.Start is required")
	}
	if c.ShopperRate == 0 {
		c.ShopperRate = 5
	}
	if c.ShopperRate < 0 || c.ShopperRate > MaxShopperRate {
		return c, fmt.Errorf("play: shopper rate must be 0 to %g, not %g", MaxShopperRate, c.ShopperRate)
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.ActionTimeout <= 0 {
		c.ActionTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Server is the playground: it runs one cluster at a time, polls it, and
// serves the dashboard, its event stream, its controls and the shop pane.
// Create it with New, call Start, serve Handler, and Close it when done.
type Server struct {
	cfg    Config
	log    *slog.Logger
	hub    *hub
	events *eventLog
	obs    *observer
	client *http.Client
	proxy  http.Handler
	tr     *http.Transport

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// opMu serialises the controls: one at a time, others get ErrBusy.
	opMu sync.Mutex

	// pollMu serialises polls, which share prev.
	pollMu sync.Mutex
	prev   map[string][]sample

	mu         sync.Mutex
	cluster    Cluster
	strategy   strategy.Strategy
	phase      string
	errText    string
	busy       string
	shoppers   Shoppers
	shoppersOn bool
	rate       float64
	balancer   BalancerState
	replicas   []ReplicaState
	closed     bool

	game *gameView // nil without Config.StartGame
}

// New returns a Server for cfg; it starts nothing until Start.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		hub:      newHub(),
		prev:     map[string][]sample{},
		strategy: cfg.Strategy,
		phase:    "starting",
		rate:     cfg.ShopperRate,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events = newEventLog(200, s.publishEvent)
	s.obs = newObserver(s.events, s.storeContext)
	s.client = &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: pollTimeout}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}}
	s.tr = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       30 * time.Second,
	}
	s.proxy = s.newProxy()
	if cfg.StartGame != nil {
		s.game = newGameView(s, cfg.StartGame)
	}
	return s, nil
}

// Start starts the first cluster and the poller. It returns an error when
// the cluster cannot start; ctx bounds the start only.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	st := s.strategy
	s.mu.Unlock()
	s.publishState()
	c, err := s.startCluster(ctx, st)
	if err != nil {
		s.setFailed(err)
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return ErrNoCluster
	}
	s.cluster, s.phase = c, "running"
	s.mu.Unlock()
	s.events.add(EventInfo, readyText(c))
	s.refresh()
	s.wg.Add(1)
	go s.pollLoop()
	return nil
}

// startCluster starts a cluster for strategy with the action timeout.
func (s *Server) startCluster(ctx context.Context, st strategy.Strategy) (Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ActionTimeout)
	defer cancel()
	c, err := s.cfg.Start(ctx, st, s.cfg.Replicas)
	if err != nil {
		return nil, fmt.Errorf("play: start %s cluster: %w", st, err)
	}
	return c, nil
}

func (s *Server) setFailed(err error) {
	text := strings.TrimPrefix(err.Error(), "play: ")
	s.mu.Lock()
	s.phase, s.errText = "failed", text
	s.mu.Unlock()
	s.events.add(EventError, text)
	s.publishState()
}

// Close stops the poller, the shoppers and the cluster. It ends every
// event stream, so an http.Server serving Handler can shut down.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	s.closed = true
	c, sh := s.cluster, s.shoppers
	s.cluster, s.shoppers = nil, nil
	s.mu.Unlock()
	var errs []error
	if sh != nil {
		errs = append(errs, sh.Close())
	}
	if s.game != nil {
		errs = append(errs, s.game.closeCluster())
	}
	if c != nil {
		errs = append(errs, c.Close())
	}
	s.tr.CloseIdleConnections()
	return errors.Join(errs...)
}

// Events returns the event log, oldest first.
func (s *Server) Events() []Event { return s.events.snapshot() }

// current returns the running cluster, or nil.
func (s *Server) current() Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cluster
}

// storeContext returns the running strategy and store kind, for the
// observer's wording.
func (s *Server) storeContext() (strategy.Strategy, stores.Kind) {
	s.mu.Lock()
	c, st := s.cluster, s.strategy
	s.mu.Unlock()
	if c == nil {
		return st, ""
	}
	return st, c.Store().Kind
}

// pollLoop polls the cluster until Close.
func (s *Server) pollLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.refresh()
		}
	}
}

// refresh polls the cluster once and publishes the new state.
func (s *Server) refresh() {
	c := s.current()
	if c != nil {
		s.pollMu.Lock()
		bal, reps := poll(s.ctx, s.client, c, s.prev, time.Now())
		bal.Policy = c.Strategy().Spec().Policy
		var notices []string
		if n, ok := c.(noticer); ok {
			notices = n.Notices()
		}
		s.pollMu.Unlock()
		s.mu.Lock()
		current := s.cluster == c
		if current {
			s.balancer, s.replicas = bal, reps
		}
		s.mu.Unlock()
		if current {
			for _, text := range notices {
				s.events.add(EventError, text)
			}
		}
	}
	s.publishState()
}

// State returns the current snapshot.
func (s *Server) State() State {
	s.mu.Lock()
	st := State{
		Strategy:   s.strategy,
		Strategies: strategy.All(),
		Phase:      s.phase,
		Error:      s.errText,
		Busy:       s.busy,
		Balancer:   s.balancer,
		Replicas:   append([]ReplicaState(nil), s.replicas...),
		Shoppers:   ShoppersState{Available: s.cfg.Shoppers != nil, On: s.shoppersOn, Rate: s.rate},
	}
	c := s.cluster
	s.mu.Unlock()
	spec := st.Strategy.Spec()
	st.Where, st.Balancer.Policy = spec.Where, spec.Policy
	if c != nil {
		sp := c.Store()
		st.Store = StoreState{Kind: sp.Kind, Name: sp.Kind.Name(), External: sp.External, Up: sp.Up}
		if sp.External {
			st.Store.Addr = sp.Detail
			// Every replica reports the shared store's count: it belongs
			// to the store, not to any one replica.
			for i := range st.Replicas {
				if st.Replicas[i].Sessions != nil && st.Store.Sessions == nil {
					st.Store.Sessions = st.Replicas[i].Sessions
				}
				st.Replicas[i].Sessions = nil
			}
		}
		st.Where = whereText(st.Strategy, sp.Kind)
	} else {
		st.Replicas = nil
		st.Balancer = BalancerState{Policy: st.Balancer.Policy}
	}
	st.You = s.obs.You()
	if s.game != nil {
		st.Game = s.game.state()
	}
	return st
}

// publishState sends the current state to every dashboard.
func (s *Server) publishState() {
	msg, err := encodeSSE("state", s.State())
	if err != nil {
		s.log.Error("play: encode state", "err", err)
		return
	}
	s.hub.publish(msg)
}

// publishEvent sends one log line to every dashboard.
func (s *Server) publishEvent(e Event) {
	s.log.Info(e.Text, "kind", e.Kind)
	msg, err := encodeSSE("log", e)
	if err != nil {
		s.log.Error("play: encode event", "err", err)
		return
	}
	s.hub.publish(msg)
}

// sessionsOf returns how many carts replica id held at the last poll.
func (s *Server) sessionsOf(id string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.replicas {
		if r.ID == id && r.Sessions != nil {
			return *r.Sessions, true
		}
	}
	return 0, false
}

// begin takes the control lock for an action named what, or returns
// ErrBusy; the returned function releases it.
func (s *Server) begin(what string) (Cluster, func(), error) {
	if !s.opMu.TryLock() {
		s.mu.Lock()
		busy := s.busy
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("%w (%s)", ErrBusy, busy)
	}
	s.mu.Lock()
	s.busy = what
	c := s.cluster
	s.mu.Unlock()
	s.publishState()
	done := func() {
		s.mu.Lock()
		s.busy = ""
		s.mu.Unlock()
		s.opMu.Unlock()
		s.refresh()
	}
	return c, done, nil
}

// actionContext bounds a control by the action timeout and the server's
// life, not by the request that asked for it: a control that was started
// finishes even if the browser goes away.
func (s *Server) actionContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.cfg.ActionTimeout)
}

// readyText is the log line for a cluster that has just started.
func readyText(c Cluster) string {
	st := c.Strategy()
	return fmt.Sprintf("cluster ready: %s strategy, %d replicas behind a %s balancer — your cart lives %s",
		st, len(c.Replicas()), st.Spec().Policy, whereText(st, c.Store().Kind))
}

// SetStrategy closes the running cluster and starts one for the strategy
// named name.
func (s *Server) SetStrategy(name string) error {
	st, err := strategy.Parse(name)
	if err != nil {
		return err
	}
	_, done, err := s.begin("rebuilding the cluster for " + string(st))
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.actionContext()
	defer cancel()

	s.mu.Lock()
	old, sh, on := s.cluster, s.shoppers, s.shoppersOn
	s.cluster, s.shoppers = nil, nil
	s.strategy, s.phase, s.errText = st, "rebuilding", ""
	s.balancer, s.replicas = BalancerState{}, nil
	s.mu.Unlock()
	s.events.add(EventAction, fmt.Sprintf("rebuilding the cluster for the %s strategy…", st))
	s.publishState()
	if sh != nil {
		if err := sh.Close(); err != nil {
			s.log.Warn("play: stop shoppers", "err", err)
		}
	}
	if old != nil {
		if err := old.Close(); err != nil {
			s.log.Warn("play: close cluster", "err", err)
		}
	}
	s.tr.CloseIdleConnections()
	s.obs.Reset()

	c, err := s.startCluster(ctx, st)
	if err != nil {
		s.mu.Lock()
		s.shoppersOn = false
		s.mu.Unlock()
		s.setFailed(err)
		return err
	}
	s.mu.Lock()
	if s.closed {
		// Close ran while this cluster was starting: it must not outlive
		// the server.
		s.mu.Unlock()
		return errors.Join(ErrNoCluster, c.Close())
	}
	s.cluster, s.phase = c, "running"
	s.mu.Unlock()
	s.events.add(EventInfo, readyText(c))
	if on {
		if err := s.startShoppers(ctx, c); err != nil {
			s.events.add(EventError, fmt.Sprintf("background shoppers could not restart: %v", err))
		}
	}
	return nil
}

// ReplicaAction runs act (kill, pause, resume, restart or remove) on
// replica id.
func (s *Server) ReplicaAction(act, id string) error {
	switch act {
	case "kill", "pause", "resume", "restart", "remove":
	default:
		return fmt.Errorf("%w: unknown action %q", errBadRequest, act)
	}
	c, done, err := s.begin(act + " " + id)
	if err != nil {
		return err
	}
	defer done()
	if c == nil {
		return ErrNoCluster
	}
	known := false
	for _, r := range c.Replicas() {
		if r.ID == id {
			known = true
		}
	}
	if !known {
		return fmt.Errorf("%w %q", cluster.ErrUnknownReplica, id)
	}
	ctx, cancel := s.actionContext()
	defer cancel()
	storeKind := c.Store().Kind
	sessions, counted := s.sessionsOf(id)
	switch act {
	case "kill":
		err = c.Kill(ctx, id)
	case "pause":
		err = c.Pause(ctx, id)
	case "resume":
		err = c.Resume(ctx, id)
	case "restart":
		err = c.Restart(ctx, id)
	case "remove":
		err = c.Remove(ctx, id)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", act, id, err)
		s.events.add(EventError, err.Error())
		return err
	}
	switch act {
	case "kill":
		s.events.add(EventAction, killedText(id, storeKind, sessions, counted))
		s.obs.Fault(id)
	case "pause":
		s.events.add(EventAction, fmt.Sprintf("%s paused (SIGSTOP) — it keeps its memory but answers nothing until it is resumed", id))
		s.obs.Fault(id)
	case "resume":
		s.events.add(EventAction, fmt.Sprintf("%s resumed (SIGCONT) — it answers again, with the memory it had", id))
		s.obs.Fault(id)
	case "restart":
		s.events.add(EventAction, restartedText(id, storeKind))
		s.obs.Fault(id)
	case "remove":
		text := fmt.Sprintf("%s removed — the balancer drained it, then it was stopped", id)
		if storeKind == stores.Memory && counted && sessions > 0 {
			text += fmt.Sprintf("; %s that lived only there went with it", plural(sessions, "cart", "carts"))
		}
		s.events.add(EventAction, text)
		s.obs.Fault(id)
	}
	return nil
}

// AddReplica starts one more replica and returns its id.
func (s *Server) AddReplica() (string, error) {
	c, done, err := s.begin("adding a replica")
	if err != nil {
		return "", err
	}
	defer done()
	if c == nil {
		return "", ErrNoCluster
	}
	if len(c.Replicas()) >= MaxReplicas {
		return "", fmt.Errorf("%w: the playground runs at most %d replicas", errBadRequest, MaxReplicas)
	}
	ctx, cancel := s.actionContext()
	defer cancel()
	id, err := c.Add(ctx)
	if err != nil {
		err = fmt.Errorf("add a replica: %w", err)
		s.events.add(EventError, err.Error())
		return "", err
	}
	text := fmt.Sprintf("%s added — the balancer sends it requests now", id)
	if c.Strategy().Spec().Policy == balancer.PolicySticky {
		text = fmt.Sprintf("%s added — only new sessions go to it: sticky cookies keep existing shoppers where they are", id)
	}
	s.events.add(EventAction, text)
	return id, nil
}

// StoreAction runs act (stop or start) on the cluster's store.
func (s *Server) StoreAction(act string) error {
	if act != "stop" && act != "start" {
		return fmt.Errorf("%w: unknown store action %q", errBadRequest, act)
	}
	c, done, err := s.begin(act + " the store")
	if err != nil {
		return err
	}
	defer done()
	if c == nil {
		return ErrNoCluster
	}
	sp := c.Store()
	if !sp.External {
		return fmt.Errorf("%w: carts live in %s", cluster.ErrNoStore, sp.Kind.Name())
	}
	ctx, cancel := s.actionContext()
	defer cancel()
	name := sp.Kind.Name()
	if act == "stop" {
		err = c.StopStore(ctx)
	} else {
		err = c.StartStore(ctx)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", act, name, err)
		s.events.add(EventError, err.Error())
		return err
	}
	if act == "stop" {
		s.events.add(EventAction, fmt.Sprintf("%s stopped — replicas cannot read or write carts: expect 503s, not wrong carts", name))
		s.obs.Fault("")
	} else {
		s.events.add(EventAction, fmt.Sprintf("%s started again — carts are reachable", name))
		s.obs.Fault("")
	}
	return nil
}

// SetShoppers turns the background shoppers on or off and sets their rate.
func (s *Server) SetShoppers(on bool, rate float64) error {
	if s.cfg.Shoppers == nil {
		return ErrNoShoppers
	}
	if rate < 0 || rate > MaxShopperRate {
		return fmt.Errorf("%w: rate must be 0 to %g requests per second", errBadRequest, MaxShopperRate)
	}
	c, done, err := s.begin("changing the background shoppers")
	if err != nil {
		return err
	}
	defer done()
	s.mu.Lock()
	sh, was, oldRate := s.shoppers, s.shoppersOn, s.rate
	s.rate = rate
	s.mu.Unlock()
	switch {
	case on && !was:
		if c == nil {
			return ErrNoCluster
		}
		ctx, cancel := s.actionContext()
		defer cancel()
		if err := s.startShoppers(ctx, c); err != nil {
			return err
		}
		s.events.add(EventAction, fmt.Sprintf("background shoppers on — %g requests per second", rate))
	case on && was && rate != oldRate:
		if sh != nil {
			sh.SetRate(rate)
		}
		s.events.add(EventAction, fmt.Sprintf("background shoppers now send %g requests per second", rate))
	case !on && was:
		s.mu.Lock()
		s.shoppers, s.shoppersOn = nil, false
		s.mu.Unlock()
		if sh != nil {
			if err := sh.Close(); err != nil {
				s.log.Warn("play: stop shoppers", "err", err)
			}
		}
		s.events.add(EventAction, "background shoppers off")
	}
	return nil
}

// startShoppers starts the workload against c at the current rate.
func (s *Server) startShoppers(ctx context.Context, c Cluster) error {
	s.mu.Lock()
	rate := s.rate
	s.mu.Unlock()
	// The shoppers live as long as the server, not as the request that
	// turned them on; ctx only bounds their start.
	if err := ctx.Err(); err != nil {
		return err
	}
	sh, err := s.cfg.Shoppers(s.ctx, c.BalancerURL(), rate)
	if err != nil {
		return fmt.Errorf("start background shoppers: %w", err)
	}
	s.mu.Lock()
	s.shoppers, s.shoppersOn = sh, true
	s.mu.Unlock()
	return nil
}
