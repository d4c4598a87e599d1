package game

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/pgstore"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/sqlitestore"
)

// TestLeaseOnEveryStore runs the owner lease through its life on every
// store the game can use: acquire, renew, refuse a second owner while
// leased, hand over after expiry at the next epoch, fence the old owner's
// write, release to a third owner who resumes the state at once.
func TestLeaseOnEveryStore(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) session.Store
	}{
		{"memory", newMemstore},
		{"sqlite", func(t *testing.T) session.Store {
			s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "game.db"), sqlitestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"redis", func(t *testing.T) session.Store {
			s, err := redisstore.OpenURL(context.Background(), testenv.RedisURL(t), redisstore.Options{Prefix: "statelab-gametest-" + strings.ToLower(rand.Text()[:8]) + ":"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(t *testing.T) session.Store {
			url, schema := testenv.PostgresURL(t), "statelab_gametest_"+strings.ToLower(rand.Text()[:8])
			s, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				s.Close()
				if c, err := pgx.Connect(context.Background(), url); err == nil {
					c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
					c.Close(context.Background())
				}
			})
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			leaseLifecycle(t, st.open(t))
		})
	}
}

func leaseLifecycle(t *testing.T, store session.Store) {
	t.Helper()
	ctx := context.Background()
	m, err := newMetrics(prometheus.NewRegistry(), "t", "checkpoint", func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	rs := &recordStore{store: store, timeout: 5 * time.Second, metrics: m}
	const d = 300 * time.Millisecond
	la, st, err := rs.acquire(ctx, "r", "a", d)
	if err != nil || la.epoch != 1 || st.Tick != 0 {
		t.Fatalf("first acquire: %+v %+v %v", la, st, err)
	}
	st.Step([]Input{{"p", 1, "up"}})
	if err := rs.write(ctx, "r", "a", &la, st, d); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if _, _, err := rs.acquire(ctx, "r", "b", d); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second owner while leased: %v", err)
	}
	var lb lease
	deadline := time.Now().Add(10 * time.Second)
	for {
		lb, st, err = rs.acquire(ctx, "r", "b", d)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLeaseHeld) || time.Now().After(deadline) {
			t.Fatalf("acquire after expiry: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lb.epoch != 2 || st.Tick != 1 || st.Player("p").Applied != 1 {
		t.Fatalf("b resumed %+v at %+v", st, lb)
	}
	stale := NewState("r")
	if err := rs.write(ctx, "r", "a", &la, stale, d); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's write: %v, want ErrFenced", err)
	}
	st.Step([]Input{{"p", 2, "down"}})
	if err := rs.write(ctx, "r", "b", &lb, st, 0); err != nil {
		t.Fatalf("release: %v", err)
	}
	lc, st, err := rs.acquire(ctx, "r", "c", d)
	if err != nil || lc.epoch != 3 || st.Player("p").Applied != 2 {
		t.Fatalf("after release: %+v %+v %v", lc, st, err)
	}
}
