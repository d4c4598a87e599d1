package lab

import (
	"slices"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// quickSweepStrategies are the strategies demo --quick sweeps: the two
// ends of claim 2 (client, sticky; client alone is claim 8). Each point
// costs about 12 s (a cluster, five probes), so a third strategy, such as
// database for claim 7, would take the sweep past a minute.
var quickSweepStrategies = []strategy.Strategy{strategy.Client, strategy.Sticky}

// DemoSweepConfig returns the scaling sweep demo runs after its runs, over
// the strategies sts. The full demo sweeps every one of sts at 1, 2, 4, 8
// and 16 replicas, as lab --sweep does; quick sweeps only client and sticky
// (those of sts) at 1 and 2 replicas, with 1 s probes, one unloaded probe
// (the second would add about 8 s) and one bisection, to stay near a
// minute on 2 cores. Base is the sweep's
// default; the caller sets Binary, the store URLs, Dir and Progress.
func DemoSweepConfig(quick bool, sts []strategy.Strategy) SweepConfig {
	cfg := DefaultSweepConfig(quick)
	cfg.Strategies = slices.Clone(sts)
	if quick {
		cfg.Strategies = slices.DeleteFunc(cfg.Strategies, func(st strategy.Strategy) bool {
			return !slices.Contains(quickSweepStrategies, st)
		})
		cfg.Replicas = []int{1, 2}
		cfg.Probe = time.Second
		cfg.Search.Bisect = 1
		cfg.Objective.UnloadedProbes = 1
	}
	return cfg
}

// combineClaims puts a sweep's verdicts on the scaling claims over those
// judged from runs: where the sweep measured a claim, its verdict wins
// (it measures capacity at each replica count, which the runs only infer
// from one scale-out), and the runs' verdict follows in its evidence.
func combineClaims(fromRuns, fromSweep []ClaimResult) []ClaimResult {
	out := slices.Clone(fromRuns)
	for _, s := range fromSweep {
		i := s.N - 1
		if s.Verdict == NotMeasured || i < 0 || i >= len(out) {
			continue
		}
		if out[i].Verdict != NotMeasured {
			s.Evidence += " (sweep; the runs alone say: " + string(out[i].Verdict) + " — " + out[i].Evidence + ")"
		}
		out[i] = s
	}
	return out
}
