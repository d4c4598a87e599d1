package session

import (
	"context"
	"errors"
	"time"
)

// Errors a Store or Sealer returns. Callers branch on them with errors.Is;
// implementations wrap them with context using %w.
var (
	// ErrNotFound is returned when a record is missing or expired, and by a
	// Sealer for a value that is expired.
	ErrNotFound = errors.New("session: not found")

	// ErrConflict is returned by Store.Put when the stored version is not the
	// version the write expected (including a create-only write that finds a
	// live record), and by Manager.Update when it gave up retrying.
	ErrConflict = errors.New("session: version conflict")

	// ErrUnavailable is wrapped by every error caused by an unreachable or
	// failing backend (connection refused, timeout, server shut down), so that
	// callers can answer 503 and retry later.
	ErrUnavailable = errors.New("session: store unavailable")

	// ErrTooLarge is returned when a record does not fit where it must live:
	// a sealed cookie over the cookie budget, or a value over a store's limit.
	ErrTooLarge = errors.New("session: record too large")

	// ErrInvalid is returned by a Sealer for a value that is forged, garbled,
	// truncated or sealed with an unknown key.
	ErrInvalid = errors.New("session: invalid sealed value")
)

// Record is one session's state as a store holds it.
type Record struct {
	// Data is the opaque session payload. Stores never interpret it.
	Data []byte

	// Version identifies the stored revision of the record. Zero means "not
	// stored yet". Every successful Put returns a new version, strictly greater
	// than the one it replaced; Touch never changes it. A record created where
	// an earlier one was deleted or expired never gets a version that earlier
	// record had, so a writer holding a stale version cannot overwrite it.
	Version uint64

	// IdleExpiry is when the record expires unless it is written or touched
	// before then.
	IdleExpiry time.Time

	// AbsoluteExpiry is when the record expires whatever its activity. The
	// zero time means no absolute limit.
	AbsoluteExpiry time.Time
}

// Expired reports whether r is expired at now: at or after its idle expiry, or
// at or after its absolute expiry when it has one.
func (r Record) Expired(now time.Time) bool {
	if !now.Before(r.IdleExpiry) {
		return true
	}
	return !r.AbsoluteExpiry.IsZero() && !now.Before(r.AbsoluteExpiry)
}

// Store holds session records on the server side, under opaque keys, with
// optimistic concurrency. Keys are ASCII strings of at most 128 bytes drawn
// from [A-Za-z0-9_-]; the Manager passes the hex SHA-256 of the session ID, so
// a leaked store yields no live session IDs. Any other key is rejected with an
// error that wraps none of ErrNotFound, ErrConflict and ErrUnavailable.
//
// All methods are safe for concurrent use by many goroutines and many
// processes sharing one backend. Every method honours ctx: a cancelled or
// expired context returns promptly with an error wrapping ctx.Err(). An
// unreachable backend returns an error wrapping ErrUnavailable promptly, and
// never hangs past ctx's deadline.
type Store interface {
	// Get returns the live record stored under key, with its version. A
	// missing or expired record returns ErrNotFound.
	Get(ctx context.Context, key string) (Record, error)

	// Put writes rec under key if the stored version equals rec.Version, and
	// returns the new version. rec.Version zero means create-only: it
	// succeeds only when no live record exists (an expired one counts as
	// missing and is replaced). Any other mismatch, including a missing record
	// when rec.Version is not zero, returns ErrConflict and changes nothing.
	// The write is atomic: a reader sees the old record or the new one, never
	// a mix, and never a partial write.
	Put(ctx context.Context, key string, rec Record) (version uint64, err error)

	// Touch moves the idle expiry of the live record under key to idleExpiry
	// without rewriting its data or changing its version. A missing or
	// expired record returns ErrNotFound.
	Touch(ctx context.Context, key string, idleExpiry time.Time) error

	// Delete removes the record under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// BatchPut is one write of a PutBatch: rec under Key, with the
// compare-and-swap semantics of Store.Put.
type BatchPut struct {
	Key    string
	Record Record
}

// BatchResult is the outcome of one BatchPut: the new version, or the
// error Store.Put would have returned for it.
type BatchResult struct {
	Version uint64
	Err     error
}

// BatchPutter is implemented by stores that can send several Puts in one
// round trip to their backend (Redis: one pipeline). Each put is its own
// atomic compare-and-swap, exactly as if Put had been called for it: a
// batch is not a transaction, and one put's conflict or failure does not
// affect the others. PutBatch returns one result per put, in order.
type BatchPutter interface {
	PutBatch(ctx context.Context, puts []BatchPut) []BatchResult
}

// Pinger is implemented by stores whose backend can be checked without
// touching a session; readiness probes use it.
type Pinger interface {
	// Ping returns nil when the backend is reachable, otherwise an error
	// wrapping ErrUnavailable.
	Ping(ctx context.Context) error
}

// Counter is implemented by stores that can tell how many live sessions they
// hold (for a replicated store: how many this replica holds a copy of).
type Counter interface {
	// Count returns the number of live records held.
	Count(ctx context.Context) (int, error)
}

// Sealer keeps session state in the client instead of a Store: it seals a
// record into a cookie-safe string that only the server can open. A Manager
// built on a Sealer has the same API as one built on a Store, but it cannot
// detect concurrent updates: the last response the client keeps wins.
type Sealer interface {
	// Seal encrypts and authenticates rec, including its expiries and
	// version, into a cookie-safe string. A result over the cookie budget
	// returns ErrTooLarge.
	Seal(rec Record) (string, error)

	// Open authenticates and decrypts a value made by Seal. A value that is
	// forged, garbled, truncated or sealed with a key no longer known returns
	// an error wrapping ErrInvalid; one that has expired at now returns an
	// error wrapping ErrNotFound.
	Open(value string, now time.Time) (Record, error)
}
