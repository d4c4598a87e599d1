package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppCheckoutLedgerRefusesReplayedCookie: two --store cookie replicas
// sharing a --checkout-ledger refuse a second checkout of a cart whose
// sealed cookie was saved before the first (409 already_checked_out);
// without the ledger the same replay places a second order.
func TestAppCheckoutLedgerRefusesReplayedCookie(t *testing.T) {
	const secret = "ledger-test-secret-0123456789abcdef"
	post := func(base, path, body string, c *http.Cookie) (int, *http.Cookie) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c != nil {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var set *http.Cookie
		if cs := resp.Cookies(); len(cs) > 0 {
			set = cs[0]
		}
		return resp.StatusCode, set
	}
	replay := func(a, b string) int {
		t.Helper()
		code, saved := post(a, "/api/cart/items", `{"sku":"SKU-0001","qty":2}`, nil)
		if code != http.StatusOK || saved == nil {
			t.Fatalf("add: %d, cookie %v", code, saved)
		}
		if code, _ := post(a, "/api/cart/checkout", "", saved); code != http.StatusOK {
			t.Fatalf("first checkout: %d", code)
		}
		code, _ = post(b, "/api/cart/checkout", "", saved)
		return code
	}

	plainA, _, _ := startApp(t, "--store", "cookie", "--secret", secret)
	plainB, _, _ := startApp(t, "--store", "cookie", "--secret", secret)
	if code := replay(plainA, plainB); code != http.StatusOK {
		t.Errorf("replayed checkout without a ledger: %d, want 200 (the property the ledger removes)", code)
	}

	db := filepath.Join(t.TempDir(), "ledger.db")
	a, _, _ := startApp(t, "--store", "cookie", "--secret", secret, "--checkout-ledger", "sqlite", "--sqlite", db)
	b, _, _ := startApp(t, "--store", "cookie", "--secret", secret, "--checkout-ledger", "sqlite", "--sqlite", db)
	if code := replay(a, b); code != http.StatusConflict {
		t.Errorf("replayed checkout with a shared ledger: %d, want 409", code)
	}
}
