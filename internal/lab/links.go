package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
)

// The link scenarios: faults on the link between the replicas and the
// store, made by the lab's proxy on that link (internal/cluster).
const (
	// SlowStore adds latency to every round trip to the store mid-run,
	// then removes it.
	SlowStore Scenario = "slowstore"
	// Flaky resets a share of the store's new connections mid-run, then
	// stops.
	Flaky Scenario = "flaky"
)

// The link scenarios' schedule, as fractions of the measured run, and
// their defaults.
const (
	linkFaultAt, linkHealAt = 0.35, 0.65

	// DefaultStoreDelay is the latency slowstore adds to each round trip
	// to the store (--store-delay).
	DefaultStoreDelay = 50 * time.Millisecond
	// DefaultStoreResets is the share of new store connections flaky
	// resets (--store-resets).
	DefaultStoreResets = 0.3
)

// linkDescribe says what a link scenario does, or "" for another one.
func (s Scenario) linkDescribe() string {
	switch s {
	case SlowStore:
		return fmt.Sprintf("every round trip to the external store takes %v longer (--store-delay) from %s of the run to %s",
			DefaultStoreDelay, share(linkFaultAt), share(linkHealAt))
	case Flaky:
		return fmt.Sprintf("%.0f%% of new connections to the external store (--store-resets), and as many of the open ones, are reset from %s of the run to %s",
			DefaultStoreResets*100, share(linkFaultAt), share(linkHealAt))
	}
	return ""
}

// linkPlan is the fault schedule of a link scenario with cfg's delay and
// share, or nil for another scenario.
func (cfg Config) linkPlan() []faultStep {
	heal := faultStep{at: linkHealAt, what: "store link healed", do: func(ctx context.Context, c *cluster.Cluster) error { return c.HealStoreLink(ctx) }}
	switch cfg.Scenario {
	case SlowStore:
		d := cfg.storeDelay()
		return []faultStep{
			{at: linkFaultAt, what: fmt.Sprintf("store link +%v", d), do: func(ctx context.Context, c *cluster.Cluster) error { return c.SlowStore(ctx, d) }},
			heal,
		}
	case Flaky:
		f := cfg.storeResets()
		return []faultStep{
			{at: linkFaultAt, what: fmt.Sprintf("store link resets %.0f%%", f*100), do: func(ctx context.Context, c *cluster.Cluster) error { return c.FlakyStore(ctx, f) }},
			heal,
		}
	}
	return nil
}

// faultPlan is the fault schedule of cfg's run.
func (cfg Config) faultPlan() []faultStep {
	if p := cfg.linkPlan(); p != nil {
		return p
	}
	if p := cfg.hostPlan(); p != nil {
		return p
	}
	return cfg.Scenario.plan(cfg.Replicas)
}

func (cfg Config) storeDelay() time.Duration {
	if cfg.StoreDelay > 0 {
		return cfg.StoreDelay
	}
	return DefaultStoreDelay
}

func (cfg Config) storeResets() float64 {
	if cfg.StoreResets > 0 {
		return cfg.StoreResets
	}
	return DefaultStoreResets
}

// linkSkip says why a link scenario cannot run for cfg's strategy and
// store, or "" when it can (or cfg's scenario is not one).
func (cfg Config) linkSkip() string {
	if cfg.Scenario != SlowStore && cfg.Scenario != Flaky {
		return ""
	}
	spec := cfg.Strategy.Spec()
	switch {
	case !spec.External():
		return fmt.Sprintf("%s keeps its carts in %s: there is no store link to slow down or break", cfg.Strategy, where(cfg.Strategy))
	case cfg.Strategy == strategy.Database && cfg.PostgresURL == "":
		return "database runs on SQLite here, a file with no network link: pass --postgres URL to run " + string(cfg.Scenario) + " on PostgreSQL"
	}
	return ""
}

// where says where a strategy without an external store keeps its carts.
func where(st strategy.Strategy) string {
	if st == strategy.Client {
		return "the client's cookie"
	}
	return "the replicas' memory"
}

// validateLink checks the link scenarios' knobs.
func (cfg Config) validateLink() error {
	switch {
	case cfg.StoreDelay < 0 || cfg.StoreDelay > time.Minute:
		return fmt.Errorf("%w: store delay must be 0..1m, not %v", ErrBadConfig, cfg.StoreDelay)
	case !(cfg.StoreResets >= 0 && cfg.StoreResets <= 1):
		return fmt.Errorf("%w: store resets must be a share 0..1, not %v", ErrBadConfig, cfg.StoreResets)
	}
	return nil
}

// summarizeLink records a link scenario's parameters and what it did.
func (cfg Config) summarizeLink(r *RunResult, rec *recording) {
	switch cfg.Scenario {
	case SlowStore:
		r.StoreDelayMS = round(float64(cfg.storeDelay())/1e6, 3)
	case Flaky:
		r.StoreResets = cfg.storeResets()
	}
	r.StoreConnsReset = rec.linkResets
}

// linkP99Factor: a slow or flaky store link shows to clients when it causes
// errors, or a p99 more than 1.5× the steady run's. The slowstore delay
// (50 ms) is larger than a steady p99 on an idle store, so an unhurt p99
// means the store was not on the request path; 1.5× leaves room for the
// noise of short runs.
const linkP99Factor = 1.5

// linkEvidence adds what the link scenarios (and isolate) measured for strategy st to a
// claim's evidence: lost reports acknowledged items lost on a slow or
// flaky link (a correctness failure), hurt that clients paid for it in
// errors or latency (a cost).
func linkEvidence(ix runIndex, st strategy.Strategy) (ev string, lost, hurt bool) {
	steady := ix.get(st, Steady)
	var parts []string
	if r := ix.get(st, SlowStore); r != nil {
		parts = append(parts, fmt.Sprintf("with every store round trip %.0f ms slower for %s of the run, p99 %.0f ms%s, error rate %s, %d items lost",
			r.StoreDelayMS, share(linkHealAt-linkFaultAt), r.LatencyMS.P99, steadyP99(steady), pct(r.ErrorRate), r.ItemsLost))
		lost, hurt = r.ItemsLost > 0, linkHurts(r, steady)
	}
	if r := ix.get(st, Isolate); r != nil {
		parts = append(parts, fmt.Sprintf("with replica r2 cut off from the store for %s of the run (the balancer still reaching it), error rate %s, %d items lost",
			share(hostHealAt-hostCutAt), pct(r.ErrorRate), r.ItemsLost))
		lost, hurt = lost || r.ItemsLost > 0, hurt || r.ErrorRate > 0
	}
	if r := ix.get(st, Flaky); r != nil {
		parts = append(parts, fmt.Sprintf("with %.0f%% of store connections reset (%d resets), p99 %.0f ms, error rate %s, %d items lost",
			r.StoreResets*100, r.StoreConnsReset, r.LatencyMS.P99, pct(r.ErrorRate), r.ItemsLost))
		lost, hurt = lost || r.ItemsLost > 0, hurt || linkHurts(r, steady)
	}
	if len(parts) == 0 {
		return "", false, false
	}
	return "; " + strings.Join(parts, "; "), lost, hurt
}

// steadyP99 says the steady run's p99 for comparison, when there is one.
func steadyP99(steady *RunResult) string {
	if steady == nil {
		return ""
	}
	return fmt.Sprintf(" (steady %.0f ms)", steady.LatencyMS.P99)
}

// linkHurts reports whether a link fault showed to clients: errors, or a
// p99 over linkP99Factor times the steady run's.
func linkHurts(r, steady *RunResult) bool {
	return r.ErrorRate > 0 || (steady != nil && r.LatencyMS.P99 > linkP99Factor*steady.LatencyMS.P99)
}

// withLink folds the link scenarios' evidence for st into a claim's
// verdict: an item lost on a slow or flaky link means the store is not a
// safe place for carts; a link fault clients felt is a cost.
func withLink(ix runIndex, st strategy.Strategy, v Verdict, ev string) (Verdict, string) {
	more, lost, hurt := linkEvidence(ix, st)
	switch {
	case lost:
		v = DoesNotHold
	case hurt && v == Holds:
		v = HoldsWithCost
	}
	return v, ev + more
}
