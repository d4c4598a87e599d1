package stores

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/storetest"
)

// lateTestQuietLogger drops go-redis's log lines: every attempt to reach the
// server that is not there yet logs a failed dial.
type lateTestQuietLogger struct{}

func (lateTestQuietLogger) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(lateTestQuietLogger{}) }

// TestLateStoreRedisStartsLater opens a Redis store whose server is not
// running yet: every call fails with ErrNotOpenYet (an ErrUnavailable) and
// Ping says not ready, until the test starts redis-server on that port;
// then the store opens by itself and serves.
func TestLateStoreRedisStartsLater(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	port := testenv.FreePort(t)
	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	open := func(ctx context.Context) (session.Store, func() error, error) {
		s, err := redisstore.OpenURL(ctx, url, redisstore.Options{})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, first := open(ctx)
	if !errors.Is(first, session.ErrUnavailable) {
		t.Fatalf("opening with no server: %v, want ErrUnavailable", first)
	}
	l := openLate(open, first, 50*time.Millisecond, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	key := storetest.NewKey(t)
	rec := session.Record{Data: []byte("cart"), IdleExpiry: time.Now().Add(time.Hour)}
	if err := l.Ping(ctx); !errors.Is(err, ErrNotOpenYet) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Ping before the server runs = %v, want ErrNotOpenYet and ErrUnavailable", err)
	}
	if _, err := l.Put(ctx, key, rec); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Put before the server runs = %v, want ErrUnavailable", err)
	}
	if _, err := l.Get(ctx, key); !errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get before the server runs = %v, want ErrUnavailable (not ErrNotFound)", err)
	}

	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	for deadline := time.Now().Add(15 * time.Second); l.Ping(ctx) != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("store not ready 15 s after redis-server started: %v", l.Ping(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	v, err := l.Put(ctx, key, rec)
	if err != nil {
		t.Fatalf("Put once the server runs: %v", err)
	}
	got, err := l.Get(ctx, key)
	if err != nil || got.Version != v || string(got.Data) != "cart" {
		t.Fatalf("Get = %+v, %v; want the record just written", got, err)
	}
	if n, err := l.Count(ctx); err != nil || n < 1 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

// TestOpenRedisDown checks how Open treats a Redis that does not answer:
// an error without RetryOpen, a backend that is not ready with it, and a
// bad sentinel spec as an error either way (no retry can fix it).
func TestOpenRedisDown(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	tests := []struct {
		name      string
		cfg       Config
		wantLate  bool
		wantError bool
	}{
		{"no retry", Config{Kind: Redis, RedisURL: "redis://" + dead + "/0"}, false, true},
		{"retry", Config{Kind: Redis, RedisURL: "redis://" + dead + "/0", RetryOpen: time.Hour}, true, false},
		{"cluster, retry", Config{Kind: Redis, RedisCluster: []string{dead}, RetryOpen: time.Hour}, true, false},
		{"bad sentinel spec, retry", Config{Kind: Redis, RedisSentinel: dead, RetryOpen: time.Hour}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tt.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			b, err := Open(ctx, tt.cfg)
			if (err != nil) != tt.wantError {
				t.Fatalf("Open: err = %v, want error %v", err, tt.wantError)
			}
			if err != nil {
				return
			}
			defer b.Close()
			perr := b.Store.(session.Pinger).Ping(ctx)
			if tt.wantLate && !errors.Is(perr, ErrNotOpenYet) {
				t.Fatalf("Ping = %v, want ErrNotOpenYet", perr)
			}
		})
	}
}
