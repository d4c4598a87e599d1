package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/netns"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// Errors returned by the cluster. Callers branch on them with errors.Is.
var (
	// ErrUnknownReplica is returned when an operation names a replica the
	// cluster never started (or has removed).
	ErrUnknownReplica = errors.New("cluster: unknown replica")

	// ErrNoStore is returned by StopStore and StartStore for a strategy with
	// no external store (naive, sticky, replicated, client).
	ErrNoStore = errors.New("cluster: strategy has no external store")

	// ErrNoRedis is returned by Start for the cache strategy when no Redis
	// URL was given and redis-server is not on PATH.
	ErrNoRedis = errors.New("cluster: cache needs Redis: redis-server is not on PATH and no Redis URL was given")

	// ErrClosed is returned by operations on a closed cluster.
	ErrClosed = errors.New("cluster: closed")

	// ErrBadConfig is wrapped by Start for an invalid Config.
	ErrBadConfig = errors.New("cluster: bad config")
)

// Config describes a cluster to start. Zero values take the defaults given
// in each field's comment.
type Config struct {
	// Strategy fixes the app's store and the balancer's policy (its row of
	// the strategy table). Required.
	Strategy strategy.Strategy

	// Replicas is how many replicas Start launches. Zero means 3.
	Replicas int

	// Binary is the path of the statelab binary the replicas and the
	// balancer run (the CLI passes os.Executable(); tests build it with go
	// build). Required.
	Binary string

	// RedisURL is the Redis the cache strategy uses. Empty means: start a
	// redis-server from PATH on a free port, with no persistence.
	RedisURL string

	// PostgresURL, when set, makes the database strategy use PostgreSQL:
	// the cluster creates a fresh schema in it and drops it on Close. Empty
	// means SQLite in the cluster's temporary directory.
	PostgresURL string

	// Work is each replica's --work (simulated time per request). Zero
	// passes no flag, leaving the app's default.
	Work time.Duration

	// MaxInflight is each replica's --max-inflight. Zero passes no flag.
	MaxInflight int

	// Dir is where the cluster makes its temporary directory (logs, SQLite
	// file, Redis dump). Empty means os.TempDir(). The temporary directory
	// is removed by Close.
	Dir string

	// Logger receives the cluster's events. Nil discards them.
	Logger *slog.Logger

	// Secret is the key material shared by the replicas (--secret). Empty
	// means a random one per cluster.
	Secret string

	// HealthInterval is the balancer's --health-interval. Zero means 200ms,
	// so that a dead replica is noticed quickly.
	HealthInterval time.Duration

	// ReadyTimeout bounds how long Start, Add and Restart wait for a
	// process to answer. Zero means 15s. On a machine busier than its CPUs
	// each wait is stretched by the 1-minute load average per CPU, up to
	// readyStretch times: starting a process slows down with the machine,
	// while one that exits is reported at once whatever the timeout.
	ReadyTimeout time.Duration

	// StopGrace is how long a graceful stop waits after SIGTERM before
	// SIGKILL. Zero means 5s.
	StopGrace time.Duration

	// Game, when set, makes the replicas game servers instead of cart
	// replicas (see GameOptions); Strategy is then ignored.
	Game *GameOptions

	// Hosts runs every replica in its own Linux network namespace, with
	// its own address on a bridge the cluster creates and removes
	// (internal/netns), so that links between replicas, and between a
	// replica and the store, can be cut (Partition, Isolate). It needs
	// root and the ip command: Start fails with an error wrapping
	// ErrNoHosts, saying why, without them. Implies StoreLink.
	Hosts bool

	// RedisMode is the Redis the cache strategy starts when RedisURL is
	// empty: RedisSingle (also when empty), RedisCluster or RedisSentinel.
	// StopStore on a cluster or sentinel set kills a master and waits for
	// its replica's promotion (StoreFailover).
	RedisMode string

	// RedisWait is the replicas' --redis-wait: a write is acknowledged
	// once that many Redis replicas have it. Zero passes no flag.
	RedisWait int

	// ReplQuorum, when set, is the replicated replicas' --repl-quorum.
	ReplQuorum string

	// SlowStart, when positive, is the balancer's --slow-start: a replica
	// added or restarted during the run gets a share of new requests that
	// ramps from 10% to its full share over this window.
	SlowStart time.Duration

	// StoreLink puts the lab's proxy between the replicas and a store
	// server the cluster starts itself, so that SlowStore and FlakyStore
	// can act on the link (a store given by URL is always proxied).
	StoreLink bool

	// Services, when not nil, starts the microservice shape: pricing and
	// catalog replicas in their own balancer pools, called by the carts
	// through the balancer. Nil is the monolith.
	Services *Services
}

// withDefaults returns c with every zero field set to the default its
// comment gives.
func (c Config) withDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 3
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 200 * time.Millisecond
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 15 * time.Second
	}
	if c.StopGrace == 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// State is a replica's state as the cluster sees it.
type State string

// The states of a replica.
const (
	// StateUp means the process runs and answers.
	StateUp State = "up"
	// StateDown means the process is not running (killed, stopped or crashed).
	StateDown State = "down"
	// StatePaused means the process is stopped with SIGSTOP.
	StatePaused State = "paused"
	// StateDraining means the balancer is draining it before removal.
	StateDraining State = "draining"
	// StateStarting means the process was started and is not answering yet.
	StateStarting State = "starting"
)

// Replica is a snapshot of one replica.
type Replica struct {
	// ID is the replica's --id and X-Served-By value: r1, r2, ...
	ID string `json:"id"`
	// URL is the replica's own base URL, bypassing the balancer.
	URL string `json:"url"`
	// PID is the process id of the running process, 0 when down.
	PID int `json:"pid"`
	// State is up, down, paused, draining or starting.
	State State `json:"state"`
	// InBalancer reports whether the replica is a backend of the balancer.
	InBalancer bool `json:"in_balancer"`
	// Starts counts how many times the process was started.
	Starts int `json:"starts"`
	// ClusterAddr is the --cluster-listen address of a replicated replica.
	ClusterAddr string `json:"cluster_addr,omitempty"`
}

// StoreInfo describes the cluster's store.
type StoreInfo struct {
	// Kind is the app's --store.
	Kind stores.Kind `json:"kind"`
	// External reports whether there is a store to fail (Redis, SQLite,
	// PostgreSQL).
	External bool `json:"external"`
	// Up reports whether the store is available (always true when not
	// External).
	Up bool `json:"up"`
	// Managed reports whether the cluster started the store itself (a
	// redis-server) rather than using one it was given.
	Managed bool `json:"managed"`
	// Detail says where the store is, for people.
	Detail string `json:"detail"`
}

// replica is the cluster's record of one replica.
type replica struct {
	id          string
	port        int
	clusterAddr string
	proc        *process
	state       State
	inLB        bool
	lbID        string // the balancer's id for this backend
	starts      int
	host        *netns.Host // its own network namespace (Config.Hosts), or nil
}

func (r *replica) url() string { return "http://" + r.ip() + ":" + strconv.Itoa(r.port) }

// Cluster is a running cluster. Its methods are safe for concurrent use.
type Cluster struct {
	cfg      Config
	spec     strategy.Spec // the row of cfg.Strategy
	log      *slog.Logger
	dir      string
	secret   string
	lbURL    string // chosen by Start (again if the balancer lost its port); read-only once Start returns
	adminURL string // likewise
	client   *http.Client
	store    *storeRuntime
	net      *netns.Network // the replicas' hosts (Config.Hosts), or nil

	// opMu serialises operations that start or stop processes.
	opMu sync.Mutex

	mu       sync.Mutex
	closed   bool
	lb       *process
	replicas map[string]*replica
	order    []string
	nextID   int
	events   eventLog
	svc      *serviceSet // the microservice shape's replicas; nil: monolith
}

// Start launches the store (when needed), cfg.Replicas replicas and the
// balancer, and returns once all answer. On error everything already started
// is stopped and removed. ctx bounds the start only; the cluster lives until
// Close.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	spec, ok := strategy.Lookup(cfg.Strategy)
	if cfg.Game != nil {
		var err error
		if spec, err = gameSpec(cfg); err != nil {
			return nil, err
		}
		cfg.Strategy, ok = spec.Strategy, true
	}
	if !ok {
		_, err := strategy.Parse(string(cfg.Strategy))
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if cfg.Binary == "" {
		return nil, fmt.Errorf("%w: Binary (path of the statelab binary) is required", ErrBadConfig)
	}
	if cfg.Replicas < 0 || cfg.MaxInflight < 0 || cfg.Work < 0 {
		return nil, fmt.Errorf("%w: Replicas, MaxInflight and Work must not be negative", ErrBadConfig)
	}
	if err := cfg.validateRedisMode(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	dir, err := os.MkdirTemp(cfg.Dir, "statelab-cluster-*")
	if err != nil {
		return nil, fmt.Errorf("cluster: temporary directory: %w", err)
	}
	secret := cfg.Secret
	if secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("cluster: secret: %w", err)
		}
		secret = hex.EncodeToString(b)
	}
	c := &Cluster{
		cfg:      cfg,
		spec:     spec,
		log:      cfg.Logger.With("strategy", string(cfg.Strategy)),
		dir:      dir,
		secret:   secret,
		client:   &http.Client{Timeout: 2 * time.Second},
		replicas: map[string]*replica{},
	}
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if err := c.startHosts(ctx); err != nil {
		return err
	}
	st, err := startStore(ctx, c)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.store = st
	c.mu.Unlock()
	if err := c.balancerAddrs(); err != nil {
		return err
	}
	if err := c.startServices(ctx); err != nil {
		return err
	}

	var reps []*replica
	for i := 0; i < c.cfg.Replicas; i++ {
		r, err := c.newReplica()
		if err != nil {
			return err
		}
		if err := c.launch(r); err != nil {
			return err
		}
		reps = append(reps, r)
	}
	for _, r := range reps {
		if err := c.waitReadyMoving(ctx, r, func() error { return c.launch(r) }); err != nil {
			return err
		}
	}
	if err := c.startBalancer(ctx, reps); err != nil {
		return err
	}
	c.event(EventStarted, "", fmt.Sprintf("cluster up: %d replicas, store %s, policy %s", len(reps), st.info.Kind, c.spec.Policy))
	return nil
}

// newReplica allocates the next replica id and its ports.
func (c *Cluster) newReplica() (*replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &replica{port: port, state: StateDown}
	if c.spec.Store == stores.Replicated || c.cfg.Game != nil {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		r.clusterAddr = "127.0.0.1:" + strconv.Itoa(cp)
	}
	c.mu.Lock()
	c.nextID++
	r.id = "r" + strconv.Itoa(c.nextID)
	c.replicas[r.id] = r
	c.order = append(c.order, r.id)
	c.mu.Unlock()
	return r, c.placeReplica(r)
}

// appArgs is the command line of replica r.
func (c *Cluster) appArgs(r *replica) []string {
	if c.cfg.Game != nil {
		return c.gameArgs(r)
	}
	args := []string{"app",
		"--listen", r.ip() + ":" + strconv.Itoa(r.port),
		"--id", r.id,
		"--store", string(c.store.info.Kind),
	}
	args = append(args, c.store.appArgs...)
	args = append(args, c.serviceAppArgs()...)
	if c.cfg.Work > 0 {
		args = append(args, "--work", c.cfg.Work.String())
	}
	if c.cfg.MaxInflight > 0 {
		args = append(args, "--max-inflight", strconv.Itoa(c.cfg.MaxInflight))
	}
	if c.cfg.ReplQuorum != "" && c.spec.Store == stores.Replicated {
		args = append(args, "--repl-quorum", c.cfg.ReplQuorum)
	}
	if r.clusterAddr != "" {
		args = append(args, "--cluster-listen", r.clusterAddr)
		if peers := c.peersOf(r); peers != "" {
			args = append(args, "--peers", peers)
		}
	}
	return args
}

// peersOf lists the cluster addresses of the running replicas other than
// r, comma-separated: r's --peers.
func (c *Cluster) peersOf(r *replica) string {
	var peers []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.order {
		o := c.replicas[id]
		if o != r && o.proc != nil && !o.proc.exited() {
			peers = append(peers, o.clusterAddr)
		}
	}
	return strings.Join(peers, ",")
}

// launch starts replica r's process (it must not be running).
func (c *Cluster) launch(r *replica) error {
	bin, args := c.hostCommand(r, c.cfg.Binary, c.appArgs(r))
	return c.startReplica(r, bin, args, c.secretEnv())
}

// startReplica starts replica r as bin with args and env, logging to
// r.id.log in the cluster's directory, and marks it starting. Cart and
// service replicas both start here.
func (c *Cluster) startReplica(r *replica, bin string, args, env []string) error {
	p, err := startProcess(r.id, bin, args, env, filepath.Join(c.dir, r.id+".log"), func(p *process, expected bool, err error) {
		c.onReplicaExit(r, p, expected, err)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	r.proc = p
	r.state = StateStarting
	r.starts++
	c.mu.Unlock()
	return nil
}

func (c *Cluster) onReplicaExit(r *replica, p *process, expected bool, err error) {
	c.mu.Lock()
	current := r.proc == p
	if current {
		r.state = StateDown
	}
	c.mu.Unlock()
	if !expected {
		c.event(EventCrash, r.id, fmt.Sprintf("%s crashed: %s; last log lines: %s", r.id, exitDescription(err), p.tail(600)))
	}
}

// waitReady polls r's /healthz until it answers 200, the process exits or
// the ready timeout passes.
func (c *Cluster) waitReady(ctx context.Context, r *replica) error {
	c.mu.Lock()
	p := r.proc
	c.mu.Unlock()
	err := c.poll(ctx, p, r.url()+"/healthz")
	if err != nil {
		return fmt.Errorf("cluster: replica %s did not become ready: %w", r.id, err)
	}
	c.mu.Lock()
	if r.proc == p && r.state == StateStarting {
		r.state = StateUp
	}
	c.mu.Unlock()
	return nil
}

// poll GETs url until it answers 200, p exits, ctx ends or the ready
// timeout passes.
func (c *Cluster) poll(ctx context.Context, p *process, url string) error {
	ctx, cancel := context.WithTimeout(ctx, c.readyTimeout())
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.markReady()
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("process %s: %s; log: %s", p.name, exitDescription(p.exitErr), p.tail(1500))
		case <-ctx.Done():
			return fmt.Errorf("%s not answering: %w; log: %s", url, ctx.Err(), p.tail(1500))
		case <-tick.C:
		}
	}
}

// URL returns the balancer's base URL, where clients send their requests.
func (c *Cluster) URL() string { return c.lbURL }

// AdminURL returns the balancer's admin API base URL.
func (c *Cluster) AdminURL() string { return c.adminURL }

// Dir returns the cluster's temporary directory (process logs live there).
// It is removed by Close.
func (c *Cluster) Dir() string { return c.dir }

// Strategy returns the cluster's strategy.
func (c *Cluster) Strategy() strategy.Strategy { return c.cfg.Strategy }

// Replicas returns a snapshot of every replica the cluster knows, in the
// order they were created. Removed replicas are not listed.
func (c *Cluster) Replicas() []Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Replica, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.replicaLocked(c.replicas[id]))
	}
	return out
}

// Replica returns a snapshot of the replica with id, or false.
func (c *Cluster) Replica(id string) (Replica, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.replicas[id]
	if !ok {
		return Replica{}, false
	}
	return c.replicaLocked(r), true
}

func (c *Cluster) replicaLocked(r *replica) Replica {
	out := Replica{ID: r.id, URL: r.url(), State: r.state, InBalancer: r.inLB, Starts: r.starts, ClusterAddr: r.clusterAddr}
	if r.proc != nil && !r.proc.exited() {
		out.PID = r.proc.pid()
	}
	return out
}

// Store describes the cluster's store.
func (c *Cluster) Store() StoreInfo {
	c.mu.Lock()
	st := c.store
	c.mu.Unlock()
	if st == nil {
		return StoreInfo{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.info
}

// get returns the replica with id or ErrUnknownReplica; it fails with
// ErrClosed on a closed cluster.
func (c *Cluster) get(id string) (*replica, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	r, ok := c.replicas[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownReplica, id)
	}
	return r, nil
}

// Close stops the balancer, every replica and the store the cluster started,
// drops the PostgreSQL schema it created and removes its temporary
// directory. It returns an error naming every child that crashed during the
// cluster's life (a crash is reported, never ignored), joined with any
// cleanup error. Close is idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	lb := c.lb
	var procs []*process
	for _, id := range c.order {
		if p := c.replicas[id].proc; p != nil {
			procs = append(procs, p)
		}
	}
	procs = append(procs, c.serviceProcsLocked()...)
	st := c.store
	c.mu.Unlock()

	if lb != nil {
		lb.kill()
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.kill() }()
	}
	wg.Wait()
	var errs []error
	if st != nil {
		if err := st.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.closeHosts(); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("cluster: remove %s: %w", c.dir, err))
	}
	if crashes := c.Crashes(); len(crashes) > 0 {
		msgs := make([]string, len(crashes))
		for i, e := range crashes {
			msgs[i] = e.Message
		}
		sort.Strings(msgs)
		errs = append([]error{fmt.Errorf("%w: %s", ErrCrashed, strings.Join(msgs, "; "))}, errs...)
	}
	return errors.Join(errs...)
}

// secretEnv is the environment that gives a child process the cluster's
// secret (STATELAB_SECRET, read by both app and lb as --secret).
func (c *Cluster) secretEnv() []string {
	return []string{"STATELAB_SECRET=" + c.secret}
}
