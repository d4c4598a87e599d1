package pricing

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/internal/testenv"
)

// BenchmarkPricing measures one pricing replica on loopback HTTP: each
// request quotes three lines. One op is one HTTP request.
//
//	go test -run '^$' -bench BenchmarkPricing -benchtime 5s ./internal/pricing
func BenchmarkPricing(b *testing.B) {
	srv, err := NewServer(Config{ID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	testenv.HTTPLoad(b, 4, func(w, i int) *http.Request {
		body := fmt.Sprintf(`{"items":[{"sku":"SKU-%04d","qty":1},{"sku":"SKU-0002","qty":3},{"sku":"SKU-0777","qty":2}]}`, 1+(w*31+i)%1000)
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/quote", strings.NewReader(body))
		return req
	})
}

// BenchmarkPricingScaling measures what the capacity model makes of added
// replicas: each replica waits 10 ms per request with 4 slots (at most
// 400 quotes/s, on any machine), and the client spreads over 1, 2 and 4 of
// them. Throughput should grow in proportion to the replicas.
//
//	go test -run '^$' -bench BenchmarkPricingScaling -benchtime 3s ./internal/pricing
func BenchmarkPricingScaling(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			urls := make([]string, n)
			for i := range n {
				srv, err := NewServer(Config{ID: fmt.Sprint("p", i), Limiter: httpapi.NewLimiter(10*time.Millisecond, 4, 256)})
				if err != nil {
					b.Fatal(err)
				}
				hs := httptest.NewServer(srv)
				b.Cleanup(hs.Close)
				urls[i] = hs.URL
			}
			testenv.HTTPLoad(b, 16, func(w, i int) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, urls[(w+i)%n]+"/api/quote", strings.NewReader(`{"items":[{"sku":"SKU-0001","qty":1}]}`))
				return req
			})
		})
	}
}
