package balancer

import (
	"net/http"
	"testing"
	"time"
)

// TestMaxEjectedShareCapsEjections: with every backend of a pool failing,
// no more than MaxEjectedShare of them (at least one) are ejected at once.
func TestMaxEjectedShareCapsEjections(t *testing.T) {
	tests := []struct {
		name        string
		share       float64
		backends    int
		wantEjected int
	}{
		{"half of four", 0.5, 4, 2},
		{"at least one", 0.1, 3, 1},
		{"no cap", -1, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfgs []BackendConfig
			for i := 0; i < tt.backends; i++ {
				be := newTestBackend(t, string(rune('a'+i)), func(w http.ResponseWriter, r *http.Request) { http.Error(w, "sick", 500) })
				cfgs = append(cfgs, be.config())
			}
			lb, url := startLB(t, Config{Backends: cfgs, EjectAfter: 1, EjectBase: time.Hour, EjectMax: time.Hour,
				MaxEjectedShare: tt.share, PanicThreshold: -1})
			c := newClient(t)
			for i := 0; i < 4*tt.backends; i++ {
				do(t, c, http.MethodGet, url+"/x", nil)
			}
			ejected := 0
			for _, st := range lb.Backends() {
				if !st.Healthy {
					ejected++
				}
			}
			if ejected != tt.wantEjected {
				t.Fatalf("%d of %d backends ejected, want %d", ejected, tt.backends, tt.wantEjected)
			}
			if tt.share > 0 && lb.ejectSkipped.Load() == 0 {
				t.Fatal("no ejection was counted as skipped")
			}
		})
	}
}

// TestEjectOnGateway: with EjectOn "gateway", an application's 500s do
// not eject it, while 503s do; with the default every 5xx does.
func TestEjectOnGateway(t *testing.T) {
	tests := []struct {
		name    string
		ejectOn string
		code    int
		want    bool // ejected
	}{
		{"500 with 5xx", "", 500, true},
		{"500 with gateway", EjectGateway, 500, false},
		{"503 with gateway", EjectGateway, 503, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newTestBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", tt.code) })
			good := newTestBackend(t, "good", nil)
			lb, url := startLB(t, Config{Backends: []BackendConfig{bad.config(), good.config()}, EjectAfter: 2,
				EjectBase: time.Hour, EjectOn: tt.ejectOn, MaxTries: 1})
			c := newClient(t)
			for i := 0; i < 6; i++ {
				do(t, c, http.MethodPost, url+"/x", nil)
			}
			st, _ := lb.Backend("bad")
			if st.Healthy == tt.want {
				t.Fatalf("bad backend healthy=%v, want ejected=%v", st.Healthy, tt.want)
			}
		})
	}
	if _, err := New(Config{EjectOn: "4xx"}); err == nil {
		t.Fatal("New accepted EjectOn 4xx")
	}
}

// TestEjectLatency: with EjectLatency set, consecutive answers slower than
// it eject a backend (the slow answers are still passed on); a fast
// backend stays in.
func TestEjectLatency(t *testing.T) {
	slow := newTestBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // far above the 1 ms threshold
	})
	fast := newTestBackend(t, "fast", nil)
	lb, url := startLB(t, Config{Backends: []BackendConfig{slow.config(), fast.config()}, EjectAfter: 2,
		EjectBase: time.Hour, EjectLatency: time.Millisecond, MaxEjectedShare: 0.5})
	c := newClient(t)
	for i := 0; i < 6; i++ {
		if code, _, body := do(t, c, http.MethodGet, url+"/x", nil); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	st, _ := lb.Backend("slow")
	if st.Healthy {
		t.Fatal("a backend answering 20x slower than EjectLatency was not ejected")
	}
	if slow.hits.Load() != 2 {
		t.Fatalf("slow backend got %d requests, want 2 (ejected after the second)", slow.hits.Load())
	}
}
