package main

import (
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

// TestAppStartsWithPostgresDown starts the app with its PostgreSQL address
// not answering (nothing listens there yet): it serves /healthz, answers
// /readyz 503, and becomes ready by itself once the address leads to the
// database (the test then starts forwarding it to the real server), as an
// orchestrator starting the app before its database expects.
func TestAppStartsWithPostgresDown(t *testing.T) {
	real := testenv.PostgresURL(t)
	u, err := url.Parse(real)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	u.Host = testenv.FreeAddr(t)
	schema := "statelab_down_" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() { dropSchema(t, real, schema) })
	base, _, _ := startApp(t, "--store", "postgres", "--id", "r", "--postgres", u.String(), "--postgres-schema", schema, "--store-retry", "100ms")

	withRetry := appStatus(t, base)
	status := func(method, path, body string) int {
		code, _ := withRetry(method, path, body)
		return code
	}
	if code := status("GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("healthz with PostgreSQL unreachable: %d, want 200 (the process is alive)", code)
	}
	if code := status("GET", "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with PostgreSQL unreachable: %d, want 503", code)
	}

	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("listen on the app's PostgreSQL address: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go forwardAll(ln, target)
	testenv.Eventually(t, 30*time.Second, "the app to become ready once PostgreSQL answers", func() bool {
		return status("GET", "/readyz", "") == http.StatusOK
	})
	if code := status("POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`); code != http.StatusOK {
		t.Errorf("add once PostgreSQL answers: %d, want 200", code)
	}
}

// appStatus returns a function that sends one request to the app at base,
// with a cookie jar of its own (a JSON body when body is not empty), and
// returns the status and the Retry-After header.
func appStatus(t *testing.T, base string) func(method, path, body string) (int, string) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	return func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
}

// expectAliveNotReady checks that an app whose store does not answer
// (when says how) serves /healthz and answers /readyz and a cart write
// 503 with Retry-After.
func expectAliveNotReady(t *testing.T, status func(method, path, body string) (int, string), when string) {
	t.Helper()
	if code, _ := status("GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("healthz %s: %d, want 200 (the process is alive)", when, code)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`},
	} {
		if code, retry := status(r.method, r.path, r.body); code != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("%s %s %s: %d, Retry-After %q; want 503 with Retry-After", r.method, r.path, when, code, retry)
		}
	}
}

// forwardAll forwards every connection ln accepts to target until ln is
// closed.
func forwardAll(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return
			}
			defer s.Close()
			go func() { io.Copy(s, c); s.Close() }()
			io.Copy(c, s)
		}()
	}
}

// TestAppStartsWithClusteredRedisDown starts the app pointed at a Redis
// Cluster and at a Sentinel set of which nothing answers: it stays up,
// serves /healthz, and answers /readyz and the cart API 503 with
// Retry-After while it retries, instead of exiting.
func TestAppStartsWithClusteredRedisDown(t *testing.T) {
	for _, tc := range []struct{ name, flag, value string }{
		{"cluster", "--redis-cluster", testenv.FreeAddr(t) + "," + testenv.FreeAddr(t)},
		{"sentinel", "--redis-sentinel", "statelab@" + testenv.FreeAddr(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := startApp(t, "--store", "redis", "--id", "r", tc.flag, tc.value, "--store-retry", "100ms")
			expectAliveNotReady(t, appStatus(t, base), "with no Redis node answering")
		})
	}
}
