package cart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/pgstore"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/replstore"
	"github.com/statelab/statelab/session/sqlitestore"
)

// StoreKinds lists the values of StoreConfig.Kind (the app's --store).
var StoreKinds = []string{"memory", "replicated", "redis", "postgres", "sqlite", "cookie"}

// ErrUnknownStore is returned by OpenStore for a Kind not in StoreKinds.
var ErrUnknownStore = errors.New("cart: unknown store kind")

// StoreConfig says where a replica keeps its sessions. Only the fields its
// Kind uses are read.
type StoreConfig struct {
	// Kind is one of StoreKinds.
	Kind string
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
	// Kind is the StoreConfig.Kind it was opened with.
	Kind string
	// Store holds the sessions server-side; nil for the cookie kind.
	Store session.Store
	// Sealer seals sessions into cookies; nil except for the cookie kind.
	Sealer session.Sealer

	close func() error
}

// OpenStore opens the store cfg names. It is the one place that knows every
// store package; the cart code itself only sees a session.Manager.
func OpenStore(ctx context.Context, cfg StoreConfig) (*Backend, error) {
	b := &Backend{Kind: cfg.Kind, close: func() error { return nil }}
	switch cfg.Kind {
	case "memory":
		s := memstore.NewWithOptions(memstore.Options{MaxSessions: cfg.MaxSessions})
		b.Store, b.close = s, s.Close
	case "replicated":
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
			return nil, fmt.Errorf("cart: replicated store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case "redis":
		s, err := redisstore.OpenURL(ctx, cfg.RedisURL, redisstore.Options{Prefix: cfg.RedisPrefix})
		if err != nil {
			return nil, fmt.Errorf("cart: redis store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case "postgres":
		s, err := pgstore.Open(ctx, cfg.PostgresURL, pgstore.Options{Schema: cfg.PostgresSchema, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("cart: postgres store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case "sqlite":
		s, err := sqlitestore.Open(ctx, cfg.SQLitePath, sqlitestore.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("cart: sqlite store: %w", err)
		}
		b.Store, b.close = s, s.Close
	case "cookie":
		s, err := cookiestore.FromSecret(cfg.Secret)
		if err != nil {
			return nil, fmt.Errorf("cart: cookie store: %w", err)
		}
		b.Sealer = s
	default:
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownStore, cfg.Kind, strings.Join(StoreKinds, ", "))
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
