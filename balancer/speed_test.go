package balancer

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestForwardedHeadersWhateverTheirCase: a client's own X-Forwarded-*
// headers, in any letter case, are replaced (Proto, Host) or extended
// (For), never passed on beside the balancer's.
func TestForwardedHeadersWhateverTheirCase(t *testing.T) {
	got := make(chan http.Header, 1)
	be := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{be.config()}})
	addr := strings.TrimPrefix(url, "http://")
	code, body := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: shop.example\r\n"+
		"x-forwarded-for: 203.0.113.9\r\nX-FORWARDED-PROTO: https\r\nx-Forwarded-host: evil.example\r\n"+
		"Connection: close\r\n\r\n")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	h := <-got
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example",
	}
	for k, v := range want {
		if vs := h.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("%s = %q, want exactly [%q]", k, vs, v)
		}
	}
}

// TestAdminProfiles: the admin API serves the Go runtime's profiles, under
// the same guard as the rest of it (the token when one is configured).
func TestAdminProfiles(t *testing.T) {
	open, _ := startLB(t, Config{})
	admin := httptest.NewServer(open.AdminHandler())
	t.Cleanup(admin.Close)
	if code, body := adminDo(t, admin.URL, "GET", "/debug/pprof/", ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("GET /debug/pprof/: %d %.200q", code, body)
	}
	if code, body := adminDo(t, admin.URL, "GET", "/debug/pprof/goroutine?debug=1", ""); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200q", code, body)
	}

	guarded, _ := startLB(t, Config{AdminToken: "s3cret-token"})
	admin2 := httptest.NewServer(guarded.AdminHandler())
	t.Cleanup(admin2.Close)
	if code, _ := adminDo(t, admin2.URL, "GET", "/debug/pprof/", ""); code != 401 {
		t.Fatalf("without the token: %d, want 401", code)
	}
}
