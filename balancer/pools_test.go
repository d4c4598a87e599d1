package balancer

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRoutesSendPathsToTheirPools checks path-prefix routing: each path
// lands in the pool its longest matching prefix names, the rest in the
// default pool, and each pool spreads over its own backends only.
func TestRoutesSendPathsToTheirPools(t *testing.T) {
	cart := newTestBackend(t, "cart1", nil)
	p1, p2 := newTestBackend(t, "p1", nil), newTestBackend(t, "p2", nil)
	c1 := newTestBackend(t, "c1", nil)
	_, base := startLB(t, Config{
		Policy:   PolicySticky,
		Backends: []BackendConfig{cart.config()},
		Pools: []PoolConfig{
			{Name: "pricing", Policy: PolicyRoundRobin, Backends: []BackendConfig{p1.config(), p2.config()}},
			{Name: "catalog", Policy: PolicyLeastRequest, Backends: []BackendConfig{c1.config()}},
		},
		Routes: []Route{{Prefix: "/api/quote", Pool: "pricing"}, {Prefix: "/api/catalog", Pool: "catalog"}, {Prefix: "/api/catalog/special/", Pool: "pricing"}},
	})
	c := newClient(t)
	tests := []struct {
		path string
		want []string // acceptable X-Served-By
	}{
		{"/api/quote", []string{"p1", "p2"}},
		{"/api/quote/", []string{"p1", "p2"}},
		{"/api/quote?x=1", []string{"p1", "p2"}},
		{"/api/quotes", []string{"cart1"}},
		{"/api/quote/../cart", []string{"cart1"}},
		{"/api/catalog", []string{"c1"}},
		{"/api/catalog/SKU-0001", []string{"c1"}},
		{"/api/catalog/special/x", []string{"p1", "p2"}},
		{"/api/cart", []string{"cart1"}},
		{"/", []string{"cart1"}},
	}
	for _, tt := range tests {
		_, by, _ := get(t, c, base+tt.path)
		if !strings.Contains(strings.Join(tt.want, ","), by) || by == "" {
			t.Errorf("%s served by %q, want one of %v", tt.path, by, tt.want)
		}
	}
	// Round robin inside the pricing pool: both serve; the sticky cookie
	// of the default pool is not set by another pool's answers.
	p1.hits.Store(0)
	p2.hits.Store(0)
	for range 10 {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/quote", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("a pricing answer set cookies %v", resp.Cookies())
		}
		resp.Body.Close()
	}
	if p1.hits.Load() != 5 || p2.hits.Load() != 5 {
		t.Errorf("pricing pool hits p1=%d p2=%d, want 5 and 5", p1.hits.Load(), p2.hits.Load())
	}
	if _, by, _ := get(t, c, base+"/api/cart"); by != "cart1" {
		t.Errorf("cart served by %q", by)
	}
}

// TestRetryAllPoolRetriesAPost checks that a POST whose backend dropped
// the connection after reading it is retried on another backend in a
// RetryAll pool, and is not in an ordinary one.
func TestRetryAllPoolRetriesAPost(t *testing.T) {
	drop := func(w http.ResponseWriter, r *http.Request) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}
	for _, retryAll := range []bool{true, false} {
		dead := newTestBackend(t, "dead", drop)
		good := newTestBackend(t, "good", nil)
		_, base := startLB(t, Config{
			Backends: []BackendConfig{newTestBackend(t, "cart", nil).config()},
			Pools: []PoolConfig{{Name: "pricing", RetryAll: retryAll, Policy: PolicyRoundRobin,
				Backends: []BackendConfig{dead.config(), good.config()}}},
			Routes: []Route{{Prefix: "/api/quote", Pool: "pricing"}},
		})
		failures := 0
		for range 4 {
			status, _, _ := do(t, newClient(t), http.MethodPost, base+"/api/quote", strings.NewReader(`{"items":[]}`))
			if status != http.StatusOK {
				failures++
			}
		}
		if retryAll && failures != 0 {
			t.Errorf("retry_all pool: %d of 4 POSTs failed, want 0", failures)
		}
		if !retryAll && failures == 0 {
			t.Errorf("ordinary pool: no POST failed; the dropped ones must not be resent")
		}
	}
}

func TestPoolConfigErrors(t *testing.T) {
	b := BackendConfig{ID: "a", URL: "http://127.0.0.1:1"}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"route to unknown pool", Config{Routes: []Route{{Prefix: "/x", Pool: "nope"}}}, ErrUnknownPool},
		{"prefix without slash", Config{Pools: []PoolConfig{{Name: "p"}}, Routes: []Route{{Prefix: "x", Pool: "p"}}}, ErrInvalidConfig},
		{"duplicate prefix", Config{Pools: []PoolConfig{{Name: "p"}}, Routes: []Route{{Prefix: "/x", Pool: "p"}, {Prefix: "/x", Pool: "p"}}}, ErrInvalidConfig},
		{"pool named default", Config{Pools: []PoolConfig{{Name: DefaultPool}}}, ErrInvalidConfig},
		{"pool twice", Config{Pools: []PoolConfig{{Name: "p"}, {Name: "p"}}}, ErrInvalidConfig},
		{"bad pool name", Config{Pools: []PoolConfig{{Name: "a b"}}}, ErrInvalidConfig},
		{"bad pool policy", Config{Pools: []PoolConfig{{Name: "p", Policy: "random"}}}, ErrUnknownPolicy},
		{"backend id in two pools", Config{Backends: []BackendConfig{b}, Pools: []PoolConfig{{Name: "p", Backends: []BackendConfig{b}}}}, ErrDuplicateBackend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = nopLogger()
			if _, err := New(tt.cfg); !errors.Is(err, tt.want) {
				t.Errorf("New: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAdminPools(t *testing.T) {
	p1 := newTestBackend(t, "p1", nil)
	lb, base := startLB(t, Config{
		Backends: []BackendConfig{newTestBackend(t, "cart", nil).config()},
		Pools:    []PoolConfig{{Name: "pricing", Policy: PolicyLeastRequest, RetryAll: true, Backends: []BackendConfig{p1.config()}}},
		Routes:   []Route{{Prefix: "/api/quote", Pool: "pricing"}},
	})
	admin := httptest.NewServer(lb.AdminHandler())
	t.Cleanup(admin.Close)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		return adminDo(t, admin.URL, method, path, body)
	}
	p2 := newTestBackend(t, "p2", nil)
	if st, body := call("POST", "/admin/backends", `{"id":"p2","url":"`+p2.srv.URL+`","pool":"pricing"}`); st != 201 || !strings.Contains(body, `"pool":"pricing"`) {
		t.Fatalf("add to pricing: %d %s", st, body)
	}
	if st, body := call("POST", "/admin/backends", `{"id":"x","url":"`+p2.srv.URL+`","pool":"nope"}`); st != 400 || !strings.Contains(body, "unknown_pool") {
		t.Errorf("add to unknown pool: %d %s", st, body)
	}
	if st, body := call("POST", "/admin/backends", `{"id":"p2","url":"`+p2.srv.URL+`"}`); st != 409 {
		t.Errorf("same id in another pool: %d %s, want 409", st, body)
	}
	st, body := call("GET", "/admin/pools", "")
	var pools []PoolStatus
	if err := json.Unmarshal([]byte(body), &pools); err != nil || st != 200 {
		t.Fatalf("pools: %d %s", st, body)
	}
	if len(pools) != 2 || pools[0].Name != DefaultPool || pools[1].Name != "pricing" || pools[1].Policy != PolicyLeastRequest ||
		!pools[1].RetryAll || len(pools[1].Backends) != 2 || len(pools[1].Routes) != 1 || pools[1].Routes[0] != "/api/quote" {
		t.Errorf("pools = %+v", pools)
	}
	if st, body := call("GET", "/admin/backends?pool=pricing", ""); st != 200 || strings.Count(body, `"id"`) != 2 || strings.Contains(body, `"cart"`) {
		t.Errorf("pricing backends: %d %s", st, body)
	}
	if st, _ := call("GET", "/admin/backends?pool=nope", ""); st != 404 {
		t.Errorf("unknown pool list: %d, want 404", st)
	}
	// The added backend takes quotes; deleting p1 leaves only p2.
	if st, _ := call("DELETE", "/admin/backends/p1", ""); st != 202 {
		t.Fatalf("delete p1: %d", st)
	}
	eventually(t, "p1 removed", func() bool {
		_, err := lb.Backend("p1")
		return err != nil
	})
	for range 4 {
		if _, by, _ := get(t, newClient(t), base+"/api/quote"); by != "p2" {
			t.Errorf("quote served by %q after removing p1, want p2", by)
		}
	}
}
