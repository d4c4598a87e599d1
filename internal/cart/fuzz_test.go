package cart

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzCartAPI sends arbitrary bodies and SKUs to the JSON handlers and
// checks the API's promises: never a 500, always X-Served-By, every error a
// JSON {"error":{"code","message"}}, and a refused request changes nothing.
func FuzzCartAPI(f *testing.F) {
	seeds := []struct {
		op   uint8
		sku  string
		body string
	}{
		{0, "", `{"sku":"SKU-0001","qty":1}`},
		{0, "", `{"sku":"SKU-0001","qty":99}`},
		{0, "", `{"sku":"SKU-0001","qty":100}`},
		{0, "", `{"sku":"SKU-9999","qty":1}`},
		{0, "", `{"sku":"SKU-0001","qty":-1}`},
		{0, "", `{"sku":"SKU-0001","qty":1e400}`},
		{0, "", `{"sku":"SKU-0001","qty":1}{}`},
		{0, "", `{"sku":"\u0000","qty":1}`},
		{0, "", `[`},
		{0, "", `null`},
		{1, "SKU-0001", `{"qty":0}`},
		{1, "SKU-0001", `{"qty":50}`},
		{1, "SKU-0001", `{"qty":null}`},
		{1, "%00", `{"qty":1}`},
		{2, "SKU-0001", ``},
		{2, "../../etc", ``},
		{3, "", ``},
		{3, "", `{"x":1}`},
		{4, "", `{"items":[{"sku":"SKU-0001","qty":2}]}`},
		{4, "", `{"items":[{"sku":"SKU-0001","qty":0}]}`},
		{4, "", `{"items":null}`},
	}
	for _, s := range seeds {
		f.Add(s.op, s.sku, s.body)
	}
	f.Fuzz(func(t *testing.T, op uint8, sku, body string) {
		ts := newTestServer(t)
		// Start from a known cart.
		ts.do(t, "POST", "/api/cart/items", `{"sku":"SKU-0001","qty":2}`).cart(t)
		before := lines(ts.do(t, "GET", "/api/cart", "").cart(t))

		path := "/api/cart/items/" + url.PathEscape(sku)
		var method string
		switch op % 5 {
		case 0:
			method, path = "POST", "/api/cart/items"
		case 1:
			method = "PATCH"
		case 2:
			method = "DELETE"
		case 3:
			method, path = "POST", "/api/cart/checkout"
		case 4:
			method, path = "POST", "/api/quote"
		}
		r := ts.do(t, method, path, body)
		if r.status >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, r.status, r.body)
		}
		if r.header.Get("X-Served-By") != "r1" {
			t.Fatalf("%s %s: no X-Served-By", method, path)
		}
		if !json.Valid(r.body) {
			t.Fatalf("%s %s %q: body is not JSON: %q", method, path, body, r.body)
		}
		if r.status != http.StatusOK {
			r.errorCode(t)
			after := lines(ts.do(t, "GET", "/api/cart", "").cart(t))
			if after != before {
				t.Fatalf("%s %s %q answered %d but changed the cart from %q to %q", method, path, body, r.status, before, after)
			}
		} else if strings.HasPrefix(path, "/api/cart") {
			// A success must leave a valid cart behind.
			ts.do(t, "GET", "/api/cart", "").cart(t)
		}
	})
}
