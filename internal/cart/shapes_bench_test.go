package cart

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/internal/pricing"
	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/memstore"
)

// BenchmarkQuoteShapes measures POST /api/quote sent to the cart in the two
// shapes: the monolith prices in process; with a pricing service the cart
// forwards the quote over HTTP (one more hop, one more JSON round trip).
// One op is one HTTP request to the cart.
//
//	go test -run '^$' -bench BenchmarkQuoteShapes -benchtime 3s ./internal/cart
func BenchmarkQuoteShapes(b *testing.B) {
	for _, shape := range []string{"monolith", "services"} {
		b.Run("shape="+shape, func(b *testing.B) {
			cfg := Config{ID: "bench", StoreName: "memory", Logger: quiet}
			store := memstore.New()
			b.Cleanup(func() { store.Close() })
			mgr, err := session.NewManager(store, session.Config{Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			cfg.Manager, cfg.Store = mgr, store
			if shape == "services" {
				ps, err := pricing.NewServer(pricing.Config{ID: "p1"})
				if err != nil {
					b.Fatal(err)
				}
				pts := httptest.NewServer(ps)
				b.Cleanup(pts.Close)
				if cfg.Pricer, err = pricing.NewClient(httpapi.ClientConfig{URLs: []string{pts.URL}}); err != nil {
					b.Fatal(err)
				}
			}
			hs := httptest.NewServer(newServer(b, cfg))
			b.Cleanup(hs.Close)
			testenv.HTTPLoad(b, 4, func(w, i int) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, hs.URL+"/api/quote",
					strings.NewReader(`{"items":[{"sku":"SKU-0001","qty":1},{"sku":"SKU-0002","qty":3},{"sku":"SKU-0777","qty":2}]}`))
				return req
			})
		})
	}
}
