package lab

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// Pair is one strategy × scenario of a suite.
type Pair struct {
	Strategy strategy.Strategy
	Scenario Scenario
	// Service is the cart when empty.
	Service Service
}

// DemoPairs returns the runs of `statelab demo` for strategies: each through
// steady, failover, scaleout and tabs, and cache and database also through
// storefail, isolate, slowstore and flaky (every strategy whose store is
// external), and replicated through partition. quick runs naive through
// steady only: it loses carts with no fault at all, so its fault rows would
// cost the quick demo 12 s and show nothing new.
func DemoPairs(strategies []strategy.Strategy, quick bool) []Pair {
	var out []Pair
	for _, s := range strategies {
		for _, sc := range []Scenario{Steady, Failover, Scaleout, Tabs} {
			if quick && s == strategy.Naive && sc != Steady {
				continue
			}
			out = append(out, Pair{Strategy: s, Scenario: sc})
		}
		if s.Spec().External() {
			out = append(out, Pair{Strategy: s, Scenario: Storefail}, Pair{Strategy: s, Scenario: Isolate},
				Pair{Strategy: s, Scenario: SlowStore}, Pair{Strategy: s, Scenario: Flaky})
		}
		if s == strategy.Replicated {
			out = append(out, Pair{Strategy: s, Scenario: Partition})
		}
	}
	return out
}

// RunSuite runs every pair with the parameters of base, one after the
// other, and returns the runs made. A run that fails to start is recorded
// with its error and the suite goes on; when ctx ends, the runs made so far
// (including the interrupted one's partial measurements) are returned with
// ctx's error. progress, when not nil, receives one line per phase.
func RunSuite(ctx context.Context, base Config, pairs []Pair, progress func(string)) ([]*Run, error) {
	var runs []*Run
	for i, p := range pairs {
		cfg := base
		cfg.Strategy, cfg.Scenario, cfg.Service = p.Strategy, p.Scenario, p.Service
		if progress != nil {
			cfg.Progress = func(s string) { progress(fmt.Sprintf("[%d/%d] %s", i+1, len(pairs), s)) }
		}
		began := time.Now()
		run, err := RunOne(ctx, cfg)
		if run == nil {
			run = &Run{CPUBusy: -1, Result: RunResult{Service: p.Service, Strategy: string(p.Strategy), Scenario: string(p.Scenario)}}
		}
		if err != nil && run.Err == nil {
			run.Err = err
		}
		if err != nil && run.Result.Requests == 0 && run.Skipped == "" {
			if ctx.Err() != nil {
				run.Skipped = "interrupted before it measured anything"
			} else {
				run.Skipped = "failed: " + err.Error()
			}
		}
		runs = append(runs, run)
		if progress != nil {
			switch {
			case run.Skipped != "":
				progress(fmt.Sprintf("[%d/%d] %s × %s: %s", i+1, len(pairs), p.Strategy, p.Scenario, run.Skipped))
			case run.Result.GameResult != nil:
				progress(fmt.Sprintf("[%d/%d] %s", i+1, len(pairs), gameLine(run, time.Since(began))))
			default:
				r := run.Result
				causes := ""
				if len(r.ErrorCauses) > 0 {
					causes = " (" + causesText(r.ErrorCauses, 2) + ")"
				}
				progress(fmt.Sprintf("[%d/%d] %s × %s: %.0f req/s, p99 %.1f ms, errors %s%s, items lost %d/%d, stale reads %d (%v)",
					i+1, len(pairs), p.Strategy, p.Scenario, r.AchievedRPS, r.LatencyMS.P99, pct(r.ErrorRate), causes, r.ItemsLost, r.ItemsAcked, r.StaleReads, time.Since(began).Round(100*time.Millisecond)))
				if note := run.Note(); note != "" {
					progress(fmt.Sprintf("[%d/%d] %s × %s: note: %s", i+1, len(pairs), p.Strategy, p.Scenario, note))
				}
			}
		}
		if ctx.Err() != nil {
			return runs, ctx.Err()
		}
	}
	return runs, nil
}

// Outputs are the files a suite wrote.
type Outputs struct {
	Results, Report string
}

// WriteOutputs evaluates the claims over runs and writes results.json (to
// jsonPath, or outDir/results.json when empty) and outDir/report.html.
func WriteOutputs(outDir, jsonPath string, info ReportInfo, runs []*Run) (Outputs, []ClaimResult, error) {
	return WriteOutputsWithSweep(outDir, jsonPath, info, runs, nil)
}

// WriteOutputsWithSweep is WriteOutputs with a scaling sweep (nil: none)
// in results.json and the report; the sweep's verdicts on the scaling
// claims win over the runs' where it measured them.
func WriteOutputsWithSweep(outDir, jsonPath string, info ReportInfo, runs []*Run, sw *Sweep) (Outputs, []ClaimResult, error) {
	SortRuns(runs)
	claims := EvaluateClaims(runs)
	if sw != nil {
		claims = combineClaims(claims, EvaluateSweepClaims(sw))
	}
	res := Results{Version: 1, Machine: info.Machine, Sweep: sw}
	for _, r := range runs {
		if r.Skipped == "" {
			res.Runs = append(res.Runs, r.Result)
		}
	}
	for _, c := range claims {
		res.Claims = append(res.Claims, c.JSON())
	}
	if jsonPath == "" {
		jsonPath = filepath.Join(outDir, "results.json")
	}
	out := Outputs{Results: jsonPath, Report: filepath.Join(outDir, "report.html")}
	err := errors.Join(res.WriteJSON(jsonPath), writeReport(out.Report, info, runs, claims, sw))
	return out, claims, err
}
