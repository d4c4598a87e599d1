package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/statelab/statelab/internal/cart"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/replstore"
)

// appFlags are the command line of statelab app.
type appFlags struct {
	serviceFlags  // --listen, --id, the capacity model and the shutdown flags
	store         string
	redis         string
	redisPrefix   string
	redisCluster  listFlag
	redisSentinel string
	redisWait     int
	replQuorum    string
	storeRetry    time.Duration
	asyncRepl     bool
	postgres      string
	pgSchema      string
	sqlite        string
	clusterListen string
	peers         listFlag
	secret        string
	maxSessions   int
	oldSecrets    listFlag
	cookieSecure  bool
	cookieHost    bool
	ledger        string
	deps          dependencyFlags
}

// minSecretLen is the shortest --secret accepted (the cookie sealer's
// minimum).
const minSecretLen = 16

// runApp runs one replica of the shopping-cart service until ctx is
// cancelled (SIGINT, SIGTERM), then shuts down gracefully: /readyz turns
// 503 (and the replica keeps serving for --drain-delay), the listener
// closes, in-flight requests finish, the store closes (a replicated store
// hands its sessions to its peers).
func runApp(ctx context.Context, m *Main, args []string) error {
	var f appFlags
	fs := newFlagSet(m, "app", "--listen ADDR --store KIND [flags]")
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	products, pricer, err := f.deps.clients()
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	defer ln.Close()
	if f.id == "" {
		host, _ := os.Hostname()
		f.id = host + "-" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	log = log.With("replica", f.id)
	stores.LogRedisTo(log)
	if f.secret == "" {
		f.secret = rand.Text() + rand.Text()
		log.Warn("app: no --secret given, using a random one: fine for one replica, wrong for several (their cookies and replication would not agree)")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	backend, err := stores.Open(openCtx, f.storeConfig(log, reg))
	cancel()
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	defer func() {
		if err := backend.Close(); err != nil {
			log.Error("app: closing the store", "err", err)
		}
	}()
	scfg := session.Config{Logger: log, Registerer: reg, HostPrefix: f.cookieHost}
	if f.cookieSecure {
		scfg.Secure = session.SecureAlways
	}
	mgr, err := backend.NewManager(scfg)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	ledger, closeLedger, err := f.openLedger(ctx, log)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	defer closeLedger()
	srv, err := cart.NewServer(cart.Config{
		ID:        f.id,
		StoreName: f.store,
		Manager:   mgr,
		Store:     backend.Store,
		Limiter:   f.limiter(),
		Products:  products,
		Pricer:    pricer,
		Registry:  reg,
		Logger:    log,
		Ledger:    ledger,
	})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	attrs := []any{"addr", ln.Addr().String(), "store", f.store, "pricing", f.deps.pricing.String(), "catalog", f.deps.catalog.String(),
		"work", f.work, "max_inflight", f.maxInflight, "queue", f.queue}
	if c, ok := backend.Store.(interface{ ClusterAddr() string }); ok {
		// With --cluster-listen port 0 this is the only way to learn the
		// port peers must join through.
		attrs = append(attrs, "cluster_addr", c.ClusterAddr())
	}
	log.Info("app: serving", attrs...)
	return serveService(ctx, log, "app", ln, srv, srv.Drain, &f.serviceFlags)
}

// register defines the flags of statelab app on fs.
func (f *appFlags) register(fs *flag.FlagSet) {
	f.serviceFlags.register(fs, "127.0.0.1:8080")
	fs.StringVar(&f.store, "store", string(stores.Memory), "where sessions live: "+strings.Join(stores.KindNames(), "|"))
	fs.StringVar(&f.redis, "redis", "", "Redis `URL` for --store redis, e.g. redis://127.0.0.1:6379/0")
	fs.StringVar(&f.redisPrefix, "redis-prefix", "", "`prefix` of every Redis key (default: the redisstore default)")
	fs.Var(&f.redisCluster, "redis-cluster", "--store redis on a Redis Cluster: some nodes' `addresses` host:port (comma-separated or repeated), instead of --redis")
	fs.StringVar(&f.redisSentinel, "redis-sentinel", "", "--store redis through Redis Sentinel: `MASTER@HOST:PORT,...` (the master's name, then sentinels), instead of --redis")
	fs.IntVar(&f.redisWait, "redis-wait", 0, "--store redis: acknowledge a write only once `N` replicas have it (Redis WAIT); 0: at once")
	fs.StringVar(&f.replQuorum, "repl-quorum", "majority", "--store replicated: copies of a session that must have a write before it is acknowledged: majority (of the 2 copies), one (no quorum: the primary's copy, backups best effort) or a `count`")
	fs.DurationVar(&f.storeRetry, "store-retry", time.Second, "when the redis or postgres store does not answer at start: keep running (503, /readyz not ready) and retry this often; 0: exit instead")
	fs.StringVar(&f.postgres, "postgres", "", "PostgreSQL `URL` for --store postgres, e.g. postgres://user@127.0.0.1:5432/db?sslmode=disable")
	fs.StringVar(&f.pgSchema, "postgres-schema", "", "`schema` of the session table for --store postgres (default: the pgstore default)")
	fs.StringVar(&f.sqlite, "sqlite", "statelab-sessions.db", "SQLite database `file` for --store sqlite (replicas share it)")
	fs.StringVar(&f.clusterListen, "cluster-listen", "127.0.0.1:7946", "`address` where a --store replicated replica meets its peers")
	fs.Var(&f.peers, "peers", "peers' --cluster-listen `addresses` to join through (comma-separated or repeated)")
	fs.BoolVar(&f.asyncRepl, "async-replication", false, "--store replicated, with --repl-quorum one: acknowledge writes before the backups have them (faster, can lose the last writes; a larger quorum waits for its backups)")
	fs.StringVar(&f.secret, "secret", "", "key `material` replicas share (sealed cookies, replication); at least 16 bytes; default: random, logged")
	fs.IntVar(&f.maxSessions, "max-sessions", 100000, "--store memory: sessions held at most; beyond it new sessions get 503 (0: no cap)")
	fs.Var(&f.oldSecrets, "old-secret", "--store cookie or replicated: a previous --secret still accepted (cookies sealed with it open; peers using it are accepted), while this replica seals and proves with --secret; repeatable, for key rotation")
	fs.BoolVar(&f.cookieSecure, "cookie-secure", false, "always mark the session cookie Secure (default: only over HTTPS or X-Forwarded-Proto: https)")
	fs.BoolVar(&f.cookieHost, "cookie-host-prefix", false, "name the session cookie __Host-statelab_session (Secure, Path=/, no Domain: a subdomain cannot plant it)")
	fs.StringVar(&f.ledger, "checkout-ledger", "", "--store cookie: refuse a second checkout of a cart (a replayed cookie) by recording each checkout in this shared `store`: redis, postgres or sqlite (its --redis, --postgres or --sqlite); default: none")
	f.deps.register(fs)
}

// openLedger opens the --checkout-ledger store, if any, and returns the
// Ledger over it and the function that closes it.
func (f *appFlags) openLedger(ctx context.Context, log *slog.Logger) (*cart.Ledger, func(), error) {
	if f.ledger == "" {
		return nil, func() {}, nil
	}
	cfg := f.storeConfig(log, nil)
	cfg.Kind = stores.Kind(f.ledger)
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := stores.Open(openCtx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("checkout ledger: %w", err)
	}
	closeFn := func() {
		if err := b.Close(); err != nil {
			log.Error("app: closing the checkout ledger", "err", err)
		}
	}
	return cart.NewLedger(b.Store, 0), closeFn, nil
}

// storeConfig returns the store configuration the flags describe.
func (f *appFlags) storeConfig(log *slog.Logger, reg prometheus.Registerer) stores.Config {
	quorum, _ := replstore.ParseQuorum(f.replQuorum) // checked by validate
	return stores.Config{
		Kind:             stores.Kind(f.store),
		NodeName:         f.id,
		RedisURL:         f.redis,
		RedisPrefix:      f.redisPrefix,
		RedisCluster:     f.redisCluster,
		RedisSentinel:    f.redisSentinel,
		RedisWait:        f.redisWait,
		ReplQuorum:       quorum,
		RetryOpen:        f.storeRetry,
		AsyncReplication: f.asyncRepl,
		PostgresURL:      f.postgres,
		PostgresSchema:   f.pgSchema,
		SQLitePath:       f.sqlite,
		ClusterListen:    f.clusterListen,
		Peers:            f.peers,
		Secret:           f.secret,
		MaxSessions:      f.maxSessions,
		OldSecrets:       f.oldSecrets,
		Logger:           log,
		Registerer:       reg,
	}
}

// validate checks the flags that can be checked before doing anything and
// returns a usage error (exit status 2) naming the first bad one.
func (f *appFlags) validate() error {
	bad := func(format string, args ...any) error { return usageErrorf("app", format, args...) }
	if err := f.serviceFlags.validate("app"); err != nil {
		return err
	}
	kind := stores.Kind(f.store)
	if err := f.validateLedger(kind); err != nil {
		return err
	}
	switch {
	case !slices.Contains(stores.KindNames(), f.store):
		return bad("invalid value %q for --store: want one of %s", f.store, strings.Join(stores.KindNames(), ", "))
	case kind == stores.Redis && redisSources(f) == 0:
		return bad("--store %s needs --redis URL, --redis-cluster ADDRS or --redis-sentinel MASTER@ADDRS", kind)
	case kind == stores.Redis && redisSources(f) > 1:
		return bad("--redis, --redis-cluster and --redis-sentinel exclude each other: give one")
	case f.redisWait < 0:
		return bad("--redis-wait must not be negative")
	case f.storeRetry < 0:
		return bad("--store-retry must not be negative")
	case kind == stores.Postgres && f.postgres == "":
		return bad("--store %s needs --postgres URL", kind)
	case kind == stores.SQLite && f.sqlite == "":
		return bad("--store %s needs --sqlite PATH", kind)
	case kind == stores.Replicated && f.clusterListen == "":
		return bad("--store %s needs --cluster-listen ADDR", kind)
	case f.secret != "" && len(f.secret) < minSecretLen:
		return bad("--secret must be at least %d bytes", minSecretLen)
	case len(f.oldSecrets) > 0 && kind != stores.Cookie && kind != stores.Replicated:
		return bad("--old-secret is for --store cookie and --store replicated only (the stores keyed by --secret)")
	case slices.ContainsFunc(f.oldSecrets, func(s string) bool { return len(s) < minSecretLen }):
		return bad("--old-secret must be at least %d bytes", minSecretLen)
	case f.maxSessions < 0:
		return bad("--max-sessions must not be negative")
	}
	if q, err := replstore.ParseQuorum(f.replQuorum); err != nil || q > replstore.DefaultConfig().Backups+1 {
		return bad("invalid value %q for --repl-quorum: want majority, one, or a count of copies from 1 to %d (a session's copies)", f.replQuorum, replstore.DefaultConfig().Backups+1)
	}
	for _, a := range f.redisCluster {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return bad("invalid value %q for --redis-cluster: %v", a, err)
		}
	}
	if f.redisSentinel != "" {
		if _, _, err := redisstore.ParseSentinel(f.redisSentinel); err != nil {
			return bad("invalid value %q for --redis-sentinel: want MASTER@HOST:PORT[,HOST:PORT...]", f.redisSentinel)
		}
	}
	if kind == stores.Replicated {
		if _, _, err := net.SplitHostPort(f.clusterListen); err != nil {
			return bad("invalid value %q for --cluster-listen: %v", f.clusterListen, err)
		}
		for _, p := range f.peers {
			if _, _, err := net.SplitHostPort(p); err != nil {
				return bad("invalid value %q for --peers: %v", p, err)
			}
		}
	}
	return nil
}

// validateLedger checks --checkout-ledger against --store kind and the
// address flags its store needs.
func (f *appFlags) validateLedger(kind stores.Kind) error {
	bad := func(format string, args ...any) error { return usageErrorf("app", format, args...) }
	ledger := stores.Kind(f.ledger)
	switch {
	case f.ledger == "":
		return nil
	case kind != stores.Cookie:
		return bad("--checkout-ledger is for --store cookie (a server-side store already holds the one copy of a cart)")
	case !slices.Contains(stores.KindNames(), f.ledger) || !ledger.External():
		return bad("invalid value %q for --checkout-ledger: want redis, postgres or sqlite (a store every replica shares)", f.ledger)
	case ledger == stores.Redis && redisSources(f) != 1:
		return bad("--checkout-ledger redis needs one of --redis URL, --redis-cluster ADDRS or --redis-sentinel MASTER@ADDRS")
	case ledger == stores.Postgres && f.postgres == "":
		return bad("--checkout-ledger postgres needs --postgres URL")
	case ledger == stores.SQLite && f.sqlite == "":
		return bad("--checkout-ledger sqlite needs --sqlite PATH")
	}
	return nil
}

// redisSources counts how many of --redis, --redis-cluster and
// --redis-sentinel were given.
func redisSources(f *appFlags) int {
	n := 0
	for _, given := range []bool{f.redis != "", len(f.redisCluster) > 0, f.redisSentinel != ""} {
		if given {
			n++
		}
	}
	return n
}
