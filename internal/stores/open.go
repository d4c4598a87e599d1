package stores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/pgstore"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/replstore"
	"github.com/statelab/statelab/session/sqlitestore"
)

// Config says where a replica keeps its sessions. Only the fields its Kind
// uses are read.
type Config struct {
	// Kind is one of Kinds.
	Kind Kind
	// NodeName names this replica among its peers (replicated).
	NodeName string
	// RedisURL is the Redis server, e.g. redis://127.0.0.1:6379/0 (redis;
	// one of RedisURL, RedisCluster and RedisSentinel).
	RedisURL string
	// RedisCluster lists some nodes of a Redis Cluster, host:port (redis).
	RedisCluster []string
	// RedisSentinel names a master monitored by Redis Sentinel and some of
	// the sentinels, MASTER@HOST:PORT[,HOST:PORT...] (redis).
	RedisSentinel string
	// RedisWait is how many replicas must confirm each write before it is
	// acknowledged (Redis WAIT); 0 acknowledges at once (redis). See
	// redisstore.Options.Wait.
	RedisWait int
	// RedisPrefix is prepended to every Redis key; empty means the
	// redisstore default (redis).
	RedisPrefix string
	// PostgresURL is the PostgreSQL database, e.g.
	// postgres://user@host:5432/db?sslmode=disable (postgres).
	PostgresURL string
	// PostgresSchema is the schema of the session table; empty means the
	// pgstore default (postgres).
	PostgresSchema string
	// SQLitePath is the SQLite database file; every replica of a cluster
	// must name the same one (sqlite).
	SQLitePath string
	// ClusterListen is where this replica meets its peers, host:port
	// (replicated).
	ClusterListen string
	// Peers are some peers' ClusterListen addresses to join through
	// (replicated).
	Peers []string
	// AsyncReplication acknowledges a write once the session's primary has
	// it and copies it to the backups in the background, instead of after
	// the backups have it (replicated). Faster; a write acknowledged just
	// before the primary dies can be lost.
	AsyncReplication bool
	// ReplQuorum is replstore.Config.Quorum: how many copies of a session
	// must have a write before it is acknowledged; 0
	// (replstore.QuorumMajority) means a majority of them, 1
	// (replstore.QuorumOne) none (replicated).
	ReplQuorum int
	// Secret is the key material the replicas share: it seals cookies
	// (cookie) and encrypts and authenticates replication (replicated).
	Secret string
	// OldSecrets are previous Secrets still accepted during a key
	// rotation: they open sealed cookies, new ones are sealed with Secret
	// (cookie); peers proving or encrypting with them are accepted, this
	// replica uses Secret (replicated).
	OldSecrets []string
	// MaxSessions caps the sessions a memory store holds; beyond it new
	// sessions are refused (503), existing ones keep working. Zero: no cap
	// (memory).
	MaxSessions int
	// RetryOpen, when above zero, keeps a replica whose external store
	// (redis, postgres) does not answer at start running: Open returns a
	// Backend whose Store fails every call with ErrNotOpenYet (an
	// ErrUnavailable: 503, /readyz not ready) and tries to open the store
	// again every RetryOpen in the background until it answers. Zero makes
	// Open return the error.
	RetryOpen time.Duration
	// Logger receives the store's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer, if not nil, gets the store's Prometheus metrics.
	Registerer prometheus.Registerer
}

// Backend is an open session store: either a server-side Store or, for the
// cookie kind, a Sealer. Close it when done.
type Backend struct {
	// Kind is the Config.Kind it was opened with.
	Kind Kind
	// Store holds the sessions server-side; nil for the cookie kind.
	Store session.Store
	// Sealer seals sessions into cookies; nil except for the cookie kind.
	Sealer session.Sealer

	close func() error
}

// Open opens the store cfg names. It is the one place that knows every
// store package; the services themselves only see a session.Manager.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b := &Backend{Kind: cfg.Kind, close: func() error { return nil }}
	switch cfg.Kind {
	case Memory:
		s := memstore.NewWithOptions(memstore.Options{MaxSessions: cfg.MaxSessions})
		b.Store, b.close = s, s.Close
	case Replicated:
		rc := replstore.DefaultConfig()
		rc.NodeName = cfg.NodeName
		rc.BindAddr = cfg.ClusterListen
		rc.Peers = cfg.Peers
		rc.Async = cfg.AsyncReplication
		rc.Quorum = cfg.ReplQuorum
		rc.Secret = []byte(cfg.Secret)
		for _, old := range cfg.OldSecrets {
			rc.OldSecrets = append(rc.OldSecrets, []byte(old))
		}
		rc.Logger = cfg.Logger
		rc.Registerer = cfg.Registerer
		s, err := replstore.New(ctx, rc)
		if err != nil {
			return nil, fmt.Errorf("stores: replicated store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case Redis:
		if err := b.openExternal(ctx, cfg, func(ctx context.Context) (session.Store, func() error, error) {
			s, err := openRedis(ctx, cfg)
			if err != nil {
				return nil, nil, fmt.Errorf("stores: redis store: %w", err)
			}
			return s, s.Close, nil
		}); err != nil {
			return nil, err
		}
	case Postgres:
		if err := b.openExternal(ctx, cfg, func(ctx context.Context) (session.Store, func() error, error) {
			s, err := pgstore.Open(ctx, cfg.PostgresURL, pgstore.Options{Schema: cfg.PostgresSchema, Logger: cfg.Logger})
			if err != nil {
				return nil, nil, fmt.Errorf("stores: postgres store: %w", err)
			}
			return s, s.Close, nil
		}); err != nil {
			return nil, err
		}
	case SQLite:
		s, err := sqlitestore.Open(ctx, cfg.SQLitePath, sqlitestore.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("stores: sqlite store: %w", err)
		}
		unregister, err := sqliteMetrics(cfg.Registerer, s)
		if err != nil {
			return nil, errors.Join(err, s.Close())
		}
		b.Store, b.close = s, func() error { unregister(); return s.Close() }
	case Cookie:
		s, err := cookiestore.FromSecret(cfg.Secret, cfg.OldSecrets...)
		if err != nil {
			return nil, fmt.Errorf("stores: cookie store: %w", err)
		}
		b.Sealer = s
	default:
		_, err := ParseKind(string(cfg.Kind))
		return nil, err
	}
	return b, nil
}

// openRedis opens the Redis store cfg names: a cluster, a sentinel set, or
// one server.
func openRedis(ctx context.Context, cfg Config) (*redisstore.Store, error) {
	opts := redisstore.Options{Prefix: cfg.RedisPrefix, Wait: cfg.RedisWait}
	switch {
	case len(cfg.RedisCluster) > 0:
		return redisstore.OpenCluster(ctx, cfg.RedisCluster, opts)
	case cfg.RedisSentinel != "":
		return redisstore.OpenSentinel(ctx, cfg.RedisSentinel, opts)
	}
	return redisstore.OpenURL(ctx, cfg.RedisURL, opts)
}

// openExternal opens an external store with open. When it is unreachable
// and cfg.RetryOpen is set, the backend gets a store that keeps trying in
// the background instead.
func (b *Backend) openExternal(ctx context.Context, cfg Config, open opener) error {
	attempt := max(cfg.RetryOpen, 5*time.Second)
	if cfg.RetryOpen > 0 {
		// Do not wait long for a store that may be down: serve 503 and
		// keep trying.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, attempt)
		defer cancel()
	}
	s, closeFn, err := open(ctx)
	if err == nil {
		b.Store, b.close = s, closeFn
		return nil
	}
	if cfg.RetryOpen <= 0 || !errors.Is(err, session.ErrUnavailable) {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Warn("stores: store not reachable; serving 503 and retrying in the background", "store", cfg.Kind, "retry", cfg.RetryOpen, "err", err)
	l := openLate(open, err, cfg.RetryOpen, attempt, log)
	b.Store, b.close = l, l.Close
	return nil
}

// NewManager returns a session.Manager over the backend: server-side for a
// Store, client-held for a Sealer.
func (b *Backend) NewManager(cfg session.Config) (*session.Manager, error) {
	if b.Sealer != nil {
		return session.NewClientManager(b.Sealer, cfg)
	}
	return session.NewManager(b.Store, cfg)
}

// Close releases the store: it stops background work, closes connections
// and, for a replicated store, hands this replica's sessions to its peers.
func (b *Backend) Close() error { return b.close() }
