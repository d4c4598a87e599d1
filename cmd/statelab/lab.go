package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/lab"
	"github.com/statelab/statelab/internal/strategy"
)

// labFlags are the knobs shared by statelab lab and statelab demo.
type labFlags struct {
	quick       bool
	out         string
	jsonPath    string
	redis       string
	postgres    string
	seed        uint64
	replicas    int
	rate        float64
	duration    time.Duration
	think       time.Duration
	timeout     time.Duration
	work        time.Duration
	maxInflight int
	tabs        int
	poisson     bool
	verbose     bool
	storeDelay  time.Duration
	storeResets float64
	replQuorum  string
	redisMode   string
	redisWait   int
	target      targetFlags
}

// register adds the flags to fs; knobs adds the run parameters (lab only).
func (f *labFlags) register(fs *flag.FlagSet, knobs bool) {
	fs.BoolVar(&f.quick, "quick", false, "short runs (the parameters of demo --quick)")
	fs.StringVar(&f.out, "out", "statelab-out", "directory for report.html, results.json and linearizability visualizations")
	fs.StringVar(&f.redis, "redis", "", "Redis URL for the cache strategy (default: start redis-server from PATH)")
	fs.StringVar(&f.postgres, "postgres", "", "PostgreSQL URL for the database strategy (default: SQLite); a fresh schema is used and dropped")
	fs.BoolVar(&f.verbose, "v", false, "log cluster events to stderr")
	fs.StringVar(&f.redisMode, "redis-mode", "single", "cache: the Redis the lab starts: single, cluster (3 masters, 3 replicas) or sentinel (primary, replica, 3 sentinels)")
	fs.IntVar(&f.redisWait, "redis-wait", 0, "cache on --redis-mode cluster or sentinel: acknowledge a write once `N` Redis replicas have it (WAIT)")
	f.target.register(fs)
	if !knobs {
		return
	}
	fs.StringVar(&f.jsonPath, "json", "", "write results.json here instead of DIR/results.json")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the shoppers' choices and of Poisson arrivals")
	fs.IntVar(&f.replicas, "replicas", 0, "replicas at the end of the run (default 4)")
	fs.Float64Var(&f.rate, "rate", 0, "offered load, requests per second (default 250)")
	fs.DurationVar(&f.duration, "duration", 0, "how long shoppers arrive (default 20s, 3s with --quick)")
	fs.DurationVar(&f.think, "think", 0, "time between a shopper's steps (default 200ms, 60ms with --quick)")
	fs.DurationVar(&f.timeout, "timeout", 0, "timeout of every request (default 2s)")
	fs.DurationVar(&f.work, "work", 0, "each replica's --work (default 20ms)")
	fs.IntVar(&f.maxInflight, "max-inflight", 0, "each replica's --max-inflight (default 2)")
	fs.IntVar(&f.tabs, "tabs", 0, "tabs per shopper in the tabs scenario (default 3)")
	fs.BoolVar(&f.poisson, "poisson", false, "Poisson arrivals (seeded by --seed) instead of evenly spaced ones")
	fs.DurationVar(&f.storeDelay, "store-delay", 0, "latency slowstore adds to each round trip to the store (default 50ms)")
	fs.Float64Var(&f.storeResets, "store-resets", 0, "share of new store connections flaky resets, 0..1 (default 0.3)")
	fs.StringVar(&f.replQuorum, "repl-quorum", "", "replicated: the replicas' write quorum, in copies of a session: majority (default), one (none) or a count")
}

// config turns the flags into the base run configuration.
func (f *labFlags) config(cmd string, m *Main) (lab.Config, error) {
	cfg := lab.DefaultConfig(f.quick)
	if f.replicas != 0 {
		cfg.Replicas = f.replicas
	}
	if f.rate != 0 {
		cfg.Rate = f.rate
	}
	if f.duration != 0 {
		cfg.Duration = f.duration
	}
	if f.think != 0 {
		cfg.Think = f.think
	}
	if f.timeout != 0 {
		cfg.Timeout = f.timeout
	}
	if f.work != 0 {
		cfg.Work = f.work
	}
	if f.maxInflight != 0 {
		cfg.MaxInflight = f.maxInflight
	}
	if f.tabs != 0 {
		cfg.Tabs = f.tabs
	}
	if f.seed != 0 {
		cfg.Seed = f.seed
	}
	cfg.Poisson = f.poisson
	cfg.StoreDelay, cfg.StoreResets, cfg.ReplQuorum = f.storeDelay, f.storeResets, f.replQuorum
	cfg.RedisMode, cfg.RedisWait = f.redisMode, f.redisWait
	cfg.RedisURL, cfg.PostgresURL = f.redis, f.postgres
	cfg.OutDir = f.out
	bin, err := os.Executable()
	if err != nil {
		return cfg, fmt.Errorf("%s: find the statelab binary: %w", cmd, err)
	}
	cfg.Binary = bin
	if f.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(m.Stderr, nil))
	}
	return cfg, nil
}

// params describes the shared run parameters for the report.
func params(cfg lab.Config) string {
	switch {
	case cfg.Target.URL != "":
		return targetParams(cfg)
	case cfg.Service == lab.ServiceGame:
		return lab.GameParamsText(cfg)
	case cfg.Game.Rooms > 0: // the demo: cart and game runs
		return cartParams(cfg) + " " + lab.GameParamsText(cfg)
	}
	return cartParams(cfg)
}

// cartParams describes the cart runs' parameters for the report.
func cartParams(cfg lab.Config) string {
	arr := "evenly spaced"
	if cfg.Poisson {
		arr = fmt.Sprintf("Poisson (seed %d)", cfg.Seed)
	}
	return fmt.Sprintf("Every run: %d replicas (each --work %v --max-inflight %d), %.0f requests/s offered for %v, %s arrivals, %v between a shopper's steps, %v request timeout, %d tabs in the tabs scenario.",
		cfg.Replicas, cfg.Work, cfg.MaxInflight, cfg.Rate, cfg.Duration, arr, cfg.Think, cfg.Timeout, cfg.Tabs)
}

// finish writes the outputs, prints the table, the claims and the files,
// and returns runErr (the suite's error, e.g. an interruption) or the
// write error.
func finish(m *Main, out, jsonPath, command string, cfg lab.Config, began time.Time, runs []*lab.Run, runErr error, newcomer bool) error {
	return finishWithSweep(m, out, jsonPath, command, cfg, began, runs, nil, runErr, newcomer)
}

// finishWithSweep is finish with a scaling sweep (nil: none): its table
// follows the runs' and it goes into the same report and results.
func finishWithSweep(m *Main, out, jsonPath, command string, cfg lab.Config, began time.Time, runs []*lab.Run, sw *lab.Sweep, runErr error, newcomer bool) error {
	info := lab.ReportInfo{Command: command, Generated: time.Now(), Machine: lab.ThisMachine(), Wall: time.Since(began), Params: params(cfg)}
	files, claims, werr := lab.WriteOutputsWithSweep(out, jsonPath, info, runs, sw)
	fmt.Fprintln(m.Stdout)
	if err := lab.WriteTable(m.Stdout, runs); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout)
	if sw != nil {
		fmt.Fprintln(m.Stdout, "Scaling sweep: the highest sustained rate at each replica count:")
		if err := lab.WriteSweepTable(m.Stdout, sw); err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout)
	}
	if newcomer {
		fmt.Fprintln(m.Stdout, "What the lesson claims, and what these runs say:")
		lab.WriteClaims(m.Stdout, claims)
		fmt.Fprintln(m.Stdout)
		fmt.Fprint(m.Stdout, newcomerSummary)
	}
	return finishFiles(m, files, began, runErr, werr)
}

// finishFiles prints where the outputs are (when they were written) and
// how long it all took, and returns runErr or else werr.
func finishFiles(m *Main, files lab.Outputs, began time.Time, runErr, werr error) error {
	if werr == nil {
		fmt.Fprintf(m.Stdout, "Report:  %s\nResults: %s\n", files.Report, files.Results)
	}
	fmt.Fprintf(m.Stdout, "Took %v.\n", time.Since(began).Round(time.Second))
	if runErr != nil {
		return runErr
	}
	return werr
}

const newcomerSummary = `How to read the table: req/s is what the cluster served of the offered load;
p99 is the latency 99 requests in 100 beat, measured from when each request was
due (so queueing counts); "items lost" are adds the server acknowledged that were
missing from the cart at the end; "stale reads" are reads that missed an item
already acknowledged; "lost updates" are acknowledged quantity changes that
vanished when several tabs updated one cart; imbalance is the busiest replica's
load over the mean (1.00 is even); recovery is how long errors stayed above their
pre-fault level. The report has charts over time for every run.
In the game server's table, "inputs lost" are inputs a room acknowledged and later
did not have; "ticks rolled back" is how far behind a room's new owner started
(total, and the largest in parentheses); a "double activation" is two owners
acknowledging inputs of one room at once; "resume" is how long after its owner
was killed or paused the slowest room answered again.
`

func runLab(ctx context.Context, m *Main, args []string) error {
	fs := newFlagSet(m, "lab", "--strategy S [--scenario NAME] [--replicas N] [--rate R] [--duration D] [--quick] [--out DIR] [--json FILE] [--redis URL] [--postgres URL] [--seed N] [--target URL [--target-admin URL] [--kill-cmd CMD] ...]")
	var f labFlags
	var name, scenario, service string
	var gp lab.GameParams
	var sf sweepFlags
	fs.StringVar(&service, "service", "cart", "what to drive: cart (statelab app) or game (statelab game)")
	fs.StringVar(&name, "strategy", "", "strategy: "+oneOf(strategy.Names())+" (required); for the game: "+oneOf(game.StrategyNames()))
	fs.StringVar(&scenario, "scenario", "steady", "scenario: "+scenarioNames()+"; for the game: steady, failover, scaleout or pause")
	fs.IntVar(&gp.Rooms, "rooms", 0, "game rooms (default 8)")
	fs.IntVar(&gp.Players, "players", 0, "players per game room (default 4)")
	f.register(fs, true)
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	svc, err := lab.ParseService(service)
	if err != nil {
		return usageErrorf("lab", "--service: %v", err)
	}
	switch {
	case svc == lab.ServiceGame && f.target.url != "":
		return usageErrorf("lab", "--target drives the cart service (statelab app) only")
	case sf.sweep != "" && f.target.url != "":
		return usageErrorf("lab", "--sweep sizes clusters the lab starts; it does not take --target")
	}
	if svc == lab.ServiceGame {
		return runGameLab(ctx, m, f, gp, name, scenario, args)
	}
	if sf.sweep != "" {
		return runSweep(ctx, m, &f, &sf, name, args)
	}
	if name == "" {
		return usageErrorf("lab", "--strategy is required (%s)", oneOf(strategy.Names()))
	}
	st, err := strategy.Parse(name)
	if err != nil {
		return usageErrorf("lab", "--strategy: %v", err)
	}
	sc, err := lab.ParseScenario(scenario)
	if err != nil {
		return usageErrorf("lab", "--scenario: %v", err)
	}
	cfg, err := f.config("lab", m)
	if err != nil {
		return err
	}
	cfg.Strategy, cfg.Scenario = st, sc
	if cfg.Target, err = f.target.target(fs); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		if errors.Is(err, lab.ErrBadConfig) {
			return usageErrorf("lab", "%v", err)
		}
		return err
	}
	if cfg.Target.URL != "" {
		announceTarget(m.Stderr, cfg, 1)
	}
	began := time.Now()
	runs, runErr := lab.RunSuite(ctx, cfg, []lab.Pair{{Strategy: st, Scenario: sc}}, progressTo(m))
	return finish(m, f.out, f.jsonPath, "statelab lab "+strings.Join(args, " "), cfg, began, runs, runErr, false)
}

// scenarioNames lists the lab's scenarios for the --scenario help.
func scenarioNames() string {
	var names []string
	for _, sc := range lab.Scenarios() {
		names = append(names, string(sc))
	}
	return strings.Join(names, ", ")
}

// progressTo returns a progress function printing to m.Stderr.
func progressTo(m *Main) func(string) {
	return func(s string) { fmt.Fprintln(m.Stderr, s) }
}

// absOut makes dir absolute for messages, leaving it as is on error.
func absOut(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

// runGameLab is statelab lab --service game.
func runGameLab(ctx context.Context, m *Main, f labFlags, gp lab.GameParams, name, scenario string, args []string) error {
	if _, ok := game.Lookup(name); !ok {
		return usageErrorf("lab", "--strategy: the game's strategies are %s, not %q", oneOf(game.StrategyNames()), name)
	}
	sc, err := lab.ParseGameScenario(scenario)
	if err != nil {
		return usageErrorf("lab", "--scenario: %v", err)
	}
	cfg, err := f.config("lab", m)
	if err != nil {
		return err
	}
	cfg.Service, cfg.Game = lab.ServiceGame, gp
	cfg.Strategy, cfg.Scenario = strategy.Strategy(name), sc
	if err := cfg.ValidateGame(); err != nil {
		return usageErrorf("lab", "%v", err)
	}
	pair := lab.Pair{Service: lab.ServiceGame, Strategy: strategy.Strategy(name), Scenario: sc}
	began := time.Now()
	runs, runErr := lab.RunSuite(ctx, cfg, []lab.Pair{pair}, progressTo(m))
	return finish(m, f.out, f.jsonPath, "statelab lab "+strings.Join(args, " "), cfg, began, runs, runErr, false)
}
