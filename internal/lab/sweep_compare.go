package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"text/tabwriter"
)

// compareCapacityTol is the capacity difference SweepComparison counts as
// the same capacity: 10% of the higher, about two steps of the search's
// last bisection (each under 5% of the model's rate) — closer than that
// is the search's own resolution.
const compareCapacityTol = 0.10

// PointComparison is one strategy and replica count in two sweeps.
type PointComparison struct {
	Strategy string `json:"strategy"`
	Replicas int    `json:"replicas"`
	// LimiterA, LimiterB are the two sweeps' limiters; empty where the
	// point is missing or skipped in that sweep.
	LimiterA Limiter `json:"limiter_a"`
	LimiterB Limiter `json:"limiter_b"`
	// CapacityA, CapacityB are the capacities in requests/s.
	CapacityA float64 `json:"capacity_a"`
	CapacityB float64 `json:"capacity_b"`
	// CPUA, CPUB are the points' cpu_saturated.
	CPUA bool `json:"cpu_a"`
	CPUB bool `json:"cpu_b"`
	// Both says the point was measured in both sweeps; the fields below
	// are set only then.
	Both bool `json:"both"`
	// SameLimiter: both named the same limiter. CapacityDiff is |A − B| ÷
	// the higher; SameCapacity is CapacityDiff within compareCapacityTol.
	SameLimiter  bool    `json:"same_limiter"`
	CapacityDiff float64 `json:"capacity_diff"`
	SameCapacity bool    `json:"same_capacity"`
}

// SweepComparison is two sweeps' points side by side and how many agree.
type SweepComparison struct {
	Points []PointComparison `json:"points"`
	// Compared counts the points measured in both; SameLimiter and
	// SameCapacity how many of them agree.
	Compared     int `json:"compared"`
	SameLimiter  int `json:"same_limiter"`
	SameCapacity int `json:"same_capacity"`
	// Quiet counts the compared points the machine's CPU saturated in
	// neither sweep, QuietSameLimiter how many of those agree on the
	// limiter: the stability of the method apart from the machine.
	Quiet            int `json:"quiet"`
	QuietSameLimiter int `json:"quiet_same_limiter"`
	// MedianCapacityDiff and MaxCapacityDiff summarize CapacityDiff over
	// the compared points.
	MedianCapacityDiff float64 `json:"median_capacity_diff"`
	MaxCapacityDiff    float64 `json:"max_capacity_diff"`
}

// ReadSweep reads the sweep section of a results.json.
func ReadSweep(path string) (*Sweep, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab: read sweep: %w", err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("lab: read sweep: %s: %w", path, err)
	}
	if res.Sweep == nil || len(res.Sweep.Points) == 0 {
		return nil, fmt.Errorf("lab: read sweep: %s has no sweep section (run statelab lab --sweep)", path)
	}
	return res.Sweep, nil
}

// CompareSweeps pairs the points of a and b by strategy and replica count,
// in a's order followed by those only b has.
func CompareSweeps(a, b *Sweep) SweepComparison {
	type key struct {
		st string
		n  int
	}
	var keys []key
	pa, pb := map[key]SweepPoint{}, map[key]SweepPoint{}
	seen := map[key]bool{}
	for _, sw := range []struct {
		s *Sweep
		m map[key]SweepPoint
	}{{a, pa}, {b, pb}} {
		for _, p := range sw.s.Points {
			k := key{p.Strategy, p.Replicas}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			sw.m[k] = p
		}
	}
	var c SweepComparison
	var diffs []float64
	for _, k := range keys {
		x, okA := pa[k]
		y, okB := pb[k]
		okA, okB = okA && x.Skipped == "", okB && y.Skipped == ""
		pc := PointComparison{Strategy: k.st, Replicas: k.n}
		if okA {
			pc.LimiterA, pc.CapacityA, pc.CPUA = x.Limiter, x.CapacityRPS, x.CPUSaturated
		}
		if okB {
			pc.LimiterB, pc.CapacityB, pc.CPUB = y.Limiter, y.CapacityRPS, y.CPUSaturated
		}
		if pc.Both = okA && okB; pc.Both {
			pc.SameLimiter = pc.LimiterA == pc.LimiterB
			if hi := max(pc.CapacityA, pc.CapacityB); hi > 0 {
				pc.CapacityDiff = round(math.Abs(pc.CapacityA-pc.CapacityB)/hi, 3)
			}
			pc.SameCapacity = pc.CapacityDiff <= compareCapacityTol
			c.Compared++
			c.SameLimiter += btoi(pc.SameLimiter)
			c.SameCapacity += btoi(pc.SameCapacity)
			if !pc.CPUA && !pc.CPUB {
				c.Quiet++
				c.QuietSameLimiter += btoi(pc.SameLimiter)
			}
			diffs = append(diffs, pc.CapacityDiff)
		}
		c.Points = append(c.Points, pc)
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		c.MedianCapacityDiff = diffs[len(diffs)/2]
		if len(diffs)%2 == 0 {
			c.MedianCapacityDiff = round((diffs[len(diffs)/2-1]+diffs[len(diffs)/2])/2, 3)
		}
		c.MaxCapacityDiff = diffs[len(diffs)-1]
	}
	return c
}

// WriteSweepComparison writes c as a table, one line per point, and a
// summary of how many points agree.
func WriteSweepComparison(out io.Writer, c SweepComparison) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\treplicas\tlimiter A\tlimiter B\tsame\tcapacity A\tcapacity B\tdifference\t")
	lim := func(l Limiter, cpu bool) string {
		switch {
		case l == "":
			return "-"
		case cpu && l != LimitCPU:
			return string(l) + " ⚠cpu"
		}
		return string(l)
	}
	capacity := func(l Limiter, v float64) string {
		if l == "" {
			return "-"
		}
		return fmt.Sprintf("%.0f", v)
	}
	for _, p := range c.Points {
		if !p.Both {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t-\t%s\t%s\t-\t\n", p.Strategy, p.Replicas, lim(p.LimiterA, p.CPUA), lim(p.LimiterB, p.CPUB), capacity(p.LimiterA, p.CapacityA), capacity(p.LimiterB, p.CapacityB))
			continue
		}
		same := "no"
		if p.SameLimiter {
			same = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f%%\t\n", p.Strategy, p.Replicas, lim(p.LimiterA, p.CPUA), lim(p.LimiterB, p.CPUB), same, p.CapacityA, p.CapacityB, p.CapacityDiff*100)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.Compared == 0 {
		_, err := fmt.Fprintln(out, "\nno point was measured in both sweeps")
		return err
	}
	quiet := "the machine's CPU was saturated in one run or both at every point"
	if c.Quiet > 0 {
		quiet = fmt.Sprintf("on the %d points the machine's CPU saturated in neither run: %d of %d", c.Quiet, c.QuietSameLimiter, c.Quiet)
	}
	_, err := fmt.Fprintf(out, "\nsame limiter on %d of %d points (%s); %s\n"+
		"capacity within %.0f%% on %d of %d points (%s); difference median %.0f%%, largest %.0f%%\n",
		c.SameLimiter, c.Compared, pct(float64(c.SameLimiter)/float64(c.Compared)), quiet,
		compareCapacityTol*100, c.SameCapacity, c.Compared, pct(float64(c.SameCapacity)/float64(c.Compared)), c.MedianCapacityDiff*100, c.MaxCapacityDiff*100)
	return err
}
