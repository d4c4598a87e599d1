package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestHotSessionShare drives the workload with a hot session against a
// server that counts requests by session cookie: the busiest session must
// send about the skew's share of the requests, and the shoppers the rest.
func TestHotSessionShare(t *testing.T) {
	var mu sync.Mutex
	bySession := map[string]int{}
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := ""
		if c, err := r.Cookie("s"); err == nil {
			id = c.Value
		} else {
			next++
			id = fmt.Sprint(next)
			http.SetCookie(w, &http.Cookie{Name: "s", Value: id, Path: "/"})
		}
		bySession[id]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"items":[]}`)
	}))
	t.Cleanup(srv.Close)
	skus := make([]string, 16)
	for i := range skus {
		skus[i] = fmt.Sprintf("sku-%d", i)
	}
	const skew = 0.4
	w, err := newWorkload(srv.URL, skus, workloadConfig{rate: 200, seed: 1, think: 20 * time.Millisecond, timeout: 5 * time.Second, measure: 2 * time.Second, hot: skew})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.transport.CloseIdleConnections)
	w.startClock()
	w.run(context.Background())
	mu.Lock()
	defer mu.Unlock()
	total, top := 0, 0
	for _, n := range bySession {
		total += n
		top = max(top, n)
	}
	share := float64(top) / float64(total)
	t.Logf("%d requests in %d sessions; the hot one sent %d (%.2f)", total, len(bySession), top, share)
	if share < skew-0.08 || share > skew+0.08 || len(bySession) < 10 {
		t.Fatalf("hot session share %.2f over %d sessions, want about %.2f", share, len(bySession), skew)
	}
}
