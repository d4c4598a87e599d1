package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fakeRun(strategy, scenario string, mod func(r *RunResult)) *Run {
	rec := int64(300)
	r := &Run{CPUBusy: 0.4, CookieBytes: 60, Result: RunResult{
		Strategy: strategy, Scenario: scenario, Store: "memory", Policy: "round_robin",
		Replicas: 4, DurationS: 4, OfferedRPS: 100, AchievedRPS: 100, Requests: 400,
		LatencyMS: Latency{P50: 2, P90: 3, P99: 5, P999: 9, Max: 12},
		Carts:     30, ItemsAcked: 100, ReplicaShare: map[string]float64{"r1": 0.5, "r2": 0.5},
		Imbalance: 1.05, RecoveryMS: &rec,
	}}
	if mod != nil {
		mod(&r.Result)
	}
	return r
}

func TestEvaluateClaims(t *testing.T) {
	runs := []*Run{
		fakeRun("naive", "steady", func(r *RunResult) { r.StaleReads, r.ItemsLost, r.CartsLost = 40, 20, 10 }),
		fakeRun("sticky", "steady", nil),
		fakeRun("sticky", "failover", func(r *RunResult) { r.ItemsLost, r.CartsLost = 25, 8 }),
		fakeRun("sticky", "scaleout", func(r *RunResult) { r.Imbalance = 1.6 }),
		fakeRun("replicated", "steady", func(r *RunResult) { r.LatencyMS.P50, r.LatencyMS.P99 = 3, 8 }),
		fakeRun("replicated", "failover", nil),
		fakeRun("cache", "failover", nil),
		fakeRun("cache", "storefail", func(r *RunResult) { r.ErrorRate = 0.3 }),
		fakeRun("client", "steady", nil),
		fakeRun("client", "failover", nil),
		fakeRun("client", "scaleout", nil),
		fakeRun("client", "tabs", func(r *RunResult) { r.LostUpdates = 12 }),
		{Skipped: "no redis", Result: RunResult{Strategy: "cache", Scenario: "steady"}},
	}
	claims := EvaluateClaims(runs)
	want := []Verdict{Holds, Holds, Holds, Holds, HoldsWithCost, HoldsWithCost, NotMeasured, Holds, Holds, HoldsWithCost}
	for i, c := range claims[:len(want)] { // later rows have tests of their own
		if c.Verdict != want[i] {
			t.Errorf("claim %d: %s (%s), want %s", c.N, c.Verdict, c.Evidence, want[i])
		}
		if c.Evidence == "" {
			t.Errorf("claim %d has no evidence", c.N)
		}
		j := c.JSON()
		if (c.Verdict == NotMeasured) != (j.Holds == nil) {
			t.Errorf("claim %d: holds %v for verdict %s", c.N, j.Holds, c.Verdict)
		}
	}
	if !strings.Contains(claims[6].Evidence, "database × failover") {
		t.Errorf("claim 7 does not say which runs are missing: %s", claims[6].Evidence)
	}

	// Replication whose only cost shows during a failure: steady latency
	// equal to sticky's, but writes failing while the killed backup is
	// noticed.
	even := append([]*Run(nil), runs...)
	even[4] = fakeRun("replicated", "steady", nil)
	if got := EvaluateClaims(even)[4].Verdict; got != Holds {
		t.Errorf("claim 5 with no overhead at all: %s, want holds", got)
	}
	even[5] = fakeRun("replicated", "failover", func(r *RunResult) { r.ErrorRate = 0.06 })
	if c := EvaluateClaims(even)[4]; c.Verdict != HoldsWithCost || !strings.Contains(c.Evidence, "failover error rate 6.0%") {
		t.Errorf("claim 5 with 6%% failover errors: %s (%s), want holds with a cost", c.Verdict, c.Evidence)
	}

	// A contradiction is reported as such.
	runs[2] = fakeRun("sticky", "failover", nil)
	if got := EvaluateClaims(runs)[3].Verdict; got != DoesNotHold {
		t.Errorf("claim 4 with a lossless sticky failover: %s, want does not hold", got)
	}
}

func TestWriteTableAndReport(t *testing.T) {
	runs := []*Run{
		fakeRun("sticky", "failover", func(r *RunResult) { r.ItemsLost = 3 }),
		{Skipped: "skipped: redis-server is not on PATH", Result: RunResult{Strategy: "cache", Scenario: "steady"}},
	}
	runs[0].Faults = []Fault{{At: int64(time.Second), End: int64(time.Second), What: "kill r2"}}
	runs[0].Timeline = timeline([]sample{{at: 1e8, lat: 2e6}, {at: 15e8, lat: 4e6, err: true, servedBy: "r1"}}, 5e8, 4e9)

	var buf bytes.Buffer
	if err := WriteTable(&buf, runs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sticky", "failover", "3/100", "redis-server is not on PATH"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}

	path := filepath.Join(t.TempDir(), "out", "report.html")
	if err := WriteReport(path, ReportInfo{Command: "statelab demo", Generated: time.Now(), Machine: ThisMachine()}, runs, EvaluateClaims(runs)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{"<svg", "kill r2", "redis-server is not on PATH", "The claims", "not measured"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains %q; it must be self-contained and static", bad)
		}
	}
}

func TestMetrics(t *testing.T) {
	ms := int64(1e6)
	samples := []sample{
		{at: 0, servedBy: "r1"}, {at: 50 * ms, servedBy: "r2"},
		{at: 1000 * ms, err: true}, {at: 1050 * ms, err: true}, // the fault at 1s
		{at: 1150 * ms, servedBy: "r1"}, {at: 1250 * ms, err: true}, {at: 1260 * ms, servedBy: "r1"}, {at: 1270 * ms, servedBy: "r1"},
		{at: 1500 * ms, servedBy: "r1"}, {at: 1600 * ms, servedBy: "r1"},
	}
	if got := recoveryNS(samples, 1000*ms, 2000*ms); got != 300*ms {
		t.Errorf("recovery = %dms, want 300ms (the bucket [1.2s,1.3s) still had errors)", got/ms)
	}
	if got := recoveryNS(samples[:2], 1000*ms, 2000*ms); got != 0 {
		t.Errorf("recovery without errors = %d, want 0", got)
	}
	share, imb := shares(samples, 0, 2000*ms, []string{"r1", "r2", "r3"})
	if share["r3"] != 0 || share["r1"] < 0.85 {
		t.Errorf("shares %v", share)
	}
	if imb < 2.5 {
		t.Errorf("imbalance %.2f, want r1's 6 of 7 over a mean of 7/3", imb)
	}
	if got := percentile([]int64{5, 1, 3, 2, 4}, 0.99); got != 5 {
		t.Errorf("p99 = %d, want 5", got)
	}
}
