package balancer

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLargeBodyIsStreamed: a body above the buffering threshold reaches the
// backend while the client is still sending it, instead of being held whole
// in the balancer's memory first. Before the fix every body up to 10 MiB
// was buffered, with no bound on how many at once.
func TestLargeBodyIsStreamed(t *testing.T) {
	var received atomic.Int64
	done := make(chan string, 1)
	a := newTestBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			received.Add(int64(n))
			if err != nil {
				break
			}
		}
		sum := fmt.Sprintf("%x", h.Sum(nil))
		done <- sum
		io.WriteString(w, sum)
	})
	_, url := startLB(t, Config{Backends: []BackendConfig{a.config()}})
	conn := dialLB(t, url, 30*time.Second)
	const total = 4 << 20
	body := []byte(strings.Repeat("0123456789abcdef", total/16))
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", total)
	if _, err := conn.Write(body[:1<<20]); err != nil {
		t.Fatal(err)
	}
	// The rest is held back until the backend has seen half of what was
	// sent: only a streaming balancer lets that happen.
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < 512<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("backend received %d bytes of a 4 MiB body whose first MiB was sent: the balancer holds the body", received.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := conn.Write(body[1<<20:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	if resp.StatusCode != 200 || string(got) != want || <-done != want {
		t.Fatalf("status %d, backend hashed %q, want %q", resp.StatusCode, got, want)
	}
}

// TestRequestBodyRules: bodies over the limit get 413 whether announced or
// chunked; a streamed body is still retried when the first backend cannot
// be reached; a client that breaks off its own body is not the backend's
// failure.
func TestRequestBodyRules(t *testing.T) {
	var hashes atomic.Value
	good := newTestBackend(t, "good", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		hashes.Store(fmt.Sprintf("%d:%x", len(b), sha256.Sum256(b)))
		fmt.Fprintf(w, "%d", len(b))
	})
	dead := BackendConfig{ID: "dead", URL: deadURL(t)}
	lb, url := startLB(t, Config{Backends: []BackendConfig{dead, good.config()}, MaxRequestBodySize: 1 << 20, EjectAfter: 2})
	addr := strings.TrimPrefix(url, "http://")

	t.Run("announced too large", func(t *testing.T) {
		code, body := rawExchange(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"+strings.Repeat("x", 10<<10))
		if code != 413 || !strings.Contains(body, "body_too_large") {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("chunked past the limit", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := strings.Repeat("c", 64<<10)
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		b.WriteString("0\r\n\r\n")
		code, body := rawExchange(t, addr, b.String())
		if code != 413 || !strings.Contains(body, "body_too_large") {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("streamed body retried after a refused dial", func(t *testing.T) {
		for i := 0; i < 2; i++ { // round robin starts once on dead, once on good
			payload := strings.Repeat("p", 300<<10)
			c := newClient(t)
			code, _, got := do(t, c, http.MethodPost, url+"/", strings.NewReader(payload))
			want := fmt.Sprintf("%d:%x", len(payload), sha256.Sum256([]byte(payload)))
			if code != 200 || got != fmt.Sprint(len(payload)) || hashes.Load() != want {
				t.Fatalf("got %d %q, backend saw %v", code, got, hashes.Load())
			}
		}
	})
	t.Run("client breaks off its body", func(t *testing.T) {
		for i := 0; i < 4; i++ { // more than EjectAfter
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 900<<10, strings.Repeat("q", 200<<10))
			time.Sleep(20 * time.Millisecond) // let the balancer start streaming (not a synchronisation)
			conn.Close()
		}
		g := lb.defaultGroup.pool.Load().byID["good"]
		eventually(t, "streams ended", func() bool { return g.inflight.Load() == 0 })
		if g.consecFails.Load() != 0 || g.errUpstream.Load() != 0 || !g.Available(time.Now().UnixNano()) {
			t.Fatalf("a client's broken body counted against the backend: fails %d, upstream %d", g.consecFails.Load(), g.errUpstream.Load())
		}
	})
}
