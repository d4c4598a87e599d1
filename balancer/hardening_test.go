package balancer

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

// rawExchange sends raw bytes to addr on a new connection and reads one
// response. It returns the status (0 if no response could be read) and body.
func rawExchange(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(conn, raw) // a refused request may not be read whole
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// earlyBackend is a raw TCP backend that reads a request's header, counts
// it, answers at once (or hangs up, if answer is empty) and closes the
// connection without reading the body: what an app does with a body it
// will not read.
type earlyBackend struct {
	ln   net.Listener
	hits atomic.Int64
}

func newEarlyBackend(t *testing.T, answer string) *earlyBackend {
	t.Helper()
	eb := &earlyBackend{}
	eb.ln = testenv.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		eb.hits.Add(1)
		if answer != "" {
			io.WriteString(c, answer)
		}
		// Read a little more, as a real server's lingering close
		// would, then close with the rest unread.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		io.CopyN(io.Discard, br, 64<<10)
	})
	return eb
}

func (eb *earlyBackend) config(id string) BackendConfig {
	return BackendConfig{ID: id, URL: "http://" + eb.ln.Addr().String()}
}

// TestPOSTNeverResentOnceItReachedABackend: a POST with a large body, whose
// backend acts on the header and closes before reading the body, must be
// delivered exactly once. Before the fix the failed body write was taken
// for "never reached" and the POST was sent again to every backend.
func TestPOSTNeverResentOnceItReachedABackend(t *testing.T) {
	body := strings.Repeat("x", 5<<20)
	tests := []struct {
		name     string
		answer   string
		wantCode []int // acceptable statuses
	}{
		{"backend answers early", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nplaced", []int{200}},
		{"backend hangs up", "", []int{502}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newEarlyBackend(t, tt.answer), newEarlyBackend(t, tt.answer)
			lb, url := startLB(t, Config{Backends: []BackendConfig{a.config("a"), b.config("b")}})
			code, _, got := do(t, newClient(t), http.MethodPost, url+"/api/cart/checkout", strings.NewReader(body))
			if hits := a.hits.Load() + b.hits.Load(); hits != 1 {
				t.Fatalf("the POST was delivered %d times (a %d, b %d), want once; client got %d %q", hits, a.hits.Load(), b.hits.Load(), code, got)
			}
			ok := false
			for _, c := range tt.wantCode {
				ok = ok || c == code
			}
			if !ok {
				t.Fatalf("client got %d %q, want one of %v", code, got, tt.wantCode)
			}
			if code == 200 && got != "placed" {
				t.Fatalf("early answer body %q", got)
			}
			if code == 200 {
				for _, id := range []string{"a", "b"} {
					if n := lb.defaultGroup.pool.Load().byID[id].consecFails.Load(); n != 0 {
						t.Fatalf("backend %s that answered early counts %d failures", id, n)
					}
				}
			}
		})
	}
}

// TestClientErrorsNeverMarkABackend: requests that are malformed or that the
// balancer cannot forward are the client's 4xx (or 505), never a failure
// of the backend. Before the fix an absolute-form https:// request failed
// as a backend error (five ejected the backend), and HTTP/1.0 without Host
// counted a dial error on every backend.
func TestClientErrorsNeverMarkABackend(t *testing.T) {
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s host=%s", r.Method, r.RequestURI, r.Host)
	})
	lb, url := startLB(t, Config{Policy: PolicySticky, Backends: []BackendConfig{a.config()}, EjectAfter: 2})
	addr := strings.TrimPrefix(url, "http://")
	cookie := "statelab_backend=" + lb.defaultGroup.pool.Load().byID["a"].stickyValue
	tests := []struct {
		name, raw string
		want      int
		wantBody  string
	}{
		{"absolute-form https", "POST https://x/p HTTP/1.1\r\nHost: y\r\nCookie: " + cookie + "\r\nContent-Length: 0\r\n\r\n", 200, "POST /p host=x"},
		{"absolute-form http", "GET http://x/p?q=1 HTTP/1.1\r\nHost: y\r\n\r\n", 200, "GET /p?q=1 host=x"},
		{"absolute-form other scheme", "GET ftp://x/p HTTP/1.1\r\nHost: y\r\n\r\n", 400, "bad_target"},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 400, "missing_host"},
		{"HTTP/1.0 with Host", "GET /ten HTTP/1.0\r\nHost: x\r\n\r\n", 200, "GET /ten host=x"},
		{"unknown version 1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
		{"unknown version 2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"},
		{"space in field name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "bad_header"},
		{"TE identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 400, "bad_transfer_encoding"},
		{"TE identity alone", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nabc", 400, "bad_transfer_encoding"},
		{"Content-Length and chunked", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400, "bad_framing"},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 3; i++ { // more than EjectAfter
				code, body := rawExchange(t, addr, tt.raw)
				if code != tt.want || !strings.Contains(body, tt.wantBody) {
					t.Fatalf("got %d %q, want %d with %q", code, body, tt.want, tt.wantBody)
				}
			}
			b := lb.defaultGroup.pool.Load().byID["a"]
			if !b.Available(time.Now().UnixNano()) || b.consecFails.Load() != 0 || b.errDial.Load() != 0 || b.errUpstream.Load() != 0 {
				t.Fatalf("backend marked by a client error: available %v, fails %d, dial %d, upstream %d",
					b.Available(time.Now().UnixNano()), b.consecFails.Load(), b.errDial.Load(), b.errUpstream.Load())
			}
		})
	}
}

// TestHTTPSBackend: https:// backends work, verified against a private CA;
// an unknown CA fails the backend, not every request before dialing.
func TestHTTPSBackend(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v proto=%s", r.TLS != nil, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tests := []struct {
		name string
		tls  *tls.Config
		want int
	}{
		{"private CA", &tls.Config{RootCAs: pool}, 200},
		{"insecure", &tls.Config{InsecureSkipVerify: true}, 200},
		{"unknown CA", nil, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := startLB(t, Config{Backends: []BackendConfig{{ID: "s", URL: srv.URL}}, BackendTLS: tt.tls, MaxTries: 1})
			c := newClient(t)
			for i := 0; i < 3; i++ { // and again over the pooled connection
				code, _, body := do(t, c, http.MethodPost, url+"/", strings.NewReader("x"))
				if code != tt.want || (code == 200 && body != "tls=true proto=http") {
					t.Fatalf("got %d %q, want %d", code, body, tt.want)
				}
			}
		})
	}
}

// TestUpgradeWithout101KeepsParsing: when the backend refuses an Upgrade
// (no 101), the connection is not turned into a tunnel: the next request
// on it is parsed by the balancer and gets X-Forwarded-For like any other.
func TestUpgradeWithout101KeepsParsing(t *testing.T) {
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			http.Error(w, "no upgrade here", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s xff=%s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}, MaxHeaderBytes: 2048})
	conn := dialLB(t, url, 10*time.Second)
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "no upgrade here") {
		t.Fatalf("refused upgrade answered %d %q", resp.StatusCode, body)
	}
	io.WriteString(conn, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "/second xff=127.0.0.1" {
		t.Fatalf("second request got %d %q: not parsed by the balancer", resp.StatusCode, body)
	}
	// The balancer's limits still apply on that connection.
	io.WriteString(conn, "GET /third HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 4096)+"\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header after a refused upgrade got %d, want 431", resp.StatusCode)
	}
}

// TestHeaderLimits: the default header budget (16 KiB) fits a 4 KiB sealed
// cookie and more, both ways; beyond the budget the answer is 431.
func TestHeaderLimits(t *testing.T) {
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "sealed="+strings.Repeat("c", 4000))
		fmt.Fprintf(w, "cookie=%d", len(r.Header.Get("Cookie")))
	})
	tests := []struct {
		name     string
		max      int
		header   int
		want     int
		wantBody string
	}{
		{"4 KiB cookie, default", 0, 4096, 200, "cookie=4103"},
		{"15 KB cookie, default", 0, 15000, 200, "cookie=15007"},
		{"20 KB, default", 0, 20000, 431, "header_too_large"},
		{"3 KB, configured 2 KiB", 2048, 3000, 431, "header_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}, MaxHeaderBytes: tt.max})
			raw := "GET / HTTP/1.1\r\nHost: x\r\nCookie: sealed=" + strings.Repeat("c", tt.header) + "\r\n\r\n"
			code, body := rawExchange(t, strings.TrimPrefix(url, "http://"), raw)
			if code != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d %q, want %d with %q", code, body, tt.want, tt.wantBody)
			}
		})
	}
}

// TestDenyPaths: backends' internal endpoints can be kept off the public
// port, whatever spelling of the path a client uses.
func TestDenyPaths(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}, DenyPaths: []string{"/metrics", "/api/replica/"}})
	addr := strings.TrimPrefix(url, "http://")
	tests := []struct {
		path string
		want int
	}{
		{"/metrics", 404},
		{"/metrics/x", 404},
		{"/%6detrics", 404},
		{"//metrics", 404},
		{"/a/../metrics", 404},
		{"/api/replica", 404},
		{"/api/replica?x=1", 404},
		{"/metricsx", 200},
		{"/api/cart", 200},
	}
	for _, tt := range tests {
		before := a.hits.Load()
		code, body := rawExchange(t, addr, "GET "+tt.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if code != tt.want {
			t.Fatalf("GET %s: %d %q, want %d", tt.path, code, body, tt.want)
		}
		if tt.want == 404 && (a.hits.Load() != before || !strings.Contains(body, "not_found")) {
			t.Fatalf("GET %s reached the backend or was not the balancer's 404: %q", tt.path, body)
		}
	}
	if _, err := New(Config{DenyPaths: []string{"metrics"}, Logger: testLogger(t)}); err == nil {
		t.Fatal("a deny path without a leading / was accepted")
	}
}
