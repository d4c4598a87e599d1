package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/lab"
	"github.com/statelab/statelab/internal/strategy"
)

// sweepFlags are the flags of statelab lab --sweep.
type sweepFlags struct {
	sweep string
	skew  float64
	probe time.Duration
}

// register adds the sweep's flags to fs.
func (f *sweepFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.sweep, "sweep", "", "scaling sweep: replicas=1,2,4,8,16 finds each strategy's capacity at each replica count (--strategy: one, a comma list, or all, the default)")
	fs.Float64Var(&f.skew, "skew", 0, "sweep: share of the requests one hot session sends, 0..0.9 (0: none)")
	fs.DurationVar(&f.probe, "probe", 0, "sweep: measured length of each probe (default 3s, 1.5s with --quick)")
}

// parseSweep parses the value of --sweep: "replicas=" and a comma list of
// replica counts.
func parseSweep(v string) ([]int, error) {
	key, list, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(key) != "replicas" {
		return nil, fmt.Errorf("--sweep %q: want replicas=N,N,... (e.g. replicas=1,2,4,8,16)", v)
	}
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("--sweep: replica count %q is not a number in 1..64", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseStrategies parses --strategy for a sweep: empty or "all" for every
// strategy, else a comma list.
func parseStrategies(v string) ([]strategy.Strategy, error) {
	if v == "" || v == "all" {
		return strategy.All(), nil
	}
	var out []strategy.Strategy
	for _, s := range strings.Split(v, ",") {
		st, err := strategy.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// runSweep is statelab lab --sweep: the capacity of each strategy at each
// replica count, written as the terminal table, report.html and
// results.json.
func runSweep(ctx context.Context, m *Main, f *labFlags, sf *sweepFlags, strategies string, args []string) error {
	ns, err := parseSweep(sf.sweep)
	if err != nil {
		return usageErrorf("lab", "%v", err)
	}
	sts, err := parseStrategies(strategies)
	if err != nil {
		return usageErrorf("lab", "--strategy: %v", err)
	}
	base, err := f.config("lab", m)
	if err != nil {
		return err
	}
	cfg := lab.DefaultSweepConfig(f.quick)
	cfg.Base, cfg.Strategies, cfg.Replicas, cfg.Skew = base, sts, ns, sf.skew
	cfg.Base.Think = lab.SweepThink(base.Work)
	if f.think != 0 {
		cfg.Base.Think = f.think
	}
	if sf.probe != 0 {
		cfg.Probe = sf.probe
	}
	cfg.Base.Progress = progressTo(m)
	if sf.skew > 0.9 {
		return usageErrorf("lab", "--skew must be in 0..0.9, not %v", sf.skew)
	}
	if err := cfg.Validate(); err != nil {
		return usageErrorf("lab", "%v", err)
	}
	began := time.Now()
	fmt.Fprintf(m.Stderr, "statelab lab --sweep: %d strategies × replicas %v, probes of %v; output in %s\n", len(sts), ns, cfg.Probe, absOut(f.out))
	sw, runErr := lab.RunSweep(ctx, cfg)
	if sw == nil {
		return runErr
	}
	info := lab.ReportInfo{Command: "statelab lab " + strings.Join(args, " "), Generated: time.Now(), Machine: lab.ThisMachine(), Wall: time.Since(began)}
	files, claims, werr := lab.WriteSweepOutputs(f.out, f.jsonPath, info, sw)
	fmt.Fprintln(m.Stdout)
	if err := lab.WriteSweepTable(m.Stdout, sw); err != nil {
		return err
	}
	if len(claims) > 0 {
		fmt.Fprintln(m.Stdout)
		lab.WriteClaims(m.Stdout, claims)
	}
	fmt.Fprintln(m.Stdout)
	return finishFiles(m, files, began, runErr, werr)
}
