package stores

import (
	"context"
	"fmt"
	"log/slog"

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
	// RedisURL is the Redis server, e.g. redis://127.0.0.1:6379/0 (redis).
	RedisURL string
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
	// Secret is the key material the replicas share: it seals cookies
	// (cookie) and encrypts and authenticates replication (replicated).
	Secret string
	// MaxSessions caps the sessions a memory store holds; beyond it new
	// sessions are refused (503), existing ones keep working. Zero: no cap
	// (memory).
	MaxSessions int
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
		rc.Secret = []byte(cfg.Secret)
		rc.Logger = cfg.Logger
		rc.Registerer = cfg.Registerer
		s, err := replstore.New(ctx, rc)
		if err != nil {
			return nil, fmt.Errorf("stores: replicated store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case Redis:
		s, err := redisstore.OpenURL(ctx, cfg.RedisURL, redisstore.Options{Prefix: cfg.RedisPrefix})
		if err != nil {
			return nil, fmt.Errorf("stores: redis store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case Postgres:
		s, err := pgstore.Open(ctx, cfg.PostgresURL, pgstore.Options{Schema: cfg.PostgresSchema, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("stores: postgres store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case SQLite:
		s, err := sqlitestore.Open(ctx, cfg.SQLitePath, sqlitestore.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("stores: sqlite store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case Cookie:
		s, err := cookiestore.FromSecret(cfg.Secret)
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
