package balancer

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func adminDo(t *testing.T, base, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminAPI(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	b := newTestBackend(t, "b", nil)
	lb, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
	admin := httptest.NewServer(lb.AdminHandler())
	t.Cleanup(admin.Close)

	steps := []struct {
		name, method, path, body string
		want                     int
		contains                 string
	}{
		{"list", "GET", "/admin/backends", "", 200, `"id":"a"`},
		{"add", "POST", "/admin/backends", `{"url":"` + b.srv.URL + `","id":"b","weight":2}`, 201, `"weight":2`},
		{"add duplicate", "POST", "/admin/backends", `{"url":"` + b.srv.URL + `","id":"b"}`, 409, `"code":"duplicate_backend"`},
		{"bad JSON", "POST", "/admin/backends", `{"url":`, 400, `"code":"bad_json"`},
		{"unknown field", "POST", "/admin/backends", `{"url":"http://x:1","colour":"red"}`, 400, `"code":"bad_json"`},
		{"missing URL", "POST", "/admin/backends", `{"id":"c"}`, 400, `"code":"invalid_backend"`},
		{"bad URL", "POST", "/admin/backends", `{"url":"ftp://x"}`, 400, `"code":"invalid_backend"`},
		{"negative weight", "POST", "/admin/backends", `{"url":"http://x:1","weight":-1}`, 400, `"code":"invalid_backend"`},
		{"get one", "GET", "/admin/backends/b", "", 200, `"url":"` + b.srv.URL + `"`},
		{"remove unknown", "DELETE", "/admin/backends/nope", "", 404, `"code":"unknown_backend"`},
		{"wrong method", "PUT", "/admin/backends", "", 405, `"code":"method_not_allowed"`},
		{"unknown path", "GET", "/admin/nope", "", 404, `"code":"not_found"`},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, body := adminDo(t, admin.URL, s.method, s.path, s.body)
			if code != s.want || !strings.Contains(body, s.contains) {
				t.Fatalf("%s %s: %d %s, want %d containing %s", s.method, s.path, code, body, s.want, s.contains)
			}
		})
	}

	// The added backend receives new clients: with weights 1 and 2, b gets
	// two of every three requests.
	c := newClient(t)
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		_, by, _ := get(t, c, url+"/")
		seen[by]++
	}
	if seen["a"] != 10 || seen["b"] != 20 {
		t.Fatalf("spread after add %v, want a:10 b:20", seen)
	}

	// DELETE drains then removes.
	code, body := adminDo(t, admin.URL, "DELETE", "/admin/backends/a", "")
	if code != 202 || !strings.Contains(body, `"draining":true`) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	eventually(t, "a removed", func() bool {
		_, body := adminDo(t, admin.URL, "GET", "/admin/backends", "")
		var list []BackendStatus
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("list %q: %v", body, err)
		}
		return len(list) == 1 && list[0].ID == "b"
	})
	for i := 0; i < 5; i++ {
		if _, by, _ := get(t, c, url+"/"); by != "b" {
			t.Fatalf("request after removal went to %q", by)
		}
	}

	code, body = adminDo(t, admin.URL, "GET", "/metrics", "")
	for _, m := range []string{`statelab_lb_requests_total{backend="b",code="2xx"} 25`, "statelab_lb_request_duration_seconds_bucket", "statelab_lb_backend_healthy", "statelab_lb_retries_total"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Fatalf("metrics (%d) lack %q:\n%s", code, m, body)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"unknown policy", Config{Policy: "random"}, ErrUnknownPolicy},
		{"bad URL", Config{Backends: []BackendConfig{{URL: "127.0.0.1:80"}}}, ErrInvalidBackend},
		{"bad id", Config{Backends: []BackendConfig{{ID: "a b", URL: "http://x:1"}}}, ErrInvalidBackend},
		{"duplicate id", Config{Backends: []BackendConfig{{ID: "a", URL: "http://x:1"}, {ID: "a", URL: "http://x:2"}}}, ErrDuplicateBackend},
		{"hash factor", Config{HashFactor: 0.5}, ErrInvalidConfig},
		{"negative timeout", Config{DialTimeout: -1}, ErrInvalidConfig},
		{"health path", Config{HealthPath: "readyz"}, ErrInvalidConfig},
		{"cookie name", Config{StickyCookie: "a b"}, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = testLogger(t)
			if _, err := New(tt.cfg); !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := New(Config{Logger: testLogger(t)}); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
}
