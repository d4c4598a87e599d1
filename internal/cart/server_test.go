package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/internal/pricing"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/storetest"
)

// flakyStore is a memstore that can be switched down (every call fails with
// ErrUnavailable) or made to lose every compare-and-swap.
type flakyStore = storetest.Flaky

func newFlakyStore(t *testing.T) *flakyStore {
	t.Helper()
	m := memstore.New()
	t.Cleanup(func() { m.Close() })
	return storetest.NewFlaky(m)
}

// testServer is a cart Server on a loopback port with one shopper (a client
// with a cookie jar).
type testServer struct {
	*httptest.Server
	srv    *Server
	store  *flakyStore
	client *http.Client
}

// newTestServer serves a cart Server with replica id "r1" over a flakyStore.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	store := newFlakyStore(t)
	mgr, err := session.NewManager(store, session.Config{MaxAttempts: 3, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{store: store}
	ts.srv = newServer(t, Config{ID: "r1", StoreName: "memory", Manager: mgr, Store: store, Logger: quiet})
	ts.Server = httptest.NewServer(ts.srv)
	t.Cleanup(ts.Close)
	ts.client = newShopper(t)
	return ts
}

// quiet discards the log lines of servers under test.
var quiet = slog.New(slog.DiscardHandler)

func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// newShopper returns an HTTP client with its own cookie jar.
func newShopper(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// response is an answer of the cart service.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request as client to base and reads the whole answer.
func do(t *testing.T, client *http.Client, base, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (ts *testServer) do(t *testing.T, method, path, body string) response {
	t.Helper()
	return do(t, ts.client, ts.URL, method, path, body)
}

// cart decodes a CartView answer, failing the test on anything else.
func (r response) cart(t *testing.T) CartView {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var v CartView
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("not a cart: %v: %s", err, r.body)
	}
	return v
}

// errorCode decodes a JSON error answer and returns its code, failing the
// test when the body is not {"error":{"code","message"}}.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e httpapi.ErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("status %d: body is not a JSON error (%v): %s", r.status, err, r.body)
	}
	return e.Error.Code
}

func lines(v CartView) string {
	var b strings.Builder
	for _, it := range v.Items {
		fmt.Fprintf(&b, "%s×%d ", it.SKU, it.Qty)
	}
	return strings.TrimSpace(b.String())
}

func TestCartFlow(t *testing.T) {
	ts := newTestServer(t)
	steps := []struct {
		method, path, body string
		want               string // the cart's lines after the step
	}{
		{"GET", "/api/cart", "", ""},
		{"POST", "/api/cart/items", `{"sku":"SKU-0001","qty":2}`, "SKU-0001×2"},
		{"POST", "/api/cart/items", `{"sku":"SKU-0002","qty":1}`, "SKU-0001×2 SKU-0002×1"},
		{"POST", "/api/cart/items", `{"sku":"SKU-0001","qty":3}`, "SKU-0001×5 SKU-0002×1"},
		{"PATCH", "/api/cart/items/SKU-0002", `{"qty":7}`, "SKU-0001×5 SKU-0002×7"},
		{"POST", "/api/cart/items", `{"sku":"SKU-0003","qty":99}`, "SKU-0001×5 SKU-0002×7 SKU-0003×99"},
		{"DELETE", "/api/cart/items/SKU-0001", "", "SKU-0002×7 SKU-0003×99"},
		{"PATCH", "/api/cart/items/SKU-0003", `{"qty":0}`, "SKU-0002×7"},
		{"GET", "/api/cart", "", "SKU-0002×7"},
	}
	for _, st := range steps {
		r := ts.do(t, st.method, st.path, st.body)
		v := r.cart(t)
		if got := lines(v); got != st.want {
			t.Fatalf("%s %s %s: cart %q, want %q", st.method, st.path, st.body, got, st.want)
		}
		if v.ServedBy != "r1" || r.header.Get("X-Served-By") != "r1" {
			t.Errorf("%s %s: served_by %q, X-Served-By %q", st.method, st.path, v.ServedBy, r.header.Get("X-Served-By"))
		}
		var total int64
		for _, it := range v.Items {
			p, _ := catalog.New().Lookup(it.SKU)
			if it.Name != p.Name || it.PriceCents != p.PriceCents {
				t.Errorf("item %+v does not match the catalog's %+v", it, p)
			}
			total += it.PriceCents * int64(it.Qty)
		}
		if v.TotalCents != total {
			t.Errorf("total_cents %d, want %d", v.TotalCents, total)
		}
	}

	r := ts.do(t, "POST", "/api/cart/checkout", "")
	var order struct {
		OrderID    string `json:"order_id"`
		TotalCents int64  `json:"total_cents"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &order) != nil || !strings.HasPrefix(order.OrderID, "ord_") {
		t.Fatalf("checkout: %d %s", r.status, r.body)
	}
	if want := pricing.Price(catalog.New(), []Line{{SKU: "SKU-0002", Qty: 7}}).TotalCents; order.TotalCents != want {
		t.Errorf("order total %d, want %d", order.TotalCents, want)
	}
	if got := lines(ts.do(t, "GET", "/api/cart", "").cart(t)); got != "" {
		t.Errorf("cart after checkout: %q, want empty", got)
	}
}

func TestBadRequestsAreRefusedWithoutWriting(t *testing.T) {
	big := `{"sku":"SKU-0001","qty":1,"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		allow                    string
	}{
		{"unknown route", "GET", "/api/nope", "", 404, "not_found", ""},
		{"unknown top route", "GET", "/favicon.ico", "", 404, "not_found", ""},
		{"no sku in path", "DELETE", "/api/cart/items/", "", 404, "not_found", ""},
		{"wrong method on cart", "PUT", "/api/cart", "", 405, "method_not_allowed", "GET, HEAD"},
		{"wrong method on items", "GET", "/api/cart/items", "", 405, "method_not_allowed", "POST"},
		{"wrong method on a line", "POST", "/api/cart/items/SKU-0001", `{"qty":1}`, 405, "method_not_allowed", "PATCH, DELETE"},
		{"wrong method on checkout", "GET", "/api/cart/checkout", "", 405, "method_not_allowed", "POST"},
		{"wrong method on catalog", "DELETE", "/api/catalog", "", 405, "method_not_allowed", "GET, HEAD"},
		{"bad JSON", "POST", "/api/cart/items", `{"sku":`, 400, "bad_json", ""},
		{"empty body", "POST", "/api/cart/items", "", 400, "bad_json", ""},
		{"JSON array", "POST", "/api/cart/items", `[1,2]`, 400, "bad_json", ""},
		{"qty as string", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":"2"}`, 400, "bad_json", ""},
		{"qty as float", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1.5}`, 400, "bad_json", ""},
		{"huge qty", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1e30}`, 400, "bad_json", ""},
		{"unknown field", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1,"price":0}`, 400, "bad_json", ""},
		{"two values", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}{}`, 400, "bad_json", ""},
		{"null body", "POST", "/api/cart/items", `null`, 400, "bad_json", ""},
		{"empty object", "POST", "/api/cart/items", `{}`, 400, "bad_json", ""},
		{"empty object, spaced", "POST", "/api/cart/items", ` { } `, 400, "bad_json", ""},
		{"quote null", "POST", "/api/quote", `null`, 400, "bad_json", ""},
		{"unknown sku", "POST", "/api/cart/items", `{"sku":"SKU-9999","qty":1}`, 400, "unknown_sku", ""},
		{"no sku", "POST", "/api/cart/items", `{"qty":1}`, 400, "unknown_sku", ""},
		{"qty 0", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":0}`, 400, "qty_out_of_range", ""},
		{"no qty", "POST", "/api/cart/items", `{"sku":"SKU-0001"}`, 400, "qty_out_of_range", ""},
		{"qty 100", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":100}`, 400, "qty_out_of_range", ""},
		{"qty negative", "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":-1}`, 400, "qty_out_of_range", ""},
		{"body over 64 KiB", "POST", "/api/cart/items", big, 413, "body_too_large", ""},
		{"patch without qty", "PATCH", "/api/cart/items/SKU-0001", `{}`, 400, "bad_json", ""},
		{"patch qty 100", "PATCH", "/api/cart/items/SKU-0001", `{"qty":100}`, 400, "qty_out_of_range", ""},
		{"patch a missing line", "PATCH", "/api/cart/items/SKU-0001", `{"qty":1}`, 404, "no_such_line", ""},
		{"delete a missing line", "DELETE", "/api/cart/items/SKU-0001", "", 404, "no_such_line", ""},
		{"checkout an empty cart", "POST", "/api/cart/checkout", "", 400, "empty_cart", ""},
		{"quote bad JSON", "POST", "/api/quote", `nope`, 400, "bad_json", ""},
		{"quote unknown sku", "POST", "/api/quote", `{"items":[{"sku":"X","qty":1}]}`, 400, "unknown_sku", ""},
		{"quote qty 0", "POST", "/api/quote", `{"items":[{"sku":"SKU-0001","qty":0}]}`, 400, "qty_out_of_range", ""},
		{"quote too large", "POST", "/api/quote", strings.Replace(big, `"sku"`, `"items":[],"sku"`, 1), 413, "body_too_large", ""},
		{"catalog bad limit", "GET", "/api/catalog?limit=0", "", 400, "bad_query", ""},
		{"catalog bad offset", "GET", "/api/catalog?offset=x", "", 400, "bad_query", ""},
		{"catalog q over 200 bytes", "GET", "/api/catalog?q=" + strings.Repeat("a", 201), "", 400, "query_too_long", ""},
		{"catalog q of 100 KB", "GET", "/api/catalog?q=" + strings.Repeat("oak+", 25<<10), "", 400, "query_too_long", ""},
	}
	ts := newTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(t, tt.method, tt.path, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
			if got := r.header.Get("X-Served-By"); got != "r1" {
				t.Errorf("X-Served-By %q, want r1", got)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
		})
	}
	// No bad request may have created a session or set a cookie.
	if n, err := ts.store.Count(context.Background()); err != nil || n != 0 {
		t.Errorf("store holds %d sessions (err %v) after bad requests only, want 0", n, err)
	}
	u := ts.URL + "/"
	if req, _ := http.NewRequest("GET", u, nil); len(ts.client.Jar.Cookies(req.URL)) != 0 {
		t.Error("a bad request set a session cookie")
	}
}

func TestRefusedChangeLeavesTheCartAsItWas(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":90}`).cart(t)
	ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0002","qty":1}`).cart(t)
	for _, body := range []string{`{"sku":"SKU-0001","qty":10}`, `{"sku":"SKU-9999","qty":1}`} {
		if r := ts.do(t, "POST", "/api/cart/items", body); r.status != http.StatusBadRequest {
			t.Fatalf("POST %s: %d, want 400", body, r.status)
		}
	}
	if r := ts.do(t, "PATCH", "/api/cart/items/SKU-0003", `{"qty":1}`); r.status != http.StatusNotFound {
		t.Fatalf("PATCH of a missing line: %d, want 404", r.status)
	}
	if got := lines(ts.do(t, "GET", "/api/cart", "").cart(t)); got != "SKU-0001×90 SKU-0002×1" {
		t.Errorf("cart %q after refused changes, want it unchanged", got)
	}
}

func TestConcurrentAddsAllTakeEffect(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`).cart(t)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sku := fmt.Sprintf("SKU-%04d", 2+i%2)
			req, _ := http.NewRequest("POST", ts.URL+"/api/cart/items", strings.NewReader(`{"sku":"`+sku+`","qty":1}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := ts.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("concurrent add:", e)
	}
	// With MaxAttempts 3 some adds may give up with 409; each 200 must count.
	v := ts.do(t, "GET", "/api/cart", "").cart(t)
	got := map[string]int{}
	for _, it := range v.Items {
		got[it.SKU] = it.Qty
	}
	if want := map[string]int{"SKU-0001": 1, "SKU-0002": n / 2, "SKU-0003": n / 2}; !maps.Equal(got, want) {
		t.Errorf("cart %v after %d concurrent adds, want %v", got, n, want)
	}
}

func TestStoreDownIs503AndRecovers(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":2}`).cart(t)
	ts.store.Down.Store(true)
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/api/cart", ""},
		{"POST", "/api/cart/items", `{"sku":"SKU-0002","qty":1}`},
		{"PATCH", "/api/cart/items/SKU-0001", `{"qty":5}`},
		{"DELETE", "/api/cart/items/SKU-0001", ""},
		{"POST", "/api/cart/checkout", ""},
		{"GET", "/readyz", ""},
	} {
		r := ts.do(t, req.method, req.path, req.body)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the store down: %d, Retry-After %q; want 503 with Retry-After", req.method, req.path, r.status, r.header.Get("Retry-After"))
		}
		if code := r.errorCode(t); code != "store_unavailable" {
			t.Errorf("%s %s: code %q", req.method, req.path, code)
		}
	}
	// Stateless endpoints do not need the store.
	if r := ts.do(t, "POST", "/api/quote", `{"items":[{"sku":"SKU-0001","qty":1}]}`); r.status != http.StatusOK {
		t.Errorf("quote with the store down: %d", r.status)
	}
	ts.store.Down.Store(false)
	if got := lines(ts.do(t, "GET", "/api/cart", "").cart(t)); got != "SKU-0001×2" {
		t.Errorf("cart after the store came back: %q, want SKU-0001×2", got)
	}
	if r := ts.do(t, "GET", "/readyz", ""); r.status != http.StatusOK {
		t.Errorf("readyz after the store came back: %d", r.status)
	}
	m := string(ts.do(t, "GET", "/metrics", "").body)
	for _, want := range []string{`{op="load"} 1`, `{op="update"} 3`, `{op="checkout"} 1`, `{op="ping"} 1`} {
		if !strings.Contains(m, "statelab_app_store_errors_total"+want) {
			t.Errorf("metrics lack store errors %s:\n%s", want, grep(m, "store_errors"))
		}
	}
}

func TestUnresolvedConflictIs409(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":2}`).cart(t)
	ts.store.Conflict.Store(true)
	r := ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`)
	if r.status != http.StatusConflict || r.errorCode(t) != "conflict" {
		t.Fatalf("status %d %s, want 409 conflict", r.status, r.body)
	}
	ts.store.Conflict.Store(false)
	if got := lines(ts.do(t, "GET", "/api/cart", "").cart(t)); got != "SKU-0001×2" {
		t.Errorf("cart %q after a refused conflicting write, want SKU-0001×2", got)
	}
}

func TestSealedCookieCartMovesBetweenReplicas(t *testing.T) {
	sealer, err := cookiestore.FromSecret("a shared secret of the two replicas")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, id := range []string{"a", "b"} {
		mgr, err := session.NewClientManager(sealer, session.Config{})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(newServer(t, Config{ID: id, StoreName: "cookie", Manager: mgr, Logger: quiet}))
		t.Cleanup(hs.Close)
		urls = append(urls, hs.URL)
	}
	// Both servers are on 127.0.0.1, so the jar sends the cookie to both.
	shopper := newShopper(t)
	do(t, shopper, urls[0], "POST", "/api/cart/items", `{"sku":"SKU-0010","qty":3}`).cart(t)
	v := do(t, shopper, urls[1], "GET", "/api/cart", "").cart(t)
	if lines(v) != "SKU-0010×3" || v.ServedBy != "b" {
		t.Errorf("replica b sees cart %q served by %q, want SKU-0010×3 by b", lines(v), v.ServedBy)
	}
	r := do(t, shopper, urls[1], "GET", "/api/replica", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"sessions":null`) {
		t.Errorf("replica status for a cookie store: %d %s, want sessions null", r.status, r.body)
	}
}

func TestCatalogEndpoint(t *testing.T) {
	ts := newTestServer(t)
	var all catalog.Page
	r := ts.do(t, "GET", "/api/catalog", "")
	if err := json.Unmarshal(r.body, &all); err != nil || r.status != http.StatusOK {
		t.Fatalf("catalog: %d %v", r.status, err)
	}
	if len(all.Products) != catalog.Size || all.Products[0].SKU != "SKU-0001" || all.Products[0].Name == "" {
		t.Fatalf("catalog has %d products, first %+v", len(all.Products), all.Products[0])
	}
	var page catalog.Page
	r = ts.do(t, "GET", "/api/catalog?q=lamp&offset=10&limit=5", "")
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	wantPage, wantTotal := catalog.New().Search("lamp", 10, 5)
	if page.Total != wantTotal || len(page.Products) != 5 || page.Products[0] != wantPage[0] {
		t.Errorf("page %+v, want %d total starting %+v", page, wantTotal, wantPage[0])
	}
	r = ts.do(t, "GET", "/api/catalog?q=zzz", "")
	if !strings.Contains(string(r.body), `"products":[]`) {
		t.Errorf("empty search: %s, want an empty list, not null", r.body)
	}
}

func TestQuoteEndpoint(t *testing.T) {
	ts := newTestServer(t)
	r := ts.do(t, "POST", "/api/quote", `{"items":[{"sku":"SKU-0001","qty":2},{"sku":"SKU-0002","qty":1}]}`)
	var q pricing.Quote
	if err := json.Unmarshal(r.body, &q); err != nil || r.status != http.StatusOK {
		t.Fatalf("quote: %d %s", r.status, r.body)
	}
	want := pricing.Price(catalog.New(), []Line{{SKU: "SKU-0001", Qty: 2}, {SKU: "SKU-0002", Qty: 1}})
	if q.TotalCents != want.TotalCents || q.TaxCents != want.TaxCents || len(q.Items) != 2 {
		t.Errorf("quote %+v, want %+v", q, want)
	}
	if r.header.Get("Set-Cookie") != "" {
		t.Error("the stateless quote set a cookie")
	}
}

func TestShopPageAndOperationalEndpoints(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		method, path string
		status       int
		contentType  string
		contains     string
	}{
		{"GET", "/", 200, "text/html", "statelab shop"},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/static/shop.js", 200, "javascript", "X-Served-By"},
		{"GET", "/static/shop.css", 200, "text/css", "visually-hidden"},
		{"GET", "/static/nope.js", 404, "application/json", "not_found"},
		{"GET", "/static/", 404, "application/json", "not_found"},
		{"GET", "/healthz", 200, "application/json", `"ok"`},
		{"GET", "/readyz", 200, "application/json", `"ready"`},
		{"GET", "/api/replica", 200, "application/json", `"id":"r1","store":"memory","sessions":0`},
		{"GET", "/metrics", 200, "text/plain", "statelab_app_inflight_requests"},
	}
	for _, tt := range tests {
		r := ts.do(t, tt.method, tt.path, "")
		if r.status != tt.status || !strings.Contains(r.header.Get("Content-Type"), tt.contentType) || !strings.Contains(string(r.body), tt.contains) {
			t.Errorf("%s %s: %d %q, want %d %q containing %q", tt.method, tt.path, r.status, r.header.Get("Content-Type"), tt.status, tt.contentType, tt.contains)
		}
		if r.header.Get("X-Served-By") != "r1" {
			t.Errorf("%s %s: no X-Served-By", tt.method, tt.path)
		}
		if health := tt.path == "/healthz" || tt.path == "/readyz"; health && r.header.Get(httpapi.InstanceHeader) != httpapi.Instance() {
			t.Errorf("%s %s: %s %q, want the process's %q", tt.method, tt.path, httpapi.InstanceHeader, r.header.Get(httpapi.InstanceHeader), httpapi.Instance())
		}
	}
	ts.srv.Drain()
	if r := ts.do(t, "GET", "/readyz", ""); r.status != http.StatusServiceUnavailable || r.errorCode(t) != "draining" {
		t.Errorf("readyz while draining: %d %s", r.status, r.body)
	}
	m := string(ts.do(t, "GET", "/metrics", "").body)
	if !strings.Contains(m, `statelab_app_requests_total{code="200",route="page"} 2`) {
		t.Errorf("metrics do not count the page requests:\n%s", grep(m, "requests_total"))
	}
}

func TestNewServerValidates(t *testing.T) {
	mgr, err := session.NewManager(memstore.New(), session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{{Manager: mgr}, {ID: "x"}, {ID: "x", Manager: mgr, StoreTimeout: -1}} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) accepted an invalid config", cfg)
		}
	}
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestFullCartFitsInASealedCookie(t *testing.T) {
	sealer, err := cookiestore.FromSecret("a secret for the full-cart test")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := session.NewClientManager(sealer, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(newServer(t, Config{ID: "c", StoreName: "cookie", Manager: mgr, Logger: quiet}))
	t.Cleanup(hs.Close)
	shopper := newShopper(t)
	for i := range MaxLines {
		body := fmt.Sprintf(`{"sku":"SKU-%04d","qty":99}`, catalog.Size-i)
		if r := do(t, shopper, hs.URL, "POST", "/api/cart/items", body); r.status != http.StatusOK {
			t.Fatalf("add line %d: %d %s", i+1, r.status, r.body)
		}
	}
	if v := do(t, shopper, hs.URL, "GET", "/api/cart", "").cart(t); len(v.Items) != MaxLines {
		t.Fatalf("cart has %d lines, want %d", len(v.Items), MaxLines)
	}
	r := do(t, shopper, hs.URL, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`)
	if r.status != http.StatusBadRequest || r.errorCode(t) != "cart_full" {
		t.Errorf("line %d: %d %s, want 400 cart_full", MaxLines+1, r.status, r.body)
	}
}
