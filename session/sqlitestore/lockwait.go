package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// LockWaits is what this Store's writes spent waiting for SQLite's single
// writer, counted since Open. A SQLite file has one write lock: another
// process holding it answers SQLITE_BUSY, and the write waits and tries
// again (Busy); within this process, writes queue for the Store's one
// writer connection (Queued). Together they are the single writer's cost.
type LockWaits struct {
	// BusyRetries counts writes answered SQLITE_BUSY or SQLITE_LOCKED
	// (another process held the lock) and tried again after a wait;
	// BusyWait is the time those waits took.
	BusyRetries int64
	BusyWait    time.Duration
	// Queued counts writes that waited for this process's writer
	// connection because another write of this process had it; QueueWait
	// is the time they waited.
	Queued    int64
	QueueWait time.Duration
}

// LockWaits returns the Store's waits for the file's write lock so far.
func (s *Store) LockWaits() LockWaits {
	st := s.d.writer.Stats()
	return LockWaits{
		BusyRetries: s.d.busy.retries.Load(),
		BusyWait:    time.Duration(s.d.busy.waited.Load()),
		Queued:      st.WaitCount,
		QueueWait:   st.WaitDuration,
	}
}

// busyCounter counts the retries of writes the file's lock refused.
type busyCounter struct {
	retries atomic.Int64
	waited  atomic.Int64 // nanoseconds
}

// retryCounting is retry, adding each retry and its wait to c (nil: none).
func retryCounting(ctx context.Context, c *busyCounter, fn func() error) error {
	wait := time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		began := time.Now()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if c != nil {
			c.retries.Add(1)
			c.waited.Add(int64(time.Since(began)))
		}
		if ctx.Err() != nil {
			return err
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// onWriter runs fn on the writer connection until it succeeds or fails
// with something other than SQLITE_BUSY or SQLITE_LOCKED, holding the
// connection across the waits as SQLite's busy handler would: this
// process's other writes queue for it (Queued) while one waits for the
// file's lock (BusyRetries), rather than all retrying at once.
//
// Opening the connection runs the DSN's pragmas (journal_mode(WAL) takes
// a lock), so it too can be refused while another process opens the file:
// it is retried the same way.
func (d *dialect) onWriter(ctx context.Context, fn func(w *sql.Conn) error) error {
	var w *sql.Conn
	err := retryCounting(ctx, &d.busy, func() (err error) {
		w, err = d.writer.Conn(ctx)
		return err
	})
	if err != nil {
		return err
	}
	defer w.Close()
	return retryCounting(ctx, &d.busy, func() error { return fn(w) })
}

// dsn is the DSN of a connection to path whose statements wait up to busy
// inside SQLite for a lock. The writer's busy is 0: SQLite's own busy wait
// is off, so a write the lock refuses comes back as SQLITE_BUSY at once
// and waits in retryCounting, where the wait is counted (SQLite's busy
// handler sleeps inside the statement, out of sight). The schedule is
// about SQLite's own (1 ms doubling to 50 ms, against 1 ms growing to
// 100 ms), until the call's deadline.
func dsn(path string, busy time.Duration) string {
	return fmt.Sprintf("%s?_pragma=busy_timeout(%d)&%s", path, busy.Milliseconds(), pragmas)
}
