// Package sqlstore is the part of the SQL session stores (pgstore,
// sqlitestore) that does not depend on the database: the precondition and
// deadline of every call, how a statement's outcome becomes the session
// package's errors (not found, conflict, unavailable), the batched sweep and
// its goroutine, and a Close that is safe to repeat.
//
// Each store supplies a Dialect: its statements, each run once per call, and
// which of its driver's errors mean the database cannot serve now. The
// package does not own any SQL, connection or schema.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/storekey"
	"github.com/statelab/statelab/session/internal/sweeper"
)

// SweepBatch is how many expired rows one sweep statement deletes, so a sweep
// never holds many row locks (or a file's write lock) for long.
const SweepBatch = 1000

// Dialect is one database's side of a Store. Every method runs its statement
// with the ctx it is given (the Store has already bounded it) and returns the
// driver's error as it is; the Store wraps it.
type Dialect interface {
	// Migrate creates the session table if it is missing. It is idempotent.
	Migrate(ctx context.Context) error

	// Get returns the live record under key; found is false when there is
	// none. AbsoluteExpiry is the zero time when the record has no limit.
	Get(ctx context.Context, key string) (rec session.Record, found bool, err error)

	// Create stores rec (Data never nil) under key unless a live record
	// exists there, and returns the new version; ok is false when one exists.
	Create(ctx context.Context, key string, rec session.Record) (version int64, ok bool, err error)

	// Update replaces the live record under key if its version is
	// rec.Version, and returns the new version; ok is false otherwise.
	Update(ctx context.Context, key string, rec session.Record) (version int64, ok bool, err error)

	// Touch sets the idle expiry of the live record under key; found is
	// false when there is none.
	Touch(ctx context.Context, key string, idleExpiry time.Time) (found bool, err error)

	// Delete removes the record under key, if any.
	Delete(ctx context.Context, key string) error

	// Count returns the number of live records.
	Count(ctx context.Context) (int64, error)

	// Ping returns nil when the database answers.
	Ping(ctx context.Context) error

	// Sweep deletes at most SweepBatch expired records and returns how many
	// it deleted.
	Sweep(ctx context.Context) (int64, error)

	// Unavailable reports whether err, from a call whose context is still
	// live, means the database cannot serve now (unreachable, shut down,
	// out of space, closed) rather than that the statement was wrong.
	Unavailable(err error) bool

	// Close releases what the Dialect owns.
	Close() error
}

// Config is what a store tells the Store about itself. The store applies its
// own defaults first: every field but Logger and LogAttrs must be set.
type Config struct {
	// Name prefixes every error and log line ("pgstore").
	Name string

	// MigrateOp names the operation in a migration error ("migrate").
	MigrateOp string

	// Timeout bounds each call whose context has no earlier deadline.
	Timeout time.Duration

	// SweepInterval is how often the sweeper runs; negative disables it.
	SweepInterval time.Duration

	// Logger receives the sweeper's errors; nil means slog.Default().
	Logger *slog.Logger

	// LogAttrs are added to every log line (for example the file's path).
	LogAttrs []any
}

// Store is a session.Store, session.Counter and session.Pinger on a Dialect.
// It is safe for concurrent use when the Dialect is.
type Store struct {
	d       Dialect
	name    string
	timeout time.Duration
	log     *slog.Logger // with Config.LogAttrs

	sweeper   *sweeper.Sweeper
	closeOnce sync.Once
	closeErr  error
}

// Open runs d's migration and starts the sweeper. When the migration fails
// it closes d and returns the error.
func Open(ctx context.Context, d Dialect, cfg Config) (*Store, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{d: d, name: cfg.Name, timeout: cfg.Timeout, log: log.With(cfg.LogAttrs...)}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	if err := d.Migrate(bctx); err != nil {
		_ = d.Close()
		return nil, s.fail(bctx, cfg.MigrateOp, err)
	}
	s.sweeper = sweeper.Start(cfg.SweepInterval, s.sweepOnce)
	return s, nil
}

// Close stops the sweeper and closes the Dialect. It is safe to call more
// than once; later calls return the first call's error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.sweeper.Stop()
		if err := s.d.Close(); err != nil {
			s.closeErr = fmt.Errorf("%s: close: %w", s.name, err)
		}
	})
	return s.closeErr
}

// bound gives ctx the Store's timeout unless it already has an earlier
// deadline, so no call waits forever on a silent database.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Get returns the live record under key, or an error wrapping
// session.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	if err := storekey.CheckCall(ctx, s.name, "get", key); err != nil {
		return session.Record{}, err
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	rec, found, err := s.d.Get(qctx, key)
	if err != nil {
		return session.Record{}, s.fail(ctx, "get", err)
	}
	if !found {
		return session.Record{}, fmt.Errorf("%s: get: %w", s.name, session.ErrNotFound)
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
	if err := storekey.CheckCall(ctx, s.name, "put", key); err != nil {
		return 0, err
	}
	if rec.Version > math.MaxInt64 {
		// No stored version is this large (they are 64-bit signed).
		return 0, fmt.Errorf("%s: put: version %d is not the stored one: %w", s.name, rec.Version, session.ErrConflict)
	}
	if rec.Data == nil {
		rec.Data = []byte{} // data is NOT NULL; drivers bind a nil slice as NULL
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		version int64
		ok      bool
		err     error
	)
	if rec.Version == 0 {
		version, ok, err = s.d.Create(qctx, key, rec)
	} else {
		version, ok, err = s.d.Update(qctx, key, rec)
	}
	switch {
	case err != nil:
		return 0, s.fail(ctx, "put", err)
	case !ok && rec.Version == 0:
		return 0, fmt.Errorf("%s: put: create-only but a live record exists: %w", s.name, session.ErrConflict)
	case !ok:
		return 0, fmt.Errorf("%s: put: version %d is not the stored one: %w", s.name, rec.Version, session.ErrConflict)
	}
	return uint64(version), nil
}

// Touch moves the idle expiry of the live record under key to idleExpiry
// without changing its data or version; a missing or expired record returns
// an error wrapping session.ErrNotFound.
func (s *Store) Touch(ctx context.Context, key string, idleExpiry time.Time) error {
	if err := storekey.CheckCall(ctx, s.name, "touch", key); err != nil {
		return err
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	found, err := s.d.Touch(qctx, key, idleExpiry)
	if err != nil {
		return s.fail(ctx, "touch", err)
	}
	if !found {
		return fmt.Errorf("%s: touch: %w", s.name, session.ErrNotFound)
	}
	return nil
}

// Delete removes the record under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storekey.CheckCall(ctx, s.name, "delete", key); err != nil {
		return err
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.d.Delete(qctx, key); err != nil {
		return s.fail(ctx, "delete", err)
	}
	return nil
}

// Count returns the number of live records.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: count: %w", s.name, err)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := s.d.Count(qctx)
	if err != nil {
		return 0, s.fail(ctx, "count", err)
	}
	return int(n), nil
}

// Ping returns nil when the database answers, otherwise an error wrapping
// session.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: ping: %w", s.name, err)
	}
	qctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.d.Ping(qctx); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// Sweep deletes expired records, SweepBatch at a time, each batch under its
// own deadline, and returns how many it deleted. The sweeper goroutine calls
// it every SweepInterval; it is exported for deployments that disable the
// goroutine and sweep from elsewhere.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var total int64
	for {
		qctx, cancel := s.bound(ctx)
		n, err := s.d.Sweep(qctx)
		cancel()
		if err != nil {
			return total, s.fail(ctx, "sweep", err)
		}
		total += n
		if n < SweepBatch {
			return total, nil
		}
	}
}

// sweepOnce is the background sweep: it logs what Sweep did.
func (s *Store) sweepOnce(ctx context.Context) {
	n, err := s.Sweep(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn(s.name+": sweep failed", "err", err)
	case n > 0:
		s.log.Debug(s.name+": swept expired sessions", "deleted", n)
	}
}

// fail wraps err from a database call made for ctx. A cancelled ctx gives
// ctx's error alone; an error the Dialect does not call Unavailable (one
// about the statement) stays a plain error; everything else wraps
// session.ErrUnavailable, and ctx's error too when its deadline passed.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.Canceled):
		return fmt.Errorf("%s: %s: %w", s.name, op, ctxErr)
	case ctxErr != nil:
		// The caller's deadline passed while the backend worked: whatever
		// err says (a timeout, a cancelled statement), the backend was too
		// slow to serve.
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("%s: %s: %w: %w", s.name, op, session.ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %s: %w: %w (%w)", s.name, op, session.ErrUnavailable, err, ctxErr)
	}
	if !s.d.Unavailable(err) {
		return fmt.Errorf("%s: %s: %w", s.name, op, err)
	}
	return fmt.Errorf("%s: %s: %w: %w", s.name, op, session.ErrUnavailable, err)
}
