package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/stores"
)

// gameFlags are the command line of statelab game.
type gameFlags struct {
	listen        string
	id            string
	strategy      string
	store         string
	redis         string
	postgres      string
	sqlite        string
	clusterListen string
	peers         listFlag
	secret        string
	tick          time.Duration
	checkpoint    time.Duration
	lease         time.Duration
	drainDelay    time.Duration
	idle          time.Duration
}

// gameStores are the --store kinds statelab game accepts: those outside
// the replicas, which every replica can reach.
var gameStores = []stores.Kind{stores.Redis, stores.Postgres, stores.SQLite}

// gameStoreNames is gameStores joined with sep, for help and errors.
func gameStoreNames(sep string) string {
	names := make([]string, len(gameStores))
	for i, k := range gameStores {
		names[i] = string(k)
	}
	return strings.Join(names, sep)
}

// runGame runs one replica of the game server until ctx is cancelled, then
// hands its rooms over (final checkpoint, lease released) and leaves the
// cluster.
func runGame(ctx context.Context, m *Main, args []string) error {
	var f gameFlags
	fs := newFlagSet(m, "game", "--listen ADDR --id NAME --strategy S [--store KIND ...] [flags]")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8090", "`address` to serve HTTP and WebSocket on (port 0 picks a free port)")
	fs.StringVar(&f.id, "id", "", "replica `name`, unique in the cluster (default: host name and port)")
	fs.StringVar(&f.strategy, "strategy", "memory", "where rooms live: "+strings.Join(game.StrategyNames(), "|"))
	fs.StringVar(&f.store, "store", "", "store `kind` for checkpoint, replicated (lease) and external: "+gameStoreNames("|"))
	fs.StringVar(&f.redis, "redis", "", "Redis `URL` for --store redis")
	fs.StringVar(&f.postgres, "postgres", "", "PostgreSQL `URL` for --store postgres")
	fs.StringVar(&f.sqlite, "sqlite", "statelab-game.db", "SQLite database `file` for --store sqlite (replicas share it)")
	fs.StringVar(&f.clusterListen, "cluster-listen", "", "`address` where replicas gossip membership (empty: this replica alone owns every room)")
	fs.Var(&f.peers, "peers", "peers' --cluster-listen `addresses` to join through (comma-separated or repeated)")
	fs.StringVar(&f.secret, "secret", "", "key `material` replicas share: encrypts gossip, authenticates replication (required by replicated; at least 16 bytes)")
	fs.DurationVar(&f.tick, "tick", game.DefaultTick, "room tick period")
	fs.DurationVar(&f.checkpoint, "checkpoint", game.DefaultCheckpoint, "checkpoint interval (--strategy checkpoint)")
	fs.DurationVar(&f.lease, "lease", game.DefaultLease, "owner lease duration; renewed every min(checkpoint, lease/3)")
	fs.DurationVar(&f.idle, "idle", game.DefaultIdleTimeout, "passivate a room (write it, release its lease, free its memory) after this long without input or WebSocket; 0: never (memory rooms never are)")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "on SIGTERM, keep serving this long with /readyz at 503 first")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	info, err := f.validate()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageErrorf("game", "cannot listen on --listen %q: %v", f.listen, err)
	}
	defer ln.Close()
	if f.id == "" {
		f.id = defaultID(ln)
	}
	log = log.With("replica", f.id)
	reg := newServiceRegistry()

	cfg := game.Config{ID: f.id, Strategy: game.Strategy(f.strategy), Tick: f.tick, Checkpoint: f.checkpoint,
		Lease: f.lease, Secret: f.secret, IdleTimeout: f.idle, Registry: reg, Logger: log}
	if f.idle == 0 {
		cfg.IdleTimeout = -1
	}
	if info.NeedsStore {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		backend, err := stores.Open(openCtx, stores.Config{Kind: stores.Kind(f.store), RedisURL: f.redis,
			RedisPrefix: "statelab-game:", PostgresURL: f.postgres, SQLitePath: f.sqlite, Logger: log, Registerer: reg})
		cancel()
		if err != nil {
			return fmt.Errorf("game: %w", err)
		}
		defer backend.Close()
		cfg.Store = backend.Store
	}
	self := game.Member{Name: f.id, HTTP: ln.Addr().String()}
	attrs := []any{"addr", ln.Addr().String(), "strategy", f.strategy, "store", f.store}
	leave := func() {}
	if f.clusterListen != "" {
		cp, err := game.NewClusterPlacement(game.ClusterConfig{Self: self, BindAddr: f.clusterListen,
			Peers: f.peers, Secret: f.secret, Logger: log})
		if err != nil {
			return fmt.Errorf("game: %w", err)
		}
		var once sync.Once
		leave = func() {
			once.Do(func() {
				cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := cp.Close(cctx); err != nil {
					log.Warn("game: leaving the cluster", "err", err)
				}
			})
		}
		defer leave()
		cfg.Placement = cp
		attrs = append(attrs, "cluster_addr", cp.Addr())
	}
	srv, err := game.NewServer(cfg)
	if err != nil {
		return fmt.Errorf("game: %w", err)
	}
	return serveGame(ctx, log, ln, srv, f.drainDelay, leave, attrs)
}

// serveGame serves srv on ln until ctx ends, then drains, leaves the
// cluster (so the peers stop placing rooms here), hands the rooms over
// and stops.
func serveGame(ctx context.Context, log *slog.Logger, ln net.Listener, srv *game.Server, drainDelay time.Duration, leave func(), attrs []any) error {
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("game: serving", attrs...)
	return serveUntil(ctx, log, ln, hs, stopPlan{cmd: "game", drain: srv.Drain, drainDelay: drainDelay,
		stopping: "leaving the cluster, handing rooms over", before: func() {
			leave()
			srv.Close()
		}, timeout: 5 * time.Second})
}

// validate checks the flags and returns a usage error naming the first bad
// one.
func (f *gameFlags) validate() (game.StrategyInfo, error) {
	bad := func(format string, args ...any) (game.StrategyInfo, error) {
		return game.StrategyInfo{}, usageErrorf("game", format, args...)
	}
	info, ok := game.Lookup(f.strategy)
	switch {
	case !ok:
		return bad("invalid value %q for --strategy: want one of %s", f.strategy, strings.Join(game.StrategyNames(), ", "))
	case f.strategy == string(game.StrategyReplicated) && f.secret == "":
		return bad("--strategy replicated needs --secret (it authenticates the copies sent to backups)")
	case info.NeedsStore && f.store == "":
		return bad("--strategy %s needs --store (%s)", f.strategy, gameStoreNames(", "))
	case f.store != "" && !slices.Contains(gameStores, stores.Kind(f.store)):
		return bad("invalid value %q for --store: want one of %s", f.store, gameStoreNames(", "))
	case stores.Kind(f.store) == stores.Redis && f.redis == "":
		return bad("--store redis needs --redis URL")
	case stores.Kind(f.store) == stores.Postgres && f.postgres == "":
		return bad("--store postgres needs --postgres URL")
	case stores.Kind(f.store) == stores.SQLite && f.sqlite == "":
		return bad("--store sqlite needs --sqlite PATH")
	case f.tick <= 0:
		return bad("--tick must be positive")
	case f.checkpoint <= 0:
		return bad("--checkpoint must be positive")
	case f.lease < 3*f.tick:
		return bad("--lease must be at least 3 ticks")
	case f.drainDelay < 0:
		return bad("--drain-delay must not be negative")
	case f.idle < 0:
		return bad("--idle must not be negative")
	case f.secret != "" && len(f.secret) < minSecretLen:
		return bad("--secret must be at least %d bytes", minSecretLen)
	case f.id != "" && game.ValidateID(f.id) != nil:
		return bad("invalid value %q for --id: use 1-64 of A-Z a-z 0-9 - _", f.id)
	case len(f.peers) > 0 && f.clusterListen == "":
		return bad("--peers needs --cluster-listen ADDR")
	}
	for name, addrs := range map[string][]string{"--listen": {f.listen}, "--cluster-listen": {f.clusterListen}, "--peers": f.peers} {
		for _, a := range addrs {
			if a == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				return bad("invalid value %q for %s: %v", a, name, err)
			}
		}
	}
	return info, nil
}
