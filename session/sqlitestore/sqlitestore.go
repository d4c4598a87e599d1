// Package sqlitestore is a session.Store in a SQLite file, through the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// It is correct when several processes share one file, which the lab does
// with several replicas: the file is in WAL mode (readers never block the
// writer), every write is one conditional statement that SQLite runs under
// its database write lock, and a writer that finds the lock taken waits
// and retries until its context is done (counted: Store.LockWaits). Compare-and-swap
// is therefore atomic across processes without any lock of ours:
//
//   - Put with a version is UPDATE … SET …, version = version+1 WHERE key = ?
//     AND version = ? AND expires_at > now … RETURNING version.
//   - Put create-only is INSERT … ON CONFLICT (key) DO UPDATE … WHERE the
//     existing row has expired … RETURNING version.
//   - Touch updates idle_expiry (and the derived expires_at) only.
//
// Expiry is decided in this process's clock (processes sharing a file share a
// machine, hence a clock), in every statement, so it does not depend on the
// sweeper; the sweeper goroutine only deletes expired rows in batches.
//
// The package owns the file's session table and its SQL. It does not do
// replication or backups: the file is as durable as the disk under it
// (synchronous=NORMAL: a power cut may lose the last transactions, never
// corrupt the file).
package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/sqlstore"
)

// Defaults for the zero values of Options.
const (
	DefaultSweepInterval = time.Minute
	DefaultBusyTimeout   = 5 * time.Second
	DefaultTimeout       = 10 * time.Second

	// table is the session table's name in the file.
	table = "statelab_sessions"

	// pragmas are the connections' settings after busy_timeout: WAL, and
	// BEGIN IMMEDIATE for transactions.
	pragmas = "_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"

	// readConns is how many connections serve reads at once.
	readConns = 4
)

// Options configures a Store. The zero value is valid.
type Options struct {
	// SweepInterval is how often expired rows are deleted; zero means
	// DefaultSweepInterval, and a negative value disables the sweeper. When
	// several processes share a file each may sweep; that is harmless.
	SweepInterval time.Duration

	// BusyTimeout is how long a read waits inside SQLite for a lock
	// (rare in WAL mode) before SQLite reports SQLITE_BUSY, after which the
	// Store retries until the call's deadline; zero means
	// DefaultBusyTimeout. Writes do not wait inside SQLite: one the write
	// lock refuses retries at once from the Store, where the wait is
	// counted (Store.LockWaits).
	BusyTimeout time.Duration

	// Timeout bounds each call whose context has no earlier deadline; zero
	// means DefaultTimeout.
	Timeout time.Duration

	// Logger receives the sweeper's errors; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a session.Store, session.Counter and session.Pinger in a SQLite
// file. It is safe for concurrent use by many goroutines, and by many
// processes (and many Stores) on one file.
//
// Its methods are those every SQL store shares: Get, Put, Touch, Delete,
// Count, Ping, Sweep (deletes expired rows in batches and returns how many;
// the sweeper goroutine calls it every SweepInterval) and Close (stops the
// sweeper and closes the file; safe to call more than once).
type Store struct {
	*core
	d *dialect
}

// core is the dialect-independent half of Store.
type core = sqlstore.Store

// dialect runs the Store's statements on the file.
type dialect struct {
	// writer has one connection: this process's writes queue for it in Go
	// instead of sleeping in SQLite's busy handler against each other, so
	// only other processes contend for the file's write lock. reader serves
	// Get and Count concurrently (WAL readers never wait for the writer).
	writer *sql.DB
	reader *sql.DB
	now    func() time.Time
	// busy counts the writes the file's lock refused (see LockWaits).
	busy busyCounter
}

// Compile-time checks that Store implements the contracts it claims.
var (
	_ session.Store   = (*Store)(nil)
	_ session.Counter = (*Store)(nil)
	_ session.Pinger  = (*Store)(nil)
)

// schema creates the session table. It is idempotent. Times are Unix
// nanoseconds; absolute_expiry 0 means no absolute limit; expires_at is the
// earlier of the two, kept by SQLite itself.
const schema = `
CREATE TABLE IF NOT EXISTS ` + table + ` (
    key             TEXT    PRIMARY KEY,
    data            BLOB    NOT NULL,
    version         INTEGER NOT NULL,
    idle_expiry     INTEGER NOT NULL,
    absolute_expiry INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL GENERATED ALWAYS AS
        (CASE WHEN absolute_expiry <> 0 AND absolute_expiry < idle_expiry THEN absolute_expiry ELSE idle_expiry END) STORED
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ` + table + `_expires_at ON ` + table + ` (expires_at);
`

const (
	qGet    = `SELECT data, version, idle_expiry, absolute_expiry FROM ` + table + ` WHERE key = ?1 AND expires_at > ?2`
	qUpdate = `UPDATE ` + table + ` SET data = ?3, idle_expiry = ?4, absolute_expiry = ?5, version = version + 1
		WHERE key = ?1 AND version = ?6 AND expires_at > ?2 RETURNING version`
	// A new record's version is the clock in microseconds (and above any
	// version of the expired row it replaces), so a record re-created after
	// a delete or expiry does not reuse a version of its predecessor.
	qCreate = `INSERT INTO ` + table + ` AS cur (key, data, idle_expiry, absolute_expiry, version) VALUES (?1, ?3, ?4, ?5, ?6)
		ON CONFLICT (key) DO UPDATE SET data = excluded.data, idle_expiry = excluded.idle_expiry,
			absolute_expiry = excluded.absolute_expiry, version = max(cur.version + 1, excluded.version)
		WHERE cur.expires_at <= ?2
		RETURNING version`
	qTouch  = `UPDATE ` + table + ` SET idle_expiry = ?3 WHERE key = ?1 AND expires_at > ?2`
	qDelete = `DELETE FROM ` + table + ` WHERE key = ?1`
	qCount  = `SELECT count(*) FROM ` + table + ` WHERE expires_at > ?1`
	qSweep  = `DELETE FROM ` + table + ` WHERE key IN (SELECT key FROM ` + table + ` WHERE expires_at <= ?1 LIMIT ?2)`
)

// Open opens (creating if needed) the SQLite file at path, switches it to WAL
// mode, creates the session table if missing, and starts the sweeper. The
// file's directory must exist and be writable; otherwise Open returns an error
// naming the path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlitestore: path %q: want a file path without '?' or '#' (an in-memory database cannot be shared)", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: directory: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("sqlitestore: open %s: %s is not a directory", path, dir)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	writer, err := sql.Open("sqlite", dsn(path, 0))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	reader, err := sql.Open("sqlite", dsn(path, busy))
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(readConns)
	reader.SetMaxIdleConns(readConns)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := &dialect{writer: writer, reader: reader, now: time.Now}
	c, err := sqlstore.Open(ctx, d, sqlstore.Config{
		Name:          "sqlitestore",
		MigrateOp:     "open " + path,
		Timeout:       timeout,
		SweepInterval: cmp.Or(opts.SweepInterval, DefaultSweepInterval),
		Logger:        opts.Logger,
		LogAttrs:      []any{"path", path},
	})
	if err != nil {
		return nil, err
	}
	return &Store{c, d}, nil
}

// Migrate creates the session table if it is missing.
func (d *dialect) Migrate(ctx context.Context) error {
	return d.onWriter(ctx, func(w *sql.Conn) error {
		_, err := w.ExecContext(ctx, schema)
		return err
	})
}

// Close closes the file.
func (d *dialect) Close() error {
	return errors.Join(d.writer.Close(), d.reader.Close())
}

// retry runs fn until it succeeds, fails with something other than
// SQLITE_BUSY or SQLITE_LOCKED, or ctx is done, waiting 1 ms, doubling to
// 50 ms, between tries. For reads SQLite's busy handler already waits
// BusyTimeout inside one statement, and this covers the cases it does not
// (a WAL snapshot that went stale, a lock held longer than BusyTimeout);
// writes wait here only, counted (retryCounting).
func retry(ctx context.Context, fn func() error) error { return retryCounting(ctx, nil, fn) }

func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

func (d *dialect) Get(ctx context.Context, key string) (rec session.Record, found bool, err error) {
	var version, idle, absolute int64
	err = retry(ctx, func() error {
		return d.reader.QueryRowContext(ctx, qGet, key, d.now().UnixNano()).Scan(&rec.Data, &version, &idle, &absolute)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return session.Record{}, false, nil
	}
	if err != nil {
		return session.Record{}, false, err
	}
	rec.Version = uint64(version)
	rec.IdleExpiry = time.Unix(0, idle)
	if absolute != 0 {
		rec.AbsoluteExpiry = time.Unix(0, absolute)
	}
	return rec, true, nil
}

func (d *dialect) Create(ctx context.Context, key string, rec session.Record) (int64, bool, error) {
	return d.write(ctx, func(w *sql.Conn, now time.Time) *sql.Row {
		return w.QueryRowContext(ctx, qCreate, key, now.UnixNano(), rec.Data, unixNano(rec.IdleExpiry), absolute(rec), now.UnixMicro())
	})
}

func (d *dialect) Update(ctx context.Context, key string, rec session.Record) (int64, bool, error) {
	return d.write(ctx, func(w *sql.Conn, now time.Time) *sql.Row {
		return w.QueryRowContext(ctx, qUpdate, key, now.UnixNano(), rec.Data, unixNano(rec.IdleExpiry), absolute(rec), int64(rec.Version))
	})
}

// write runs the conditional write query makes (at the time of each try) and
// scans the version it returned; ok is false when its condition did not hold
// (no row).
func (d *dialect) write(ctx context.Context, query func(w *sql.Conn, now time.Time) *sql.Row) (version int64, ok bool, err error) {
	err = d.onWriter(ctx, func(w *sql.Conn) error { return query(w, d.now()).Scan(&version) })
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return version, err == nil, err
}

// absolute is rec's absolute expiry in Unix nanoseconds, 0 for no limit.
func absolute(rec session.Record) int64 {
	if rec.AbsoluteExpiry.IsZero() {
		return 0
	}
	return unixNano(rec.AbsoluteExpiry)
}

func (d *dialect) Touch(ctx context.Context, key string, idleExpiry time.Time) (bool, error) {
	n, err := d.exec(ctx, func(w *sql.Conn) (sql.Result, error) {
		return w.ExecContext(ctx, qTouch, key, d.now().UnixNano(), unixNano(idleExpiry))
	})
	return n > 0, err
}

func (d *dialect) Delete(ctx context.Context, key string) error {
	_, err := d.exec(ctx, func(w *sql.Conn) (sql.Result, error) {
		return w.ExecContext(ctx, qDelete, key)
	})
	return err
}

func (d *dialect) Sweep(ctx context.Context) (int64, error) {
	return d.exec(ctx, func(w *sql.Conn) (sql.Result, error) {
		return w.ExecContext(ctx, qSweep, d.now().UnixNano(), sqlstore.SweepBatch)
	})
}

// exec runs a write statement, retrying while the file is busy, and returns
// how many rows it changed.
func (d *dialect) exec(ctx context.Context, stmt func(w *sql.Conn) (sql.Result, error)) (n int64, err error) {
	err = d.onWriter(ctx, func(w *sql.Conn) error {
		res, err := stmt(w)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (d *dialect) Count(ctx context.Context) (n int64, err error) {
	err = retry(ctx, func() error {
		return d.reader.QueryRowContext(ctx, qCount, d.now().UnixNano()).Scan(&n)
	})
	return n, err
}

// Ping reads the table: the file is there and not locked past every retry.
func (d *dialect) Ping(ctx context.Context) error {
	return retry(ctx, func() error {
		var n int
		return d.reader.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE 0`).Scan(&n)
	})
}

// unavailableCodes are the SQLite result codes that mean the file cannot be
// used now (locked past every retry, I/O failure, disk full, cannot open,
// read-only, corrupt), rather than that the statement was wrong.
var unavailableCodes = []int{
	sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
	sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB,
	sqlite3.SQLITE_PROTOCOL,
}

// Unavailable reports whether err means the file cannot be used now (see
// unavailableCodes), or the Store was closed, or a deadline passed.
func (d *dialect) Unavailable(err error) bool {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		for _, c := range unavailableCodes {
			if se.Code()&0xff == c {
				return true
			}
		}
	}
	return false
}

// unixNano returns t in Unix nanoseconds, clamped to int64 (the zero time
// and far-future times do not fit).
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
