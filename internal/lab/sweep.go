package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// SweepObjective is the latency objective a probe must meet for its
// arrival rate to count as sustained.
type SweepObjective struct {
	// P99Factor: the probe's p99 must stay under P99Factor times the
	// unloaded p99 of the same strategy and replica count.
	P99Factor float64 `json:"p99_factor"`
	// MaxErrorRate: and its error rate (5xx answers, no answer) under
	// this share (0.01 = 1%).
	MaxErrorRate float64 `json:"max_error_rate"`
	// MinServed: and the requests answered (2xx or 4xx) within the probe's
	// window must be at least this share of the offered rate: a queue that
	// grows for the whole probe fails here even when the latency bound is
	// loose.
	MinServed float64 `json:"min_served"`
	// UnloadedShare is the load of the unloaded probes, as a share of the
	// capacity model's nominal rate (replicas × max-inflight / work).
	UnloadedShare float64 `json:"unloaded_share"`
	// UnloadedProbes is how many unloaded probes a point makes (2; 1 in
	// demo --quick); the lowest p99 sets the bound (see unloadedP99).
	UnloadedProbes int `json:"unloaded_probes"`
}

// SweepSearch is the step search for the highest sustained rate.
type SweepSearch struct {
	// Start is the first probe's rate as a share of the nominal rate.
	Start float64 `json:"start"`
	// Grow multiplies the rate after each probe that met the objective,
	// until one fails; Shrink multiplies it after each failure until one
	// passes (when the first probe already fails).
	Grow   float64 `json:"grow"`
	Shrink float64 `json:"shrink"`
	// MaxSteps bounds the growing or shrinking probes.
	MaxSteps int `json:"max_steps"`
	// Bisect is how many probes halve the interval between the highest
	// passing and the lowest failing rate afterwards.
	Bisect int `json:"bisect"`
	// NoModelRate is the first probe's rate when the replicas have no
	// capacity model (no --work or --max-inflight).
	NoModelRate float64 `json:"no_model_rate"`
}

// SweepConfig is a sweep: every strategy at every replica count.
type SweepConfig struct {
	// Base carries the run parameters: Work and MaxInflight (the capacity
	// model), Think, Timeout, Seed, Poisson, Binary, the store URLs, Dir,
	// Logger and Progress. Its Strategy, Scenario, Rate and Replicas are
	// ignored.
	Base       Config
	Strategies []strategy.Strategy
	Replicas   []int
	// Probe is how long each probe's measured part lasts (after a warm-up
	// of one shopper's lifetime).
	Probe     time.Duration
	Objective SweepObjective
	Search    SweepSearch
	// Skew is the share of requests one hot session sends (0: none).
	Skew float64
}

// DefaultSweepConfig returns the sweep's standard objective and search;
// quick shortens the probes and the replica counts.
func DefaultSweepConfig(quick bool) SweepConfig {
	c := SweepConfig{
		Base:       DefaultConfig(quick),
		Strategies: strategy.All(),
		Replicas:   []int{1, 2, 4, 8, 16},
		Probe:      3 * time.Second,
		Objective:  SweepObjective{P99Factor: 5, MaxErrorRate: 0.01, MinServed: 0.9, UnloadedShare: 0.1, UnloadedProbes: 2},
		Search:     SweepSearch{Start: 0.75, Grow: 1.5, Shrink: 0.5, MaxSteps: 5, Bisect: 3, NoModelRate: 100},
	}
	c.Base.Think = SweepThink(c.Base.Work)
	if quick {
		c.Replicas = []int{1, 2, 4}
		c.Probe = 1500 * time.Millisecond
		c.Search.Bisect = 2
	}
	return c
}

// SweepThink is the time between a shopper's steps in a sweep: four times
// --work, at least 50 ms. A shopper sends its next step only after the
// last one is answered, so a think time near --work would make every
// shopper late from its second step on, whatever the load.
func SweepThink(work time.Duration) time.Duration {
	return max(50*time.Millisecond, 4*work)
}

// Validate reports the first invalid field of c, wrapping ErrBadConfig.
func (c SweepConfig) Validate() error {
	if len(c.Strategies) == 0 || len(c.Replicas) == 0 {
		return fmt.Errorf("%w: a sweep needs strategies and replica counts", ErrBadConfig)
	}
	for _, n := range c.Replicas {
		if n < 1 || n > 64 {
			return fmt.Errorf("%w: replicas must be 1..64, not %d", ErrBadConfig, n)
		}
	}
	o, s := c.Objective, c.Search
	switch {
	case c.Probe < 500*time.Millisecond:
		return fmt.Errorf("%w: a probe must last at least 500ms, not %v", ErrBadConfig, c.Probe)
	case o.UnloadedProbes < 1 || o.UnloadedProbes > 5:
		return fmt.Errorf("%w: a sweep makes 1 to 5 unloaded probes, not %d", ErrBadConfig, o.UnloadedProbes)
	case o.P99Factor <= 1 || o.MaxErrorRate < 0 || o.MaxErrorRate >= 1 || o.UnloadedShare <= 0 || o.UnloadedShare >= 1 || o.MinServed < 0 || o.MinServed > 1:
		return fmt.Errorf("%w: the objective needs p99 factor > 1, error rate in [0,1), served share in [0,1], unloaded share in (0,1)", ErrBadConfig)
	case s.Start <= 0 || s.Grow <= 1 || s.Shrink <= 0 || s.Shrink >= 1 || s.MaxSteps < 1 || s.Bisect < 0 || s.NoModelRate <= 0:
		return fmt.Errorf("%w: the search needs start > 0, grow > 1, shrink in (0,1), at least one step", ErrBadConfig)
	case c.Skew < 0 || c.Skew >= 1 || math.IsNaN(c.Skew):
		return fmt.Errorf("%w: skew must be in [0, 1), not %v", ErrBadConfig, c.Skew)
	case c.Base.Binary == "":
		return fmt.Errorf("%w: the statelab binary is required", ErrBadConfig)
	}
	return nil
}

// nominal is the capacity model's rate for n replicas: n × max-inflight /
// work; 0 when the replicas have no model.
func (c SweepConfig) nominal(n int) float64 {
	if c.Base.Work <= 0 || c.Base.MaxInflight <= 0 {
		return 0
	}
	return float64(n) * float64(c.Base.MaxInflight) / c.Base.Work.Seconds()
}

// Probe is one probe of the search: a rate offered for the probe's length.
type Probe struct {
	// Phase is "unloaded", "grow", "shrink", "bisect" or "retry" (a
	// failure with free slots everywhere, probed once more).
	Phase      string  `json:"phase"`
	OfferedRPS float64 `json:"offered_rps"`
	// AchievedRPS counts the requests answered within the probe's window
	// (sent and answered in it, 2xx or 4xx), per second.
	AchievedRPS float64 `json:"achieved_rps"`
	// ErrorRate counts 5xx answers and requests with no answer (the
	// errors load causes); ClientErrorRate counts 4xx answers, which are
	// about the request (a strategy that loses carts gets them at any
	// load) and are not held against the objective.
	ErrorRate       float64 `json:"error_rate"`
	ClientErrorRate float64 `json:"client_error_rate"`
	Latency         Latency `json:"latency_ms"`
	Imbalance       float64 `json:"imbalance"`
	// Pass says whether the probe met the objective.
	Pass bool `json:"pass"`
	// Resources is what was measured during the probe.
	Resources Resources `json:"resources"`
}

// meets reports whether p meets the objective o given the unloaded p99.
func (o SweepObjective) meets(p Probe, unloadedP99 float64) bool {
	return p.ErrorRate <= o.MaxErrorRate && p.Latency.P99 <= o.P99Factor*unloadedP99 && p.AchievedRPS >= o.MinServed*p.OfferedRPS
}

// searchRate finds the highest rate that meets the objective: it grows
// the rate from start until a probe fails (or shrinks it until one
// passes), then bisects between the highest pass and the lowest failure.
// It returns every probe made, the highest passing one (nil when none
// passed) and the lowest failing one (nil when none failed).
func searchRate(ctx context.Context, s SweepSearch, start float64, pass func(ctx context.Context, phase string, rate float64) (Probe, error)) (probes []Probe, best, fail *Probe, err error) {
	do := func(phase string, rate float64) (Probe, error) {
		p, err := pass(ctx, phase, round(rate, 1))
		if err == nil {
			probes = append(probes, p)
		}
		return p, err
	}
	keep := func(p Probe) {
		if p.Pass && (best == nil || p.OfferedRPS > best.OfferedRPS) {
			best = &p
		}
		if !p.Pass && (fail == nil || p.OfferedRPS < fail.OfferedRPS) {
			fail = &p
		}
	}
	rate := start
	for step := 0; step < s.MaxSteps; step++ {
		phase := "grow"
		if fail != nil {
			phase = "shrink"
		}
		p, err := do(phase, rate)
		if err != nil {
			return probes, best, fail, err
		}
		keep(p)
		if best != nil && fail != nil {
			break
		}
		if p.Pass {
			rate *= s.Grow
		} else {
			rate *= s.Shrink
		}
	}
	for i := 0; i < s.Bisect && best != nil && fail != nil; i++ {
		p, err := do("bisect", (best.OfferedRPS+fail.OfferedRPS)/2)
		if err != nil {
			return probes, best, fail, err
		}
		keep(p)
	}
	return probes, best, fail, nil
}

// errNoUnloaded is returned when the unloaded probe itself failed.
var errNoUnloaded = errors.New("the unloaded probe had errors over the objective")
