package sqlitestore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/sqlitestore"
)

// TestLockWaits holds the file's write lock from another connection, as
// another process would, for 200 ms while four writes of one Store start:
// the one on the Store's writer connection is refused SQLITE_BUSY and
// retries, holding the connection, counted with its wait; the other three
// queue for the connection, counted too. Reads count nothing.
func TestLockWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "waits.db")
	s := openStore(t, path, sqlitestore.Options{SweepInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)}
	if _, err := s.Put(ctx, "warm", rec); err != nil {
		t.Fatal(err)
	}
	if w := s.LockWaits(); w.BusyRetries != 0 || w.BusyWait != 0 {
		t.Fatalf("waits before any contention: %+v", w)
	}
	conn := otherConn(t, ctx, path)
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	const hold = 200 * time.Millisecond
	began := time.Now()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := s.Put(ctx, "k"+string(rune('a'+i)), rec); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	time.Sleep(hold)
	if _, err := s.Get(ctx, "warm"); err != nil {
		t.Errorf("Get while locked: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	w := s.LockWaits()
	t.Logf("after %v: %+v", time.Since(began), w)
	// The first write waited out most of the hold in retries: at least
	// half of it, allowing for the writes starting late on a busy machine,
	// and at most the whole test.
	if w.BusyRetries < 1 || w.BusyWait < hold/2 || w.BusyWait > time.Since(began) {
		t.Errorf("busy retries %d waiting %v for a lock held %v", w.BusyRetries, w.BusyWait, hold)
	}
	if w.Queued < 1 || w.QueueWait <= 0 {
		t.Errorf("queued %d for %v: the writes behind the first did not queue for the writer", w.Queued, w.QueueWait)
	}
}

// TestOpenConcurrently opens eight Stores on a new file at once, as the
// replicas of a lab cluster do: each one's first write connection sets
// WAL mode, which takes a lock, so opening must wait for the others (it
// failed with SQLITE_BUSY when the writer's busy wait was first turned
// off).
func TestOpenConcurrently(t *testing.T) {
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "open.db")
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{SweepInterval: -1})
				if err != nil {
					t.Errorf("round %d: Open: %v", round, err)
					return
				}
				if _, err := s.Put(ctx, "k", session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil && !errors.Is(err, session.ErrConflict) {
					t.Errorf("round %d: Put: %v", round, err)
				}
				s.Close()
			})
		}
		wg.Wait()
	}
}
