package lab

import (
	"fmt"
	"strings"

	"github.com/statelab/statelab/internal/strategy"
)

// Thresholds of the claims judged on a sweep's curves. Efficiency is
// capacity at N ÷ (N × the per-replica basis, see efficiencyBasis); a
// probe step of the search is about 6% of the rate, so margins below that
// would judge noise.
const (
	// sweepHarderMargin: a stateful strategy scales harder when its
	// efficiency at the largest replica count both were measured at is
	// more than 10 points below the stateless client strategy's.
	sweepHarderMargin = 0.10
	// sweepLinear: a strategy scales "just by adding servers" when its
	// efficiency stays at or above 90% at every replica count the machine
	// did not limit.
	sweepLinear = 0.90
	// sweepScalable, sweepBent: the database is a scalable place when its
	// efficiency at the largest replica count is at least 80%; between
	// 50% and 80% it scales with a cost; below 50% it does not scale.
	sweepScalable = 0.80
	sweepBent     = 0.50
)

// sweepClaim is a claim of the claims table (by number) judged on a sweep.
type sweepClaim struct {
	n     int
	needs []strategy.Strategy
	judge func(c curves) (Verdict, string)
}

// sweepClaims are the claims on scaling that a sweep judges.
var sweepClaims = []sweepClaim{
	{2, []strategy.Strategy{strategy.Sticky, strategy.Client}, judgeSweepHarder},
	{7, []strategy.Strategy{strategy.Database}, judgeSweepDatabase},
	{8, []strategy.Strategy{strategy.Client}, judgeSweepStateless},
}

// curves are a sweep's measured points by strategy, in replica order.
type curves map[strategy.Strategy][]SweepPoint

func sweepCurves(sw *Sweep) curves {
	c := curves{}
	for _, p := range sw.Points {
		if p.Skipped == "" && p.CapacityRPS > 0 {
			c[strategy.Strategy(p.Strategy)] = append(c[strategy.Strategy(p.Strategy)], p)
		}
	}
	return c
}

// at returns st's point at n replicas.
func (c curves) at(st strategy.Strategy, n int) (SweepPoint, bool) {
	for _, p := range c[st] {
		if p.Replicas == n {
			return p, true
		}
	}
	return SweepPoint{}, false
}

// largest returns the largest replica count above 1 at which every
// strategy of sts has a point with an efficiency that this machine's CPU
// did not limit; 0 when there is none.
func (c curves) largest(sts ...strategy.Strategy) int {
	best := 0
	judged := func(p SweepPoint) bool { return p.Efficiency > 0 && p.Limiter != LimitCPU }
	for _, p := range c[sts[0]] {
		ok := p.Replicas > 1 && judged(p)
		for _, st := range sts[1:] {
			q, found := c.at(st, p.Replicas)
			ok = ok && found && judged(q)
		}
		if ok {
			best = max(best, p.Replicas)
		}
	}
	return best
}

// curveText words one strategy's curve: capacity, efficiency and limiter
// at each replica count.
func (c curves) curveText(st strategy.Strategy) string {
	var parts []string
	for _, p := range c[st] {
		s := fmt.Sprintf("%d: %.0f req/s", p.Replicas, p.CapacityRPS)
		if p.Replicas > 1 && p.Efficiency > 0 {
			s += fmt.Sprintf(" (%.0f%%)", p.Efficiency*100)
		}
		parts = append(parts, s+", "+string(p.Limiter))
	}
	return fmt.Sprintf("%s — %s", st, strings.Join(parts, "; "))
}

// EvaluateSweepClaims judges the claims on scaling (2, 7 and 8 of the
// claims table) from a sweep's curves. A claim whose strategies were not
// swept above one replica is "not measured", and says which.
func EvaluateSweepClaims(sw *Sweep) []ClaimResult {
	c := sweepCurves(sw)
	out := make([]ClaimResult, 0, len(sweepClaims))
	for _, sc := range sweepClaims {
		r := ClaimResult{N: sc.n, Text: claims[sc.n-1].text, Verdict: NotMeasured}
		if c.largest(sc.needs...) == 0 {
			var names []string
			for _, st := range sc.needs {
				names = append(names, string(st))
			}
			r.Evidence = "needs a sweep of " + strings.Join(names, " and ") + " at 1 or 2 replicas and at least one more count that this machine's CPU did not limit"
		} else {
			r.Verdict, r.Evidence = sc.judge(c)
			if sw.Skew > 0 {
				r.Evidence += fmt.Sprintf(" (one hot session sent %s of the requests)", pct(sw.Skew))
			}
		}
		out = append(out, r)
	}
	return out
}

// judgeSweepHarder: sticky memory's efficiency falls behind the stateless
// client strategy's, or its limiter is a hot replica.
func judgeSweepHarder(c curves) (Verdict, string) {
	n := c.largest(strategy.Sticky, strategy.Client)
	s, _ := c.at(strategy.Sticky, n)
	cl, _ := c.at(strategy.Client, n)
	ev := fmt.Sprintf("at %d replicas sticky memory reached %.0f%% efficiency (limiter %s), the stateless client strategy %.0f%% (%s); curves: %s; %s",
		n, s.Efficiency*100, s.Limiter, cl.Efficiency*100, cl.Limiter, c.curveText(strategy.Sticky), c.curveText(strategy.Client))
	if s.Efficiency < cl.Efficiency-sweepHarderMargin || (s.Limiter == LimitHotReplica && cl.Limiter != LimitHotReplica) {
		return Holds, ev
	}
	return DoesNotHold, ev + " (sessions are short and spread evenly here; --skew adds a hot session that sticky pins to one replica)"
}

// judgeSweepDatabase: the database strategy's efficiency at its largest
// replica count.
func judgeSweepDatabase(c curves) (Verdict, string) {
	n := c.largest(strategy.Database)
	d, _ := c.at(strategy.Database, n)
	ev := fmt.Sprintf("at %d replicas the database strategy (%s) reached %.0f%% efficiency, limited by %s: %s; curve: %s",
		n, d.Store, d.Efficiency*100, d.Limiter, d.LimiterEvidence, c.curveText(strategy.Database))
	if cache, ok := c.at(strategy.Cache, n); ok && cache.Efficiency > 0 {
		ev += fmt.Sprintf("; the cache reached %.0f%%", cache.Efficiency*100)
	}
	switch {
	case d.Efficiency >= sweepScalable:
		return Holds, ev
	case d.Efficiency >= sweepBent:
		return HoldsWithCost, ev
	}
	return DoesNotHold, ev
}

// judgeSweepStateless: the client strategy's efficiency stays near linear
// at every replica count the machine's CPU did not limit.
func judgeSweepStateless(c curves) (Verdict, string) {
	var low, machine []string
	judged := 0
	for _, p := range c[strategy.Client] {
		if p.Replicas > 1 && p.Limiter != LimitCPU {
			judged++
		}
		switch {
		case p.Replicas == 1 || p.Efficiency >= sweepLinear:
		case p.Limiter == LimitCPU:
			machine = append(machine, fmt.Sprintf("%d (%.0f%%)", p.Replicas, p.Efficiency*100))
		default:
			low = append(low, fmt.Sprintf("%d (%.0f%%, %s)", p.Replicas, p.Efficiency*100, p.Limiter))
		}
	}
	ev := "curve: " + c.curveText(strategy.Client)
	if len(machine) > 0 {
		ev += "; not judged where this machine's CPU was the limit: " + strings.Join(machine, ", ")
	}
	if judged == 0 {
		return NotMeasured, ev + "; this machine's CPU limited every count above 1 replica"
	}
	if len(low) > 0 {
		return DoesNotHold, ev + fmt.Sprintf("; below %.0f%% efficiency at %s", sweepLinear*100, strings.Join(low, ", "))
	}
	return Holds, ev
}
