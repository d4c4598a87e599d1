package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

// gate is a handler that holds every request until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.entered <- struct{}{}
	<-g.release
	w.WriteHeader(http.StatusNoContent)
}

func TestLimiterQueuesThenRefuses(t *testing.T) {
	l := NewLimiter(0, 1, 1)
	g := newGate()
	hs := httptest.NewServer(l.Wrap(g))
	t.Cleanup(hs.Close)

	statuses := make(chan int, 2)
	get := func() {
		resp, err := http.Get(hs.URL)
		if err != nil {
			t.Error(err)
			statuses <- 0
			return
		}
		resp.Body.Close()
		statuses <- resp.StatusCode
	}
	go get()
	<-g.entered // the first request holds the only slot
	go get()
	testenv.Eventually(t, 10*time.Second, "the second request to queue", func() bool { return l.Queued() == 1 })
	if l.Running() != 1 {
		t.Errorf("Running = %d, want 1", l.Running())
	}

	resp, err := http.Get(hs.URL) // no slot, no queue place
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if l.Rejected() != 1 {
		t.Errorf("Rejected = %d, want 1", l.Rejected())
	}

	g.release <- struct{}{} // the first finishes ...
	<-g.entered             // ... and the queued one runs
	if l.Queued() != 0 {
		t.Errorf("Queued = %d after the queued request started", l.Queued())
	}
	g.release <- struct{}{}
	for range 2 {
		if s := <-statuses; s != http.StatusNoContent {
			t.Errorf("admitted request answered %d", s)
		}
	}
	testenv.Eventually(t, 10*time.Second, "slots to be released", func() bool { return l.Running() == 0 })
}

func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(0, 0, 0)
	g := newGate()
	h := l.Wrap(g)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}()
	}
	for range 5 {
		<-g.entered // all five run at once
	}
	if l.Running() != 5 {
		t.Errorf("Running = %d, want 5", l.Running())
	}
	close(g.release)
	wg.Wait()
	if l.Running() != 0 || l.Rejected() != 0 {
		t.Errorf("after: Running %d, Rejected %d", l.Running(), l.Rejected())
	}
}

func TestLimiterWork(t *testing.T) {
	called := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called++ })

	// A request whose client has gone is dropped during its work wait.
	l := NewLimiter(time.Hour, 1, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Wrap(next).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if called != 0 || l.Running() != 0 {
		t.Errorf("cancelled request: handler called %d times, Running %d", called, l.Running())
	}

	// A live request waits, then runs.
	l = NewLimiter(time.Millisecond, 1, 0)
	rec := httptest.NewRecorder()
	l.Wrap(next).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if called != 1 || rec.Code != http.StatusOK {
		t.Errorf("handler called %d times, status %d", called, rec.Code)
	}
}

func TestLimiterNegativeValues(t *testing.T) {
	l := NewLimiter(-time.Second, -1, -1)
	rec := httptest.NewRecorder()
	l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("status %d", rec.Code)
	}
}
