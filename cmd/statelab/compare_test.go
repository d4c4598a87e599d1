package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/lab"
)

// TestCompare runs statelab compare on two results.json files and on bad
// arguments.
func TestCompare(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, capacity float64, lim lab.Limiter) string {
		p := filepath.Join(dir, name)
		sw := &lab.Sweep{Points: []lab.SweepPoint{
			{Strategy: "client", Replicas: 1, CapacityRPS: 94, Limiter: lab.LimitReplicas},
			{Strategy: "client", Replicas: 2, CapacityRPS: capacity, Limiter: lim},
		}}
		if err := (lab.Results{Version: 1, Sweep: sw}).WriteJSON(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("a.json", 188, lab.LimitReplicas), write("b.json", 120, lab.LimitCPU)
	var stdout, stderr bytes.Buffer
	if code := NewMain(&stdout, &stderr).Run(context.Background(), []string{"compare", a, b}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "same limiter on 1 of 2 points (50.0%)") || !strings.Contains(out, "capacity within 10% on 1 of 2") {
		t.Errorf("output:\n%s", out)
	}
	for _, args := range [][]string{{a}, {a, b, a}, {a, filepath.Join(dir, "missing.json")}} {
		stderr.Reset()
		code := NewMain(&stdout, &stderr).Run(context.Background(), append([]string{"compare"}, args...))
		if code == 0 || !strings.HasPrefix(stderr.String(), "statelab") {
			t.Errorf("compare %v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
