package lab

import (
	"strings"
	"testing"
	"time"
)

func TestSlowStartOnlyWhereReplicasJoin(t *testing.T) {
	for _, s := range Scenarios() {
		got := Config{Scenario: s, Duration: 20 * time.Second}.slowStart()
		want := time.Duration(0)
		if s == Failover || s == Scaleout {
			want = 2 * time.Second
		}
		if got != want {
			t.Errorf("%s: slow start %v, want %v", s, got, want)
		}
	}
}

func TestRampChartShowsTheJoiningReplicasShare(t *testing.T) {
	faults := []Fault{{What: "kill r2"}, {At: 5e9, End: 5e9, What: "restart r2"}, {What: "add r3"}}
	if got := joiners(faults); strings.Join(got, ",") != "r2,r3" {
		t.Fatalf("joiners = %v, want [r2 r3]", got)
	}
	tl := []Bucket{
		{Start: 0, Served: map[string]int{"r1": 10}},
		{Start: 1, Served: map[string]int{"r1": 9, "r2": 1}},
		{Start: 2, Served: map[string]int{"r1": 5, "r2": 3, "r3": 2}},
		{Start: 3, Served: map[string]int{}},
	}
	got := rampShares(tl, []string{"r2", "r3"})
	want := []float64{0, 0.1, 0.5, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rampShares = %v, want %v", got, want)
		}
	}

	run := &Run{Faults: faults, Timeline: tl}
	run.Result.DurationS = 4
	if html := string(rampChart(run, nil)); !strings.Contains(html, "r2, r3") || !strings.Contains(html, "<polyline") {
		t.Fatalf("rampChart: %.300s", html)
	}
	if html := rampChart(&Run{Faults: []Fault{{What: "kill r2"}}, Timeline: tl}, nil); html != "" {
		t.Fatalf("no replica joined, yet a ramp chart: %.100s", html)
	}
}
