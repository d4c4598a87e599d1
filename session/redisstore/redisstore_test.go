package redisstore_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/storetest"
)

// newStore returns a Store on the test Redis under a prefix of its own, and
// deletes the prefix's keys when the test ends.
func newStore(tb testing.TB) *redisstore.Store {
	tb.Helper()
	url := testenv.RedisURL(tb)
	prefix := "statelab-test:" + storetest.NewKey(tb)[:16] + ":"
	s, err := redisstore.OpenURL(context.Background(), url, redisstore.Options{Prefix: prefix})
	if err != nil {
		tb.Fatalf("OpenURL(%s): %v", url, err)
	}
	tb.Cleanup(func() {
		cleanPrefix(tb, url, prefix)
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func cleanPrefix(tb testing.TB, url, prefix string) {
	tb.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			tb.Errorf("cleanup: DEL %s: %v", iter.Val(), err)
		}
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("cleanup: SCAN: %v", err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store { return newStore(t) })
}

func TestUnavailableClosedPort(t *testing.T) {
	storetest.RunUnavailable(t, func(t *testing.T) session.Store {
		c := redis.NewClient(&redis.Options{
			Addr:                  testenv.FreeAddr(t),
			DialTimeout:           redisstore.DefaultDialTimeout,
			DialerRetries:         redisstore.DefaultDialerRetries,
			ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { _ = c.Close() })
		return redisstore.New(c, redisstore.Options{})
	})
}

// TestUnavailableServerStopped starts a private redis-server, writes to it,
// kills it, and checks that the Store (whose pooled connections are now
// dead) fails promptly with session.ErrUnavailable.
func TestUnavailableServerStopped(t *testing.T) {
	storetest.RunUnavailable(t, func(t *testing.T) session.Store {
		sock, stop := startRedis(t)
		s, err := redisstore.OpenURL(context.Background(), "unix://"+sock, redisstore.Options{})
		if err != nil {
			t.Fatalf("OpenURL: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.Put(ctx, storetest.NewKey(t), session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put before the server stops: %v", err)
		}
		stop()
		return s
	})
}

// startRedis starts redis-server from PATH on a Unix socket in a temporary
// directory (no TCP port, so nothing can collide), waits until it answers,
// and returns the socket path and a function that kills it. The server is
// killed at cleanup in any case.
func startRedis(t *testing.T) (sock string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	dir := t.TempDir()
	sock = filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return sock, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer on %s: %v", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenURL(t *testing.T) {
	tests := []struct {
		name        string
		url         string
		unavailable bool
	}{
		{"not a URL", "://nope", false},
		{"wrong scheme", "http://127.0.0.1:6379", false},
		{"bad database", "redis://127.0.0.1:6379/notanumber", false},
		{"closed port", "redis://" + testenv.FreeAddr(t) + "/0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := redisstore.OpenURL(ctx, tt.url, redisstore.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("OpenURL(%q) succeeded", tt.url)
			}
			if got := errors.Is(err, session.ErrUnavailable); got != tt.unavailable {
				t.Fatalf("OpenURL(%q) = %v; wraps ErrUnavailable = %v, want %v", tt.url, err, got, tt.unavailable)
			}
		})
	}
}

// TestPrefixIsolation checks that two stores with different prefixes on one
// Redis neither see nor count each other's records.
func TestPrefixIsolation(t *testing.T) {
	a, b := newStore(t), newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := storetest.NewKey(t)
	if _, err := a.Put(ctx, key, session.Record{Data: []byte("a"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := b.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get through another prefix: %v, want ErrNotFound", err)
	}
	for name, s := range map[string]*redisstore.Store{"a": a, "b": b} {
		n, err := s.Count(ctx)
		if err != nil {
			t.Fatalf("Count(%s): %v", name, err)
		}
		if want := map[string]int{"a": 1, "b": 0}[name]; n != want {
			t.Fatalf("Count(%s) = %d, want %d", name, n, want)
		}
	}
}

// TestTouchKeepsData checks on the server that Touch rewrote only the idle
// field and the key's TTL.
func TestTouchKeepsData(t *testing.T) {
	url := testenv.RedisURL(t)
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := storetest.NewKey(t)
	abs := time.Now().Add(time.Hour)
	if _, err := s.Put(ctx, key, session.Record{Data: []byte("payload"), IdleExpiry: time.Now().Add(time.Minute), AbsoluteExpiry: abs}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	full := redisKey(t, c, key)
	before, err := c.HGetAll(ctx, full).Result()
	if err != nil {
		t.Fatal(err)
	}
	idle := time.Now().Add(2 * time.Hour) // past the absolute limit
	if err := s.Touch(ctx, key, idle); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	after, err := c.HGetAll(ctx, full).Result()
	if err != nil {
		t.Fatal(err)
	}
	for f, v := range before {
		if f != "i" && after[f] != v {
			t.Errorf("Touch changed field %s from %q to %q", f, v, after[f])
		}
	}
	ttl, err := c.PExpireTime(ctx, full).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := time.UnixMilli(int64(ttl / time.Millisecond)); got.Sub(abs).Abs() > time.Millisecond {
		t.Fatalf("key expires at %v after Touch past the absolute limit, want %v", got, abs)
	}
}

// redisKey finds the full Redis key of a store key (the prefix is private to
// newStore).
func redisKey(t *testing.T, c *redis.Client, key string) string {
	t.Helper()
	keys, err := c.Keys(context.Background(), "statelab-test:*:"+key).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("KEYS for %s = %v, %v; want exactly one", key, keys, err)
	}
	return keys[0]
}

func TestNewDefaultPrefix(t *testing.T) {
	url := testenv.RedisURL(t)
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	s := redisstore.New(c, redisstore.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := storetest.NewKey(t)
	if _, err := s.Put(ctx, key, session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Minute)}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	t.Cleanup(func() { _ = c.Del(context.Background(), redisstore.DefaultPrefix+key).Err() })
	n, err := c.Exists(ctx, redisstore.DefaultPrefix+key).Result()
	if err != nil || n != 1 {
		t.Fatalf("EXISTS %s = %d, %v; want 1", redisstore.DefaultPrefix+key, n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Close of a Store from New closed the caller's client: %v", err)
	}
}

func BenchmarkGet(b *testing.B)    { storetest.BenchGet(b, newStore(b)) }
func BenchmarkUpdate(b *testing.B) { storetest.BenchUpdate(b, newStore(b)) }
