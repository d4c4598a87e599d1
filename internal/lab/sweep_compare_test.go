package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareSweeps pairs two sweeps' points by strategy and replica count
// and counts the agreements: limiter, capacity within 10%, and the
// limiter where the CPU was saturated in neither run.
func TestCompareSweeps(t *testing.T) {
	pt := func(st string, n int, capacity float64, lim Limiter, cpu bool) SweepPoint {
		return SweepPoint{Strategy: st, Replicas: n, CapacityRPS: capacity, Limiter: lim, CPUSaturated: cpu}
	}
	a := &Sweep{Points: []SweepPoint{
		pt("client", 1, 94, LimitReplicas, false),
		pt("client", 2, 188, LimitReplicas, false),
		pt("client", 4, 375, LimitReplicas, true),
		pt("database", 1, 90, LimitStore, false),
		{Strategy: "database", Replicas: 2, Skipped: "failed: x"},
	}}
	b := &Sweep{Points: []SweepPoint{
		pt("client", 1, 100, LimitReplicas, false),  // same, 6%
		pt("client", 2, 150, LimitReplicas, false),  // same limiter, 20%
		pt("client", 4, 375, LimitCPU, true),        // differs, cpu
		pt("database", 1, 90, LimitReplicas, false), // differs
		pt("database", 2, 170, LimitStore, false),   // skipped in A
		pt("database", 4, 300, LimitStore, false),   // only in B
	}}
	c := CompareSweeps(a, b)
	if len(c.Points) != 6 || c.Compared != 4 || c.SameLimiter != 2 || c.SameCapacity != 3 || c.Quiet != 3 || c.QuietSameLimiter != 2 {
		t.Fatalf("comparison %+v", c)
	}
	if c.MaxCapacityDiff != 0.202 || c.MedianCapacityDiff != 0.03 {
		t.Errorf("median %v, max %v; want 0.03 and 0.202", c.MedianCapacityDiff, c.MaxCapacityDiff)
	}
	if p := c.Points[5]; p.Strategy != "database" || p.Replicas != 4 || p.Both || p.LimiterA != "" || p.LimiterB != LimitStore {
		t.Errorf("the point only B has: %+v", p)
	}
	var out strings.Builder
	if err := WriteSweepComparison(&out, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"same limiter on 2 of 4 points (50.0%)", "saturated in neither run: 2 of 3", "capacity within 10% on 3 of 4 points", "largest 20%", "replicas ⚠cpu"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadSweep(t *testing.T) {
	dir := t.TempDir()
	good, runs, bad := filepath.Join(dir, "good.json"), filepath.Join(dir, "runs.json"), filepath.Join(dir, "bad.json")
	sw := &Sweep{Points: []SweepPoint{{Strategy: "client", Replicas: 1, CapacityRPS: 94, Limiter: LimitReplicas}}}
	if err := (&Results{Version: 1, Sweep: sw}).WriteJSON(good); err != nil {
		t.Fatal(err)
	}
	if err := (&Results{Version: 1}).WriteJSON(runs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadSweep(good); err != nil || len(got.Points) != 1 || got.Points[0].CapacityRPS != 94 {
		t.Errorf("ReadSweep(good) = %+v, %v", got, err)
	}
	for _, p := range []string{runs, bad, filepath.Join(dir, "missing.json")} {
		if _, err := ReadSweep(p); err == nil {
			t.Errorf("ReadSweep(%s): no error", filepath.Base(p))
		}
	}
	if _, err := ReadSweep(runs); err == nil || !strings.Contains(err.Error(), "no sweep section") {
		t.Errorf("ReadSweep(runs): %v, want it to say there is no sweep section", err)
	}
}
