package lab

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/strategy"
)

// servicesRun is a surge or deploy run of strategy st whose measurements
// hold every services claim; mod changes them.
func servicesRun(st strategy.Strategy, sc Scenario, mod func(r *RunResult, s *ServicesResult)) *Run {
	return runOf(st, sc, func(r *RunResult) {
		s := &ServicesResult{Shape: "services", ScaledPool: "pricing", ReplicasBefore: 1, ReplicasAfter: 4,
			CartReplicasBefore: 4, CartReplicasAfter: 4, ProcessesAdded: 3, QuoteRPS: 60, SurgeFactor: 4, Quotes: 500,
			CapacityBeforeRPS: 100, CapacityAfterRPS: 400, Linearity: 1, PoolPolicy: "round_robin", PoolImbalance: 1.02,
			Monolith: &ServicesResult{Shape: "monolith", ScaledPool: "cart", ReplicasBefore: 4, ReplicasAfter: 7, CapacityBeforeRPS: 400, CartImbalance: 1.3, ReplicasForCapacity: 4}}
		if sc == Deploy {
			s.ReplicasBefore, s.ReplicasAfter, s.PoolPolicy, s.Monolith = 2, 2, "least_request", nil
			s.Replay = &ReplayResult{PricingRequests: 50, PricingIdentical: 50, CartRequests: 40, CartIdentical: 0}
		}
		r.Services = s
		if mod != nil {
			mod(r, s)
		}
	})
}

// serviceClaimN is the number of the services claim whose text has word.
func serviceClaimN(t *testing.T, word string) int {
	t.Helper()
	for i, c := range claims {
		if strings.Contains(c.text, word) {
			return i + 1
		}
	}
	t.Fatalf("no claim says %q", word)
	return 0
}

// TestServiceClaimBoundaries judges claims 12–15 on either side of each
// threshold.
func TestServiceClaimBoundaries(t *testing.T) {
	type row struct {
		name string
		runs []*Run
		want Verdict
		says string
	}
	surge := func(mod func(r *RunResult, s *ServicesResult)) *Run { return servicesRun(strategy.Sticky, Surge, mod) }
	deploy := func(mod func(r *RunResult, s *ServicesResult)) *Run { return servicesRun(strategy.Sticky, Deploy, mod) }
	tests := map[string][]row{
		"independent scaling": {
			{"linear at the margin", []*Run{surge(func(_ *RunResult, s *ServicesResult) { s.Linearity = scaleLinearity })}, Holds, "needs 4 cart replicas"},
			{"under the margin", []*Run{surge(func(_ *RunResult, s *ServicesResult) { s.Linearity = scaleLinearity - 0.001 })}, DoesNotHold, ""},
			{"a cart restarted", []*Run{surge(func(_ *RunResult, s *ServicesResult) { s.CartRestarts = 1 })}, DoesNotHold, "1 restarts"},
			{"a cart added", []*Run{surge(func(_ *RunResult, s *ServicesResult) { s.CartReplicasAfter = 5 })}, DoesNotHold, ""},
			{"any strategy's run", []*Run{servicesRun(strategy.Cache, Surge, nil)}, Holds, "cache × surge"},
			{"missing", []*Run{runOf(strategy.Sticky, Steady, nil)}, NotMeasured, "surge"},
		},
		"independent deployment": {
			{"no error", []*Run{deploy(nil), runOf(strategy.Sticky, Rolling, func(r *RunResult) { r.ItemsLost = 9 })}, Holds, "9 of 100 acknowledged items lost"},
			{"a shopper error", []*Run{deploy(func(r *RunResult, _ *ServicesResult) { r.Errors = maxDeployErrors + 1 })}, DoesNotHold, ""},
			{"a quote error", []*Run{deploy(func(_ *RunResult, s *ServicesResult) { s.QuoteErrors = maxDeployErrors + 1 })}, DoesNotHold, ""},
			{"an item lost", []*Run{deploy(func(r *RunResult, _ *ServicesResult) { r.ItemsLost = 1 })}, DoesNotHold, ""},
			{"missing", []*Run{surge(nil)}, NotMeasured, "deploy"},
		},
		"simpler": {
			{"even at the margin", []*Run{surge(func(_ *RunResult, s *ServicesResult) { s.PoolImbalance = statelessImbalance }), deploy(nil)}, Holds, "least_request over 2 replicas"},
			{"uneven over the margin", []*Run{surge(nil), deploy(func(_ *RunResult, s *ServicesResult) { s.PoolImbalance = statelessImbalance + 0.001 })}, DoesNotHold, ""},
			{"no quotes served", []*Run{surge(func(_ *RunResult, s *ServicesResult) { s.PoolImbalance = 0 })}, DoesNotHold, ""},
			{"with the sticky carts", []*Run{surge(nil), runOf(strategy.Sticky, Scaleout, func(r *RunResult) { r.Imbalance = 1.5 })}, Holds, "sticky carts after a scale-out: 1.50×"},
			{"missing", nil, NotMeasured, "surge"},
		},
		"replays": {
			{"every quote identical", []*Run{deploy(nil)}, Holds, "0 of 40 recorded reads"},
			{"one quote differs", []*Run{deploy(func(_ *RunResult, s *ServicesResult) { s.Replay.PricingIdentical = 49 })}, DoesNotHold, "49 of 50"},
			{"nothing replayed", []*Run{deploy(func(_ *RunResult, s *ServicesResult) { s.Replay.PricingRequests, s.Replay.PricingIdentical = 0, 0 })}, DoesNotHold, ""},
			{"no replay", []*Run{deploy(func(_ *RunResult, s *ServicesResult) { s.Replay = nil })}, NotMeasured, ""},
		},
	}
	if len(tests) != len(serviceClaims) {
		t.Errorf("%d services claims tested, the table has %d", len(tests), len(serviceClaims))
	}
	for word, rows := range tests {
		n := serviceClaimN(t, word)
		for _, tt := range rows {
			t.Run(fmt.Sprintf("%d/%s", n, tt.name), func(t *testing.T) {
				got := EvaluateClaims(tt.runs)[n-1]
				if got.Verdict != tt.want || !strings.Contains(got.Evidence, tt.says) {
					t.Errorf("claim %d: %s (%s), want %s with %q", got.N, got.Verdict, got.Evidence, tt.want, tt.says)
				}
			})
		}
	}
}

// TestServicePairsAndTable: the demo's services runs, and the services
// table of the terminal and the report.
func TestServicePairsAndTable(t *testing.T) {
	pairText := func(ps []Pair) string {
		var out []string
		for _, p := range ps {
			out = append(out, string(p.Strategy)+"×"+string(p.Scenario))
		}
		return strings.Join(out, " ")
	}
	got := pairText(ServicePairs(strategy.All(), true))
	if want := "sticky×rolling sticky×surge sticky×deploy"; got != want {
		t.Errorf("quick pairs %s, want %s", got, want)
	}
	if full := ServicePairs(strategy.All(), false); len(full) != len(strategy.All())+2 {
		t.Errorf("full pairs %v: want rolling for every strategy, surge and deploy", full)
	}
	if got := pairText(ServicePairs([]strategy.Strategy{strategy.Cache}, true)); got != "cache×surge cache×deploy" {
		t.Errorf("pairs without sticky: %s", got)
	}
	var b strings.Builder
	runs := []*Run{servicesRun(strategy.Sticky, Surge, nil), servicesRun(strategy.Sticky, Deploy, nil), runOf(strategy.Sticky, Steady, nil)}
	if err := WriteTable(&b, runs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"The services", "pricing 1→4", "cart 4→7", "pricing ×2 rolled", "pricing 50/50, cart 0/40", "1.02 (round_robin)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WriteTable(&b, runs[2:]); err != nil || strings.Contains(b.String(), "The services") {
		t.Errorf("a table without services runs has a services table (%v):\n%s", err, b.String())
	}
}

// TestServicesReport: the report has the services table.
func TestServicesReport(t *testing.T) {
	path := t.TempDir() + "/report.html"
	runs := []*Run{servicesRun(strategy.Sticky, Surge, nil), servicesRun(strategy.Sticky, Deploy, nil)}
	if err := WriteReport(path, ReportInfo{Command: "test"}, runs, EvaluateClaims(runs)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>The services</h2>", "pricing 1→4", "cart 4→7", "pricing 50/50, cart 0/40", "Statelessness enables independent scaling"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
