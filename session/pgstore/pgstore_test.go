package pgstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/pgstore"
	"github.com/statelab/statelab/session/storetest"
)

// testSchema returns a schema name of this test run's own, and drops the
// schema when the test ends.
func testSchema(tb testing.TB, url string) string {
	tb.Helper()
	schema := "statelab_test_" + storetest.NewKey(tb)[:16]
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("cleanup: connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("cleanup: drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// newStore opens a Store on the test database in a fresh schema.
func newStore(tb testing.TB, opts pgstore.Options) *pgstore.Store {
	tb.Helper()
	url := testenv.PostgresURL(tb)
	if opts.Schema == "" {
		opts.Schema = testSchema(tb, url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, url, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	url := testenv.PostgresURL(t)
	schema := testSchema(t, url) // one schema (and table) for the whole suite
	storetest.Run(t, func(t *testing.T) session.Store {
		return newStore(t, pgstore.Options{Schema: schema})
	})
}

// TestUnavailable opens a Store through a TCP proxy to the test database,
// then shuts the proxy: pooled connections break and new dials are refused,
// as when the server is stopped.
func TestUnavailable(t *testing.T) {
	storetest.RunUnavailable(t, func(t *testing.T) session.Store {
		url := testenv.PostgresURL(t)
		p := startProxy(t, url)
		s := newStoreAt(t, p.url, testSchema(t, url))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.Put(ctx, storetest.NewKey(t), session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put through the proxy: %v", err)
		}
		p.stop()
		return s
	})
}

func newStoreAt(t *testing.T, url, schema string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenErrors(t *testing.T) {
	url := testenv.PostgresURL(t)
	closed := testenv.FreeAddr(t) // nothing listens there
	tests := []struct {
		name        string
		url         string
		opts        pgstore.Options
		unavailable bool
	}{
		{"bad URL", "postgres://%zz", pgstore.Options{}, false},
		{"bad schema name", url, pgstore.Options{Schema: "no; DROP TABLE x"}, false},
		{"bad table name", url, pgstore.Options{Schema: "ok", Table: "a-b"}, false},
		{"closed port", "postgres://root@" + closed + "/test?sslmode=disable", pgstore.Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := pgstore.Open(ctx, tt.url, tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open succeeded")
			}
			if got := errors.Is(err, session.ErrUnavailable); got != tt.unavailable {
				t.Fatalf("Open = %v; wraps ErrUnavailable = %v, want %v", err, got, tt.unavailable)
			}
		})
	}
}

// TestConcurrentMigrations opens one new schema from several goroutines at
// once: the advisory lock must make every Open succeed.
func TestConcurrentMigrations(t *testing.T) {
	url := testenv.PostgresURL(t)
	schema := testSchema(t, url)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
			if err != nil {
				errs <- err
				return
			}
			_ = s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
}

// TestSweeper checks that the sweeper deletes expired rows and keeps live ones.
func TestSweeper(t *testing.T) {
	url := testenv.PostgresURL(t)
	schema := testSchema(t, url)
	s := newStore(t, pgstore.Options{Schema: schema, SweepInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	past := time.Now().Add(-time.Minute)
	for i := 0; i < 3; i++ {
		if _, err := s.Put(ctx, storetest.NewKey(t), session.Record{Data: []byte("old"), IdleExpiry: past}); err != nil {
			t.Fatalf("Put expired: %v", err)
		}
	}
	live := storetest.NewKey(t)
	if _, err := s.Put(ctx, live, session.Record{Data: []byte("live"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Put live: %v", err)
	}
	conn := connect(t, ctx, url)
	q := "SELECT count(*) FROM " + pgx.Identifier{schema, pgstore.DefaultTable}.Sanitize()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rows int
		if err := conn.QueryRow(ctx, q).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table still holds %d rows, want 1 after sweeping", rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Get(ctx, live); err != nil {
		t.Fatalf("Get live after sweep: %v", err)
	}
}

// connect opens a connection of the test's own to the database at url,
// closed when the test ends.
func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestSweepBatches checks that Sweep deletes more than one batch.
func TestSweepBatches(t *testing.T) {
	url := testenv.PostgresURL(t)
	schema := testSchema(t, url)
	s := newStore(t, pgstore.Options{Schema: schema, SweepInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := connect(t, ctx, url)
	const n = 2500
	_, err := conn.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, pgstore.DefaultTable}.Sanitize()+
		" (key, data, version, idle_expiry) SELECT 'k' || g, '', 1, now() - interval '1 minute' FROM generate_series(1, $1) g", n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sweep(ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if got != n {
		t.Fatalf("Sweep deleted %d rows, want %d", got, n)
	}
}

// proxy forwards TCP connections from a loopback port to the test database,
// until stop closes the listener and every connection.
type proxy struct {
	url  string
	stop func()
}

func startProxy(t *testing.T, dbURL string) proxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		conns = append(conns, c)
		return true
	}
	conns = []net.Conn{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !track(c) || !track(up) {
				c.Close()
				up.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			conns = nil
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	u := strings.Replace(dbURL, cfg.Host+":"+strconv.Itoa(int(cfg.Port)), ln.Addr().String(), 1)
	if u == dbURL {
		t.Fatalf("cannot point %s at the proxy (the URL must spell host:port)", dbURL)
	}
	return proxy{url: u, stop: stop}
}

func BenchmarkGet(b *testing.B)    { storetest.BenchGet(b, newStore(b, pgstore.Options{})) }
func BenchmarkUpdate(b *testing.B) { storetest.BenchUpdate(b, newStore(b, pgstore.Options{})) }

// TestDeadlineWhileBlocked holds a row lock in another transaction so that
// Put, Touch and Delete block in the server, and checks that they return when
// their context's deadline passes, with an error wrapping
// context.DeadlineExceeded, and that the server cancelled them: once the
// lock is released, none of them has taken effect late.
func TestDeadlineWhileBlocked(t *testing.T) {
	url := testenv.PostgresURL(t)
	schema := testSchema(t, url)
	s := newStore(t, pgstore.Options{Schema: schema})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := connect(t, ctx, url)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	unchanged := storetest.RunBlockedWrites(t, ctx, s, func(key string) {
		if _, err := tx.Exec(ctx, "SELECT 1 FROM "+pgx.Identifier{schema, pgstore.DefaultTable}.Sanitize()+" WHERE key = $1 FOR UPDATE", key); err != nil {
			t.Fatal(err)
		}
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	unchanged()
}
