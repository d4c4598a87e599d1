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
			store := st.open(t)
			leaseLifecycle(t, store)
			batchFencing(t, store)
		})
	}
}

// testRecords returns a recordStore on store with metrics of its own.
func testRecords(t *testing.T, store session.Store) *recordStore {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry(), "t", "checkpoint", func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	return &recordStore{store: store, timeout: 5 * time.Second, metrics: m}
}

func leaseLifecycle(t *testing.T, store session.Store) {
	t.Helper()
	ctx, rs := context.Background(), testRecords(t, store)
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

// batchFencing renews three rooms' leases in one writeMany after a newer
// owner took the middle one over: that room alone is fenced (its lease
// untouched), the other two are renewed with their states.
func batchFencing(t *testing.T, store session.Store) {
	t.Helper()
	ctx, rs := context.Background(), testRecords(t, store)
	const d = 300 * time.Millisecond
	var reqs []saveReq
	for _, room := range []string{"x", "y", "z"} {
		l, st, err := rs.acquire(ctx, room, "a", d)
		if err != nil {
			t.Fatal(err)
		}
		st.Step([]Input{{"p", 1, "up"}})
		reqs = append(reqs, saveReq{room: room, l: &l, st: st})
	}
	if err := rs.write(ctx, "y", "a", reqs[1].l, reqs[1].st, 0); err != nil {
		t.Fatal(err) // released, so that b takes it over at once
	}
	if _, _, err := rs.acquire(ctx, "y", "b", d); err != nil {
		t.Fatal(err)
	}
	before := *reqs[1].l
	errs := rs.writeMany(ctx, "a", reqs, d)
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrFenced) {
		t.Fatalf("writeMany = %v, want nil, ErrFenced, nil", errs)
	}
	if *reqs[1].l != before {
		t.Errorf("the fenced lease changed: %+v -> %+v", before, *reqs[1].l)
	}
	for _, q := range []saveReq{reqs[0], reqs[2]} {
		rec, v, err := rs.get(ctx, q.room)
		if err != nil || v != q.l.version || rec.Owner != "a" || rec.State.Player("p").Applied != 1 || time.Until(q.l.validUntil) <= 0 {
			t.Errorf("room %s after writeMany: %+v v%d (lease %+v) %v", q.room, rec, v, *q.l, err)
		}
	}
}
