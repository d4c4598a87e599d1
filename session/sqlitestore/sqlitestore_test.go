package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/sqlitestore"
	"github.com/statelab/statelab/session/storetest"
)

func openStore(tb testing.TB, path string, opts sqlitestore.Options) *sqlitestore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sqlitestore.Open(ctx, path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	storetest.Run(t, func(t *testing.T) session.Store { return openStore(t, path, sqlitestore.Options{}) })
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		path        string
		unavailable bool
	}{
		{"empty path", "", false},
		{"in-memory", ":memory:", false},
		{"query in path", filepath.Join(dir, "x.db?mode=ro"), false},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "x.db"), false},
		{"parent is a file", filepath.Join(file, "x.db"), false},
		{"path is a directory", dir, true},
		{"not a database", file, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := sqlitestore.Open(ctx, tt.path, sqlitestore.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
			if got := errors.Is(err, session.ErrUnavailable); got != tt.unavailable {
				t.Fatalf("Open(%q) = %v; wraps ErrUnavailable = %v, want %v", tt.path, err, got, tt.unavailable)
			}
		})
	}
}

// TestClosedStoreUnavailable checks that a Store used after Close fails with
// ErrUnavailable rather than hanging or panicking.
func TestClosedStoreUnavailable(t *testing.T) {
	storetest.RunUnavailable(t, func(t *testing.T) session.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "closed.db"), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Shape of the shared-file increment test: each participant (a Store in this
// process, or a helper process) runs sharedWorkers goroutines that each add
// sharedIncrements to one counter.
const (
	sharedWorkers    = 4
	sharedIncrements = 50
)

// TestSharedFile runs two Stores in this process and two helper processes
// on one file, all incrementing one counter by Get and Put, and checks that
// no increment was lost: CAS must be atomic across connections and
// processes.
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := []*sqlitestore.Store{openStore(t, path, sqlitestore.Options{}), openStore(t, path, sqlitestore.Options{})}
	key := storetest.NewKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := stores[0].Put(ctx, key, session.Record{Data: []byte("0"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("create counter: %v", err)
	}

	const helpers = 2
	var procs []*exec.Cmd
	for i := 0; i < helpers; i++ {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STATELAB_SQLITE_HELPER=1", "STATELAB_SQLITE_PATH="+path, "STATELAB_SQLITE_KEY="+key)
		out := &testenv.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start helper process: %v", err)
		}
		procs = append(procs, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("helper %d output:\n%s", i, out.String())
			}
		})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := incrementAll(ctx, s, key); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("in-process increments: %v", err)
	}
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	rec, err := stores[1].Get(ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := (len(stores) + helpers) * sharedWorkers * sharedIncrements
	if got, _ := strconv.Atoi(string(rec.Data)); got != want {
		t.Fatalf("counter = %q after %d participants × %d goroutines × %d increments, want %d", rec.Data, len(stores)+helpers, sharedWorkers, sharedIncrements, want)
	}
}

// TestHelperProcess is not a test: TestSharedFile runs the test binary again
// with STATELAB_SQLITE_HELPER=1 to get a second process on the same file.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("STATELAB_SQLITE_HELPER") != "1" {
		return // a helper for TestSharedFile, which sets the variable
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := sqlitestore.Open(ctx, os.Getenv("STATELAB_SQLITE_PATH"), sqlitestore.Options{SweepInterval: -1})
	if err != nil {
		t.Fatalf("helper: Open: %v", err)
	}
	defer s.Close()
	if err := incrementAll(ctx, s, os.Getenv("STATELAB_SQLITE_KEY")); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// incrementAll runs sharedWorkers goroutines that each add sharedIncrements
// to the counter under key.
func incrementAll(ctx context.Context, s session.Store, key string) error {
	var wg sync.WaitGroup
	errs := make(chan error, sharedWorkers)
	for w := 0; w < sharedWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < sharedIncrements; i++ {
				if err := increment(ctx, s, key); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func increment(ctx context.Context, s session.Store, key string) error {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		rec, err := s.Get(ctx, key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(rec.Data))
		if err != nil {
			return fmt.Errorf("counter holds %q: %w", rec.Data, err)
		}
		rec.Data = []byte(strconv.Itoa(n + 1))
		if _, err = s.Put(ctx, key, rec); err == nil {
			return nil
		}
		if !errors.Is(err, session.ErrConflict) {
			return err
		}
		time.Sleep(mrand.N(max(time.Since(start), time.Microsecond) << min(attempt, 6)))
	}
}

// TestSweeper checks that the sweeper deletes expired rows and keeps live
// ones.
func TestSweeper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sweep.db")
	s := openStore(t, path, sqlitestore.Options{SweepInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	past := time.Now().Add(-time.Minute)
	const expired = 2500 // more than one sweep batch
	// Insert the expired rows in one statement: 2500 Puts are slow under
	// the race detector.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
		INSERT INTO statelab_sessions (key, data, version, idle_expiry, absolute_expiry)
		SELECT 'old-' || i, x'', 1, ?2, 0 FROM n`, expired, past.UnixNano())
	if err != nil {
		t.Fatalf("insert expired rows: %v", err)
	}
	live := storetest.NewKey(t)
	if _, err := s.Put(ctx, live, session.Record{Data: []byte("live"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Put live: %v", err)
	}
	n, err := s.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != expired {
		t.Fatalf("Sweep deleted %d rows, want %d", n, expired)
	}
	if _, err := s.Get(ctx, live); err != nil {
		t.Fatalf("Get live after sweep: %v", err)
	}

	// The background sweeper does the same on its own.
	bg := openStore(t, path, sqlitestore.Options{SweepInterval: 10 * time.Millisecond})
	if _, err := bg.Put(ctx, "old-again", session.Record{IdleExpiry: past}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.Sweep(ctx) // finds nothing once the background sweeper ran
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background sweeper did not delete the expired row")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkGet(b *testing.B) {
	storetest.BenchGet(b, openStore(b, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{}))
}

func BenchmarkUpdate(b *testing.B) {
	storetest.BenchUpdate(b, openStore(b, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{}))
}

// TestDeadlineWhileLocked holds the file's write lock from another
// connection, as another process would, and checks that writes wait for it
// only until their context's deadline, then return an error wrapping
// context.DeadlineExceeded and session.ErrUnavailable, while reads go on.
func TestDeadlineWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	s := openStore(t, path, sqlitestore.Options{SweepInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := otherConn(t, ctx, path)
	unchanged := storetest.RunBlockedWrites(t, ctx, s, func(string) {
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
	}, session.ErrUnavailable)
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	unchanged() // WAL readers do not wait for the writer
}

// otherConn opens a connection to the file at path outside any Store, as
// another process would have; it is closed at the end of t.
func otherConn(t *testing.T, ctx context.Context, path string) *sql.Conn {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
