package lab

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// TestSlowStoreEndToEnd runs the database strategy on PostgreSQL through
// slowstore: while the link is slow, the requests that reach the store take
// at least the added delay (their bucket's p99 shows it), and no
// acknowledged item is lost.
func TestSlowStoreEndToEnd(t *testing.T) {
	cfg := e2eConfig(t, strategy.Database)
	cfg.Scenario, cfg.PostgresURL = SlowStore, testenv.PostgresURL(t)
	cfg.StoreDelay = 150 * time.Millisecond
	run := runFaultScenario(t, cfg, "store link +150ms")
	r := run.Result
	if r.ItemsLost != 0 || r.CartsLost != 0 {
		t.Errorf("%d acknowledged items lost in %d carts on a slow link", r.ItemsLost, r.CartsLost)
	}
	if r.StoreDelayMS != 150 {
		t.Errorf("store_delay_ms %v, want 150", r.StoreDelayMS)
	}
	checkSlowWindow(t, run, 150)
}

// checkSlowWindow checks that while the store link was slow some bucket's
// p99 reached the added delay of ms milliseconds.
func checkSlowWindow(t *testing.T, run *Run, ms float64) {
	t.Helper()
	from, to := float64(run.Faults[0].End)/1e9, float64(run.Faults[1].At)/1e9
	var slowest, before float64
	for _, b := range run.Timeline {
		switch {
		case b.Start >= from && b.Start+0.1 <= to:
			slowest = max(slowest, b.P99)
		case b.Start+0.1 <= float64(run.Faults[0].At)/1e9:
			before = max(before, b.P99)
		}
	}
	t.Logf("p99 of the buckets before the fault: up to %.1f ms; while the link was slow: up to %.1f ms", before, slowest)
	if slowest < ms {
		t.Errorf("while every store round trip took %.0f ms longer, no bucket's p99 reached it (max %.1f ms)", ms, slowest)
	}
}

// TestFlakyEndToEnd runs the cache strategy (a redis-server the lab starts,
// behind the lab's link proxy) through flaky with half the store
// connections reset: the link resets connections, and no acknowledged item
// is lost.
func TestFlakyEndToEnd(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH (the cache run starts its own)")
	cfg := e2eConfig(t, strategy.Cache)
	cfg.Scenario, cfg.StoreResets = Flaky, 0.5
	run := runFaultScenario(t, cfg, "store link resets 50%")
	if r := run.Result; r.ItemsLost != 0 || r.CartsLost != 0 {
		t.Errorf("%d acknowledged items lost in %d carts on a flaky link", r.ItemsLost, r.CartsLost)
	}
	if r := run.Result; r.StoreConnsReset == 0 || r.StoreResets != 0.5 {
		t.Errorf("store_conns_reset %d, store_resets %v; want some connections reset at a share of 0.5", r.StoreConnsReset, r.StoreResets)
	}
}

// runFaultScenario runs cfg and checks what every fault scenario must give:
// both fault steps done (the first one named first), work measured, no
// crash.
func runFaultScenario(t *testing.T, cfg Config, first string) *Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := RunOne(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := run.Result
	t.Logf("%s %s: %d requests, %d errors, p99 %.1f ms, carts %d lost %d, items %d lost %d, stale %d, resets %d, faults %+v, notes %q",
		r.Strategy, r.Scenario, r.Requests, r.Errors, r.LatencyMS.P99, r.Carts, r.CartsLost, r.ItemsAcked, r.ItemsLost, r.StaleReads, r.StoreConnsReset, run.Faults, run.Note())
	if run.Skipped != "" {
		t.Fatalf("skipped: %s", run.Skipped)
	}
	if len(run.Crashes) > 0 {
		t.Fatalf("crashes: %v", run.Crashes)
	}
	if len(run.Faults) != 2 || run.Faults[0].What != first || strings.Contains(run.Faults[1].What, "failed") {
		t.Fatalf("faults %+v, want %q and its heal, both done", run.Faults, first)
	}
	if r.Carts == 0 || r.ItemsAcked == 0 {
		t.Fatalf("no work measured: %+v", r)
	}
	return run
}

// TestLinkScenarioSkips: the link scenarios say why they cannot run for a
// strategy without a store link, and run for the others.
func TestLinkScenarioSkips(t *testing.T) {
	for _, tc := range []struct {
		st       strategy.Strategy
		sc       Scenario
		postgres string
		want     string
	}{
		{strategy.Sticky, SlowStore, "", "replicas' memory"},
		{strategy.Client, Flaky, "", "client's cookie"},
		{strategy.Database, SlowStore, "", "--postgres URL"},
		{strategy.Database, Flaky, "postgres://x", ""},
		{strategy.Cache, SlowStore, "", ""},
		{strategy.Sticky, Steady, "", ""},
	} {
		cfg := Config{Strategy: tc.st, Scenario: tc.sc, PostgresURL: tc.postgres}
		got := cfg.linkSkip()
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s × %s: skip %q, want %q", tc.st, tc.sc, got, tc.want)
		}
	}
	if p := (Config{Scenario: SlowStore}).linkPlan(); len(p) != 2 || !strings.Contains(p[0].what, "50ms") {
		t.Errorf("slowstore plan %+v, want +50ms then heal", p)
	}
	bad := Config{StoreResets: 2}
	if err := bad.validateLink(); err == nil {
		t.Error("a reset share of 2 passed validation")
	}
}
