package balancer

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/statelab/statelab/internal/testenv"
)

func TestParseReqHead(t *testing.T) {
	tests := []struct {
		name, in           string
		complete, ok       bool
		contentLength      int
		closeConn          bool
		host, cookie, xffr string
	}{
		{"simple", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", true, true, 0, false, "x", "", ""},
		{"partial", "GET /a HTTP/1.1\r\nHost: x\r\n", false, true, 0, false, "", "", ""},
		{"body", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nCookie: a=1; b=2\r\n\r\n", true, true, 12, false, "x", "a=1; b=2", ""},
		{"close", "GET / HTTP/1.1\r\nhost: x\r\nconnection: Close\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n", true, true, 0, true, "x", "", "10.0.0.1"},
		{"no host", "GET / HTTP/1.1\r\n\r\n", true, false, 0, false, "", "", ""},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", true, false, 0, false, "", "", ""},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", true, false, 0, false, "", "", ""},
		{"upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true, false, 0, false, "", "", ""},
		{"expect", "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", true, false, 0, false, "", "", ""},
		{"absolute target", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", true, false, 0, false, "", "", ""},
		{"bad name", "GET / HTTP/1.1\r\nHo st: x\r\n\r\n", true, false, 0, false, "", "", ""},
		{"two lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", true, false, 0, false, "", "", ""},
		{"bad length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", true, false, 0, false, "", "", ""},
		{"client proto", "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n", true, false, 0, false, "", "", ""},
		{"hop header", "GET / HTTP/1.1\r\nHost: x\r\nKeep-Alive: 5\r\n\r\n", true, false, 0, false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, complete, ok := parseReqHead([]byte(tt.in))
			if complete != tt.complete || ok != tt.ok {
				t.Fatalf("complete %v ok %v, want %v %v", complete, ok, tt.complete, tt.ok)
			}
			if !ok || !complete {
				return
			}
			if h.contentLength != tt.contentLength || h.closeConn != tt.closeConn || string(h.host) != tt.host ||
				string(h.cookie) != tt.cookie || string(h.forwardedFor) != tt.xffr {
				t.Fatalf("got %+v", h)
			}
		})
	}
}

func TestAppendForwardedRequest(t *testing.T) {
	raw := []byte("POST /p?q=1 HTTP/1.1\r\nHost: shop\r\nx-forwarded-for: 10.0.0.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabcGET")
	h, _, ok := parseReqHead(raw)
	if !ok {
		t.Fatal("not ok")
	}
	got := string(appendForwardedRequest(nil, raw, &h, []byte("127.0.0.1")))
	want := "POST /p?q=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n" +
		"X-Forwarded-Proto: http\r\nX-Forwarded-Host: shop\r\n\r\nabc"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestParseRespHeadAndRewrite(t *testing.T) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\nhello")
	h, complete, ok := parseRespHead(raw)
	if !complete || !ok || h.code != 200 || h.contentLength != 5 || h.chunked || h.closeConn {
		t.Fatalf("got %+v %v %v", h, complete, ok)
	}
	got := string(appendResponseHead(nil, raw, &h, []byte("Set-Cookie: s=v\r\n"), true))
	want := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nSet-Cookie: s=v\r\nConnection: close\r\n\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"HTTP/1.1 20x OK\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"} {
		if _, complete, ok := parseRespHead([]byte(bad)); !complete || ok {
			t.Errorf("%q: complete %v ok %v, want true false", bad, complete, ok)
		}
	}
	if h, _, _ := parseRespHead([]byte("HTTP/1.0 200 OK\r\n\r\n")); !h.closeConn || h.contentLength != -1 {
		t.Errorf("HTTP/1.0 without length: %+v, want close and no length", h)
	}
}

// TestChunkScanner feeds a chunked body (with an extension and a trailer)
// in every split of two pieces and checks that the end is found exactly.
func TestChunkScanner(t *testing.T) {
	body := "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n"
	next := "HTTP/1.1 200 OK"
	full := body + next
	for cut := 0; cut <= len(full); cut++ {
		var s chunkScanner
		n1, done, ok := s.scan([]byte(full[:cut]))
		total := n1
		if !done {
			var n2 int
			n2, done, ok = s.scan([]byte(full[cut:]))
			total += n2
		}
		if !ok || !done || total != len(body) {
			t.Fatalf("cut %d: consumed %d done %v ok %v, want %d true true", cut, total, done, ok, len(body))
		}
	}
	var s chunkScanner
	if _, _, ok := s.scan([]byte("fffffffffffffff\r\n")); ok {
		t.Fatal("a huge chunk size was accepted")
	}
}

// TestEpollEngineServesAndHandsOver runs the epoll engine in front of a
// backend that answers with chunked and length-framed bodies, and checks
// pipelined keep-alive requests, a chunked request (handed to fasthttp on
// the same connection) and the X-Forwarded headers.
func TestEpollEngineServesAndHandsOver(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("epoll is Linux only")
	}
	be := newTestBackend(t, "b1", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("X-Forwarded-Proto")+"|"+r.Header.Get("X-Forwarded-Host"))
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: a chunked answer
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{be.config()}, Engine: EngineEpoll})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// three requests in one write: pipelined
	_, err = io.WriteString(conn, "GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"+
		"GET /chunked HTTP/1.1\r\nHost: shop\r\n\r\n"+
		"POST /c HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\n\r\nbody")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for _, want := range []string{"GET /a ", "GET /chunked ", "POST /c body"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want || resp.Header.Get("X-Seen") != "127.0.0.1|http|shop" {
			t.Fatalf("got %q (X-Seen %q), want %q (127.0.0.1|http|shop)", b, resp.Header.Get("X-Seen"), want)
		}
	}
	// a chunked request: fasthttp takes the connection over
	_, err = io.WriteString(conn, "POST /d HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST /d xyz" {
		t.Fatalf("chunked request: got %q", b)
	}
}

// TestEpollEngineReusesBackendConnections sends requests each on a new
// client connection with Connection: close: the backend connections must
// still be reused (the client's Connection header is not forwarded).
func TestEpollEngineReusesBackendConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("epoll is Linux only")
	}
	var dials atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from b1")
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	_, url := startLB(t, Config{Backends: []BackendConfig{{ID: "b1", URL: be.URL}}, Engine: EngineEpoll})
	for i := 0; i < 20; i++ {
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(conn) // the balancer closes after the answer
		conn.Close()
		if err != nil || !strings.Contains(string(b), "hello from b1") || !strings.Contains(string(b), "Connection: close") {
			t.Fatalf("request %d: %q, %v", i, b, err)
		}
	}
	// one connection per loop at most (a health check would add its own)
	if n := dials.Load(); n > int64(runtime.NumCPU()) {
		t.Fatalf("%d backend connections for 20 sequential requests, want at most %d (one per loop)", n, runtime.NumCPU())
	}
}

// TestEpollEngineSpreadsClients opens clients all at once, as a benchmark
// does, and sends one request on each: every event loop must serve about
// as many of them (the stop log's requests_per_loop), not the one loop
// that happened to accept the burst.
func TestEpollEngineSpreadsClients(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.NumCPU() < 2 {
		t.Skip("needs epoll and two CPUs (one event loop each)")
	}
	var logs testenv.Buffer
	t.Cleanup(func() { // runs after startLB's cleanup stopped the balancer
		m := regexp.MustCompile(`"requests_per_loop":\[([0-9,]+)\]`).FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no requests_per_loop in the stop log: %s", logs.String())
		}
		var counts []int
		for _, f := range strings.Split(m[1], ",") {
			n, _ := strconv.Atoi(f)
			counts = append(counts, n)
		}
		if slices.Max(counts)-slices.Min(counts) > 2 {
			t.Errorf("requests per loop %v: clients not spread over the loops", counts)
		}
	})
	be := newTestBackend(t, "b1", nil)
	_, url := startLB(t, Config{Backends: []BackendConfig{be.config()}, Engine: EngineEpoll,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	conns := make([]net.Conn, 16*runtime.NumCPU())
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		resp.Body.Close()
	}
}
