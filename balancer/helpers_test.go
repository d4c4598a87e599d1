package balancer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

// testBackend is a real HTTP backend on a loopback port 0.
type testBackend struct {
	id   string
	srv  *httptest.Server
	hits atomic.Int64
}

// newTestBackend starts a backend that answers with X-Served-By: id and runs
// h (if not nil) for the body.
func newTestBackend(t *testing.T, id string, h http.HandlerFunc) *testBackend {
	t.Helper()
	tb := &testBackend{id: id}
	tb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		w.Header().Set("X-Served-By", id)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "hello from "+id)
	}))
	t.Cleanup(tb.srv.Close)
	return tb
}

func (tb *testBackend) config() BackendConfig {
	return BackendConfig{ID: tb.id, URL: tb.srv.URL}
}

// testLogger discards logs unless the test fails.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startLB builds a Balancer from cfg, serves it on a loopback port 0 and
// returns it with its base URL. Cleanup shuts it down and checks that Serve
// returned nil.
func startLB(t *testing.T, cfg Config) (*Balancer, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Engine == "" {
		// STATELAB_LB_ENGINE=epoll runs every behaviour test on the epoll engine.
		cfg.Engine = os.Getenv("STATELAB_LB_ENGINE")
	}
	lb, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- lb.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
		lb.Close()
	})
	return lb, "http://" + ln.Addr().String()
}

// newClient returns an HTTP client with its own cookie jar and connections.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}
}

// get performs a GET and returns status, X-Served-By and body.
func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	return do(t, c, http.MethodGet, url, nil)
}

func do(t *testing.T, c *http.Client, method, url string, body io.Reader) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header.Get("X-Served-By"), string(b)
}

// eventually polls cond every few milliseconds until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, cond)
}

// deadAddr returns a loopback URL nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func backendStatus(t *testing.T, lb *Balancer, id string) BackendStatus {
	t.Helper()
	st, err := lb.Backend(id)
	if err != nil && !errors.Is(err, ErrUnknownBackend) {
		t.Fatal(err)
	}
	return st
}

func nopLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// dialLB opens a raw TCP connection to the balancer at url, with a
// deadline of d for everything written and read, closed when the test ends.
func dialLB(t *testing.T, url string, d time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(d))
	return conn
}

// getAsync sends GET url in the background; the channel receives the
// answer's body, or the error's text.
func getAsync(url string) <-chan string {
	res := make(chan string, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			res <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- string(b)
	}()
	return res
}
