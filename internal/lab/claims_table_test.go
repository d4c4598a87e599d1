package lab

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/strategy"
)

// runOf is fakeRun with typed names.
func runOf(st strategy.Strategy, sc Scenario, mod func(r *RunResult)) *Run {
	return fakeRun(string(st), string(sc), mod)
}

// TestClaimBoundaries judges each claim of the table on either side of each
// of its thresholds: holds, holds with a cost, does not hold, not measured.
func TestClaimBoundaries(t *testing.T) {
	lose := func(n int) func(*RunResult) { return func(r *RunResult) { r.ItemsLost, r.CartsLost = n, min(n, 1) } }
	imbalance := func(v float64) func(*RunResult) { return func(r *RunResult) { r.Imbalance = v } }
	errs := func(v float64) func(*RunResult) { return func(r *RunResult) { r.ErrorRate = v } }
	p50 := func(v float64) func(*RunResult) { return func(r *RunResult) { r.LatencyMS.P50 = v } }
	p99 := func(v float64) func(*RunResult) { return func(r *RunResult) { r.LatencyMS.P99 = v } }
	base := fakeRun("", "", nil).Result // every fake run's defaults
	above := func(v float64) float64 { return v * 1.001 }

	type row = struct {
		name string
		runs []*Run
		want Verdict
		says string // a piece of the evidence, when it matters
	}
	tests := map[int][]row{
		1: {
			{"affinity fixes it", []*Run{runOf(strategy.Naive, Steady, lose(5)), runOf(strategy.Sticky, Steady, nil)}, Holds, ""},
			{"affinity not enough", []*Run{runOf(strategy.Naive, Steady, lose(5)), runOf(strategy.Sticky, Steady, func(r *RunResult) { r.StaleReads = 1 })}, HoldsWithCost, "not enough"},
			{"nothing breaks", []*Run{runOf(strategy.Naive, Steady, nil), runOf(strategy.Sticky, Steady, nil)}, DoesNotHold, ""},
			{"missing", []*Run{runOf(strategy.Naive, Steady, lose(5))}, NotMeasured, "sticky × steady"},
		},
		2: {
			{"imbalance at the margin", []*Run{runOf(strategy.Sticky, Scaleout, imbalance(base.Imbalance*scaleImbalanceMargin)), runOf(strategy.Client, Scaleout, nil)}, DoesNotHold, "rebalances"},
			{"imbalance over the margin", []*Run{runOf(strategy.Sticky, Scaleout, imbalance(above(base.Imbalance*scaleImbalanceMargin))), runOf(strategy.Client, Scaleout, nil)}, Holds, ""},
			{"errors at the margin", []*Run{runOf(strategy.Sticky, Scaleout, errs(scaleErrorMargin)), runOf(strategy.Client, Scaleout, nil)}, DoesNotHold, ""},
			{"errors over the margin", []*Run{runOf(strategy.Sticky, Scaleout, errs(above(scaleErrorMargin))), runOf(strategy.Client, Scaleout, nil)}, Holds, ""},
		},
		3: {
			{"only sticky loses", []*Run{runOf(strategy.Sticky, Failover, lose(3)), runOf(strategy.Cache, Failover, nil), runOf(strategy.Client, Failover, nil)}, Holds, "cache 0, client 0"},
			{"others lose too", []*Run{runOf(strategy.Sticky, Failover, lose(3)), runOf(strategy.Database, Failover, lose(1))}, HoldsWithCost, "lost some too"},
			{"sticky loses nothing", []*Run{runOf(strategy.Sticky, Failover, nil)}, DoesNotHold, ""},
		},
		4: {
			{"a cart damaged", []*Run{runOf(strategy.Sticky, Failover, func(r *RunResult) { r.CartsLost = 1 })}, Holds, "1 of 30 carts"},
			{"no cart damaged", []*Run{runOf(strategy.Sticky, Failover, nil), runOf(strategy.Replicated, Failover, nil)}, DoesNotHold, "plus replication lost 0"},
		},
		5: {
			{"no overhead", []*Run{runOf(strategy.Replicated, Failover, nil), runOf(strategy.Replicated, Steady, nil), runOf(strategy.Sticky, Steady, nil)}, Holds, "no overhead"},
			{"p50 at the margin", []*Run{runOf(strategy.Replicated, Failover, nil), runOf(strategy.Replicated, Steady, p50(base.LatencyMS.P50*replP50Margin)), runOf(strategy.Sticky, Steady, nil)}, Holds, ""},
			{"p50 over the margin", []*Run{runOf(strategy.Replicated, Failover, nil), runOf(strategy.Replicated, Steady, p50(above(base.LatencyMS.P50*replP50Margin))), runOf(strategy.Sticky, Steady, nil)}, HoldsWithCost, ""},
			{"p99 at the margin", []*Run{runOf(strategy.Replicated, Failover, nil), runOf(strategy.Replicated, Steady, p99(base.LatencyMS.P99*replP99Margin)), runOf(strategy.Sticky, Steady, nil)}, Holds, ""},
			{"p99 over the margin", []*Run{runOf(strategy.Replicated, Failover, nil), runOf(strategy.Replicated, Steady, p99(above(base.LatencyMS.P99*replP99Margin))), runOf(strategy.Sticky, Steady, nil)}, HoldsWithCost, ""},
			{"steady errors over the margin", []*Run{runOf(strategy.Replicated, Failover, nil), runOf(strategy.Replicated, Steady, errs(above(replErrorMargin))), runOf(strategy.Sticky, Steady, nil)}, HoldsWithCost, ""},
			{"failover errors at the margin", []*Run{runOf(strategy.Replicated, Failover, errs(replErrorMargin)), runOf(strategy.Replicated, Steady, nil), runOf(strategy.Sticky, Steady, nil), runOf(strategy.Sticky, Failover, nil)}, Holds, "failover error rate 0.5%"},
			{"failover errors over the margin", []*Run{runOf(strategy.Replicated, Failover, errs(above(replErrorMargin))), runOf(strategy.Replicated, Steady, nil), runOf(strategy.Sticky, Steady, nil), runOf(strategy.Sticky, Failover, nil)}, HoldsWithCost, ""},
			{"items lost", []*Run{runOf(strategy.Replicated, Failover, lose(1)), runOf(strategy.Replicated, Steady, nil), runOf(strategy.Sticky, Steady, nil)}, DoesNotHold, ""},
		},
		6: {
			{"no outage run", []*Run{runOf(strategy.Cache, Failover, nil)}, Holds, ""},
			{"outage without errors, p99 at twice steady", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Steady, nil), runOf(strategy.Cache, Storefail, p99(base.LatencyMS.P99*outageP99Factor))}, Holds, "down for 30% of the run"},
			{"outage p99 over twice steady", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Steady, nil), runOf(strategy.Cache, Storefail, p99(above(base.LatencyMS.P99*outageP99Factor)))}, HoldsWithCost, ""},
			{"outage errors", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Storefail, errs(0.001))}, HoldsWithCost, ""},
			{"items lost", []*Run{runOf(strategy.Cache, Failover, lose(1)), runOf(strategy.Cache, Storefail, errs(0.1))}, DoesNotHold, ""},
			{"slow link, p99 at the margin", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Steady, nil), runOf(strategy.Cache, SlowStore, func(r *RunResult) { r.LatencyMS.P99, r.StoreDelayMS = base.LatencyMS.P99*linkP99Factor, 50 })}, Holds, "50 ms slower for 30% of the run"},
			{"slow link, p99 over the margin", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Steady, nil), runOf(strategy.Cache, SlowStore, p99(above(base.LatencyMS.P99*linkP99Factor)))}, HoldsWithCost, "(steady 5 ms)"},
			{"flaky link errors", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Flaky, func(r *RunResult) { r.ErrorRate, r.StoreResets, r.StoreConnsReset = 0.001, 0.3, 12 })}, HoldsWithCost, "30% of store connections reset (12 resets)"},
			{"clustered master killed", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Storefail, func(r *RunResult) {
				ms := int64(2300)
				r.RedisMode, r.RedisWait, r.FailoverMS, r.ErrorRate = "sentinel", 1, &ms, 0.2
			})}, HoldsWithCost, "master of the Redis sentinel killed (its replica promoted after 2300 ms; --redis-wait 1)"},
			{"isolated replica, errors", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Isolate, errs(0.01))}, HoldsWithCost, "r2 cut off from the store for 30% of the run"},
			{"isolated replica loses items", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Isolate, lose(2))}, DoesNotHold, "2 items lost"},
			{"flaky link loses items", []*Run{runOf(strategy.Cache, Failover, nil), runOf(strategy.Cache, Flaky, lose(1))}, DoesNotHold, "1 items lost"},
		},
		7: {
			{"as fast as the cache", []*Run{runOf(strategy.Database, Failover, nil), runOf(strategy.Database, Steady, p99(base.LatencyMS.P99*dbP99Margin)), runOf(strategy.Cache, Steady, nil)}, Holds, "(cache: "},
			{"slower than the cache", []*Run{runOf(strategy.Database, Failover, nil), runOf(strategy.Database, Steady, p99(above(base.LatencyMS.P99*dbP99Margin))), runOf(strategy.Cache, Steady, nil)}, HoldsWithCost, ""},
			{"outage errors", []*Run{runOf(strategy.Database, Failover, nil), runOf(strategy.Database, Steady, nil), runOf(strategy.Database, Storefail, errs(0.02))}, HoldsWithCost, "unavailable for 30% of the run"},
			{"items lost", []*Run{runOf(strategy.Database, Failover, lose(2)), runOf(strategy.Database, Steady, nil)}, DoesNotHold, ""},
			{"missing", []*Run{runOf(strategy.Database, Steady, nil)}, NotMeasured, "database × failover"},
			{"slow link loses items", []*Run{runOf(strategy.Database, Failover, nil), runOf(strategy.Database, Steady, nil), runOf(strategy.Database, SlowStore, lose(2))}, DoesNotHold, "2 items lost"},
			{"slow link costs latency", []*Run{runOf(strategy.Database, Failover, nil), runOf(strategy.Database, Steady, nil), runOf(strategy.Database, SlowStore, p99(above(base.LatencyMS.P99*linkP99Factor)))}, HoldsWithCost, "store round trip"},
		},
		8: {
			{"even at the margin", []*Run{runOf(strategy.Client, Steady, nil), runOf(strategy.Client, Scaleout, imbalance(evenImbalance))}, Holds, ""},
			{"uneven over the margin", []*Run{runOf(strategy.Client, Steady, nil), runOf(strategy.Client, Scaleout, imbalance(above(evenImbalance)))}, DoesNotHold, ""},
			{"stale reads", []*Run{runOf(strategy.Client, Steady, func(r *RunResult) { r.StaleReads = 1 }), runOf(strategy.Client, Scaleout, nil)}, DoesNotHold, ""},
		},
		9: {
			{"client loses nothing", []*Run{runOf(strategy.Client, Failover, nil), runOf(strategy.Sticky, Failover, lose(4))}, Holds, "recovery 300 ms vs 300 ms"},
			{"client loses less", []*Run{runOf(strategy.Client, Failover, lose(1)), runOf(strategy.Sticky, Failover, lose(4))}, HoldsWithCost, ""},
			{"client loses as much", []*Run{runOf(strategy.Client, Failover, lose(4)), runOf(strategy.Sticky, Failover, lose(4))}, DoesNotHold, ""},
		},
		10: {
			{"no tabs run", []*Run{runOf(strategy.Client, Steady, nil), runOf(strategy.Sticky, Steady, nil)}, Holds, "60-byte cookie"},
			{"tabs lose nothing", []*Run{runOf(strategy.Client, Steady, nil), runOf(strategy.Client, Tabs, nil)}, Holds, "0 acknowledged updates were lost"},
			{"tabs lose an update", []*Run{runOf(strategy.Client, Steady, nil), runOf(strategy.Client, Tabs, func(r *RunResult) { r.LostUpdates = 1 })}, HoldsWithCost, ""},
		},
	}
	tests[claimNumber(t, gameClaim.text)] = gameClaimRows()
	for _, r := range replayClaimRows(runOf) {
		n := claimNumber(t, replayClaimText)
		tests[n] = append(tests[n], row(r))
	}
	quorum := func(q string, mod func(*RunResult)) func(*RunResult) {
		return func(r *RunResult) {
			r.ReplQuorum = q
			if mod != nil {
				mod(r)
			}
		}
	}
	n := claimNumber(t, partitionClaimText)
	tests[n] = []row{
		{"quorum, nothing lost", []*Run{runOf(strategy.Replicated, Partition, quorum("majority", nil))}, Holds, "write quorum majority"},
		{"quorum, errors at the margin", []*Run{runOf(strategy.Replicated, Partition, quorum("majority", errs(partitionErrorMargin)))}, Holds, ""},
		{"quorum, errors over the margin", []*Run{runOf(strategy.Replicated, Partition, quorum("majority", errs(above(partitionErrorMargin))))}, HoldsWithCost, "refused writes"},
		{"quorum, items lost", []*Run{runOf(strategy.Replicated, Partition, quorum("2", lose(1)))}, DoesNotHold, "write quorum 2"},
		{"no quorum", []*Run{runOf(strategy.Replicated, Partition, quorum("one", lose(3)))}, NotMeasured, "what a quorum prevents"},
		{"missing", []*Run{runOf(strategy.Replicated, Steady, nil)}, NotMeasured, "replicated × partition"},
	}
	if len(tests)+len(serviceClaims) != len(claims) {
		t.Errorf("%d claims tested, the table has %d", len(tests)+len(serviceClaims), len(claims)) // the services rows: TestServiceClaimBoundaries
	}
	for n, rows := range tests {
		for _, tt := range rows {
			t.Run(fmt.Sprintf("%d/%s", n, tt.name), func(t *testing.T) {
				got := EvaluateClaims(tt.runs)[n-1]
				if got.N != n || got.Verdict != tt.want || !strings.Contains(got.Evidence, tt.says) {
					t.Errorf("claim %d: %s (%s), want %s with %q", got.N, got.Verdict, got.Evidence, tt.want, tt.says)
				}
			})
		}
	}
}

func TestScenarioSchedule(t *testing.T) {
	if got := Storefail.storeOutage(); math.Abs(got-0.30) > 1e-9 {
		t.Errorf("storefail outage = %v, want 0.30 of the run", got)
	}
	for _, sc := range []Scenario{Steady, Failover, Scaleout, Rolling, Tabs} {
		if got := sc.storeOutage(); got != 0 {
			t.Errorf("%s: store outage %v, want none", sc, got)
		}
	}
	want := map[Scenario]string{
		Failover:  "replica r2 is SIGKILLed at 30% of the run and restarted at 65%",
		Scaleout:  "starts with half the replicas; the rest join through the balancer's admin API at 40%",
		Rolling:   "every replica is restarted gracefully in turn between 20% and 80%",
		Storefail: "the external store is stopped at 35% of the run and started again at 65%",
	}
	for sc, w := range want {
		if got := sc.Describe(); got != w {
			t.Errorf("%s: %q, want %q", sc, got, w)
		}
	}
	plan := Rolling.plan(4)
	if len(plan) != 4 || plan[0].at != rollingFrom || math.Abs(plan[3].at-rollingTo) > 1e-9 {
		t.Errorf("rolling plan over 4 replicas: %+v", plan)
	}
}
