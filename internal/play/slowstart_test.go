package play

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/testenv"
)

// adminOnly is a Cluster of which the poller reads only the replicas and
// the balancer's admin API.
type adminOnly struct {
	Cluster
	admin string
	reps  []cluster.Replica
}

func (a adminOnly) AdminURL() string            { return a.admin }
func (a adminOnly) BalancerURL() string         { return "http://balancer.invalid" }
func (a adminOnly) Replicas() []cluster.Replica { return a.reps }

// TestPollShowsSlowStart polls a real balancer's admin API: a replica
// added at run time under --slow-start shows an effective weight below
// its weight (the ramp), the one that was there from the start its whole
// weight.
func TestPollShowsSlowStart(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	lb, err := balancer.New(balancer.Config{SlowStart: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Backends: []balancer.BackendConfig{{ID: "r1", URL: backend.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if _, err := lb.AddBackend(balancer.BackendConfig{ID: "r2", URL: backend.URL, Weight: 4}); err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(lb.AdminHandler())
	defer admin.Close()
	c := adminOnly{admin: admin.URL, reps: []cluster.Replica{
		{ID: "r1", URL: backend.URL, State: cluster.StateUp}, {ID: "r2", URL: backend.URL, State: cluster.StateUp}}}
	_, reps := poll(context.Background(), http.DefaultClient, c, map[string][]sample{}, time.Now())
	if len(reps) != 2 {
		t.Fatalf("%d replicas: %+v", len(reps), reps)
	}
	if r1 := reps[0]; r1.Weight != 1 || r1.EffectiveWeight != 1 {
		t.Errorf("r1 (there from the start): weight %d, effective %v; want 1, 1", r1.Weight, r1.EffectiveWeight)
	}
	if r2 := reps[1]; r2.Weight != 4 || r2.EffectiveWeight <= 0 || r2.EffectiveWeight >= 1 {
		t.Errorf("r2 (added under a 1 h slow start): weight %d, effective %v; want 4 and about a tenth of it", r2.Weight, r2.EffectiveWeight)
	}
}

// TestPollShowsRestarts polls a real balancer whose health checks see one
// backend name a new process identity (balancer.InstanceHeader) while it
// stays up: that replica shows one restart, the other none.
func TestPollShowsRestarts(t *testing.T) {
	var boot atomic.Value
	boot.Store("boot-1")
	var firstBootChecks atomic.Int64
	checks := func(instance func() string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(balancer.InstanceHeader, instance())
		}))
	}
	restarting := checks(func() string {
		v := boot.Load().(string)
		if v == "boot-1" {
			firstBootChecks.Add(1)
		}
		return v
	})
	defer restarting.Close()
	steady := checks(func() string { return "steady" })
	defer steady.Close()
	lb, err := balancer.New(balancer.Config{HealthPath: "/readyz", HealthInterval: 5 * time.Millisecond,
		Logger:   slog.New(slog.DiscardHandler),
		Backends: []balancer.BackendConfig{{ID: "r1", URL: steady.URL}, {ID: "r2", URL: restarting.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	lb.Start()
	admin := httptest.NewServer(lb.AdminHandler())
	defer admin.Close()
	c := adminOnly{admin: admin.URL, reps: []cluster.Replica{
		{ID: "r1", URL: steady.URL, State: cluster.StateUp}, {ID: "r2", URL: restarting.URL, State: cluster.StateUp}}}
	pollNow := func() []ReplicaState {
		_, reps := poll(context.Background(), http.DefaultClient, c, map[string][]sample{}, time.Now())
		if len(reps) != 2 {
			t.Fatalf("%d replicas: %+v", len(reps), reps)
		}
		return reps
	}
	if reps := pollNow(); reps[0].Restarts != 0 || reps[1].Restarts != 0 {
		t.Fatalf("restarts before any: %+v", reps)
	}
	// Two checks answered by the first boot: the balancer has read its
	// identity before the "restart".
	testenv.Eventually(t, 10*time.Second, "two checks of r2's first boot", func() bool { return firstBootChecks.Load() >= 2 })
	boot.Store("boot-2")
	var reps []ReplicaState
	testenv.Eventually(t, 10*time.Second, "r2 to show its restart", func() bool {
		reps = pollNow()
		return reps[1].Restarts > 0
	})
	if reps[0].Restarts != 0 || reps[1].Restarts != 1 {
		t.Errorf("restarts r1 %d, r2 %d; want 0 and 1", reps[0].Restarts, reps[1].Restarts)
	}
}
