package lab

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

func TestTargetValidate(t *testing.T) {
	ok := DefaultConfig(true)
	ok.Strategy, ok.Scenario = strategy.Sticky, Failover
	ok.Target = Target{URL: "http://shop.example:8080", AdminURL: "https://lb.example/", Commands: map[Action]string{ActKill: "true"}}
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"ok without a binary", func(*Config) {}, nil},
		{"at the caps", func(c *Config) { c.Rate, c.Duration = TargetMaxRate, TargetMaxDuration }, nil},
		{"rate over the cap", func(c *Config) { c.Rate = TargetMaxRate + 1 }, ErrBadConfig},
		{"duration over the cap", func(c *Config) { c.Duration = TargetMaxDuration + time.Second }, ErrBadConfig},
		{"not http", func(c *Config) { c.Target.URL = "ftp://shop.example" }, ErrBadConfig},
		{"no host", func(c *Config) { c.Target.URL = "http:///api" }, ErrBadConfig},
		{"bad admin", func(c *Config) { c.Target.AdminURL = "lb.example:9090" }, ErrBadConfig},
		{"a restart command", func(c *Config) { c.Target.Commands = map[Action]string{ActRestart: "true"} }, ErrBadConfig},
		{"commands without a target", func(c *Config) { c.Target.URL = "" }, ErrBadConfig},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		if err := c.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestTargetScenarios checks which scenarios a target can run with which
// commands, and that failover's restart is left to the platform.
func TestTargetScenarios(t *testing.T) {
	none := &target{}
	kill := &target{t: Target{Commands: map[Action]string{ActKill: "true"}}}
	store := &target{t: Target{Commands: map[Action]string{ActStoreStop: "true", ActStoreStart: "true"}}}
	tests := []struct {
		d    *target
		sc   Scenario
		want string // "" runs; else a part of the reason
	}{
		{none, Steady, ""},
		{none, Tabs, ""},
		{none, Failover, "--kill-cmd"},
		{kill, Failover, ""},
		{none, Scaleout, "--add-cmd"},
		{store, Rolling, "does not restart"},
		{kill, Storefail, "--store-stop-cmd"},
		{store, Storefail, ""},
	}
	for _, tt := range tests {
		got := unsupported(tt.d, tt.sc.plan(4))
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s with %v: %q, want %q", tt.sc, tt.d.t.Commands, got, tt.want)
		}
	}
	restart := Failover.plan(4)[1]
	if note := leftOut(kill, restart); !strings.Contains(note, "restart r2 not done") {
		t.Errorf("failover's restart on a target: %q", note)
	}
	if note := leftOut(started{}, restart); note != "" {
		t.Errorf("failover's restart on a started cluster: %q", note)
	}
}

// TestTargetCommands runs real shell commands: {id} is the target's
// replica id (the plan's r2 is the second replica found), ids that could
// inject shell are refused, a failing command says why, and Close starts
// a store the run left stopped.
func TestTargetCommands(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	tg := &target{t: Target{Commands: map[Action]string{
		ActKill:       "echo kill {id} >> " + log,
		ActStoreStop:  "echo store down >> " + log,
		ActStoreStart: "echo store up >> " + log,
		ActPause:      "echo nope; exit 3",
	}}, names: []string{"cart-7f9c-a", "cart-7f9c-b"}, paused: map[string]bool{}}
	ctx := context.Background()
	if err := tg.Do(ctx, ActKill, "r2"); err != nil {
		t.Fatal(err)
	}
	if err := tg.Do(ctx, ActKill, "$(touch "+filepath.Join(dir, "pwned")+")"); err == nil {
		t.Error("an unsafe id was put in a command")
	}
	if err := tg.Do(ctx, ActPause, "r1"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("failing command: %v", err)
	}
	if err := tg.Do(ctx, ActAdd, "r3"); !errors.Is(err, errCannot) {
		t.Errorf("add without a command: %v", err)
	}
	if err := tg.Do(ctx, ActStoreStop, ""); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "kill cart-7f9c-b\nstore down\nstore up\n"; got != want {
		t.Errorf("commands ran:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("the unsafe id's shell ran")
	}
}

func TestCompareIDs(t *testing.T) {
	ids := []string{"r10", "r2", "cart-b", "r1", "cart-a"}
	slices.SortFunc(ids, compareIDs)
	if want := []string{"cart-a", "cart-b", "r1", "r2", "r10"}; !slices.Equal(ids, want) {
		t.Errorf("sorted %v, want %v", ids, want)
	}
}

// TestRemoveNotFoundIsUnknown checks the outcome of a removal answered
// "not in the cart": the balancer may have retried the DELETE after the
// replica that removed the line died, so it is not a failed removal.
func TestRemoveNotFoundIsUnknown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"not_found"}`))
	}))
	defer srv.Close()
	w, err := newWorkload(srv.URL, []string{"a"}, workloadConfig{rate: 1, think: time.Millisecond, timeout: time.Second, measure: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := w.newShopper()
	ctx := context.Background()
	if op := s.send(ctx, 1, OpRemove, http.MethodDelete, "/api/cart/items/a", nil, "a", 0); op.Outcome != Unknown {
		t.Errorf("remove → 404: %v, want unknown", op.Outcome)
	}
	if op := s.send(ctx, 1, OpSetQty, http.MethodPatch, "/api/cart/items/a", map[string]any{"qty": 2}, "a", 2); op.Outcome != Failed {
		t.Errorf("set → 404: %v, want failed", op.Outcome)
	}
}
