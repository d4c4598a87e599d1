package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/lab"
	"github.com/statelab/statelab/internal/strategy"
)

func runDemo(ctx context.Context, m *Main, args []string) error {
	fs := newFlagSet(m, "demo", "[--quick] [--out DIR] [--strategies a,b,...] [--sweep=false] [--redis URL | --redis-mode cluster|sentinel [--redis-wait N]] [--postgres URL] [--target URL --strategies S [--target-admin URL] [--kill-cmd CMD] ...]")
	var f labFlags
	var strategies listFlag
	var games, sweep bool
	fs.Var(&strategies, "strategies", "comma-separated strategies to run (default: all six)")
	fs.BoolVar(&games, "game", true, "also run the game server (statelab game) through failover and pause")
	fs.BoolVar(&sweep, "sweep", true, "after the runs, a scaling sweep (lab --sweep): every strategy at 1-16 replicas; --quick: client and sticky at 1 and 2")
	f.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var sts []strategy.Strategy
	for _, s := range strategies {
		st, err := strategy.Parse(s)
		if err != nil {
			return usageErrorf("demo", "--strategies: %v", err)
		}
		sts = append(sts, st)
	}
	if len(sts) == 0 {
		sts = strategy.All()
	}
	cfg, err := f.config("demo", m)
	if err != nil {
		return err
	}
	// The run knobs every run shares (--redis-mode, --redis-wait, …) are
	// checked once here, as a cache run would check them.
	probe := cfg
	probe.Strategy, probe.Scenario = strategy.Cache, lab.Steady
	if err := probe.Validate(); errors.Is(err, lab.ErrBadConfig) {
		return usageErrorf("demo", "%v", err)
	}
	if cfg.Target, err = f.target.target(fs); err != nil {
		return err
	}
	pairs := append(lab.DemoPairs(sts, f.quick), lab.ServicePairs(sts, f.quick)...)
	if games {
		pairs = append(pairs, lab.GamePairs(f.quick)...)
		cfg.Game = lab.DemoGameParams(f.quick)
	}
	if cfg.Target.URL != "" {
		if len(strategies) != 1 {
			return usageErrorf("demo", "--target needs --strategies naming the one strategy the target runs")
		}
		// The services and game scenarios need the lab's own cluster.
		pairs = lab.DemoPairs(sts, f.quick)
	}
	mode := "full"
	if f.quick {
		mode = "quick"
	}
	replicas := fmt.Sprintf("%d replicas each", cfg.Replicas)
	if cfg.Target.URL != "" {
		replicas = "the target's replicas"
	}
	fmt.Fprintf(m.Stderr, "statelab demo (%s): %d runs, %s, %.0f req/s for %v per run; output in %s\n",
		mode, len(pairs), replicas, cfg.Rate, cfg.Duration, absOut(f.out))
	if cfg.Target.URL != "" {
		announceTarget(m.Stderr, cfg, len(pairs))
	} else if f.redis == "" {
		if _, err := exec.LookPath("redis-server"); err != nil {
			fmt.Fprintln(m.Stderr, "note: redis-server is not on PATH and --redis was not given: the cache runs will be skipped")
		}
	}
	began := time.Now()
	runs, runErr := lab.RunSuite(ctx, cfg, pairs, progressTo(m))
	var sw *lab.Sweep
	if sweep && cfg.Target.URL == "" && runErr == nil {
		sw, runErr = demoSweep(ctx, m, cfg, lab.DemoSweepConfig(f.quick, sts))
	}
	return finishWithSweep(m, f.out, "", "statelab demo "+strings.Join(args, " "), cfg, began, runs, sw, runErr, true)
}
