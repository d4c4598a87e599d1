package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// TestDemoSweepPlan: the full demo sweeps every strategy it was given at
// lab --sweep's replica counts; --quick only client and sticky at 1 and 2,
// with short probes, and nothing when neither was given.
func TestDemoSweepPlan(t *testing.T) {
	full := DemoSweepConfig(false, strategy.All())
	if !slices.Equal(full.Strategies, strategy.All()) || !slices.Equal(full.Replicas, []int{1, 2, 4, 8, 16}) {
		t.Errorf("full demo sweep: %v × %v, want every strategy × 1,2,4,8,16", full.Strategies, full.Replicas)
	}
	if full.Probe != DefaultSweepConfig(false).Probe {
		t.Errorf("full demo sweep probes %v, want lab --sweep's %v", full.Probe, DefaultSweepConfig(false).Probe)
	}
	quick := DemoSweepConfig(true, strategy.All())
	want := []strategy.Strategy{strategy.Sticky, strategy.Client}
	if !slices.Equal(quick.Strategies, want) || !slices.Equal(quick.Replicas, []int{1, 2}) {
		t.Errorf("quick demo sweep: %v × %v, want %v × 1,2", quick.Strategies, quick.Replicas, want)
	}
	if quick.Probe != time.Second || quick.Search.Bisect != 1 || quick.Objective.UnloadedProbes != 1 {
		t.Errorf("quick demo sweep: probes %v, %d bisections, %d unloaded probes; want 1s, 1, 1", quick.Probe, quick.Search.Bisect, quick.Objective.UnloadedProbes)
	}
	if full.Objective.UnloadedProbes != 2 {
		t.Errorf("full demo sweep: %d unloaded probes, want 2", full.Objective.UnloadedProbes)
	}
	quick.Base.Binary = "statelab"
	if err := quick.Validate(); err != nil {
		t.Errorf("quick demo sweep is invalid: %v", err)
	}
	if got := DemoSweepConfig(true, []strategy.Strategy{strategy.Naive, strategy.Cache}).Strategies; len(got) != 0 {
		t.Errorf("quick demo sweep of naive,cache sweeps %v, want nothing", got)
	}
	if got := DemoSweepConfig(false, []strategy.Strategy{strategy.Cache}).Strategies; !slices.Equal(got, []strategy.Strategy{strategy.Cache}) {
		t.Errorf("full demo sweep of cache sweeps %v", got)
	}
}

// TestSweepClaimsWinInOutputs: with runs and a sweep, results.json and the
// report carry the sweep; a claim the sweep measured takes its verdict (the
// runs' verdict in its evidence), one it did not keeps the runs'.
func TestSweepClaimsWinInOutputs(t *testing.T) {
	sw := &Sweep{Points: append(fakeCurve(strategy.Client, 1, LimitReplicas), fakeCurve(strategy.Sticky, 0.5, LimitHotReplica)...)}
	dir := t.TempDir()
	_, claims, err := WriteOutputsWithSweep(dir, "", ReportInfo{Command: "statelab demo"}, nil, sw)
	if err != nil {
		t.Fatal(err)
	}
	fromSweep := EvaluateSweepClaims(sw)
	for _, s := range fromSweep {
		if s.Verdict == NotMeasured {
			continue
		}
		c := claims[s.N-1]
		if c.N != s.N || c.Verdict != s.Verdict || !strings.HasPrefix(c.Evidence, s.Evidence) {
			t.Errorf("claim %d: %s — %s; want the sweep's %s — %s", s.N, c.Verdict, c.Evidence, s.Verdict, s.Evidence)
		}
	}
	if claims[1].Verdict == NotMeasured || claims[0].Verdict != NotMeasured {
		t.Errorf("claim 2 %q (sweep measured it), claim 1 %q (nothing did)", claims[1].Verdict, claims[0].Verdict)
	}
	runs := []ClaimResult{{N: 1, Verdict: Holds, Evidence: "r1"}, {N: 2, Verdict: DoesNotHold, Evidence: "r2"}}
	got := combineClaims(runs, []ClaimResult{{N: 2, Verdict: Holds, Evidence: "s2"}, {N: 1, Verdict: NotMeasured, Evidence: "none"}})
	if got[0] != runs[0] || got[1].Verdict != Holds || got[1].Evidence != "s2 (sweep; the runs alone say: does not hold — r2)" {
		t.Errorf("combined %+v", got)
	}
	for _, f := range []string{"results.json", "report.html"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"results.json": `"sweep"`, "report.html": "Scaling sweep"}[f]; !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", f, want)
		}
	}
}
