package lab

import (
	"errors"
	"testing"
)

// TestSetEfficiency: the basis is the higher of the 1-replica capacity and
// half the 2-replica one, so a low 1-replica point no longer doubles the
// row; each strategy has its own basis; a strategy without a 1- or
// 2-replica point gets no efficiency.
func TestSetEfficiency(t *testing.T) {
	pt := func(st string, n int, capacity float64) SweepPoint {
		return SweepPoint{Strategy: st, Replicas: n, CapacityRPS: capacity}
	}
	points := []SweepPoint{
		// naive's 1-replica search was held to 47 by a busy machine.
		pt("naive", 1, 47), pt("naive", 2, 188), pt("naive", 4, 375), pt("naive", 8, 750),
		// client's 1-replica point is the better one.
		pt("client", 1, 94), pt("client", 2, 169), pt("client", 4, 375),
		// sticky's 2-replica point was skipped: only the 1-replica one counts.
		pt("sticky", 1, 90), {Strategy: "sticky", Replicas: 2, CapacityRPS: 500, Skipped: "failed"}, pt("sticky", 4, 360),
		// cache has neither.
		pt("cache", 4, 300),
	}
	setEfficiency(points)
	for _, tt := range []struct {
		i           int
		basis, want float64
	}{
		{0, 94, 0.5}, {1, 94, 1}, {2, 94, 0.997}, {3, 94, 0.997},
		{4, 94, 1}, {5, 94, 0.899}, {6, 94, 0.997},
		{7, 90, 1}, {8, 0, 0}, {9, 90, 1},
		{10, 0, 0},
	} {
		p := points[tt.i]
		if p.EfficiencyBasisRPS != tt.basis || p.Efficiency != tt.want {
			t.Errorf("%s × %d: basis %v efficiency %v, want %v and %v", p.Strategy, p.Replicas, p.EfficiencyBasisRPS, p.Efficiency, tt.basis, tt.want)
		}
	}
}

func TestUnloadedP99(t *testing.T) {
	for _, tt := range []struct {
		p99s []float64
		want float64
	}{
		{nil, 0}, {[]float64{12}, 12}, {[]float64{80, 21.5}, 21.5}, {[]float64{21.5, 80}, 21.5},
	} {
		if got := unloadedP99(tt.p99s); got != tt.want {
			t.Errorf("unloadedP99(%v) = %v, want %v", tt.p99s, got, tt.want)
		}
	}
}

// TestSweepValidateUnloadedProbes: a sweep makes 1 to 5 unloaded probes.
func TestSweepValidateUnloadedProbes(t *testing.T) {
	for n, ok := range map[int]bool{0: false, 1: true, 2: true, 5: true, 6: false} {
		c := DefaultSweepConfig(true)
		c.Base.Binary = "statelab"
		c.Objective.UnloadedProbes = n
		if err := c.Validate(); (err == nil) != ok || (err != nil && !errors.Is(err, ErrBadConfig)) {
			t.Errorf("%d unloaded probes: %v", n, err)
		}
	}
}
