//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestProxies runs one loop in front of two backends and checks round
// robin, the added X-Forwarded-For, request bodies and a large streamed
// answer.
func TestProxies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	var addrs []string
	for _, id := range []string{"b1", "b2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Served-By", id)
			w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
			if r.URL.Path == "/big" {
				w.Header().Set("Content-Length", fmt.Sprint(len(big))) // the spike refuses chunked answers
				_, _ = w.Write(big)
				return
			}
			_, _ = w.Write(append([]byte(r.Method+" "), body...))
		}))
		t.Cleanup(srv.Close)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	la, err := sockaddr(listen)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := sockaddr(addrs[0])
	b2, _ := sockaddr(addrs[1])
	l, err := newLoop(la, []unix.Sockaddr{b1, b2})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.run() }()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		resp, err := client.Post("http://"+listen+"/", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "POST hello" || resp.Header.Get("X-Seen-XFF") != "127.0.0.1" {
			t.Fatalf("answer %q, X-Forwarded-For seen %q", body, resp.Header.Get("X-Seen-XFF"))
		}
		seen[resp.Header.Get("X-Served-By")]++
	}
	if seen["b1"] != 3 || seen["b2"] != 3 {
		t.Fatalf("round robin: %v, want 3 each", seen)
	}
	resp, err := client.Get("http://" + listen + "/big")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, big) {
		t.Fatalf("1 MiB answer: got %d bytes, not the backend's", len(body))
	}
}
