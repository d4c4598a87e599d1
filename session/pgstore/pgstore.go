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
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/storekey"
	"github.com/statelab/statelab/session/internal/sweeper"
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

	// sweepBatch is how many expired rows one sweeper statement deletes, so
	// a sweep never holds many row locks at once.
	sweepBatch = 1000
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

// Store is a session.Store in PostgreSQL. It is safe for concurrent use by
// many goroutines and many processes sharing one database.
type Store struct {
	pool    *pgxpool.Pool
	owned   bool // Close closes pool: Open made it
	timeout time.Duration
	log     *slog.Logger
	q       queries

	sweeper   *sweeper.Sweeper
	closeOnce sync.Once
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
	s, err := New(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// New returns a Store on pool, after running the migration. The caller keeps
// ownership of pool: Close does not close it. Configure the pool's
// connections with a pgconn.CancelRequestContextWatcherHandler (as Open does)
// so that a call whose context ends while it waits in the server is cancelled
// there, not left to commit later.
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	schema, table := opts.Schema, opts.Table
	if schema == "" {
		schema = DefaultSchema
	}
	if table == "" {
		table = DefaultTable
	}
	for _, id := range []struct{ what, name string }{{"schema", schema}, {"table", table}} {
		if !identifier.MatchString(id.name) {
			return nil, fmt.Errorf("pgstore: %s name %q: want a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 bytes)", id.what, id.name)
		}
	}
	s := &Store{
		pool:    pool,
		timeout: opts.Timeout,
		log:     opts.Logger,
		q:       makeQueries(pgx.Identifier{schema, table}.Sanitize()),
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.migrate(ctx, schema, table); err != nil {
		return nil, err
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	s.sweeper = sweeper.Start(interval, s.sweepOnce)
	return s, nil
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
			fmt.Sprint(sweepBatch) + ` FOR UPDATE SKIP LOCKED)`,
	}
}

// migrate runs the embedded migrations in one transaction, under an advisory
// lock keyed by the table, so concurrent Opens of one table take turns
// instead of racing on CREATE … IF NOT EXISTS.
func (s *Store) migrate(ctx context.Context, schema, table string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	files, err := migrations.ReadDir("migrations")
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("statelab/pgstore\x00" + schema + "\x00" + table))
	lock := int64(h.Sum64() & math.MaxInt64)
	repl := strings.NewReplacer(
		"{{schema}}", pgx.Identifier{schema}.Sanitize(),
		"{{table}}", pgx.Identifier{table}.Sanitize(),
		"{{index}}", pgx.Identifier{table + "_expires_at_idx"}.Sanitize(),
	)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
	if err != nil {
		return s.fail(ctx, "migrate", err)
	}
	return nil
}

// Close stops the sweeper and, if the Store made its pool (Open), closes it.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.sweeper.Stop()
		if s.owned {
			s.pool.Close()
		}
	})
	return nil
}

// bound gives ctx the Store's timeout unless it already has an earlier
// deadline, so no call waits forever on a silent server.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// check is the precondition of every method: a live ctx and a valid key.
func check(ctx context.Context, op, key string) error {
	return storekey.CheckCall(ctx, "pgstore", op, key)
}

// Get returns the live record under key, or an error wrapping
// session.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	if err := check(ctx, "get", key); err != nil {
		return session.Record{}, err
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		rec     session.Record
		version int64
		abs     *time.Time
	)
	err := s.pool.QueryRow(qctx, s.q.get, key).Scan(&rec.Data, &version, &rec.IdleExpiry, &abs)
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Record{}, fmt.Errorf("pgstore: get: %w", session.ErrNotFound)
	}
	if err != nil {
		return session.Record{}, s.fail(ctx, "get", err)
	}
	rec.Version = uint64(version)
	if abs != nil {
		rec.AbsoluteExpiry = *abs
	}
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	return rec, nil
}

// Put writes rec under key if the stored version is rec.Version (zero: no live
// record) and returns the new version; a mismatch returns an error wrapping
// session.ErrConflict. It is one statement.
func (s *Store) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if err := check(ctx, "put", key); err != nil {
		return 0, err
	}
	if rec.Version > math.MaxInt64 {
		// No stored version is this large (they are bigint).
		return 0, fmt.Errorf("pgstore: put: version %d is not the stored one: %w", rec.Version, session.ErrConflict)
	}
	data := rec.Data
	if data == nil {
		data = []byte{} // bytea NOT NULL; pgx sends a nil slice as NULL
	}
	var abs *time.Time
	if !rec.AbsoluteExpiry.IsZero() {
		abs = &rec.AbsoluteExpiry
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		version int64
		err     error
	)
	if rec.Version == 0 {
		err = s.pool.QueryRow(qctx, s.q.create, key, data, rec.IdleExpiry, abs).Scan(&version)
	} else {
		err = s.pool.QueryRow(qctx, s.q.update, key, data, rec.IdleExpiry, abs, int64(rec.Version)).Scan(&version)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if rec.Version == 0 {
			return 0, fmt.Errorf("pgstore: put: create-only but a live record exists: %w", session.ErrConflict)
		}
		return 0, fmt.Errorf("pgstore: put: version %d is not the stored one: %w", rec.Version, session.ErrConflict)
	}
	if err != nil {
		return 0, s.fail(ctx, "put", err)
	}
	return uint64(version), nil
}

// Touch moves the idle expiry of the live record under key to idleExpiry
// without changing its data or version; a missing or expired record returns
// an error wrapping session.ErrNotFound.
func (s *Store) Touch(ctx context.Context, key string, idleExpiry time.Time) error {
	if err := check(ctx, "touch", key); err != nil {
		return err
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(qctx, s.q.touch, key, idleExpiry)
	if err != nil {
		return s.fail(ctx, "touch", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: touch: %w", session.ErrNotFound)
	}
	return nil
}

// Delete removes the record under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, "delete", key); err != nil {
		return err
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(qctx, s.q.del, key); err != nil {
		return s.fail(ctx, "delete", err)
	}
	return nil
}

// Count returns the number of live records in the table.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("pgstore: count: %w", err)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(qctx, s.q.count).Scan(&n); err != nil {
		return 0, s.fail(ctx, "count", err)
	}
	return int(n), nil
}

// Ping returns nil when the database answers, otherwise an error wrapping
// session.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.pool.Ping(qctx); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// Sweep deletes expired rows, in batches, and returns how many it deleted.
// The sweeper goroutine calls it every SweepInterval; it is exported for
// deployments that disable the goroutine and sweep from elsewhere.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for {
		qctx, cancel := s.bound(ctx)
		tag, err := s.pool.Exec(qctx, s.q.sweep)
		cancel()
		if err != nil {
			return total, s.fail(ctx, "sweep", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch {
			return total, nil
		}
	}
}

// sweepOnce is the background sweep: it logs what Sweep did.
func (s *Store) sweepOnce(ctx context.Context) {
	n, err := s.Sweep(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("pgstore: sweep failed", "err", err)
	case n > 0:
		s.log.Debug("pgstore: swept expired sessions", "deleted", n)
	}
}

// unavailableClasses are the SQLSTATE classes that mean the server cannot
// serve now, rather than that the statement was wrong: connection exceptions,
// insufficient resources, operator intervention (statement cancelled, shutdown,
// cannot connect now), system errors.
var unavailableClasses = []string{"08", "53", "57", "58"}

// fail wraps err from a database call made for ctx. A cancelled ctx gives
// ctx's error alone; an error from a working server about the statement stays
// a plain error; everything else (refused, reset, timed out, shut down, pool
// closed) wraps session.ErrUnavailable, and ctx's error too when its deadline
// passed.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.Canceled):
		return fmt.Errorf("pgstore: %s: %w", op, ctxErr)
	case ctxErr != nil:
		// The caller's deadline passed while the backend worked: whatever
		// err says (a timeout, a cancelled statement), the backend was too
		// slow to serve.
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("pgstore: %s: %w: %w", op, session.ErrUnavailable, err)
		}
		return fmt.Errorf("pgstore: %s: %w: %w (%w)", op, session.ErrUnavailable, err, ctxErr)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		unavailable := false
		for _, c := range unavailableClasses {
			if strings.HasPrefix(pgErr.Code, c) {
				unavailable = true
				break
			}
		}
		if !unavailable {
			return fmt.Errorf("pgstore: %s: %w", op, err)
		}
	}
	return fmt.Errorf("pgstore: %s: %w: %w", op, session.ErrUnavailable, err)
}
