package lab

import (
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/strategy"
)

// fakeCurve returns the points of st at 1, 2 and 4 replicas with 100 req/s
// per replica at 1 and the efficiency eff (and limiter lim) at 2 and 4.
func fakeCurve(st strategy.Strategy, eff float64, lim Limiter) []SweepPoint {
	var out []SweepPoint
	for _, n := range []int{1, 2, 4} {
		p := SweepPoint{Strategy: string(st), Replicas: n, CapacityRPS: 100, Efficiency: 1, Limiter: LimitReplicas}
		if n > 1 {
			p.CapacityRPS, p.Efficiency, p.Limiter = 100*float64(n)*eff, eff, lim
		}
		out = append(out, p)
	}
	return out
}

// TestSweepClaimBoundaries judges each claim on a sweep on either side of
// each of its thresholds.
func TestSweepClaimBoundaries(t *testing.T) {
	sweep := func(curves ...[]SweepPoint) *Sweep {
		sw := &Sweep{}
		for _, c := range curves {
			sw.Points = append(sw.Points, c...)
		}
		return sw
	}
	const eps = 0.001
	type row struct {
		name string
		sw   *Sweep
		want Verdict
		says string
	}
	tests := map[int][]row{
		2: {
			{"sticky behind by the margin", sweep(fakeCurve(strategy.Sticky, 0.9-sweepHarderMargin, LimitReplicas), fakeCurve(strategy.Client, 0.9, LimitReplicas)), DoesNotHold, "--skew"},
			{"sticky behind by more", sweep(fakeCurve(strategy.Sticky, 0.9-sweepHarderMargin-eps, LimitReplicas), fakeCurve(strategy.Client, 0.9, LimitReplicas)), Holds, "at 4 replicas"},
			{"sticky hot replica", sweep(fakeCurve(strategy.Sticky, 0.9, LimitHotReplica), fakeCurve(strategy.Client, 0.9, LimitReplicas)), Holds, "hot_replica"},
			{"client missing", sweep(fakeCurve(strategy.Sticky, 0.5, LimitReplicas)), NotMeasured, "sticky and client"},
			{"client machine-bound", sweep(fakeCurve(strategy.Sticky, 0.5, LimitReplicas), fakeCurve(strategy.Client, 0.5, LimitCPU)), NotMeasured, "CPU did not limit"},
		},
		7: {
			{"scalable", sweep(fakeCurve(strategy.Database, sweepScalable, LimitReplicas)), Holds, ""},
			{"just under scalable", sweep(fakeCurve(strategy.Database, sweepScalable-eps, LimitStore)), HoldsWithCost, "store"},
			{"bent", sweep(fakeCurve(strategy.Database, sweepBent, LimitStore)), HoldsWithCost, ""},
			{"flat", sweep(fakeCurve(strategy.Database, sweepBent-eps, LimitStore)), DoesNotHold, ""},
			{"missing", sweep(fakeCurve(strategy.Client, 1, LimitReplicas)), NotMeasured, "database"},
			{"machine-bound", sweep(fakeCurve(strategy.Database, 0.3, LimitCPU)), NotMeasured, "database"},
		},
		8: {
			{"linear", sweep(fakeCurve(strategy.Client, sweepLinear, LimitReplicas)), Holds, ""},
			{"under linear", sweep(fakeCurve(strategy.Client, sweepLinear-eps, LimitBalancer)), DoesNotHold, "balancer"},
			{"under linear, machine-bound", sweep(fakeCurve(strategy.Client, 0.5, LimitCPU)), NotMeasured, "CPU"},
		},
	}
	for n, rows := range tests {
		for _, tt := range rows {
			t.Run(tt.name, func(t *testing.T) {
				var got *ClaimResult
				for _, c := range EvaluateSweepClaims(tt.sw) {
					if c.N == n {
						got = &c
					}
				}
				if got == nil {
					t.Fatalf("claim %d not judged", n)
				}
				if got.Verdict != tt.want || !strings.Contains(got.Evidence, tt.says) || got.Text != claims[n-1].text {
					t.Errorf("claim %d: %s: %s; want %s, evidence with %q", n, got.Verdict, got.Evidence, tt.want, tt.says)
				}
			})
		}
	}
}
