package cart

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestJSONEndpointsRefuseFormTypes: a cross-site HTML form can only send
// text/plain, urlencoded or multipart bodies; JSON endpoints refuse them
// (415), so such a form cannot add to a shopper's cart. Before, any
// Content-Type was decoded as JSON and the add took effect.
func TestJSONEndpointsRefuseFormTypes(t *testing.T) {
	ts := newTestServer(t)
	for _, ctype := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		for _, path := range []string{"/api/cart/items", "/api/quote"} {
			body := `{"sku":"SKU-0001","qty":1}`
			if path == "/api/quote" {
				body = `{"items":[{"sku":"SKU-0001","qty":1}]}`
			}
			req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := ts.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(b), "unsupported_media_type") {
				t.Fatalf("POST %s as %q: %d %s, want 415", path, ctype, resp.StatusCode, b)
			}
		}
	}
	if items := ts.do(t, "GET", "/api/cart", "").cart(t).Items; len(items) != 0 {
		t.Fatalf("a refused form post changed the cart: %v", items)
	}
	if r := ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`); r.status != 200 {
		t.Fatalf("JSON add: %d %s", r.status, r.body)
	}
}
