package lab

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// TestSearchRate runs the search against a backend that meets the
// objective exactly up to a known capacity: it must end within one
// bisection step below it, from below and from above.
func TestSearchRate(t *testing.T) {
	s := DefaultSweepConfig(false).Search
	for _, tt := range []struct {
		name            string
		start, capacity float64
		wantProbes      int
	}{
		{"grows to it", 50, 100, 3 + s.Bisect},    // 50, 75, 112.5 then bisections
		{"shrinks to it", 400, 100, 3 + s.Bisect}, // 400, 200, 100 then bisections
		{"never fails", 10, 1e9, s.MaxSteps},
	} {
		t.Run(tt.name, func(t *testing.T) {
			probes, best, fail, err := searchRate(context.Background(), s, tt.start, func(_ context.Context, phase string, rate float64) (Probe, error) {
				return Probe{Phase: phase, OfferedRPS: rate, Pass: rate <= tt.capacity}, nil
			})
			if err != nil || best == nil {
				t.Fatalf("err %v, best %v", err, best)
			}
			if len(probes) != tt.wantProbes {
				t.Errorf("%d probes %+v, want %d", len(probes), probes, tt.wantProbes)
			}
			if fail == nil {
				if tt.capacity < 1e9 {
					t.Fatalf("no failing probe: %+v", probes)
				}
				return
			}
			if best.OfferedRPS > tt.capacity || fail.OfferedRPS <= tt.capacity {
				t.Errorf("best %.1f, fail %.1f: not around %v", best.OfferedRPS, fail.OfferedRPS, tt.capacity)
			}
			// After the bisections the interval is the first bracket
			// over 2^Bisect: a bracket of ×Grow is at most 1.5/8 wide.
			if gap := (fail.OfferedRPS - best.OfferedRPS) / tt.capacity; gap > (s.Grow-1)*2/float64(int(1)<<s.Bisect)+0.01 {
				t.Errorf("bracket %.1f..%.1f too wide after %d bisections", best.OfferedRPS, fail.OfferedRPS, s.Bisect)
			}
		})
	}
}

// TestClassifyLimiter checks each limiter on either side of its threshold.
func TestClassifyLimiter(t *testing.T) {
	work := 20 * time.Millisecond
	holdOK := limitHoldExcess*20 - 0.1 // just under the excess
	holdLong := limitHoldExcess * 20   // at the excess: not the model any more
	cores := func(k string, v float64) map[string]float64 { return map[string]float64{k: v} }
	for _, tt := range []struct {
		name string
		st   strategy.Strategy
		res  Resources
		want Limiter
	}{
		{"slots full", strategy.Client, Resources{SlotUtil: limitSlotFull, SlotUtilMax: 0.9, SlotHoldMS: holdOK, MachineCPU: 1}, LimitReplicas},
		{"slots just under full", strategy.Client, Resources{SlotUtil: limitSlotFull - 0.001, SlotUtilMax: limitSlotFull - 0.001, SlotHoldMS: holdOK}, LimitNone},
		{"one hot replica", strategy.Sticky, Resources{SlotUtil: 0.4, SlotUtilMax: limitSlotFull, SlotHoldMS: holdOK, RequestImbalance: 2}, LimitHotReplica},
		{"spread at the margin", strategy.Sticky, Resources{SlotUtil: 0.8 / limitHotSpread, SlotUtilMax: 0.8, SlotHoldMS: holdOK, RequestImbalance: limitHotSpread}, LimitHotReplica},
		{"spread under the margin", strategy.Sticky, Resources{SlotUtil: 0.8/limitHotSpread + 0.01, SlotUtilMax: 0.8, SlotHoldMS: holdOK, RequestImbalance: 2}, LimitReplicas},
		{"requests even, one replica slow, cpu busy", strategy.Client, Resources{SlotUtil: 0.6, SlotUtilMax: 0.9, SlotHoldMS: holdOK, RequestImbalance: limitHotSpread - 0.01, MachineCPU: 1}, LimitCPU},
		{"cpu", strategy.Client, Resources{SlotUtil: 0.5, SlotUtilMax: 0.6, SlotHoldMS: holdOK, MachineCPU: saturatedBusy}, LimitCPU},
		{"cpu just under", strategy.Client, Resources{SlotUtil: 0.5, SlotUtilMax: 0.6, SlotHoldMS: holdOK, MachineCPU: saturatedBusy - 0.001}, LimitNone},
		{"full slots held long under a busy cpu", strategy.Client, Resources{SlotUtil: 0.95, SlotUtilMax: 0.95, SlotHoldMS: holdLong, MachineCPU: 0.95}, LimitCPU},
		{"redis busy", strategy.Cache, Resources{SlotUtil: 0.5, ProcessCPU: cores(procStore, limitProcCores)}, LimitStore},
		{"redis just under", strategy.Cache, Resources{SlotUtil: 0.5, ProcessCPU: cores(procStore, limitProcCores-0.01)}, LimitNone},
		{"balancer busy", strategy.Client, Resources{SlotUtil: 0.5, ProcessCPU: cores(procBalancer, limitProcCores)}, LimitBalancer},
		{"slots held by the store, waits not counted (postgres)", strategy.Database, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong}, LimitStore},
		{"slots held waiting for sqlite's lock", strategy.Database, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, StoreLockCounted: true, StoreLockWaitMS: limitWaitShare * 10, StoreBusyPerS: 40}, LimitStore},
		{"sqlite's lock measured, even under a busy cpu", strategy.Database, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, StoreLockCounted: true, StoreLockWaitMS: 9, MachineCPU: 1}, LimitStore},
		{"sqlite's lock under half the excess", strategy.Database, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, StoreLockCounted: true, StoreLockWaitMS: limitWaitShare*10 - 0.01}, LimitReplicas},
		{"sqlite's lock under half the excess, busy cpu", strategy.Database, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, StoreLockCounted: true, StoreLockWaitMS: 1, MachineCPU: 1}, LimitCPU},
		{"sqlite's lock with slots held about --work", strategy.Database, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdOK, StoreLockCounted: true, StoreLockWaitMS: 9}, LimitReplicas},
		{"sqlite's lock with free slots", strategy.Database, Resources{SlotUtil: 0.5, SlotUtilMax: 0.6, SlotHoldMS: holdLong, StoreLockCounted: true, StoreLockWaitMS: 9}, LimitNone},
		{"slots held by replication", strategy.Replicated, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, ReplicationPerS: 90, ReplicationBytesPerS: 5e4, ReplicationWaitMS: limitWaitShare * 10}, LimitReplication},
		{"replication measured, even under a busy cpu", strategy.Replicated, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, ReplicationPerS: 90, ReplicationWaitMS: 8, MachineCPU: 1}, LimitReplication},
		{"replication under half the excess", strategy.Replicated, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, ReplicationPerS: 90, ReplicationWaitMS: limitWaitShare*10 - 0.01}, LimitReplicas},
		{"replication under half the excess, busy cpu", strategy.Replicated, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong, ReplicationPerS: 90, ReplicationWaitMS: 1, MachineCPU: 1}, LimitCPU},
		{"replication with slots held about --work", strategy.Replicated, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdOK, ReplicationPerS: 90, ReplicationWaitMS: 9}, LimitReplicas},
		{"slots held long in memory", strategy.Sticky, Resources{SlotUtil: 0.9, SlotUtilMax: 0.9, SlotHoldMS: holdLong}, LimitReplicas},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why := classifyLimiter(tt.st, work, tt.res)
			if got != tt.want || why == "" {
				t.Errorf("limiter %q (%s), want %q", got, why, tt.want)
			}
		})
	}
}

func TestPromSum(t *testing.T) {
	text := `# HELP statelab_app_capacity_busy_seconds_total x
statelab_app_capacity_busy_seconds_total 1.5
statelab_replstore_replication_seconds_sum{node="a"} 0.25
statelab_replstore_replication_seconds_sum{node="b",x="y z"} 0.5
statelab_replstore_replication_seconds_count{node="a"} 10
statelab_app_capacity_slots 2
statelab_sqlitestore_busy_wait_seconds_total 0.5
statelab_sqlitestore_writer_queue_seconds_total 0.25
`
	var busy, sum, count, slots, lockWait float64
	err := promSum(strings.NewReader(text), map[string]*float64{
		"statelab_sqlitestore_busy_wait_seconds_total":    &lockWait,
		"statelab_sqlitestore_writer_queue_seconds_total": &lockWait,
		"statelab_app_capacity_busy_seconds_total":        &busy,
		"statelab_replstore_replication_seconds_sum":      &sum,
		"statelab_replstore_replication_seconds_count":    &count,
		"statelab_app_capacity_slots":                     &slots,
	})
	if err != nil || busy != 1.5 || sum != 0.75 || count != 10 || slots != 2 || lockWait != 0.75 {
		t.Fatalf("busy %v sum %v count %v slots %v lock wait %v err %v", busy, sum, count, slots, lockWait, err)
	}
}

// TestSweepFindsModelCapacity sweeps a stateless cluster whose replicas
// serve four requests at a time for 100 ms each — 40 requests/s per
// replica, set by the capacity model (a timer, not CPU) — at 1 and 2
// replicas. On a machine shared with other work the timers fire late and
// latency is noisy, so the bounds are wide but not empty: the capacity the
// search finds is between 50% and 120% of the model (above it the queue
// grows by at least 5 requests/s, 375 ms over a probe; below half of it
// the model is not what limited), efficiency is near 1, and the limiter
// is the replicas — or the CPU, only when the machine was saturated. The
// meter is checked against the workload: in a passing probe, the slot use
// the replicas report matches the rate served times the slot time.
func TestSweepFindsModelCapacity(t *testing.T) {
	cfg := DefaultSweepConfig(true)
	cfg.Strategies = []strategy.Strategy{strategy.Client}
	cfg.Replicas = []int{1, 2}
	cfg.Probe = 3 * time.Second
	cfg.Objective.UnloadedShare = 0.25
	cfg.Base.Work, cfg.Base.MaxInflight = 100*time.Millisecond, 4
	cfg.Base.Binary, cfg.Base.Dir = testenv.StatelabBinary(t), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sw, err := RunSweep(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Points) != 2 {
		t.Fatalf("%d points, want 2", len(sw.Points))
	}
	for _, p := range sw.Points {
		t.Logf("%s", pointLine(p))
		if p.Skipped != "" {
			t.Fatalf("skipped: %s", p.Skipped)
		}
		checkModelPoint(t, p, 40*float64(p.Replicas), 4)
	}
	if e := sw.Points[1].Efficiency; e < 0.6 || e > 1.4 {
		t.Errorf("efficiency at 2 replicas %.2f, want near 1", e)
	}
	dir := t.TempDir()
	if _, _, err := WriteSweepOutputs(dir, "", ReportInfo{Machine: ThisMachine()}, sw); err != nil {
		t.Fatal(err)
	}
	var res Results
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil || json.Unmarshal(b, &res) != nil || res.Sweep == nil || len(res.Sweep.Points) != 2 || res.Sweep.Method == "" {
		t.Fatalf("results.json: %v %s", err, b)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !strings.Contains(string(html), "ideal linear") || strings.Contains(string(html), "http://") {
		t.Fatalf("report: %v", err)
	}
}

// checkModelPoint checks one point of a sweep on replicas with a capacity
// model of model requests/s in all, slots per replica.
func checkModelPoint(t *testing.T, p SweepPoint, model float64, slots int) {
	t.Helper()
	if p.NominalRPS != model {
		t.Errorf("nominal %v, want %v", p.NominalRPS, model)
	}
	if p.CapacityRPS < 0.5*model || p.CapacityRPS > 1.2*model {
		t.Errorf("%d replicas: capacity %.1f, want within 50..120%% of %v; probes %+v", p.Replicas, p.CapacityRPS, model, p.Probes)
	}
	switch {
	case p.Limiter == LimitReplicas:
	case p.Limiter == LimitCPU && p.CPUSaturated:
		t.Logf("the machine was saturated: %s", p.LimiterEvidence)
	default:
		t.Errorf("%d replicas: limiter %s (%s), want replicas", p.Replicas, p.Limiter, p.LimiterEvidence)
	}
	for _, pr := range p.Probes {
		r := pr.Resources
		if !pr.Pass || r.SlotHoldMS == 0 {
			continue
		}
		want := pr.AchievedRPS * r.SlotHoldMS / 1000 / float64(p.Replicas*slots)
		if math.Abs(r.SlotUtil-want) > 0.1+0.2*want {
			t.Errorf("probe at %.0f req/s: slots %.2f busy, but %.1f req/s × %.1f ms over %d slots is %.2f", pr.OfferedRPS, r.SlotUtil, pr.AchievedRPS, r.SlotHoldMS, p.Replicas*slots, want)
		}
	}
}

// TestResourcesWaits: the replication and SQLite lock waits are per request
// that held a slot, the busy retries and bytes per second of the interval.
func TestResourcesWaits(t *testing.T) {
	at := time.Now()
	a := snapshot{at: at, replicas: map[string]replicaCounters{
		"r1": {held: 100, replSum: 1, replBytes: 1000, busyRetries: 5, lockWait: 0.5},
		"r2": {held: 100},
	}}
	b := snapshot{at: at.Add(2 * time.Second), replicas: map[string]replicaCounters{
		"r1": {held: 300, replSum: 1.4, replBytes: 41000, busyRetries: 45, lockWait: 1.5},
		"r2": {held: 300, replSum: 0.4, lockWait: 1},
	}}
	res := resources(a, b, -1)
	// 400 requests held a slot; 0.8 s replicating, 2 s waiting on the lock.
	if res.ReplicationWaitMS != 2 || res.StoreLockWaitMS != 5 || res.StoreBusyPerS != 20 || res.ReplicationBytesPerS != 20000 {
		t.Errorf("replication %v ms/request, %v B/s; lock %v ms/request, %v retries/s", res.ReplicationWaitMS, res.ReplicationBytesPerS, res.StoreLockWaitMS, res.StoreBusyPerS)
	}
}
