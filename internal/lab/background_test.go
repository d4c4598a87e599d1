package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackground(t *testing.T) {
	var carts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/catalog" {
			var p []string
			for i := range 20 {
				p = append(p, fmt.Sprintf(`{"sku":"S%02d"}`, i))
			}
			fmt.Fprintf(w, `{"products":[%s]}`, strings.Join(p, ","))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/cart") {
			carts.Add(1)
		}
		fmt.Fprint(w, `{"items":[]}`)
	}))
	t.Cleanup(srv.Close)

	if _, err := StartBackground(context.Background(), srv.URL, -1); err == nil {
		t.Fatal("StartBackground accepted a negative rate")
	}
	b, err := StartBackground(context.Background(), srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// At rate 0 nothing is sent; after SetRate, shoppers arrive.
	b.SetRate(200)
	deadline := time.Now().Add(10 * time.Second)
	for carts.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d cart requests within 10s at 200/s", carts.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits for every request: none arrive afterwards.
	n := carts.Load()
	srv.Close()
	if carts.Load() != n {
		t.Fatalf("requests arrived after Close: %d then %d", n, carts.Load())
	}
}
