package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
)

// Errors of the lab. Callers branch on them with errors.Is.
var (
	// ErrUnknownScenario is returned by ParseScenario for a name that is not
	// one of SPEC's scenarios.
	ErrUnknownScenario = errors.New("lab: unknown scenario")

	// ErrBadConfig is wrapped by Run for an invalid Config.
	ErrBadConfig = errors.New("lab: bad config")
)

// Config is one lab run: a strategy through a scenario. Zero values take
// the defaults of DefaultConfig.
type Config struct {
	// Strategy and Scenario name the run.
	Strategy strategy.Strategy
	Scenario Scenario

	// Replicas is how many replicas serve at the end of the run (scaleout
	// starts with half of them).
	Replicas int
	// Rate is the offered load in requests per second; shoppers arrive at
	// Rate divided by the requests of one shopper's script.
	Rate float64
	// Duration is how long shoppers keep arriving and shopping.
	Duration time.Duration
	// Think is the time between a shopper's scheduled steps.
	Think time.Duration
	// Timeout bounds every request.
	Timeout time.Duration
	// Poisson makes arrivals a Poisson process (exponential gaps) seeded by
	// Seed; otherwise they are evenly spaced.
	Poisson bool
	// Seed makes the shoppers' choices and Poisson arrivals repeatable.
	Seed uint64
	// Tabs is how many tabs each shopper has in the tabs scenario.
	Tabs int

	// Work and MaxInflight are each replica's capacity model.
	Work        time.Duration
	MaxInflight int

	// Binary, RedisURL, PostgresURL and Dir are passed to the cluster.
	Binary      string
	RedisURL    string
	PostgresURL string
	Dir         string

	// OutDir is where a failing cart's linearizability visualization is
	// written. Empty means none is written.
	OutDir string
	// LinBudget bounds the linearizability check of the run.
	LinBudget time.Duration

	// Logger receives the cluster's events; Progress, when set, receives a
	// line for each phase of the run.
	Logger   *slog.Logger
	Progress func(string)
}

// DefaultConfig returns the standard run parameters; quick returns the
// shorter ones of `demo --quick`. They are the same for every strategy.
func DefaultConfig(quick bool) Config {
	c := Config{
		Replicas:    4,
		Rate:        250,
		Duration:    20 * time.Second,
		Think:       200 * time.Millisecond,
		Timeout:     2 * time.Second,
		Tabs:        3,
		Work:        20 * time.Millisecond,
		MaxInflight: 2,
		Seed:        1,
		LinBudget:   10 * time.Second,
	}
	if quick {
		c.Duration = 3 * time.Second
		c.Think = 60 * time.Millisecond
		c.LinBudget = 3 * time.Second
	}
	return c
}

func (c *Config) fill() {
	d := DefaultConfig(false)
	if c.Replicas == 0 {
		c.Replicas = d.Replicas
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.Duration == 0 {
		c.Duration = d.Duration
	}
	if c.Think == 0 {
		c.Think = d.Think
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Tabs == 0 {
		c.Tabs = d.Tabs
	}
	if c.LinBudget == 0 {
		c.LinBudget = d.LinBudget
	}
	if c.Scenario == "" {
		c.Scenario = Steady
	}
}

// Validate reports the first invalid field of c, wrapping ErrBadConfig.
func (c Config) Validate() error {
	if _, err := strategy.Parse(string(c.Strategy)); err != nil {
		return err
	}
	if _, err := ParseScenario(string(c.Scenario)); err != nil {
		return err
	}
	switch {
	case c.Replicas < 1 || c.Replicas > 64:
		return fmt.Errorf("%w: replicas must be 1..64, not %d", ErrBadConfig, c.Replicas)
	case c.Rate <= 0 || c.Rate > 100000 || math.IsNaN(c.Rate):
		return fmt.Errorf("%w: rate must be in (0, 100000] requests/s, not %v", ErrBadConfig, c.Rate)
	case c.Duration < 500*time.Millisecond:
		return fmt.Errorf("%w: duration must be at least 500ms, not %v", ErrBadConfig, c.Duration)
	case c.Think <= 0 || c.Timeout <= 0:
		return fmt.Errorf("%w: think time and timeout must be positive", ErrBadConfig)
	case c.Tabs < 2 && c.Scenario == Tabs:
		return fmt.Errorf("%w: tabs needs at least 2 tabs", ErrBadConfig)
	case c.Scenario == Failover && c.Replicas < 2:
		return fmt.Errorf("%w: failover needs at least 2 replicas", ErrBadConfig)
	case c.Scenario == Scaleout && c.Replicas < 2:
		return fmt.Errorf("%w: scaleout needs at least 2 replicas", ErrBadConfig)
	case c.Binary == "":
		return fmt.Errorf("%w: the statelab binary is required", ErrBadConfig)
	}
	return nil
}

// Run is everything the lab measured in one run: the results.json row and
// what the report draws.
type Run struct {
	// Result is the row of results.json.
	Result RunResult
	// Skipped, when not empty, says why the run was not made; nothing else
	// is set.
	Skipped string
	// Err, when not empty, says why the run stopped early or what went
	// wrong during it (a fault that could not be injected, a crash).
	Err string
	// Faults are the faults injected, on the run clock.
	Faults []Fault
	// Timeline is the run cut into buckets.
	Timeline []Bucket
	// CPUBusy is the machine's mean CPU use during the run (0..1); -1 when
	// it could not be sampled.
	CPUBusy float64
	// CookieBytes is the mean size of the Cookie header of a request.
	CookieBytes float64
	// Unknown counts cart operations with an unknown outcome;
	// CartsUnchecked counts carts whose final read failed.
	Unknown, CartsUnchecked int
	// LinViz is the file name of the linearizability visualization of a
	// failing cart, relative to OutDir.
	LinViz string
	// NonLinearizable counts carts whose history is not linearizable;
	// LinChecked counts carts checked.
	NonLinearizable, LinChecked int
	// Crashes lists children that exited on their own.
	Crashes []string
	// Wall is how long the run took, start to finish.
	Wall time.Duration
}

// RunOne starts a cluster for cfg, drives the workload through the
// scenario, checks the history and returns the measurements. A run that
// cannot be made on this machine (no Redis, a scenario without a store to
// fail) returns a Run with Skipped set and no error. When ctx ends mid-run,
// the partial measurements are returned with ctx's error.
func RunOne(ctx context.Context, cfg Config) (*Run, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			cfg.Progress(fmt.Sprintf(format, args...))
		}
	}
	run := &Run{CPUBusy: -1, Result: RunResult{Strategy: string(cfg.Strategy), Scenario: string(cfg.Scenario)}}
	spec := cfg.Strategy.Spec()
	if cfg.Scenario == Storefail && !spec.External() {
		run.Skipped = string(cfg.Strategy) + " has no external store to stop"
		return run, nil
	}
	c, err := cluster.Start(ctx, cluster.Config{
		Strategy:    cfg.Strategy,
		Replicas:    cfg.Scenario.initialReplicas(cfg.Replicas),
		Binary:      cfg.Binary,
		RedisURL:    cfg.RedisURL,
		PostgresURL: cfg.PostgresURL,
		Work:        cfg.Work,
		MaxInflight: cfg.MaxInflight,
		Dir:         cfg.Dir,
		Logger:      cfg.Logger,
	})
	if errors.Is(err, cluster.ErrNoRedis) {
		run.Skipped = "redis-server is not on PATH and no --redis URL was given: install redis-server or pass --redis URL"
		return run, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		// Crashes are already in run.Crashes; report any other cleanup error.
		if err := c.Close(); err != nil && !errors.Is(err, cluster.ErrCrashed) {
			if run.Err != "" {
				run.Err += "; "
			}
			run.Err += err.Error()
		}
	}()
	store := string(c.Store().Kind)
	run.Result = RunResult{
		Strategy: string(cfg.Strategy), Scenario: string(cfg.Scenario),
		Store: store, Policy: spec.Policy, Replicas: cfg.Replicas,
		DurationS: cfg.Duration.Seconds(), OfferedRPS: cfg.Rate,
	}
	skus, err := fetchSKUs(ctx, c.URL())
	if err != nil {
		return nil, err
	}
	w, err := newWorkload(c.URL(), skus)
	if err != nil {
		return nil, err
	}
	w.rate, w.poisson, w.seed = cfg.Rate, cfg.Poisson, cfg.Seed
	w.think, w.timeout = cfg.Think, cfg.Timeout
	if cfg.Scenario == Tabs {
		w.tabs = cfg.Tabs
	}
	// Warm-up: shoppers arrive for one shopper's lifetime before the
	// measured part starts, so that the measured load is the offered load
	// from its first second. Warm-up requests are checked like any other
	// but not timed or counted.
	warm := int64(w.lifetime())
	w.rec.from = warm
	w.duration = time.Duration(warm) + cfg.Duration
	defer w.transport.CloseIdleConnections()

	progress("%s × %s: cluster up (%d replicas, store %s); shopping for %v at %.0f req/s",
		cfg.Strategy, cfg.Scenario, len(c.Replicas()), store, cfg.Duration, cfg.Rate)

	cpuCtx, stopCPU := context.WithCancel(ctx)
	var cpuBusy float64
	var cpuN int
	var cpuErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cpuBusy, cpuN, cpuErr = sampleCPU(cpuCtx, 250*time.Millisecond)
	}()

	w.origin = time.Now()
	var faultErrs []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		run.Faults, faultErrs = injectFaults(ctx, c, w, cfg.Scenario.plan(cfg.Replicas))
	}()
	w.run(ctx)
	end := min(w.now()-warm, int64(cfg.Duration))
	stopCPU()
	wg.Wait()
	if cpuErr == nil && cpuN > 0 {
		run.CPUBusy = cpuBusy
		run.Result.CPUSaturated = cpuBusy >= saturatedBusy
	}

	// Let the balancer see restarted replicas before the final reads.
	settle(ctx, c)
	progress("%s × %s: final reads of every cart", cfg.Strategy, cfg.Scenario)
	w.finalReads(ctx)

	hist, samples, cookie := w.rec.merged()
	run.CookieBytes = cookie
	r := &run.Result
	r.Requests = int64(len(samples))
	for _, s := range samples {
		if s.err {
			r.Errors++
		}
	}
	if r.Requests > 0 {
		r.ErrorRate = round(float64(r.Errors)/float64(r.Requests), 5)
	}
	r.AchievedRPS = round(float64(r.Requests)/cfg.Duration.Seconds(), 1)
	ms := func(q float64) float64 { return round(float64(hist.ValueAtQuantile(q))/1000, 2) }
	r.LatencyMS = Latency{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: round(float64(hist.Max())/1000, 2)}

	ops := w.hist.Ops()
	for _, op := range ops {
		if op.Outcome == Unknown && !op.Final {
			run.Unknown++
		}
	}
	set := CheckSets(ops)
	r.Carts, r.CartsLost, r.ItemsAcked, r.ItemsLost, r.StaleReads = set.Carts, set.CartsLost, set.ItemsAcked, set.ItemsLost, set.StaleReads
	run.CartsUnchecked = set.CartsUnchecked
	if cfg.Scenario == Tabs {
		r.LostUpdates = CheckCounters(ops)
	}
	progress("%s × %s: checking %d carts for linearizability", cfg.Strategy, cfg.Scenario, set.Carts)
	lin, viz, err := CheckLinearizable(ctx, ops, cfg.LinBudget, run.Faults, cfg.OutDir,
		fmt.Sprintf("linearizability-%s-%s.html", cfg.Strategy, cfg.Scenario))
	if err != nil {
		faultErrs = append(faultErrs, err)
	}
	r.Linearizable, run.LinViz, run.NonLinearizable, run.LinChecked = lin.Linearizable, viz, lin.Illegal, lin.Checked
	// From here on, times are relative to the end of the warm-up.
	for i := range run.Faults {
		run.Faults[i].At -= warm
		run.Faults[i].End -= warm
	}

	// Balance: shares over the whole run; imbalance over the part after the
	// last fault, across the replicas serving at the end.
	var ids []string
	for _, rep := range c.Replicas() {
		ids = append(ids, rep.ID)
	}
	r.ReplicaShare, _ = shares(samples, 0, end, ids)
	for id, v := range r.ReplicaShare {
		r.ReplicaShare[id] = round(v, 4)
	}
	from := int64(0)
	if n := len(run.Faults); n > 0 {
		from = run.Faults[n-1].End
	}
	_, imb := shares(samples, from, end, ids)
	r.Imbalance = round(imb, 3)
	if len(run.Faults) > 0 {
		rec := recoveryNS(samples, run.Faults[0].At, end) / 1e6
		r.RecoveryMS = &rec
	}
	width := max(int64(100*time.Millisecond), int64(cfg.Duration)/80)
	run.Timeline = timeline(samples, width, int64(cfg.Duration))

	for _, e := range c.Crashes() {
		run.Crashes = append(run.Crashes, e.Message)
	}
	var notes []string
	for _, e := range faultErrs {
		notes = append(notes, e.Error())
	}
	notes = append(notes, run.Crashes...)
	if ctx.Err() != nil {
		notes = append(notes, "interrupted: partial results")
	}
	run.Err = strings.Join(notes, "; ")
	run.Wall = time.Since(began)
	if ctx.Err() != nil {
		return run, ctx.Err()
	}
	return run, nil
}

// settle waits (at most two seconds) until the balancer lists every
// replica healthy, so that the final reads do not race a restart.
func settle(ctx context.Context, c *cluster.Cluster) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		bs, err := c.Backends(ctx)
		if err == nil {
			healthy := 0
			for _, b := range bs {
				if b.Healthy {
					healthy++
				}
			}
			if healthy == len(bs) {
				return
			}
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// SortRuns orders runs by strategy then scenario, in SPEC's orders.
func SortRuns(runs []*Run) {
	si := map[string]int{}
	for i, s := range strategy.All() {
		si[string(s)] = i
	}
	ci := map[string]int{}
	for i, s := range Scenarios() {
		ci[string(s)] = i
	}
	sort.SliceStable(runs, func(i, j int) bool {
		a, b := runs[i].Result, runs[j].Result
		if si[a.Strategy] != si[b.Strategy] {
			return si[a.Strategy] < si[b.Strategy]
		}
		return ci[a.Scenario] < ci[b.Scenario]
	})
}
