package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A probe is one request shape, sent as raw bytes on a fresh connection.
// Want is what statelab lb must do with it: the status of its first answer
// and how many requests may reach the backend ("smuggling" shows up as a
// backend seeing more requests than the client sent).
type probe struct {
	Name  string
	Group string
	Raw   string
	Want  int // expected first status from statelab lb; 0: connection closed, no answer
	// MaxBackend is how many requests the backend may see.
	MaxBackend int
}

// probes is the probe set: request smuggling shapes, header sizes,
// Transfer-Encoding variants, absolute-form targets, Upgrade without a
// 101, HTTP/1.0 without Host and other malformed requests.
func probes() []probe {
	big := func(n int) string { return strings.Repeat("a", n) }
	hidden := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	chunked := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	return []probe{
		{"baseline GET", "baseline", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, 1},
		{"pipelined GET, GET", "baseline", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n", 200, 2},
		{"CL.TE: Content-Length and chunked", "smuggling", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400, 0},
		{"TE.CL: chunked body hides a request", "smuggling", fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(hidden), hidden), 400, 0},
		{"CL then a hidden request", "smuggling", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + hidden, 200, 2},
		{"two different Content-Lengths", "smuggling", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc", 400, 0},
		{"Content-Length with sign", "smuggling", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400, 0},
		{"bad chunk size", "smuggling", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, 1},
		{"chunk size overflow", "smuggling", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n0\r\n\r\n", 400, 1},
		{"TE chunked", "transfer-encoding", fmt.Sprintf(chunked, "chunked"), 200, 1},
		{"TE identity", "transfer-encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 400, 0},
		{"TE gzip, chunked", "transfer-encoding", fmt.Sprintf(chunked, "gzip, chunked"), 400, 0},
		{"TE xchunked", "transfer-encoding", fmt.Sprintf(chunked, "xchunked"), 400, 0},
		{"TE chunked twice", "transfer-encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, 0},
		{"TE on HTTP/1.0", "transfer-encoding", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, 0},
		{"header block 4 KB", "header size", "GET / HTTP/1.1\r\nHost: x\r\nCookie: s=" + big(4096) + "\r\n\r\n", 200, 1},
		{"header block 15 KB", "header size", "GET / HTTP/1.1\r\nHost: x\r\nCookie: s=" + big(15000) + "\r\n\r\n", 200, 1},
		{"header block 20 KB", "header size", "GET / HTTP/1.1\r\nHost: x\r\nCookie: s=" + big(20000) + "\r\n\r\n", 431, 0},
		{"request line 10 KB", "header size", "GET /" + big(10000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 200, 1},
		{"NUL in a header value", "malformed", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, 0},
		{"bare CR in a header value", "malformed", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, 0},
		{"space in a field name", "malformed", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, 0},
		{"space before the colon", "malformed", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, 0},
		{"folded header line", "malformed", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, 0},
		{"two Host headers", "malformed", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, 0},
		{"HTTP/1.1 without Host", "host", "GET / HTTP/1.1\r\n\r\n", 400, 0},
		{"HTTP/1.0 without Host", "host", "GET / HTTP/1.0\r\n\r\n", 400, 0},
		{"HTTP/1.0 with Host", "host", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", 200, 1},
		{"HTTP/1.2", "version", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, 0},
		{"HTTP/2.0 in an HTTP/1 line", "version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, 0},
		{"absolute-form http", "absolute-form", "GET http://x/p HTTP/1.1\r\nHost: y\r\n\r\n", 200, 1},
		{"absolute-form https on a plain port", "absolute-form", "POST https://x/p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200, 1},
		{"absolute-form ftp", "absolute-form", "GET ftp://x/p HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0},
		{"CONNECT", "absolute-form", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405, 0},
		{"OPTIONS *", "absolute-form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 200, 1},
		{"Upgrade refused (no 101), then a pipelined GET", "upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n", 400, 2},
	}
}

// seen is one request as the backend received it.
type seen struct {
	Method, URI string
	XFF         bool
}

// recorder is the backend behind both proxies: it records what reaches it
// and answers 200, or 400 to an Upgrade (it speaks no other protocol).
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seen{r.Method, r.RequestURI, r.Header.Get("X-Forwarded-For") != ""})
	rec.mu.Unlock()
	if r.Header.Get("Upgrade") != "" {
		http.Error(w, "no upgrade here", http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (rec *recorder) take() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

// verdict is what one proxy did with one probe.
type verdict struct {
	Statuses []int // the answers the client read, in order
	Err      string
	Backend  []seen
}

// First returns the first answer's status, or 0 if none came.
func (v verdict) First() int {
	if len(v.Statuses) == 0 {
		return 0
	}
	return v.Statuses[0]
}

// String renders the verdict in one short cell.
func (v verdict) String() string {
	var b strings.Builder
	if len(v.Statuses) == 0 {
		b.WriteString("no answer")
	}
	for i, s := range v.Statuses {
		if i > 0 {
			b.WriteString("+")
		}
		fmt.Fprint(&b, s)
	}
	fmt.Fprintf(&b, " (backend: %d", len(v.Backend))
	for _, s := range v.Backend {
		if !s.XFF {
			b.WriteString(", unparsed " + s.URI)
		}
	}
	b.WriteString(")")
	return b.String()
}

// run sends p to addr, reads every answer until the proxy closes the
// connection (the client half-closes after sending), and collects what the
// backend saw.
func run(addr string, p probe, rec *recorder, settle func()) verdict {
	rec.take()
	var v verdict
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		_, _ = io.WriteString(conn, p.Raw)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if err != io.EOF && len(v.Statuses) == 0 {
				v.Err = err.Error()
			}
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		v.Statuses = append(v.Statuses, resp.StatusCode)
	}
	settle()
	v.Backend = rec.take()
	return v
}
