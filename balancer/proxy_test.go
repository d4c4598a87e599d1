package balancer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

func TestRoundRobinThroughProxy(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	b := newTestBackend(t, "b", nil)
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config(), b.config()}})
	c := newClient(t)
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		code, by, body := get(t, c, url+"/x")
		if code != 200 {
			t.Fatalf("status %d body %q", code, body)
		}
		seen[by]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("spread %v, want 10/10", seen)
	}
}

func stickyCookie(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := neturl.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "statelab_backend" {
			return ck.Value
		}
	}
	return ""
}

func TestStickyStaysAndRedispatches(t *testing.T) {
	backends := map[string]*testBackend{}
	var cfgs []BackendConfig
	for _, id := range []string{"a", "b", "c"} {
		backends[id] = newTestBackend(t, id, nil)
		cfgs = append(cfgs, backends[id].config())
	}
	lb, url := startLB(t, Config{Policy: PolicySticky, Backends: cfgs, Secret: []byte("s")})

	// Three clients spread over three backends, and each stays put.
	home := map[*http.Client]string{}
	for i := 0; i < 3; i++ {
		c := newClient(t)
		_, by, _ := get(t, c, url+"/")
		home[c] = by
		for j := 0; j < 5; j++ {
			if _, again, _ := get(t, c, url+"/"); again != by {
				t.Fatalf("client moved from %s to %s", by, again)
			}
		}
	}
	if len(uniq(home)) != 3 {
		t.Fatalf("new clients were not spread: %v", home)
	}

	// Killing a client's backend sends its next request elsewhere, with a 200
	// and a rewritten cookie.
	var victim *http.Client
	for c, by := range home {
		if by == "a" {
			victim = c
		}
	}
	oldCookie := stickyCookie(t, victim, url)
	backends["a"].srv.Close()
	code, by, _ := get(t, victim, url+"/")
	if code != 200 || by == "a" || by == "" {
		t.Fatalf("after killing a: %d from %q, want 200 from another backend", code, by)
	}
	if nc := stickyCookie(t, victim, url); nc == oldCookie || nc == "" {
		t.Fatalf("cookie not rewritten: %q", nc)
	}
	if _, again, _ := get(t, victim, url+"/"); again != by {
		t.Fatalf("redispatched client moved again, from %s to %s", by, again)
	}

	// Removing a backend redispatches its clients the same way.
	var moved *http.Client
	for c, h := range home {
		if h == "b" {
			moved = c
		}
	}
	if moved == victim {
		t.Fatal("test setup: victim already on b")
	}
	if err := lb.RemoveBackend(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if code, by, _ := get(t, moved, url+"/"); code != 200 || by == "b" {
		t.Fatalf("after removing b: %d from %q", code, by)
	}
}

func uniq(m map[*http.Client]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

func TestDrainKeepsStickyClientsOnly(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	b := newTestBackend(t, "b", nil)
	lb, url := startLB(t, Config{Policy: PolicySticky, Backends: []BackendConfig{a.config(), b.config()}})
	onA := newClient(t)
	for {
		if _, by, _ := get(t, onA, url+"/"); by == "a" {
			break
		}
		onA = newClient(t) // the first client went to b; the next one goes to a
	}
	if _, err := lb.DrainBackend("a"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, by, _ := get(t, onA, url+"/"); by != "a" {
			t.Fatalf("sticky client of draining a went to %s", by)
		}
		if _, by, _ := get(t, newClient(t), url+"/"); by != "b" {
			t.Fatalf("new client went to %s, want b (a is draining)", by)
		}
	}
	st := backendStatus(t, lb, "a")
	if !st.Draining {
		t.Fatal("status does not show draining")
	}
}

func TestRemoveWaitsForInflight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	slow := newTestBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "done")
	})
	lb, url := startLB(t, Config{Backends: []BackendConfig{slow.config()}, DrainQuiet: time.Millisecond})
	res := getAsync(url + "/")
	<-arrived
	removed := make(chan error, 1)
	go func() { removed <- lb.RemoveBackend(context.Background(), "slow") }()
	eventually(t, "draining", func() bool { return backendStatus(t, lb, "slow").Draining })
	select {
	case err := <-removed:
		t.Fatalf("RemoveBackend returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if got := <-res; got != "done" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if len(lb.Backends()) != 0 {
		t.Fatalf("backends after removal: %v", lb.Backends())
	}
}

func TestForwardedAndHopByHopHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		got <- h
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Custom", "kept")
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
	req, _ := http.NewRequest("GET", url+"/h", nil)
	req.Host = "shop.example"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Proxy-Authorization", "Basic Zm9v")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-End", "kept")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	want := map[string]string{
		"X-Forwarded-For":     "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto":   "http",
		"X-Forwarded-Host":    "shop.example",
		"Host":                "shop.example",
		"X-End":               "kept",
		"X-Secret":            "",
		"Proxy-Authorization": "",
		"Keep-Alive":          "",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("backend saw %s = %q, want %q", k, h.Get(k), v)
		}
	}
	if resp.Header.Get("X-Served-By") != "a" || resp.Header.Get("X-Custom") != "kept" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("response headers %v", resp.Header)
	}
}

func TestStreamingResponse(t *testing.T) {
	// An event stream, and a plain chunked response: both are forwarded as
	// the backend flushes them.
	for _, ctype := range []string{"text/event-stream", "text/plain"} {
		t.Run(ctype, func(t *testing.T) {
			next := make(chan struct{})
			a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ctype)
				for i := 0; i < 3; i++ {
					fmt.Fprintf(w, "event %d\n", i)
					w.(http.Flusher).Flush()
					<-next // the client must have read this event before the next is written
				}
			})
			_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
			resp, err := newClient(t).Get(url + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for i := 0; i < 3; i++ {
				line, err := br.ReadString('\n')
				if err != nil || line != fmt.Sprintf("event %d\n", i) {
					t.Fatalf("read %q, %v", line, err)
				}
				next <- struct{}{}
			}
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("trailing data %q", rest)
			}
		})
	}
}

// TestResponseBodies checks each way a backend frames a body — small and
// large Content-Length, chunked, none (HEAD, 204) — several times over the
// pooled backend connections, so that a buffered or streamed body that
// left the connection out of step would show up on the next request.
func TestResponseBodies(t *testing.T) {
	large := strings.Repeat("0123456789abcdef", 200<<10/16) // 200 KiB, streamed
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "small")
		case "/large":
			w.Header().Set("Content-Length", strconv.Itoa(len(large)))
			io.WriteString(w, large)
		case "/chunked":
			for i := 0; i < 4; i++ {
				io.WriteString(w, large[:50<<10])
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
	c := newClient(t)
	for round := 0; round < 3; round++ {
		for path, want := range map[string]string{"/small": "small", "/large": large, "/chunked": strings.Repeat(large[:50<<10], 4), "/empty": ""} {
			code, _, body := get(t, c, url+path)
			if (code != 200 && code != 204) || body != want {
				t.Fatalf("GET %s: %d, %d bytes, want %d bytes", path, code, len(body), len(want))
			}
		}
		req, _ := http.NewRequest(http.MethodHead, url+"/large", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(large)) {
			t.Fatalf("HEAD /large: %d, length %d", resp.StatusCode, resp.ContentLength)
		}
	}
}

func TestUpgradePassThrough(t *testing.T) {
	// A minimal Upgrade protocol: the backend answers 101 and echoes bytes.
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Served-By: a\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
	conn := dialLB(t, url, 10*time.Second)
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("X-Served-By") != "a" {
		t.Fatalf("upgrade answered %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"ping\n", "pong pong\n"} {
		io.WriteString(conn, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != msg {
			t.Fatalf("echo %q: got %q, %v", msg, line, err)
		}
	}
}

func TestLimitsAndTimeouts(t *testing.T) {
	release := make(chan struct{})
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.Copy(io.Discard, r.Body)
	})
	t.Cleanup(func() { close(release) }) // runs before the backend's Close
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}, MaxRequestBodySize: 1024,
		ResponseTimeout: 100 * time.Millisecond, MaxTries: 1})
	c := newClient(t)
	tests := []struct {
		name, method, path string
		body               string
		want               int
	}{
		{"small body", "POST", "/", strings.Repeat("x", 1024), 200},
		{"body over limit", "POST", "/", strings.Repeat("x", 4096), 413},
		{"upstream timeout", "GET", "/slow", "", 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := do(t, c, tt.method, url+tt.path, strings.NewReader(tt.body))
			if code != tt.want {
				t.Fatalf("status %d (%q), want %d", code, body, tt.want)
			}
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "finished")
	})
	lb, err := New(Config{Backends: []BackendConfig{a.config()}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- lb.Serve(ctx, ln) }()

	res := getAsync("http://" + addr + "/")
	<-arrived
	cancel()
	// New connections are refused once the listener is closed.
	eventually(t, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if got := <-res; got != "finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestLowerCaseHopHeaders(t *testing.T) {
	// Header names are case-insensitive: a raw client sending lower-case
	// names gets the same treatment as a canonical one.
	got := make(chan http.Header, 1)
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
	conn := dialLB(t, url, 10*time.Second)
	io.WriteString(conn, "GET / HTTP/1.1\r\nhost: x\r\nconnection: x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\nx-forwarded-for: 198.51.100.1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	if h.Get("X-Hop") != "" || h.Get("Keep-Alive") != "" || h.Get("X-Forwarded-For") != "198.51.100.1, 127.0.0.1" {
		t.Fatalf("backend saw %v", h)
	}
}

func TestHashPolicyThroughProxy(t *testing.T) {
	var cfgs []BackendConfig
	for _, id := range []string{"a", "b", "c"} {
		cfgs = append(cfgs, newTestBackend(t, id, nil).config())
	}
	_, url := startLB(t, Config{Policy: PolicyHash, Backends: cfgs})
	c := newClient(t)
	owners := map[string]bool{}
	for s := 0; s < 30; s++ {
		var first string
		for i := 0; i < 3; i++ {
			req, _ := http.NewRequest("GET", url+"/", nil)
			req.AddCookie(&http.Cookie{Name: "statelab_session", Value: fmt.Sprintf("session-%d", s)})
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			by := resp.Header.Get("X-Served-By")
			if i == 0 {
				first = by
			} else if by != first {
				t.Fatalf("session %d moved from %s to %s with no load", s, first, by)
			}
		}
		owners[first] = true
	}
	if len(owners) != 3 {
		t.Fatalf("30 sessions landed on %v only", owners)
	}
}

func TestAccessLog(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	var buf testenv.Buffer
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}, AccessLog: true,
		Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	get(t, newClient(t), url+"/logged?x=1")
	eventually(t, "access log record", func() bool {
		return strings.Contains(buf.String(), `"uri":"/logged?x=1"`) && strings.Contains(buf.String(), `"backend":"a"`) &&
			strings.Contains(buf.String(), `"status":200`)
	})
}
