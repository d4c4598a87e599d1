package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
)

// Errors of the lab. Callers branch on them with errors.Is.
var (
	// ErrUnknownScenario is returned by ParseScenario for a name that is not
	// one of the scenarios (see docs/lab.md).
	ErrUnknownScenario = errors.New("lab: unknown scenario")

	// ErrBadConfig is wrapped by Run for an invalid Config.
	ErrBadConfig = errors.New("lab: bad config")
)

// Config is one lab run: a strategy through a scenario. Zero values take
// the defaults of DefaultConfig.
type Config struct {
	// Service is what the run drives: the cart (default) or the game
	// server, whose runs also read Game.
	Service Service
	Game    GameParams

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

	// StoreDelay is the latency slowstore adds to each round trip to the
	// store; zero means DefaultStoreDelay. StoreResets is the share of
	// store connections flaky resets; zero means DefaultStoreResets.
	StoreDelay  time.Duration
	StoreResets float64
	// RedisMode is the Redis the cache strategy starts: single (also when
	// empty), cluster (three masters, three replicas) or sentinel (a
	// primary, a replica, three sentinels). RedisWait is the replicas'
	// --redis-wait (cluster and sentinel only).
	RedisMode string
	RedisWait int

	// ReplQuorum is the replicated strategy's write quorum (the app's
	// --repl-quorum: majority, one or a count of copies); empty means the
	// app's default, a majority.
	ReplQuorum string

	// Target, when its URL is set, is a deployment the lab drives instead
	// of starting a cluster; Binary, RedisURL, PostgresURL, Dir, Work and
	// MaxInflight are then not used.
	Target Target

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

	// monolith runs a services scenario (surge) on the monolith shape.
	monolith bool
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

// withDefaults returns c with every zero field set to the value of
// DefaultConfig(false), and the steady scenario.
func (c Config) withDefaults() Config {
	d := DefaultConfig(false)
	c.Replicas = cmp.Or(c.Replicas, d.Replicas)
	c.Rate = cmp.Or(c.Rate, d.Rate)
	c.Duration = cmp.Or(c.Duration, d.Duration)
	c.Think = cmp.Or(c.Think, d.Think)
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.Tabs = cmp.Or(c.Tabs, d.Tabs)
	c.LinBudget = cmp.Or(c.LinBudget, d.LinBudget)
	c.Scenario = cmp.Or(c.Scenario, Steady)
	return c
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
	case c.Binary == "" && c.Target.URL == "":
		return fmt.Errorf("%w: the statelab binary is required", ErrBadConfig)
	}
	return errors.Join(c.validateLink(), c.validateQuorum(), c.validateRedisMode(), c.Target.validate(c))
}

// Run is everything the lab measured in one run: the results.json row and
// what the report draws.
type Run struct {
	// Result is the row of results.json.
	Result RunResult
	// Skipped, when not empty, says why the run was not made; nothing else
	// is set.
	Skipped string
	// Err, when not nil, says why the run stopped early or what went
	// wrong during it (a fault that could not be injected, a crash); Note
	// words it for people.
	Err error
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

// errInterrupted marks a run whose context ended before it finished.
var errInterrupted = errors.New("interrupted: partial results")

// RunOne starts a cluster for cfg, drives the workload through the
// scenario, checks the history and returns the measurements. A run that
// cannot be made on this machine (no Redis, a scenario without a store to
// fail) returns a Run with Skipped set and no error. When ctx ends mid-run,
// the partial measurements are returned with ctx's error.
//
// It runs in four phases: start (the cluster), drive (the workload and the
// scenario's faults, recording every request), summarize (a pure function
// of the recording) and check (the history's linearizability).
func RunOne(ctx context.Context, cfg Config) (*Run, error) {
	if cfg.Service == ServiceGame {
		return runGame(ctx, cfg)
	}
	cfg = cfg.withDefaults().withHostDuration()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	d, cfg, skipped, err := start(ctx, cfg)
	if skipped != "" {
		return &Run{CPUBusy: -1, Skipped: skipped, Result: RunResult{Strategy: string(cfg.Strategy), Scenario: string(cfg.Scenario)}}, nil
	}
	if err != nil {
		return nil, err
	}
	rec, driveErr := drive(ctx, cfg, d)
	if rec == nil {
		return nil, errors.Join(driveErr, d.Close())
	}
	run := summarize(cfg, rec)
	cfg.progress("%s × %s: checking %d carts for linearizability", cfg.Strategy, cfg.Scenario, run.Result.Carts)
	checkErr := check(ctx, cfg, rec, run)
	run = finishRun(ctx, run, d, began, driveErr, checkErr)
	run.Err = errors.Join(run.Err, compareMonolith(ctx, cfg, run))
	return run, ctx.Err()
}

// finishRun records the deployment's crashes and the run's errors in run,
// closes the deployment and returns run.
func finishRun(ctx context.Context, run *Run, d Deployment, began time.Time, errs ...error) *Run {
	var crashErrs []error
	for _, e := range d.Crashes() {
		run.Crashes = append(run.Crashes, e)
		crashErrs = append(crashErrs, errors.New(e))
	}
	var interrupted error
	if ctx.Err() != nil {
		interrupted = errInterrupted
	}
	run.Wall = time.Since(began)
	run.Err = errors.Join(errors.Join(errs...), errors.Join(crashErrs...), interrupted, d.Close())
	return run
}

// progress sends one line to cfg.Progress, when set.
func (cfg Config) progress(format string, args ...any) {
	if cfg.Progress != nil {
		cfg.Progress(fmt.Sprintf(format, args...))
	}
}

// start is the first phase: it starts the cluster of cfg, or reaches its
// target, and returns the configuration the run goes on with. It returns a
// reason instead when the run cannot be made on this machine.
func start(ctx context.Context, cfg Config) (d Deployment, _ Config, skipped string, err error) {
	if cfg.Scenario == Storefail && !cfg.Strategy.Spec().External() {
		return nil, cfg, string(cfg.Strategy) + " has no external store to stop", nil
	}
	if cfg.Target.URL != "" {
		return startTarget(ctx, cfg)
	}
	if reason := cfg.linkSkip() + cfg.hostSkip(); reason != "" {
		return nil, cfg, reason, nil
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
		StoreLink:   cfg.linkPlan() != nil,
		Services:    cfg.servicesShape(),
		Hosts:       cfg.needsHosts(),
		ReplQuorum:  cfg.quorumArg(),
		SlowStart:   cfg.slowStart(),
		RedisMode:   cfg.RedisMode,
		RedisWait:   cfg.RedisWait,
	})
	if errors.Is(err, cluster.ErrNoRedis) {
		return nil, cfg, "redis-server is not on PATH and no --redis URL was given: install redis-server or pass --redis URL", nil
	}
	if err != nil {
		return nil, cfg, "", err
	}
	return started{c}, cfg, "", nil
}

// recording is what the drive phase recorded: everything summarize needs,
// and nothing it has to ask a process for.
type recording struct {
	store string // the cluster's store kind
	// hist holds the measured requests' latencies in microseconds; samples
	// are those requests in schedule order; cookie is the mean size of
	// their Cookie header.
	hist    *hdrhistogram.Histogram
	samples []sample
	cookie  float64
	// ops is the history of cart operations, final reads included.
	ops []Op
	// faults are the faults injected, on the run clock (warm-up included).
	faults []Fault
	// warm is the warm-up's length on the run clock; end is where the
	// measured part ended, relative to warm.
	warm, end int64
	// replicas are the ids of the replicas at the end of the run.
	replicas []string
	// cpuBusy is the machine's mean CPU use (0..1), -1 when not sampled.
	cpuBusy float64
	// replay is what the replay probe found; nil when it was not sent.
	replay *Replay
	// linkResets counts store connections the link reset (flaky).
	linkResets int64
	// failover is how long a clustered Redis took to promote a replica
	// after its master was killed; -1 when that did not happen.
	failover time.Duration
	// svc is the services scenarios' quote stream and probes (nil for the
	// others).
	svc *serviceLoad
	// slowStart is the balancer's --slow-start (0: off); imbalance is
	// counted once it is over after the last fault.
	slowStart time.Duration
}

// drive is the second phase: it sends the workload through the cluster
// while the scenario's faults happen, then reads every cart once more. It
// returns nil and an error when the workload could not start; otherwise the
// recording, and the faults that could not be injected as errors.
func drive(ctx context.Context, cfg Config, d Deployment) (*recording, error) {
	c, _ := clusterOf(d) // nil for a target
	skus, err := fetchSKUs(ctx, d.URL())
	if err != nil {
		return nil, err
	}
	wc := workloadConfig{rate: cfg.Rate, poisson: cfg.Poisson, seed: cfg.Seed, think: cfg.Think,
		timeout: cfg.Timeout, measure: cfg.Duration, warmUp: true}
	if cfg.Scenario == Tabs {
		wc.tabs = cfg.Tabs
	}
	w, err := newWorkload(d.URL(), skus, wc)
	if err != nil {
		return nil, err
	}
	defer w.transport.CloseIdleConnections()
	rec := &recording{store: d.Store(), warm: w.warmUp(), cpuBusy: -1, svc: newServiceLoad(ctx, cfg, c, skus),
		slowStart: cfg.slowStart()}
	cfg.progress("%s × %s: %s up (%d replicas, store %s); shopping for %v at %.0f req/s",
		cfg.Strategy, cfg.Scenario, cfg.Target.what(), len(d.ReplicaIDs(ctx)), rec.store, cfg.Duration, cfg.Rate)

	cpuCtx, stopCPU := context.WithCancel(ctx)
	var cpuBusy float64
	var cpuN int
	var cpuErr error
	var faultErrs []error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		cpuBusy, cpuN, cpuErr = sampleCPU(cpuCtx, 250*time.Millisecond)
	}()
	w.startClock()
	go func() {
		defer wg.Done()
		rec.faults, faultErrs = injectFaults(ctx, d, w, cfg.faultPlan())
	}()
	rec.svc.start(ctx, w)
	w.run(ctx)
	rec.end = min(w.now()-rec.warm, int64(cfg.Duration))
	stopCPU()
	wg.Wait()
	rec.svc.stop(ctx) // after the faults: a deploy may still be rolling
	if cpuErr == nil && cpuN > 0 {
		rec.cpuBusy = cpuBusy
	}

	// Let the balancer see restarted replicas before the final reads.
	settle(ctx, d)
	cfg.progress("%s × %s: final reads of every cart", cfg.Strategy, cfg.Scenario)
	w.finalReads(ctx)
	if cfg.Scenario == Steady {
		replay := replayProbe(ctx, d.URL(), skus, w.transport)
		rec.replay = &replay
	}
	rec.hist, rec.samples, rec.cookie = w.rec.merged()
	rec.ops = w.hist.Ops()
	rec.replicas = d.ReplicaIDs(ctx)
	if c != nil {
		rec.linkResets, rec.failover = c.StoreLinkResets(), storeFailover(c)
	}
	if err := rec.svc.replay(ctx, w); err != nil {
		faultErrs = append(faultErrs, err)
	}
	return rec, errors.Join(faultErrs...)
}

// summarize is the third phase: the run's numbers, computed from what
// drive recorded and nothing else. Faults and times in the result are
// relative to the end of the warm-up.
func summarize(cfg Config, rec *recording) *Run {
	run := &Run{CPUBusy: rec.cpuBusy, CookieBytes: rec.cookie}
	r := &run.Result
	*r = RunResult{
		Service: ServiceCart, Strategy: string(cfg.Strategy), Scenario: string(cfg.Scenario),
		Store: rec.store, Policy: cfg.Strategy.Spec().Policy, Replicas: cfg.Replicas,
		DurationS: cfg.Duration.Seconds(), OfferedRPS: cfg.Rate,
		CPUSaturated: rec.cpuBusy >= saturatedBusy, Replay: rec.replay, Target: cfg.Target.URL,
	}
	r.Requests = int64(len(rec.samples))
	for _, s := range rec.samples {
		if s.err {
			r.Errors++
		}
	}
	if r.Requests > 0 {
		r.ErrorRate = round(float64(r.Errors)/float64(r.Requests), 5)
	}
	r.ErrorCauses = countCauses(rec.samples)
	r.AchievedRPS = round(float64(r.Requests)/cfg.Duration.Seconds(), 1)
	ms := func(q float64) float64 { return round(float64(rec.hist.ValueAtQuantile(q))/1000, 2) }
	r.LatencyMS = Latency{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: round(float64(rec.hist.Max())/1000, 2)}

	for _, op := range rec.ops {
		if op.Outcome == Unknown && !op.Final {
			run.Unknown++
		}
	}
	set := CheckSets(rec.ops)
	r.Carts, r.CartsLost, r.ItemsAcked, r.ItemsLost, r.StaleReads = set.Carts, set.CartsLost, set.ItemsAcked, set.ItemsLost, set.StaleReads
	run.CartsUnchecked = set.CartsUnchecked
	if cfg.Scenario == Tabs {
		r.LostUpdates = CheckCounters(rec.ops)
	}
	for _, f := range rec.faults {
		run.Faults = append(run.Faults, Fault{At: f.At - rec.warm, End: f.End - rec.warm, What: f.What})
	}
	summarizeBalance(run, rec, cfg.Duration)
	cfg.summarizeLink(r, rec)
	summarizeServices(cfg, rec, run)
	cfg.summarizeHosts(r)
	cfg.summarizeRedisMode(r, rec)
	return run
}

// summarizeBalance fills in the replicas' shares over the whole run, the
// imbalance after the last fault across the replicas serving at the end,
// the recovery from the first fault and the timeline.
func summarizeBalance(run *Run, rec *recording, d time.Duration) {
	r := &run.Result
	r.ReplicaShare, _ = shares(rec.samples, 0, rec.end, rec.replicas)
	for id, v := range r.ReplicaShare {
		r.ReplicaShare[id] = round(v, 4)
	}
	from := int64(0)
	if n := len(run.Faults); n > 0 {
		from = run.Faults[n-1].End + int64(rec.slowStart) // once a joining replica's ramp is over
	}
	_, imb := shares(rec.samples, from, rec.end, rec.replicas)
	r.Imbalance = round(imb, 3)
	if len(run.Faults) > 0 {
		recovery := recoveryNS(rec.samples, run.Faults[0].At, rec.end) / 1e6
		r.RecoveryMS = &recovery
	}
	width := max(int64(100*time.Millisecond), int64(d)/80)
	run.Timeline = timeline(rec.samples, width, int64(d))
}

// check is the fourth phase: it checks the history for linearizability
// within cfg.LinBudget and writes a failing cart's visualization to
// cfg.OutDir.
func check(ctx context.Context, cfg Config, rec *recording, run *Run) error {
	lin, viz, err := CheckLinearizable(ctx, rec.ops, cfg.LinBudget, rec.faults, cfg.OutDir,
		fmt.Sprintf("linearizability-%s-%s.html", cfg.Strategy, cfg.Scenario))
	run.Result.Linearizable, run.LinViz, run.NonLinearizable, run.LinChecked = lin.Linearizable, viz, lin.Illegal, lin.Checked
	return err
}

// Note returns Err for people: its errors separated by "; ", empty when
// there are none.
func (r *Run) Note() string {
	var parts []string
	var flatten func(error)
	flatten = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				flatten(e)
			}
			return
		}
		if err != nil {
			parts = append(parts, err.Error())
		}
	}
	flatten(r.Err)
	return strings.Join(parts, "; ")
}

// settle waits (at most two seconds) until the balancer lists every
// replica healthy, so that the final reads do not race a restart.
func settle(ctx context.Context, d Deployment) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		bs, err := d.Backends(ctx)
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

// SortRuns orders runs by service (the cart first), strategy then
// scenario, in the orders of the strategy tables and of the scenario lists.
func SortRuns(runs []*Run) {
	si := map[string]int{}
	for i, s := range strategy.All() {
		si[string(s)] = i
	}
	ci := map[string]int{}
	for i, s := range Scenarios() {
		ci[string(s)] = i
	}
	gameOrder(si, ci)
	sort.SliceStable(runs, func(i, j int) bool {
		a, b := runs[i].Result, runs[j].Result
		if a.Service != b.Service {
			return a.Service != ServiceGame
		}
		if si[a.Strategy] != si[b.Strategy] {
			return si[a.Strategy] < si[b.Strategy]
		}
		return ci[a.Scenario] < ci[b.Scenario]
	})
}
