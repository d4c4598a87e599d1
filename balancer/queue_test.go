package balancer

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gate is a backend handler that holds every request until opened, and
// records the most requests it held at once.
type gate struct {
	open    chan struct{}
	once    sync.Once
	now     atomic.Int64
	maxSeen atomic.Int64
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) handler(w http.ResponseWriter, r *http.Request) {
	n := g.now.Add(1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	<-g.open
	g.now.Add(-1)
}

type result struct {
	code int
	by   string
	body string
}

func goDo(t *testing.T, url string) chan result {
	c := make(chan result, 1)
	client := newClient(t)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			c <- result{body: err.Error()}
			return
		}
		resp.Body.Close()
		c <- result{code: resp.StatusCode, by: resp.Header.Get("X-Served-By")}
	}()
	return c
}

// TestBackendMaxConnQueues: with one slot per backend, a second request
// waits in the queue while the first holds the slot, and goes through when
// it frees; the backend never holds two at once.
func TestBackendMaxConnQueues(t *testing.T) {
	g := newGate(t)
	be := newTestBackend(t, "r1", g.handler)
	lb, url := startLB(t, Config{Backends: []BackendConfig{be.config()}, BackendMaxConn: 1, QueueTimeout: time.Minute})
	first := goDo(t, url+"/a")
	eventually(t, "the first request at the backend", func() bool { return be.hits.Load() == 1 })
	second := goDo(t, url+"/b")
	eventually(t, "the second request in the queue", func() bool { return lb.queued.Load() == 1 })
	if be.hits.Load() != 1 {
		t.Fatalf("backend saw %d requests while its one slot was taken", be.hits.Load())
	}
	g.release()
	for i, c := range []chan result{first, second} {
		if r := <-c; r.code != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.code, r.body)
		}
	}
	if m := g.maxSeen.Load(); m != 1 {
		t.Fatalf("backend held %d requests at once, limit 1", m)
	}
	if lb.queued.Load() != 0 || be.hits.Load() != 2 {
		t.Fatalf("queued %d, hits %d after both", lb.queued.Load(), be.hits.Load())
	}
}

// TestBackendMaxConnQueueTimeout: a request that waits the whole queue
// timeout gets 503 queue_timeout with Retry-After and never reaches the
// backend.
func TestBackendMaxConnQueueTimeout(t *testing.T) {
	g := newGate(t)
	be := newTestBackend(t, "r1", g.handler)
	lb, url := startLB(t, Config{Backends: []BackendConfig{be.config()}, BackendMaxConn: 1, QueueTimeout: 50 * time.Millisecond})
	first := goDo(t, url+"/a")
	eventually(t, "the first request at the backend", func() bool { return be.hits.Load() == 1 })
	resp, err := newClient(t).Get(url + "/b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || lb.queueTimeouts.Load() != 1 {
		t.Fatalf("got %d Retry-After %q (queue timeouts %d), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), lb.queueTimeouts.Load())
	}
	g.release()
	if r := <-first; r.code != 200 || be.hits.Load() != 1 {
		t.Fatalf("first: %d; backend hits %d, want 1", r.code, be.hits.Load())
	}
}

// TestBackendMaxConnSpills: a full backend is skipped for new clients when
// another has room, without queueing.
func TestBackendMaxConnSpills(t *testing.T) {
	g := newGate(t)
	r1 := newTestBackend(t, "r1", g.handler)
	r2 := newTestBackend(t, "r2", g.handler)
	lb, url := startLB(t, Config{Policy: PolicyLeastRequest, Backends: []BackendConfig{r1.config(), r2.config()}, BackendMaxConn: 1, QueueTimeout: time.Minute})
	a := goDo(t, url+"/a")
	eventually(t, "one request at a backend", func() bool { return r1.hits.Load()+r2.hits.Load() == 1 })
	b := goDo(t, url+"/b")
	eventually(t, "both backends busy", func() bool { return r1.hits.Load() == 1 && r2.hits.Load() == 1 })
	if lb.queued.Load() != 0 {
		t.Fatalf("queued %d with a backend free", lb.queued.Load())
	}
	g.release()
	<-a
	<-b
}

// TestMaxConnsPerBackend: with one pooled connection allowed per backend
// (and no queue), a second request while the first holds the only
// connection gets 503 no_backend with Retry-After, on either engine; once
// the first is answered its connection serves the next request.
func TestMaxConnsPerBackend(t *testing.T) {
	g := newGate(t)
	be := newTestBackend(t, "r1", g.handler)
	_, url := startLB(t, Config{Backends: []BackendConfig{be.config()}, MaxConnsPerBackend: 1})
	t.Cleanup(g.release) // before the balancer's shutdown waits for the held request
	first := goDo(t, url+"/a")
	eventually(t, "the first request at the backend", func() bool { return be.hits.Load() == 1 })
	resp, err := newClient(t).Get(url + "/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "no_backend") {
		t.Fatalf("second request while the only connection is busy: %d %q (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	g.release()
	if r := <-first; r.code != 200 {
		t.Fatalf("first request: %d %s", r.code, r.body)
	}
	if r := <-goDo(t, url+"/c"); r.code != 200 || be.hits.Load() != 2 {
		t.Fatalf("after the first answer: %d %s, backend hits %d (want 2)", r.code, r.body, be.hits.Load())
	}
}
