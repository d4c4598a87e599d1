package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
)

// SweepPoint is one strategy at one replica count: the highest rate it
// sustained within the objective and what stopped it going higher.
type SweepPoint struct {
	Strategy string `json:"strategy"`
	Store    string `json:"store"`
	Policy   string `json:"policy"`
	Replicas int    `json:"replicas"`
	// NominalRPS is the capacity model's rate (replicas × max-inflight /
	// work), 0 without a model.
	NominalRPS float64 `json:"nominal_rps"`
	// CapacityRPS is the highest offered rate that met the objective; 0
	// when none did.
	CapacityRPS float64 `json:"capacity_rps"`
	// AchievedRPS, Latency, ErrorRate and Imbalance are those of the probe
	// at CapacityRPS.
	AchievedRPS float64 `json:"achieved_rps"`
	Latency     Latency `json:"latency_ms"`
	ErrorRate   float64 `json:"error_rate"`
	Imbalance   float64 `json:"imbalance"`
	// Efficiency is CapacityRPS over replicas × EfficiencyBasisRPS; 0
	// when the sweep has no 1- or 2-replica point of the strategy.
	Efficiency float64 `json:"efficiency"`
	// EfficiencyBasisRPS is the strategy's per-replica capacity that
	// efficiency divides by: the higher of its capacity at 1 replica and
	// half its capacity at 2 (see efficiencyBasis).
	EfficiencyBasisRPS float64 `json:"efficiency_basis_rps,omitempty"`
	// UnloadedP99MS is the lower p99 of the two unloaded probes
	// (UnloadedP99sMS, in order); P99LimitMS the objective's bound derived
	// from it.
	UnloadedP99MS  float64   `json:"unloaded_p99_ms"`
	UnloadedP99sMS []float64 `json:"unloaded_p99s_ms,omitempty"`
	P99LimitMS     float64   `json:"p99_limit_ms"`
	// Limiter is what was saturated at the lowest failing probe (the one
	// just above capacity), LimiterEvidence the numbers; CPUSaturated is
	// set when the machine's CPU was saturated there (or, when no probe
	// failed, at the highest passing one).
	Limiter         Limiter `json:"limiter"`
	LimiterEvidence string  `json:"limiter_evidence"`
	CPUSaturated    bool    `json:"cpu_saturated"`
	// Probes are every probe made, in order.
	Probes []Probe `json:"probes"`
	// Skipped says why the point was not measured; nothing else is set.
	Skipped string `json:"skipped,omitempty"`
	// WallS is how long the point took, cluster start to stop.
	WallS float64 `json:"wall_s"`
}

// Sweep is the sweep section of results.json: the method and every point.
type Sweep struct {
	// Method describes the search in one paragraph.
	Method    string         `json:"method"`
	Objective SweepObjective `json:"objective"`
	Search    SweepSearch    `json:"search"`
	ProbeS    float64        `json:"probe_s"`
	// WorkMS and MaxInflight are each replica's capacity model.
	WorkMS      float64      `json:"work_ms"`
	MaxInflight int          `json:"max_inflight"`
	ThinkMS     float64      `json:"think_ms"`
	Skew        float64      `json:"skew"`
	Seed        uint64       `json:"seed"`
	Points      []SweepPoint `json:"points"`
}

// method words the search of c for results.json and the report.
func (c SweepConfig) method() string {
	o, s := c.Objective, c.Search
	return fmt.Sprintf("Per strategy and replica count, one cluster; %d unloaded probe(s) at %.0f%% of the capacity model's rate set the p99 bound (%.0f× the lowest of their p99s). "+
		"Open-loop probes of %v each (after a warm-up) start at %.0f%% of the model's rate and grow ×%.2f while they meet the objective (p99 under the bound, errors — 5xx or no answer — at most %.1f%%, at least %.0f%% of the offered requests answered within the probe), "+
		"or shrink ×%.2f while they fail (at most %d), then %d bisections between the highest pass and the lowest failure. "+
		"Capacity is the highest passing rate; the limiter is read from counters during the lowest failing probe.",
		o.UnloadedProbes, o.UnloadedShare*100, o.P99Factor, c.Probe, s.Start*100, s.Grow, o.MaxErrorRate*100, o.MinServed*100, s.Shrink, s.MaxSteps, s.Bisect)
}

// RunSweep measures every strategy of cfg at every replica count, one
// cluster at a time, and returns the sweep. When ctx ends, the points
// measured so far are returned with ctx's error.
func RunSweep(ctx context.Context, cfg SweepConfig) (*Sweep, error) {
	cfg.Base = cfg.Base.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sw := &Sweep{Method: cfg.method(), Objective: cfg.Objective, Search: cfg.Search, ProbeS: cfg.Probe.Seconds(),
		WorkMS: float64(cfg.Base.Work) / 1e6, MaxInflight: cfg.Base.MaxInflight, ThinkMS: float64(cfg.Base.Think) / 1e6,
		Skew: cfg.Skew, Seed: cfg.Base.Seed}
	total := len(cfg.Strategies) * len(cfg.Replicas)
	for _, st := range cfg.Strategies {
		for _, n := range cfg.Replicas {
			began := time.Now()
			pt := runPoint(ctx, cfg, st, n)
			pt.WallS = round(time.Since(began).Seconds(), 1)
			sw.Points = append(sw.Points, pt)
			cfg.Base.progress("[%d/%d] %s", len(sw.Points), total, pointLine(pt))
			if ctx.Err() != nil {
				setEfficiency(sw.Points)
				return sw, ctx.Err()
			}
		}
	}
	setEfficiency(sw.Points)
	return sw, nil
}

// pointLine is one line of progress for a measured point.
func pointLine(p SweepPoint) string {
	if p.Skipped != "" {
		return fmt.Sprintf("%s × %d replicas: %s", p.Strategy, p.Replicas, p.Skipped)
	}
	return fmt.Sprintf("%s × %d replicas: %.0f req/s (model %.0f), p99 %.1f ms, limiter %s (%d probes, %.0fs)",
		p.Strategy, p.Replicas, p.CapacityRPS, p.NominalRPS, p.Latency.P99, p.Limiter, len(p.Probes), p.WallS)
}

// runPoint starts a cluster of n replicas of st and searches its capacity.
func runPoint(ctx context.Context, cfg SweepConfig, st strategy.Strategy, n int) SweepPoint {
	pt := SweepPoint{Strategy: string(st), Policy: st.Spec().Policy, Replicas: n, NominalRPS: round(cfg.nominal(n), 1)}
	base := cfg.Base
	base.Strategy, base.Replicas, base.Scenario = st, n, Steady
	cfg.Base.progress("%s × %d replicas: starting the cluster", st, n)
	d, _, skipped, err := start(ctx, base)
	if skipped != "" || err != nil {
		pt.Skipped = skipped
		if err != nil {
			pt.Skipped = "failed: " + err.Error()
		}
		return pt
	}
	defer d.Close()
	c, ok := clusterOf(d)
	if !ok {
		pt.Skipped = "a sweep sizes clusters the lab starts itself"
		return pt
	}
	pt.Store = string(c.Store().Kind)
	pr, err := newProber(ctx, cfg, c)
	if err != nil {
		pt.Skipped = "failed: " + err.Error()
		return pt
	}
	defer pr.meter.close()
	if err := pr.searchPoint(ctx, &pt); err != nil && len(pt.Probes) == 0 {
		pt.Skipped = "failed: " + err.Error()
	}
	return pt
}

// minProbeRequests is the fewest requests a probe sends: a probe at a low
// rate (the unloaded one) lasts longer rather than time a p99 over a
// handful of requests.
const minProbeRequests = 40

// prober runs probes against one cluster.
type prober struct {
	cfg   SweepConfig
	c     *cluster.Cluster
	skus  []string
	meter *meter
}

func newProber(ctx context.Context, cfg SweepConfig, c *cluster.Cluster) (*prober, error) {
	skus, err := fetchSKUs(ctx, c.URL())
	if err != nil {
		return nil, err
	}
	return &prober{cfg: cfg, c: c, skus: skus, meter: newMeter(ctx, c)}, nil
}

// searchPoint runs the unloaded probe and the search, and fills in pt.
func (pr *prober) searchPoint(ctx context.Context, pt *SweepPoint) error {
	o := pr.cfg.Objective
	nominal := pt.NominalRPS
	start, unloaded := pr.cfg.Search.NoModelRate, pr.cfg.Search.NoModelRate*o.UnloadedShare
	if nominal > 0 {
		start, unloaded = nominal*pr.cfg.Search.Start, nominal*o.UnloadedShare
	}
	for range max(1, o.UnloadedProbes) {
		u, err := pr.probe(ctx, "unloaded", max(2, round(unloaded, 1)))
		if err != nil {
			return err
		}
		u.Pass = u.ErrorRate <= o.MaxErrorRate
		pt.Probes = append(pt.Probes, u)
		if !u.Pass {
			pt.Limiter, pt.LimiterEvidence = LimitNone, fmt.Sprintf("%v: %s errors at %.0f req/s", errNoUnloaded, pct(u.ErrorRate), u.OfferedRPS)
			return nil
		}
		pt.UnloadedP99sMS = append(pt.UnloadedP99sMS, u.Latency.P99)
	}
	pt.UnloadedP99MS = unloadedP99(pt.UnloadedP99sMS)
	pt.P99LimitMS = round(o.P99Factor*pt.UnloadedP99MS, 2)
	_, best, fail, err := searchRate(ctx, pr.cfg.Search, start, func(ctx context.Context, phase string, rate float64) (Probe, error) {
		p, err := pr.probe(ctx, phase, rate)
		p.Pass = err == nil && o.meets(p, pt.UnloadedP99MS)
		if err == nil && !p.Pass && nominal > 0 && p.Resources.SlotUtilMax < limitSlotFull {
			// The objective failed while every replica had free slots:
			// noise from outside the model (a busy machine). Probe once
			// more, so that one hiccup does not set the capacity.
			pt.Probes = append(pt.Probes, p)
			p, err = pr.probe(ctx, "retry", rate)
			p.Pass = err == nil && o.meets(p, pt.UnloadedP99MS)
		}
		if err == nil {
			pt.Probes = append(pt.Probes, p)
		}
		return p, err
	})
	if best != nil {
		pt.CapacityRPS, pt.AchievedRPS, pt.Latency, pt.ErrorRate, pt.Imbalance = best.OfferedRPS, best.AchievedRPS, best.Latency, best.ErrorRate, best.Imbalance
	}
	at := fail
	if at == nil {
		at = best
	}
	if at != nil {
		pt.Limiter, pt.LimiterEvidence = classifyLimiter(strategy.Strategy(pt.Strategy), pr.cfg.Base.Work, at.Resources)
		pt.CPUSaturated = at.Resources.MachineCPU >= saturatedBusy
		if fail == nil {
			pt.LimiterEvidence = "no probe failed the objective within the search; at the highest: " + pt.LimiterEvidence
		}
	}
	return err
}

// probe offers rate for the probe's length (after a warm-up) and measures
// the answers and the resources during the measured part.
func (pr *prober) probe(ctx context.Context, phase string, rate float64) (Probe, error) {
	b := pr.cfg.Base
	// A slow probe lasts until it has sent at least minProbeRequests.
	d := max(pr.cfg.Probe, time.Duration(minProbeRequests/rate*float64(time.Second)))
	w, err := newWorkload(pr.c.URL(), pr.skus, workloadConfig{rate: rate, poisson: b.Poisson, seed: b.Seed, think: b.Think,
		timeout: b.Timeout, measure: d, warmUp: true, hot: pr.cfg.Skew})
	if err != nil {
		return Probe{}, err
	}
	defer w.transport.CloseIdleConnections()
	var res Resources
	var wg sync.WaitGroup
	wg.Add(1)
	w.startClock()
	go func() {
		defer wg.Done()
		res = pr.measure(ctx, w)
	}()
	w.run(ctx)
	wg.Wait()
	if ctx.Err() != nil {
		return Probe{}, ctx.Err()
	}
	hist, samples, _ := w.rec.merged()
	p := Probe{Phase: phase, OfferedRPS: rate, Resources: res}
	// A 4xx is an answer about the cart (naive answers 404 for a line on
	// another replica at any load): it counts as served, not as an error
	// of the load; it is reported as ClientErrorRate.
	var errs, answer4, served int
	for _, s := range samples {
		switch {
		case s.err && !s.answer4:
			errs++
			continue
		case s.answer4:
			answer4++
		}
		if s.at+s.lat <= int64(d) {
			served++
		}
	}
	if len(samples) == 0 {
		return p, errors.New("lab: a probe recorded no request")
	}
	p.ErrorRate = round(float64(errs)/float64(len(samples)), 5)
	p.ClientErrorRate = round(float64(answer4)/float64(len(samples)), 5)
	p.AchievedRPS = round(float64(served)/d.Seconds(), 1)
	ms := func(q float64) float64 { return round(float64(hist.ValueAtQuantile(q))/1000, 2) }
	p.Latency = Latency{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: round(float64(hist.Max())/1000, 2)}
	var ids []string
	for _, r := range pr.c.Replicas() {
		ids = append(ids, r.ID)
	}
	_, imb := shares(samples, 0, int64(d), ids)
	p.Imbalance = round(imb, 3)
	return p, nil
}

// measure snapshots the counters at the end of w's warm-up and at the end
// of its arrivals, sampling the machine's CPU between, and returns what
// happened in between.
func (pr *prober) measure(ctx context.Context, w *workload) Resources {
	if !w.sleepUntil(ctx, w.warmUp()) {
		return Resources{MachineCPU: -1}
	}
	a := pr.meter.snapshot(ctx)
	cpuCtx, stop := context.WithCancel(ctx)
	busy, n := -1.0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		var b float64
		if b, n, err = sampleCPU(cpuCtx, 250*time.Millisecond); err == nil && n > 0 {
			busy = b
		}
	}()
	w.sleepUntil(ctx, int64(w.duration))
	b := pr.meter.snapshot(ctx)
	stop()
	<-done
	res := resources(a, b, busy)
	res.StoreLockCounted = pr.meter.sqlite
	return res
}
