package lab

import "slices"

// efficiencyBasis is the per-replica capacity a strategy's efficiencies
// divide by: the higher of its capacity at 1 replica and half its capacity
// at 2 replicas, among the measured points of points (all of one
// strategy); 0 when it has neither.
//
// Dividing by the 1-replica point alone let that one point's noise move
// the whole row: a 1-replica search that a busy machine held to half the
// model's rate doubled every efficiency above it (200%). A capacity comes
// out low far more often than high — a busy machine, a late timer and a
// noisy unloaded p99 all lower it, while the served-share condition of
// the objective caps it near the model — so the higher of two small
// clusters' per-replica rates is the better estimate of what one replica
// sustains, and a point reads over 100% only when a larger cluster got
// more per replica than both.
func efficiencyBasis(points []SweepPoint) float64 {
	var best float64
	for _, p := range points {
		if p.Skipped == "" && (p.Replicas == 1 || p.Replicas == 2) {
			best = max(best, p.CapacityRPS/float64(p.Replicas))
		}
	}
	return best
}

// setEfficiency fills in each measured point's efficiency and its basis
// from the points of the same strategy.
func setEfficiency(points []SweepPoint) {
	byStrategy := map[string][]SweepPoint{}
	for _, p := range points {
		byStrategy[p.Strategy] = append(byStrategy[p.Strategy], p)
	}
	for i := range points {
		p := &points[i]
		basis := efficiencyBasis(byStrategy[p.Strategy])
		if basis > 0 && p.Skipped == "" {
			p.EfficiencyBasisRPS = round(basis, 2)
			p.Efficiency = round(p.CapacityRPS/(float64(p.Replicas)*basis), 3)
		}
	}
}

// unloadedP99 is the p99 the objective's bound is set from: the lowest of
// the unloaded probes' p99s. A hiccup of a shared machine (a descheduled
// process, a late timer) can only add to a p99, never take from it, so the
// lower of two is the better estimate of the cluster's own unloaded tail;
// an unloaded probe sends only 40 requests at 1 replica (a few hundred at
// 16), so its p99 is nearly its slowest request.
func unloadedP99(p99s []float64) float64 {
	if len(p99s) == 0 {
		return 0
	}
	return slices.Min(p99s)
}
