// Package sqlitestore is a session.Store in a SQLite file, through the pure-Go
// modernc.org/sqlite driver (no cgo).
//
// It is correct when several processes share one file, which the lab does
// with several replicas: the file is in WAL mode (readers never block the
// writer), every write is one conditional statement that SQLite runs under
// its database write lock, and a writer that finds the lock taken waits
// (busy_timeout) and then retries until its context is done. Compare-and-swap
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
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/storekey"
	"github.com/statelab/statelab/session/internal/sweeper"
)

// Defaults for the zero values of Options.
const (
	DefaultSweepInterval = time.Minute
	DefaultBusyTimeout   = 5 * time.Second
	DefaultTimeout       = 10 * time.Second

	// table is the session table's name in the file.
	table = "statelab_sessions"

	// sweepBatch is how many expired rows one sweeper statement deletes, so
	// the write lock is never held long.
	sweepBatch = 1000

	// readConns is how many connections serve reads at once.
	readConns = 4
)

// Options configures a Store. The zero value is valid.
type Options struct {
	// SweepInterval is how often expired rows are deleted; zero means
	// DefaultSweepInterval, and a negative value disables the sweeper. When
	// several processes share a file each may sweep; that is harmless.
	SweepInterval time.Duration

	// BusyTimeout is how long one statement waits for another connection's
	// write lock before SQLite reports SQLITE_BUSY (after which the Store
	// retries until the call's deadline); zero means DefaultBusyTimeout.
	BusyTimeout time.Duration

	// Timeout bounds each call whose context has no earlier deadline; zero
	// means DefaultTimeout.
	Timeout time.Duration

	// Logger receives the sweeper's errors; nil means slog.Default().
	Logger *slog.Logger
}

// Store is a session.Store in a SQLite file. It is safe for concurrent use by
// many goroutines, and by many processes (and many Stores) on one file.
type Store struct {
	// writer has one connection: this process's writes queue for it in Go
	// instead of sleeping in SQLite's busy handler against each other, so
	// only other processes contend for the file's write lock. reader serves
	// Get and Count concurrently (WAL readers never wait for the writer).
	writer  *sql.DB
	reader  *sql.DB
	path    string
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time

	sweeper   *sweeper.Sweeper
	closeOnce sync.Once
	closeErr  error
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
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		path, busy.Milliseconds())
	writer, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	reader, err := sql.Open("sqlite", dsn)
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(readConns)
	reader.SetMaxIdleConns(readConns)
	s := &Store{
		writer:  writer,
		reader:  reader,
		path:    path,
		timeout: opts.Timeout,
		log:     opts.Logger,
		now:     time.Now,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.migrate(ctx); err != nil {
		_ = writer.Close()
		_ = reader.Close()
		return nil, err
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	s.sweeper = sweeper.Start(interval, s.sweepOnce)
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.retry(ctx, func() error {
		_, err := s.writer.ExecContext(ctx, schema)
		return err
	})
	if err != nil {
		return s.fail(ctx, "open "+s.path, err)
	}
	return nil
}

// Close stops the sweeper and closes the database. It is safe to call more
// than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.sweeper.Stop()
		if err := errors.Join(s.writer.Close(), s.reader.Close()); err != nil {
			s.closeErr = fmt.Errorf("sqlitestore: close: %w", err)
		}
	})
	return s.closeErr
}

// bound gives ctx the Store's timeout unless it already has an earlier
// deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// retry runs fn until it succeeds, fails with something other than
// SQLITE_BUSY or SQLITE_LOCKED, or ctx is done. SQLite's busy handler already
// waits BusyTimeout inside one statement; this covers the cases it does not
// (a WAL snapshot that went stale, a lock held longer than BusyTimeout).
func (s *Store) retry(ctx context.Context, fn func() error) error {
	wait := time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// check is the precondition of every method: a live ctx and a valid key.
func check(ctx context.Context, op, key string) error {
	return storekey.CheckCall(ctx, "sqlitestore", op, key)
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
		rec            session.Record
		version        int64
		idle, absolute int64
	)
	err := s.retry(qctx, func() error {
		return s.reader.QueryRowContext(qctx, qGet, key, s.now().UnixNano()).Scan(&rec.Data, &version, &idle, &absolute)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return session.Record{}, fmt.Errorf("sqlitestore: get: %w", session.ErrNotFound)
	}
	if err != nil {
		return session.Record{}, s.fail(ctx, "get", err)
	}
	if rec.Data == nil {
		rec.Data = []byte{}
	}
	rec.Version = uint64(version)
	rec.IdleExpiry = time.Unix(0, idle)
	if absolute != 0 {
		rec.AbsoluteExpiry = time.Unix(0, absolute)
	}
	return rec, nil
}

// Put writes rec under key if the stored version is rec.Version (zero: no live
// record) and returns the new version; a mismatch returns an error wrapping
// session.ErrConflict. It is one statement, atomic across processes.
func (s *Store) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if err := check(ctx, "put", key); err != nil {
		return 0, err
	}
	if rec.Version > math.MaxInt64 {
		return 0, fmt.Errorf("sqlitestore: put: version %d is not the stored one: %w", rec.Version, session.ErrConflict)
	}
	data := rec.Data
	if data == nil {
		data = []byte{} // data is NOT NULL; a nil slice binds as NULL
	}
	idle := unixNano(rec.IdleExpiry)
	var absolute int64
	if !rec.AbsoluteExpiry.IsZero() {
		absolute = unixNano(rec.AbsoluteExpiry)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	var version int64
	err := s.retry(qctx, func() error {
		now := s.now()
		if rec.Version == 0 {
			return s.writer.QueryRowContext(qctx, qCreate, key, now.UnixNano(), data, idle, absolute, now.UnixMicro()).Scan(&version)
		}
		return s.writer.QueryRowContext(qctx, qUpdate, key, now.UnixNano(), data, idle, absolute, int64(rec.Version)).Scan(&version)
	})
	if errors.Is(err, sql.ErrNoRows) {
		if rec.Version == 0 {
			return 0, fmt.Errorf("sqlitestore: put: create-only but a live record exists: %w", session.ErrConflict)
		}
		return 0, fmt.Errorf("sqlitestore: put: version %d is not the stored one: %w", rec.Version, session.ErrConflict)
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
	var n int64
	err := s.retry(qctx, func() error {
		res, err := s.writer.ExecContext(qctx, qTouch, key, s.now().UnixNano(), unixNano(idleExpiry))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return s.fail(ctx, "touch", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlitestore: touch: %w", session.ErrNotFound)
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
	err := s.retry(qctx, func() error {
		_, err := s.writer.ExecContext(qctx, qDelete, key)
		return err
	})
	if err != nil {
		return s.fail(ctx, "delete", err)
	}
	return nil
}

// Count returns the number of live records in the file.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlitestore: count: %w", err)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.retry(qctx, func() error {
		return s.reader.QueryRowContext(qctx, qCount, s.now().UnixNano()).Scan(&n)
	})
	if err != nil {
		return 0, s.fail(ctx, "count", err)
	}
	return int(n), nil
}

// Ping returns nil when the file can be read, otherwise an error wrapping
// session.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: ping: %w", err)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.retry(qctx, func() error {
		var n int
		return s.reader.QueryRowContext(qctx, `SELECT count(*) FROM `+table+` WHERE 0`).Scan(&n)
	})
	if err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// Sweep deletes expired rows, in batches, and returns how many it deleted.
// The sweeper goroutine calls it every SweepInterval.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for {
		qctx, cancel := s.bound(ctx)
		var n int64
		err := s.retry(qctx, func() error {
			res, err := s.writer.ExecContext(qctx, qSweep, s.now().UnixNano(), sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		cancel()
		if err != nil {
			return total, s.fail(ctx, "sweep", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}

// sweepOnce is the background sweep: it logs what Sweep did.
func (s *Store) sweepOnce(ctx context.Context) {
	n, err := s.Sweep(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("sqlitestore: sweep failed", "path", s.path, "err", err)
	case n > 0:
		s.log.Debug("sqlitestore: swept expired sessions", "path", s.path, "deleted", n)
	}
}

// unavailableCodes are the SQLite result codes that mean the file cannot be
// used now (locked past every retry, I/O failure, disk full, cannot open,
// read-only, corrupt), rather than that the statement was wrong.
var unavailableCodes = []int{
	sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
	sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB,
	sqlite3.SQLITE_PROTOCOL,
}

// fail wraps err from a database call made for ctx. A cancelled ctx gives
// ctx's error alone; an error about the statement stays a plain error; a file
// that cannot be used (see unavailableCodes), a closed Store or a passed
// deadline wraps session.ErrUnavailable.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.Canceled):
		return fmt.Errorf("sqlitestore: %s: %w", op, ctxErr)
	case ctxErr != nil:
		// The caller's deadline passed while the backend worked: whatever
		// err says (a timeout, a cancelled statement), the backend was too
		// slow to serve.
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("sqlitestore: %s: %w: %w", op, session.ErrUnavailable, err)
		}
		return fmt.Errorf("sqlitestore: %s: %w: %w (%w)", op, session.ErrUnavailable, err, ctxErr)
	}
	unavailable := errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "sql: database is closed")
	var se *sqlite.Error
	if errors.As(err, &se) {
		for _, c := range unavailableCodes {
			if se.Code()&0xff == c {
				unavailable = true
				break
			}
		}
	}
	if !unavailable {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	return fmt.Errorf("sqlitestore: %s: %w: %w", op, session.ErrUnavailable, err)
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
