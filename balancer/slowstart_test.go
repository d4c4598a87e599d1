package balancer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSlowStartRampsRoundRobinShare drives round robin with an injected
// clock (Request.Now): a backend that came up at t0 gets 10% of its weight
// at first, half at half the window, all of it after the window.
func TestSlowStartRampsRoundRobinShare(t *testing.T) {
	const window = 10 * time.Second
	lb, err := New(Config{SlowStart: window, Logger: testLogger(t), Backends: []BackendConfig{
		{ID: "old", URL: "http://127.0.0.1:1"}, {ID: "new", URL: "http://127.0.0.1:2"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pool := lb.defaultGroup.pool.Load()
	fresh := pool.byID["new"]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	fresh.upSince.Store(t0)
	tests := []struct {
		at       time.Duration
		picks    int
		wantFrsh int
		wantW    float64
	}{
		{0, 1100, 100, 0.1},            // the floor: 1000 vs 100
		{window / 2, 1500, 500, 0.5},   // 1000 vs 500
		{window, 2000, 1000, 1},        // done
		{window * 3, 2000, 1000, 1},    // and stays done
		{-time.Second, 1100, 100, 0.1}, // a clock before t0 stays at the floor
	}
	for _, tt := range tests {
		sel := &RoundRobinSelection{}
		now := t0 + int64(tt.at)
		got := 0
		for i := 0; i < tt.picks; i++ {
			if sel.Select(pool, &Request{Now: now}) == fresh {
				got++
			}
		}
		if got != tt.wantFrsh || fresh.EffectiveWeight(now) != tt.wantW {
			t.Errorf("at t0%+v: new backend got %d of %d picks (effective weight %v), want %d (%v)",
				tt.at, got, tt.picks, fresh.EffectiveWeight(now), tt.wantFrsh, tt.wantW)
		}
	}
	if w := pool.byID["old"].EffectiveWeight(t0); w != 1 {
		t.Errorf("a backend there from the start has effective weight %v, want 1", w)
	}
}

// TestSlowStartAfterEjectionAndInAdminAPI: a backend added at run time
// shows a reduced effective weight in the admin API, and one whose passive
// ejection ended ramps up again from that moment.
func TestSlowStartAfterEjectionAndInAdminAPI(t *testing.T) {
	r1 := newTestBackend(t, "r1", nil)
	r2 := newTestBackend(t, "r2", nil)
	lb, _ := startLB(t, Config{SlowStart: time.Hour, Backends: []BackendConfig{r1.config()}})
	if _, err := lb.AddBackend(BackendConfig{ID: "r2", URL: r2.srv.URL, Weight: 10}); err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(lb.AdminHandler())
	t.Cleanup(admin.Close)
	resp, err := http.Get(admin.URL + "/admin/backends/r2")
	if err != nil {
		t.Fatal(err)
	}
	var st BackendStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.Weight != 10 || st.EffectiveWeight < 1 || st.EffectiveWeight >= 1.1 {
		t.Fatalf("admin API: %+v (%v), want weight 10 and effective weight just above 1 (10%%)", st, err)
	}
	b := lb.defaultGroup.pool.Load().byID["r1"]
	end := time.Now().UnixNano()
	b.ejectedUntil.Store(end)
	if w := b.EffectiveWeight(end + int64(30*time.Minute)); w != 0.5 {
		t.Fatalf("half an hour after its ejection ended r1 has effective weight %v, want 0.5", w)
	}
}
