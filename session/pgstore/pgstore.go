// Package pgstore is a session.Store in PostgreSQL, through a pgx v5 pool.
//
// Records live in one table (Options.Schema, Options.Table) created by an
// embedded, idempotent migration that Open and New run under an advisory
// lock. Every operation is one statement, so it is atomic without an explicit
// transaction:
//
//   - Put with a version is UPDATE … SET …, version = version+1 WHERE key = $1
//     AND version = $2 AND expires_at > now(); no row updated means conflict.
//   - Put create-only is INSERT … ON CONFLICT (key) DO UPDATE … WHERE the
//     existing row has expired; no row returned means a live record exists.
//   - Touch updates idle_expiry only.
//
// Expiry is decided in the database's clock (now()), in every statement, so
// it does not depend on the sweeper; the sweeper goroutine only deletes
// expired rows in batches to keep the table small.
//
// The package owns the table and its SQL. It does not own the pool's
// configuration unless the Store was made by Open.
package pgstore

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/sqlstore"
)

// Defaults for the zero values of Options.
const (
	DefaultSchema        = "statelab"
	DefaultTable         = "sessions"
	DefaultSweepInterval = time.Minute
	DefaultTimeout       = 5 * time.Second

	// DefaultConnectTimeout bounds one connection attempt of a pool made by
	// Open when the URL sets no connect_timeout.
	DefaultConnectTimeout = 2 * time.Second

	// CancelGrace is how long a call of a Store made by Open waits, after
	// its context is done, for the server to cancel the running statement
	// before it drops the connection.
	CancelGrace = time.Second
)

// Options configures a Store. The zero value is valid.
type Options struct {
	// Schema is the PostgreSQL schema of the session table; empty means
	// DefaultSchema. It is created if missing. Tests give each run its own.
	Schema string

	// Table is the session table's name; empty means DefaultTable.
	Table string

	// SweepInterval is how often expired rows are deleted; zero means
	// DefaultSweepInterval, and a negative value disables the sweeper (for
	// example when another process or a cron job sweeps).
	SweepInterval time.Duration

	// Timeout bounds each call whose context has no earlier deadline; zero
	// means DefaultTimeout.
	Timeout time.Duration

	// Logger receives the sweeper's errors; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a session.Store, session.Counter and session.Pinger in
// PostgreSQL. It is safe for concurrent use by many goroutines and many
// processes sharing one database.
//
// Its methods are those every SQL store shares: Get, Put, Touch, Delete,
// Count, Ping, Sweep (deletes expired rows in batches and returns how many;
// the sweeper goroutine calls it every SweepInterval, and deployments that
// disable the goroutine may call it from elsewhere) and Close (stops the
// sweeper and, if the Store made its pool with Open, closes the pool; safe to
// call more than once).
type Store struct {
	*core
}

// core is the dialect-independent half of Store.
type core = sqlstore.Store

// dialect runs the Store's statements on a pool.
type dialect struct {
	pool          *pgxpool.Pool
	owned         bool // Close closes pool: Open made it
	schema, table string
	q             queries
}

// queries holds the statements, with the table's quoted name filled in.
type queries struct {
	get, update, create, touch, del, count, sweep string
}

// Compile-time checks that Store implements the contracts it claims.
var (
	_ session.Store   = (*Store)(nil)
	_ session.Counter = (*Store)(nil)
	_ session.Pinger  = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// identifier is what Options.Schema and Options.Table may be: a plain
// PostgreSQL identifier, so that no quoting surprises anyone.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Open connects to the database at url (a postgres:// URL or key=value DSN,
// see pgxpool.ParseConfig), runs the migration and returns a Store that owns
// the pool. An unreachable server returns an error wrapping
// session.ErrUnavailable.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	schema, table, err := names(opts)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	// pgx's default reaction to a done context is to drop the connection,
	// which leaves the server running the statement: a Put blocked on a row
	// lock would still commit once the lock is released, after its caller
	// was told it failed. Ask the server to cancel the statement instead,
	// and drop the connection only if that takes longer than CancelGrace.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: CancelGrace}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return open(ctx, &dialect{pool: pool, owned: true, schema: schema, table: table}, opts)
}

// New returns a Store on pool, after running the migration. The caller keeps
// ownership of pool: Close does not close it. Configure the pool's
// connections with a pgconn.CancelRequestContextWatcherHandler (as Open does)
// so that a call whose context ends while it waits in the server is cancelled
// there, not left to commit later.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	schema, table, err := names(opts)
	if err != nil {
		return nil, err
	}
	return open(ctx, &dialect{pool: pool, schema: schema, table: table}, opts)
}

// names returns the schema and table opts name, with their defaults, or an
// error when one is not a plain identifier.
func names(opts Options) (schema, table string, err error) {
	schema, table = cmp.Or(opts.Schema, DefaultSchema), cmp.Or(opts.Table, DefaultTable)
	for _, id := range []struct{ what, name string }{{"schema", schema}, {"table", table}} {
		if !identifier.MatchString(id.name) {
			return "", "", fmt.Errorf("pgstore: %s name %q: want a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)", id.what, id.name)
		}
	}
	return schema, table, nil
}

// open migrates and starts the Store on d; on error it has closed d.
func open(ctx context.Context, d *dialect, opts Options) (*Store, error) {
	d.q = makeQueries(pgx.Identifier{d.schema, d.table}.Sanitize())
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c, err := sqlstore.Open(ctx, d, sqlstore.Config{
		Name:          "pgstore",
		MigrateOp:     "migrate",
		Timeout:       timeout,
		SweepInterval: cmp.Or(opts.SweepInterval, DefaultSweepInterval),
		Logger:        opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Store{c}, nil
}

func makeQueries(t string) queries {
	const cols = `data, version, idle_expiry, absolute_expiry`
	return queries{
		get: `SELECT ` + cols + ` FROM ` + t + ` WHERE key = $1 AND expires_at > now()`,
		update: `UPDATE ` + t + ` SET data = $2, idle_expiry = $3, absolute_expiry = $4, version = version + 1
			WHERE key = $1 AND version = $5 AND expires_at > now() RETURNING version`,
		// A new record's version is the clock in microseconds (and above any
		// version of the expired row it replaces), so a record re-created
		// after a delete or expiry does not reuse a version of its
		// predecessor.
		create: `INSERT INTO ` + t + ` AS cur (key, data, idle_expiry, absolute_expiry, version)
			VALUES ($1, $2, $3, $4, floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
			ON CONFLICT (key) DO UPDATE SET data = excluded.data, idle_expiry = excluded.idle_expiry,
				absolute_expiry = excluded.absolute_expiry, version = GREATEST(cur.version + 1, excluded.version)
			WHERE cur.expires_at <= now()
			RETURNING version`,
		touch: `UPDATE ` + t + ` SET idle_expiry = $2 WHERE key = $1 AND expires_at > now()`,
		del:   `DELETE FROM ` + t + ` WHERE key = $1`,
		count: `SELECT count(*) FROM ` + t + ` WHERE expires_at > now()`,
		sweep: `DELETE FROM ` + t + ` WHERE key IN (SELECT key FROM ` + t + ` WHERE expires_at <= now() LIMIT ` +
			fmt.Sprint(sqlstore.SweepBatch) + ` FOR UPDATE SKIP LOCKED)`,
	}
}

// Migrate runs the embedded migrations in one transaction, under an advisory
// lock keyed by the table, so concurrent Opens of one table take turns
// instead of racing on CREATE … IF NOT EXISTS.
func (d *dialect) Migrate(ctx context.Context) error {
	files, err := migrations.ReadDir("migrations")
	if err != nil {
		return err
	}
	h := fnv.New64a()
	h.Write([]byte("statelab/pgstore\x00" + d.schema + "\x00" + d.table))
	lock := int64(h.Sum64() & math.MaxInt64)
	repl := strings.NewReplacer(
		"{{schema}}", pgx.Identifier{d.schema}.Sanitize(),
		"{{table}}", pgx.Identifier{d.table}.Sanitize(),
		"{{index}}", pgx.Identifier{d.table + "_expires_at_idx"}.Sanitize(),
	)
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lock); err != nil {
			return err
		}
		for _, f := range files {
			sql, err := migrations.ReadFile("migrations/" + f.Name())
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, repl.Replace(string(sql))); err != nil {
				return fmt.Errorf("%s: %w", f.Name(), err)
			}
		}
		return nil
	})
}

// Close closes the pool if Open made it.
func (d *dialect) Close() error {
	if d.owned {
		d.pool.Close()
	}
	return nil
}

func (d *dialect) Get(ctx context.Context, key string) (rec session.Record, found bool, err error) {
	var (
		version int64
		abs     *time.Time
	)
	err = d.pool.QueryRow(ctx, d.q.get, key).Scan(&rec.Data, &version, &rec.IdleExpiry, &abs)
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Record{}, false, nil
	}
	if err != nil {
		return session.Record{}, false, err
	}
	rec.Version = uint64(version)
	if abs != nil {
		rec.AbsoluteExpiry = *abs
	}
	return rec, true, nil
}

func (d *dialect) Create(ctx context.Context, key string, rec session.Record) (int64, bool, error) {
	return d.returning(d.pool.QueryRow(ctx, d.q.create, key, rec.Data, rec.IdleExpiry, absolute(rec)))
}

func (d *dialect) Update(ctx context.Context, key string, rec session.Record) (int64, bool, error) {
	return d.returning(d.pool.QueryRow(ctx, d.q.update, key, rec.Data, rec.IdleExpiry, absolute(rec), int64(rec.Version)))
}

// returning scans the version a conditional write returned; ok is false when
// its condition did not hold (no row).
func (d *dialect) returning(row pgx.Row) (version int64, ok bool, err error) {
	err = row.Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return version, err == nil, err
}

// absolute is rec's absolute expiry as a nullable column: nil for no limit.
func absolute(rec session.Record) *time.Time {
	if rec.AbsoluteExpiry.IsZero() {
		return nil
	}
	return &rec.AbsoluteExpiry
}

func (d *dialect) Touch(ctx context.Context, key string, idleExpiry time.Time) (bool, error) {
	tag, err := d.pool.Exec(ctx, d.q.touch, key, idleExpiry)
	return tag.RowsAffected() > 0, err
}

func (d *dialect) Delete(ctx context.Context, key string) error {
	_, err := d.pool.Exec(ctx, d.q.del, key)
	return err
}

func (d *dialect) Count(ctx context.Context) (n int64, err error) {
	err = d.pool.QueryRow(ctx, d.q.count).Scan(&n)
	return n, err
}

func (d *dialect) Ping(ctx context.Context) error {
	return d.pool.Ping(ctx)
}

func (d *dialect) Sweep(ctx context.Context) (int64, error) {
	tag, err := d.pool.Exec(ctx, d.q.sweep)
	return tag.RowsAffected(), err
}

// unavailableClasses are the SQLSTATE classes that mean the server cannot
// serve now, rather than that the statement was wrong: connection exceptions,
// insufficient resources, operator intervention (statement cancelled, shutdown,
// cannot connect now), system errors.
var unavailableClasses = []string{"08", "53", "57", "58"}

// Unavailable reports whether err is not an error about the statement from a
// working server: refused, reset, timed out, shut down, pool closed, or a
// PgError in one of unavailableClasses.
func (d *dialect) Unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true
	}
	for _, c := range unavailableClasses {
		if strings.HasPrefix(pgErr.Code, c) {
			return true
		}
	}
	return false
}
