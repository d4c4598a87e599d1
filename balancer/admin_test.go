package balancer

import (
	"encoding/json"
	"errors"
	"fmt"
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
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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

// TestAdminRefusesBrowserWrites: a web page the operator visits must not be
// able to change the backends, by a cross-site form post or by DNS
// rebinding. Before the fix a text/plain POST with Origin: http://evil got
// 201 and the new backend took the traffic.
func TestAdminRefusesBrowserWrites(t *testing.T) {
	evil := newTestBackend(t, "evil", nil)
	lb, _ := startLB(t, Config{Backends: []BackendConfig{newTestBackend(t, "a", nil).config()}})
	admin := httptest.NewServer(lb.AdminHandler())
	t.Cleanup(admin.Close)
	add := `{"url":"` + evil.srv.URL + `","id":"evil","weight":1000}`
	tests := []struct {
		name     string
		header   map[string]string
		host     string
		want     int
		wantCode string
	}{
		{"form post, text/plain, cross-site Origin", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil"}, "", 415, "unsupported_media_type"},
		{"no content type", map[string]string{"Content-Type": ""}, "", 415, "unsupported_media_type"},
		{"JSON, cross-site Origin", map[string]string{"Origin": "http://evil.example"}, "", 403, "cross_origin"},
		{"JSON, Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403, "cross_origin"},
		{"rebinding: Host and Origin both the attacker's", map[string]string{"Origin": "http://evil.example:9090"}, "evil.example:9090", 403, "bad_host"},
		{"rebinding, no Origin", nil, "evil.example:9090", 403, "bad_host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", admin.URL+"/admin/backends", strings.NewReader(add))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantCode) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tt.want, tt.wantCode)
			}
			if len(lb.Backends()) != 1 {
				t.Fatalf("a refused request added a backend: %v", lb.Backends())
			}
		})
	}
	// A same-origin or non-browser client on the loopback address passes.
	if code, body := adminDo(t, admin.URL, "POST", "/admin/backends", add); code != 201 {
		t.Fatalf("plain JSON POST: %d %s", code, body)
	}
}

// TestAdminToken: with a token, every request needs it, and names other
// than IP literals are accepted in Host.
func TestAdminToken(t *testing.T) {
	lb, _ := startLB(t, Config{AdminToken: "s3cret-token"})
	admin := httptest.NewServer(lb.AdminHandler())
	t.Cleanup(admin.Close)
	tests := []struct {
		name, method, auth, host string
		want                     int
	}{
		{"no token, GET", "GET", "", "", 401},
		{"no token, metrics", "GET", "", "", 401},
		{"wrong token", "POST", "Bearer nope", "", 401},
		{"basic auth", "POST", "Basic czNjcmV0LXRva2Vu", "", 401},
		{"right token", "POST", "Bearer s3cret-token", "", 201},
		{"right token, list by name", "GET", "Bearer s3cret-token", "lb-admin.internal:9090", 200},
		{"healthz needs no token", "GET", "", "", 200},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, body := "/admin/backends", ""
			switch tt.name {
			case "no token, metrics":
				path = "/metrics"
			case "healthz needs no token":
				path = "/healthz"
			}
			if tt.method == "POST" {
				body = fmt.Sprintf(`{"url":"http://127.0.0.1:%d"}`, 1000+i)
			}
			req, _ := http.NewRequest(tt.method, admin.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge")
			}
		})
	}
}

// TestAdminLimitsAndURLs: the number of backends is capped, and backend
// URLs are validated (port range, IPv6 in brackets).
func TestAdminLimitsAndURLs(t *testing.T) {
	lb, _ := startLB(t, Config{MaxBackends: 2})
	admin := httptest.NewServer(lb.AdminHandler())
	t.Cleanup(admin.Close)
	steps := []struct {
		url      string
		want     int
		wantCode string
	}{
		{"http://h:99999", 400, "invalid_backend"},
		{"http://h:0", 400, "invalid_backend"},
		{"http://h:", 400, "invalid_backend"},
		{"http://:80", 400, "invalid_backend"},
		{"http://::1:80", 400, "invalid_backend"},
		{"http://h:80/?q=1", 400, "invalid_backend"},
		{"http://[::1]:8080", 201, `"id":"[::1]:8080"`},
		{"https://h.example", 201, `"url":"https://h.example"`},
		{"http://h:81", 409, "too_many_backends"},
	}
	for _, s := range steps {
		code, body := adminDo(t, admin.URL, "POST", "/admin/backends", `{"url":"`+s.url+`"}`)
		if code != s.want || !strings.Contains(body, s.wantCode) {
			t.Fatalf("add %s: %d %s, want %d %s", s.url, code, body, s.want, s.wantCode)
		}
	}
	if _, err := New(Config{MaxBackends: 1, Backends: []BackendConfig{{URL: "http://a:1"}, {URL: "http://b:1"}}, Logger: testLogger(t)}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with more backends than MaxBackends: %v", err)
	}
}
