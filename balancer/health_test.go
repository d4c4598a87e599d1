package balancer

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestActiveCheckRiseFall(t *testing.T) {
	// Rise 2, Fall 3: the state after each check result.
	tests := []struct {
		name    string
		results []bool
		want    []bool
	}{
		{"stays up on passes", []bool{true, true, true}, []bool{true, true, true}},
		{"falls after three failures", []bool{false, false, false, false}, []bool{true, true, false, false}},
		{"a pass resets the fall count", []bool{false, false, true, false, false, false}, []bool{true, true, true, true, true, false}},
		{"rises after two passes", []bool{false, false, false, true, true}, []bool{true, true, false, false, true}},
		{"a failure resets the rise count", []bool{false, false, false, true, false, true, true}, []bool{true, true, false, false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, err := New(Config{Rise: 2, Fall: 3, Logger: testLogger(t), Backends: []BackendConfig{{ID: "a", URL: "http://127.0.0.1:9"}}})
			if err != nil {
				t.Fatal(err)
			}
			b := lb.defaultGroup.pool.Load().backends[0]
			var run checkRun
			for i, ok := range tt.results {
				lb.applyCheck(b, ok, &run)
				if got := b.healthy.Load(); got != tt.want[i] {
					t.Fatalf("after check %d (%v): healthy=%v, want %v", i, ok, got, tt.want[i])
				}
			}
		})
	}
}

func TestActiveChecksAgainstRealBackend(t *testing.T) {
	var failing atomic.Bool
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && failing.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	lb, _ := startLB(t, Config{Backends: []BackendConfig{a.config()}, HealthPath: "/readyz",
		HealthInterval: 5 * time.Millisecond, Rise: 2, Fall: 2})
	failing.Store(true)
	eventually(t, "backend down", func() bool { return !backendStatus(t, lb, "a").Healthy })
	failing.Store(false)
	eventually(t, "backend up", func() bool { return backendStatus(t, lb, "a").Healthy })
}

func TestPassiveEjectionBackoff(t *testing.T) {
	cfg := Config{EjectAfter: 3, EjectBase: time.Second, EjectMax: 4 * time.Second}
	b := &Backend{}
	b.healthy.Store(true)
	sec := int64(time.Second)
	type step struct {
		at      int64 // seconds
		ok      bool
		ejected time.Duration // 0: no ejection at this step
	}
	steps := []step{
		{0, false, 0}, {0, false, 0}, {0, false, time.Second}, // third failure: 1 s
		{2, false, 0}, {2, false, 0}, {2, false, 2 * time.Second}, // again without success: 2 s
		{5, false, 0}, {5, false, 0}, {5, false, 4 * time.Second}, // 4 s
		{10, false, 0}, {10, false, 0}, {10, false, 4 * time.Second}, // capped
		{15, true, 0}, // a success does not forgive a repeat offender
		{15, false, 0}, {15, false, 0}, {15, false, 4 * time.Second},
		// That was level 5, back in at 19; each 4 s (EjectMax) in lowers
		// the level by one: at 31 it is 2, so the next ejection (level 3)
		// is 4 s; at 47, 12 s after that one ended, 3 - 3 = 0: 1 s again.
		{31, false, 0}, {31, false, 0}, {31, false, 4 * time.Second},
		{47, false, 0}, {47, false, 0}, {47, false, time.Second},
	}
	for i, s := range steps {
		now := s.at * sec
		if s.ok {
			b.recordSuccess(now)
			continue
		}
		d, ejected := b.recordFailure(now, &cfg, nil)
		if ejected != (s.ejected != 0) || d != s.ejected {
			t.Fatalf("step %d: ejected=%v for %v, want %v", i, ejected, d, s.ejected)
		}
		if ejected && (b.Available(now+int64(d)-1) || !b.Available(now+int64(d))) {
			t.Fatalf("step %d: availability does not match the ejection window", i)
		}
	}
	if got := b.ejections.Load(); got != 7 {
		t.Fatalf("ejections = %d, want 7", got)
	}
}

func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		down      int // of 4 backends
		draining  int // of the remaining ones
		want      bool
	}{
		{"all up", 0.5, 0, 0, false},
		{"half down is not panic", 0.5, 2, 0, false},
		{"three of four down", 0.5, 3, 0, true},
		{"all down", 0.5, 4, 0, true},
		{"disabled", -1, 4, 0, false},
		{"draining backends do not count", 0.5, 1, 2, false}, // 1 of 2 non-draining up
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, pool := testPool(t, PolicyRoundRobin, 1, 1, 1, 1)
			bs := pool.Backends()
			for i := 0; i < tt.down; i++ {
				bs[i].healthy.Store(false)
			}
			for i := 3; i > 3-tt.draining; i-- {
				bs[i].draining.Store(true)
			}
			if got := pool.panicking(time.Now().UnixNano(), tt.threshold); got != tt.want {
				t.Fatalf("panicking = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPassiveEjectionThroughProxy(t *testing.T) {
	bad := newTestBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	good := newTestBackend(t, "good", nil)
	lb, url := startLB(t, Config{Backends: []BackendConfig{bad.config(), good.config()}, EjectAfter: 2, EjectBase: time.Hour})
	c := newClient(t)
	for i := 0; i < 4; i++ {
		get(t, c, url+"/")
	}
	if backendStatus(t, lb, "bad").Healthy {
		t.Fatal("backend answering 500 was not ejected")
	}
	before := bad.hits.Load()
	for i := 0; i < 10; i++ {
		if code, by, _ := get(t, c, url+"/"); code != 200 || by != "good" {
			t.Fatalf("got %d from %q, want 200 from good", code, by)
		}
	}
	if bad.hits.Load() != before {
		t.Fatal("ejected backend still received requests")
	}
}
