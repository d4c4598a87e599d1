package lab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// recordingOf builds a recording the way drive would: samples through a
// recorder (so the warm-up is cut and the histogram filled), ops and
// faults on the run clock.
func recordingOf(warm int64, samples []sample, ops []Op, faults []Fault) *recording {
	r := newRecorder(2)
	r.from = warm
	for i, s := range samples {
		r.record(i, s, 40)
	}
	rec := &recording{store: "memory", warm: warm, end: int64(time.Second), ops: ops, faults: faults,
		replicas: []string{"r1", "r2"}, cpuBusy: 0.5}
	rec.hist, rec.samples, rec.cookie = r.merged()
	return rec
}

func TestSummarize(t *testing.T) {
	ms := int64(time.Millisecond)
	warm := 100 * ms
	var samples []sample
	// The warm-up: not measured.
	samples = append(samples, sample{at: 50 * ms, lat: 900 * ms, servedBy: "r1"}, sample{at: 99 * ms, lat: 900 * ms, err: true})
	// 100 measured requests over the second after the warm-up: r1 serves
	// 75, r2 25; the 10 at 500-509 ms fail (the fault at 500 ms).
	for i := range 100 {
		s := sample{at: warm + int64(i)*10*ms, lat: int64(i+1) * ms, servedBy: "r1"}
		if i%4 == 3 {
			s.servedBy = "r2"
		}
		if i >= 50 && i < 60 {
			s.err, s.servedBy, s.cause = true, "", "503 no_backend"
		}
		if i == 59 {
			s.cause = "no answer: timeout"
		}
		samples = append(samples, s)
	}
	ops := new(hb).op(OpAdd, "a", 1, OK, nil).op(OpAdd, "b", 1, OK, nil).
		op(OpRead, "", 0, Unknown, nil).final(map[string]int{"b": 1})
	faults := []Fault{{At: warm + 500*ms, End: warm + 510*ms, What: "kill r2"}}
	cfg := DefaultConfig(true)
	cfg.Strategy, cfg.Scenario, cfg.Duration = strategy.Sticky, Failover, time.Second

	run := summarize(cfg, recordingOf(warm, samples, ops, faults))
	r := run.Result
	if r.Strategy != "sticky" || r.Scenario != "failover" || r.Store != "memory" || r.Policy != "sticky" || r.Replicas != cfg.Replicas {
		t.Errorf("names: %+v", r)
	}
	if r.Requests != 100 || r.Errors != 10 || r.ErrorRate != 0.1 || r.AchievedRPS != 100 {
		t.Errorf("requests %d errors %d rate %v rps %v, want 100, 10, 0.1, 100", r.Requests, r.Errors, r.ErrorRate, r.AchievedRPS)
	}
	if c := r.ErrorCauses; len(c) != 2 || c["503 no_backend"] != 9 || c["no answer: timeout"] != 1 {
		t.Errorf("error causes %v, want 503 no_backend 9 and no answer: timeout 1", c)
	}
	if r.LatencyMS.P50 < 49.9 || r.LatencyMS.P50 > 50.1 || r.LatencyMS.Max < 99.9 || r.LatencyMS.Max > 100.1 {
		t.Errorf("latency %+v, want p50 50 ms and max 100 ms (the warm-up's 900 ms not counted)", r.LatencyMS)
	}
	if r.Carts != 1 || r.CartsLost != 1 || r.ItemsAcked != 2 || r.ItemsLost != 1 || run.Unknown != 1 {
		t.Errorf("carts %d lost %d items %d/%d unknown %d, want 1 1 1/2 1", r.Carts, r.CartsLost, r.ItemsLost, r.ItemsAcked, run.Unknown)
	}
	if len(run.Faults) != 1 || run.Faults[0].At != 500*ms || run.Faults[0].End != 510*ms {
		t.Errorf("faults %+v, want kill r2 at 500ms after the warm-up", run.Faults)
	}
	if r.ReplicaShare["r1"] < 0.7 || r.ReplicaShare["r2"] < 0.2 {
		t.Errorf("shares %v", r.ReplicaShare)
	}
	if r.RecoveryMS == nil || *r.RecoveryMS < 10 || *r.RecoveryMS > 200 {
		t.Errorf("recovery %v ms, want the 100 ms of errors after the fault", r.RecoveryMS)
	}
	if r.Imbalance < 1.4 || r.Imbalance > 1.6 {
		t.Errorf("imbalance %v, want r1's 3 of 4 over a mean of 2 of 4", r.Imbalance)
	}
	if run.CPUBusy != 0.5 || r.CPUSaturated || run.CookieBytes != 40 {
		t.Errorf("cpu %v saturated %v cookie %v", run.CPUBusy, r.CPUSaturated, run.CookieBytes)
	}
	if len(run.Timeline) != 10 { // 100 ms buckets: a second / 80 is shorter
		t.Errorf("timeline of %d buckets", len(run.Timeline))
	}
	if r.LostUpdates != 0 {
		t.Errorf("lost updates %d outside the tabs scenario", r.LostUpdates)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	cfg := DefaultConfig(true)
	cfg.Strategy, cfg.Scenario = strategy.Client, Steady
	rec := recordingOf(0, nil, nil, nil)
	rec.cpuBusy = -1
	run := summarize(cfg, rec)
	if r := run.Result; r.Requests != 0 || r.ErrorRate != 0 || r.RecoveryMS != nil || r.CPUSaturated || run.CPUBusy != -1 {
		t.Errorf("empty run: %+v cpu %v", r, run.CPUBusy)
	}
}

func TestRunNote(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("a"), "a"},
		{errors.Join(errors.New("kill r2: boom"), nil, errors.Join(errors.New("r1 crashed"), errInterrupted)), "kill r2: boom; r1 crashed; interrupted: partial results"},
		{fmt.Errorf("wrapped: %w", errors.Join(errors.New("a"), errors.New("b"))), "wrapped: a\nb"},
	}
	for _, tt := range tests {
		if got := (&Run{Err: tt.err}).Note(); got != tt.want {
			t.Errorf("Note(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig(true)
	ok.Strategy, ok.Scenario, ok.Binary = strategy.Sticky, Steady, "statelab"
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"ok", func(*Config) {}, nil},
		{"unknown strategy", func(c *Config) { c.Strategy = "memcached" }, strategy.ErrUnknown},
		{"unknown scenario", func(c *Config) { c.Scenario = "flood" }, ErrUnknownScenario},
		{"no replicas", func(c *Config) { c.Replicas = 0 }, ErrBadConfig},
		{"too many replicas", func(c *Config) { c.Replicas = 65 }, ErrBadConfig},
		{"no rate", func(c *Config) { c.Rate = 0 }, ErrBadConfig},
		{"short", func(c *Config) { c.Duration = 499 * time.Millisecond }, ErrBadConfig},
		{"one tab", func(c *Config) { c.Scenario, c.Tabs = Tabs, 1 }, ErrBadConfig},
		{"failover of one", func(c *Config) { c.Scenario, c.Replicas = Failover, 1 }, ErrBadConfig},
		{"no binary", func(c *Config) { c.Binary = "" }, ErrBadConfig},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		if err := c.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	zero := Config{}.withDefaults()
	if d := DefaultConfig(false); zero.Replicas != d.Replicas || zero.Rate != d.Rate || zero.Duration != d.Duration || zero.Scenario != Steady {
		t.Errorf("fill: %+v", zero)
	}
}

func TestRunOneSkips(t *testing.T) {
	cfg := DefaultConfig(true)
	cfg.Strategy, cfg.Scenario, cfg.Binary = strategy.Sticky, Storefail, "statelab"
	run, err := RunOne(context.Background(), cfg)
	if err != nil || run.Skipped == "" || !strings.Contains(run.Skipped, "no external store") {
		t.Errorf("sticky × storefail: %+v, %v; want skipped", run, err)
	}
}

func TestDemoPairsAndSort(t *testing.T) {
	if quick := DemoPairs(strategy.All(), true); len(quick) != 30 || quick[0] != (Pair{Strategy: strategy.Naive, Scenario: Steady}) || quick[1].Strategy == strategy.Naive {
		t.Errorf("quick demo pairs %v, want 30 with naive through steady only", quick)
	}
	pairs := DemoPairs(strategy.All(), false)
	if len(pairs) != 33 {
		t.Errorf("%d demo pairs, want 33 (six strategies × four scenarios, storefail, isolate, slowstore and flaky for the two external stores, partition for replicated)", len(pairs))
	}
	for _, p := range pairs {
		if p.Scenario == Storefail && !p.Strategy.Spec().External() {
			t.Errorf("%s × storefail in the demo", p.Strategy)
		}
	}
	runs := []*Run{
		{Result: RunResult{Strategy: "client", Scenario: "steady"}},
		{Result: RunResult{Strategy: "naive", Scenario: "tabs"}},
		{Result: RunResult{Strategy: "naive", Scenario: "steady"}},
	}
	SortRuns(runs)
	var got []string
	for _, r := range runs {
		got = append(got, r.Result.Strategy+"/"+r.Result.Scenario)
	}
	if strings.Join(got, " ") != "naive/steady naive/tabs client/steady" {
		t.Errorf("sorted: %v", got)
	}
}
