package balancer

import (
	"net/http"
	"strings"
	"testing"
)

// hangUp is a backend handler that drops the connection without answering:
// the request reached the backend, and no response came back.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err) // httptest servers always support Hijack
	}
	conn.Close()
}

func TestRetrySemantics(t *testing.T) {
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "failing", code) }
	}
	tests := []struct {
		name      string
		method    string
		bad       http.HandlerFunc // nil: the bad backend refuses connections
		wantCode  int
		wantBy    string
		wantBadHi int64 // requests the bad backend must have seen
	}{
		{"dial refused, GET retried", http.MethodGet, nil, 200, "good", 0},
		{"dial refused, POST retried", http.MethodPost, nil, 200, "good", 0},
		{"503, GET retried", http.MethodGet, status(503), 200, "good", 1},
		{"502, PUT retried", http.MethodPut, status(502), 200, "good", 1},
		{"504, DELETE retried", http.MethodDelete, status(504), 200, "good", 1},
		{"503, POST not retried", http.MethodPost, status(503), 503, "bad", 1},
		{"500, GET not retried", http.MethodGet, status(500), 500, "bad", 1},
		{"hang-up after POST reached backend, not retried", http.MethodPost, hangUp, 502, "", 1},
		{"hang-up after GET, retried", http.MethodGet, hangUp, 200, "good", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := newTestBackend(t, "good", nil)
			badCfg := BackendConfig{ID: "bad", URL: deadURL(t)}
			var bad *testBackend
			if tt.bad != nil {
				bad = newTestBackend(t, "bad", tt.bad)
				badCfg = bad.config()
			}
			// bad comes first, so round robin tries it first.
			_, url := startLB(t, Config{Backends: []BackendConfig{badCfg, good.config()}, EjectAfter: -1})
			c := newClient(t)
			code, by, body := do(t, c, tt.method, url+"/x", strings.NewReader("payload"))
			if code != tt.wantCode || by != tt.wantBy {
				t.Fatalf("got %d from %q (%q), want %d from %q", code, by, body, tt.wantCode, tt.wantBy)
			}
			if bad != nil && bad.hits.Load() != tt.wantBadHi {
				t.Fatalf("bad backend saw %d requests, want %d", bad.hits.Load(), tt.wantBadHi)
			}
			if tt.wantCode == 502 && !strings.Contains(body, `"code":"bad_gateway"`) {
				t.Fatalf("502 body %q is not the JSON error", body)
			}
		})
	}
}

func TestRetryBudget(t *testing.T) {
	var backends []*testBackend
	var cfgs []BackendConfig
	for _, id := range []string{"a", "b", "c"} {
		tb := newTestBackend(t, id, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		})
		backends = append(backends, tb)
		cfgs = append(cfgs, tb.config())
	}
	lb, url := startLB(t, Config{Backends: cfgs, MaxTries: 2, EjectAfter: -1})
	code, _, _ := get(t, newClient(t), url+"/")
	if code != 503 {
		t.Fatalf("status %d, want the last backend's 503", code)
	}
	var total int64
	for _, b := range backends {
		total += b.hits.Load()
	}
	if total != 2 {
		t.Fatalf("%d attempts, want the budget of 2", total)
	}
	if lb.retries.Load() != 1 {
		t.Fatalf("retries = %d, want 1", lb.retries.Load())
	}
}

func TestNoBackendIs503JSON(t *testing.T) {
	tests := []struct {
		name     string
		backends []BackendConfig
	}{
		{"empty pool", nil},
		{"every backend refuses", []BackendConfig{{ID: "x", URL: ""}, {ID: "y", URL: ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.backends {
				tt.backends[i].URL = deadURL(t)
			}
			_, url := startLB(t, Config{Backends: tt.backends})
			resp, err := newClient(t).Get(url + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d Retry-After=%q Content-Type=%q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestRetryBudgetStopsRetries: with the budget spent, a GET answered 503 by
// the first backend is passed on rather than retried, and the metric says
// why; with the default budget the same request is retried.
func TestRetryBudgetStopsRetries(t *testing.T) {
	tests := []struct {
		name     string
		budget   float64
		min      int
		wantCode int
		wantOut  uint64
	}{
		{"default budget retries", 0, 0, 200, 0},
		{"spent budget does not", 0.01, -1, 503, 1},
		{"no budget retries", -1, -1, 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newTestBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "sick", 503) })
			good := newTestBackend(t, "good", nil)
			lb, url := startLB(t, Config{Backends: []BackendConfig{bad.config(), good.config()},
				EjectAfter: -1, RetryBudget: tt.budget, RetryBudgetMin: tt.min})
			code, _, body := do(t, newClient(t), http.MethodGet, url+"/x", nil)
			if code != tt.wantCode {
				t.Fatalf("got %d (%s), want %d", code, body, tt.wantCode)
			}
			if got := lb.budgetOut.Load(); got != tt.wantOut {
				t.Fatalf("retry_budget_exhausted %d, want %d", got, tt.wantOut)
			}
			if lb.retrying.Load() != 0 || lb.active.Load() != 0 {
				t.Fatalf("budget slots leaked: retrying %d, active %d", lb.retrying.Load(), lb.active.Load())
			}
		})
	}
}

// TestTakeRetryArithmetic checks the budget's limit against the requests in
// flight: max(min, share × active), one slot per request.
func TestTakeRetryArithmetic(t *testing.T) {
	tests := []struct {
		name             string
		budget           float64
		min              int
		active, retrying int64
		want             bool
	}{
		{"under the minimum", 0.2, 3, 1, 2, true},
		{"at the minimum", 0.2, 3, 1, 3, false},
		{"share above the minimum", 0.2, 3, 100, 19, true},
		{"share spent", 0.2, 3, 100, 20, false},
		{"no minimum, low traffic", 0.2, -1, 4, 0, false},
		{"disabled", -1, -1, 1, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, err := New(Config{RetryBudget: tt.budget, RetryBudgetMin: tt.min, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			lb.active.Store(tt.active)
			lb.retrying.Store(tt.retrying)
			r := &Request{}
			if got := lb.takeRetry(r); got != tt.want {
				t.Fatalf("takeRetry = %v, want %v", got, tt.want)
			}
			if tt.want && r.retrySlot && !lb.takeRetry(r) {
				t.Fatal("a request holding a slot was refused its next retry")
			}
		})
	}
}
