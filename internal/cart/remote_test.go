package cart

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/internal/pricing"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/memstore"
)

// switchable serves h until down is set; then it drops every connection
// without an answer, like a killed process.
type switchable struct {
	h    http.Handler
	down atomic.Bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	s.h.ServeHTTP(w, r)
}

// newRemoteCart serves a cart that calls a pricing and a catalog service
// over HTTP; it returns the cart's URL and the two services' switches.
func newRemoteCart(t *testing.T) (cartURL string, price, cat *switchable) {
	t.Helper()
	ps, err := pricing.NewServer(pricing.Config{ID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := catalog.NewServer(catalog.Config{ID: "c1", Source: catalog.New(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	price, cat = &switchable{h: ps}, &switchable{h: cs}
	pts, cts := httptest.NewServer(price), httptest.NewServer(cat)
	t.Cleanup(pts.Close)
	t.Cleanup(cts.Close)
	cfg := httpapi.ClientConfig{Timeout: 2 * time.Second, Attempts: 2}
	cfg.URLs = []string{pts.URL}
	pc, err := pricing.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.URLs = []string{cts.URL}
	cc, err := catalog.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	mgr, err := session.NewManager(store, session.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, Config{ID: "r1", StoreName: "memory", Manager: mgr, Store: store, Logger: quiet, Pricer: pc, Products: cc})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL, price, cat
}

func TestCartCallsTheServices(t *testing.T) {
	base, price, cat := newRemoteCart(t)
	shopper := newShopper(t)
	call := func(method, path, body string) response { return do(t, shopper, base, method, path, body) }

	if v := call("POST", "/api/cart/items", `{"sku":"SKU-0002","qty":3}`).cart(t); len(v.Items) != 1 {
		t.Fatalf("add: %+v", v)
	}
	if r := call("POST", "/api/cart/items", `{"sku":"SKU-9999","qty":1}`); r.status != 400 || !strings.Contains(string(r.body), "unknown_sku") {
		t.Errorf("unknown sku via the catalog service: %d %s", r.status, r.body)
	}
	if r := call("GET", "/api/catalog?q=oak+lamp", ""); r.status != 200 || !strings.Contains(string(r.body), `"total":12`) {
		t.Errorf("catalog via the service: %d %.200s", r.status, r.body)
	}
	if r := call("GET", "/api/catalog?q="+strings.Repeat("x", catalog.MaxQueryBytes+1), ""); r.status != 400 || !strings.Contains(string(r.body), "query_too_long") {
		t.Errorf("long query: %d %.200s", r.status, r.body)
	}
	if r := call("POST", "/api/quote", `{"items":[{"sku":"SKU-0001","qty":0}]}`); r.status != 400 || !strings.Contains(string(r.body), "qty_out_of_range") {
		t.Errorf("bad quote via the service: %d %s", r.status, r.body)
	}

	// Pricing down: quote and checkout answer 503 with Retry-After and
	// the cart keeps its line; the cart itself still reads and changes.
	price.down.Store(true)
	for _, path := range []string{"/api/quote", "/api/cart/checkout"} {
		body := `{"items":[{"sku":"SKU-0001","qty":1}]}`
		if path != "/api/quote" {
			body = ""
		}
		r := call("POST", path, body)
		if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "dependency_unavailable") {
			t.Errorf("%s with pricing down: %d %q %s; want 503 dependency_unavailable with Retry-After", path, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if v := call("GET", "/api/cart", "").cart(t); len(v.Items) != 1 || v.Items[0].Qty != 3 {
		t.Fatalf("cart after a failed checkout: %+v, want the line kept", v)
	}
	// Catalog down: an add is refused before anything is written.
	cat.down.Store(true)
	if r := call("POST", "/api/cart/items", `{"sku":"SKU-0002","qty":1}`); r.status != 503 || !strings.Contains(string(r.body), "dependency_unavailable") {
		t.Errorf("add with catalog down: %d %s", r.status, r.body)
	}
	if v := call("PATCH", "/api/cart/items/SKU-0002", `{"qty":5}`).cart(t); v.Items[0].Qty != 5 {
		t.Errorf("set qty with catalog down: %+v (needs no dependency)", v)
	}
	// Both back: checkout prices the cart as it is.
	price.down.Store(false)
	cat.down.Store(false)
	r := call("POST", "/api/cart/checkout", "")
	want := pricing.Price(catalog.New(), []Line{{SKU: "SKU-0002", Qty: 5}})
	if r.status != 200 || !strings.Contains(string(r.body), `"total_cents":`+strconv.FormatInt(want.TotalCents, 10)) {
		t.Errorf("checkout: %d %s, want total %d", r.status, r.body, want.TotalCents)
	}
	if v := call("GET", "/api/cart", "").cart(t); len(v.Items) != 0 {
		t.Errorf("cart after checkout: %+v", v)
	}
}
