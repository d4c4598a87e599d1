package cart

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
)

// sealedReplicas serves two cart replicas over sealed cookies sharing one
// secret; with ledger they share that checkout ledger too.
func sealedReplicas(t *testing.T, ledger *Ledger) []string {
	t.Helper()
	sealer, err := cookiestore.FromSecret("a shared secret of the two replicas")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, id := range []string{"a", "b"} {
		mgr, err := session.NewClientManager(sealer, session.Config{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(newServer(t, Config{ID: id, StoreName: "cookie", Manager: mgr, Logger: quiet, Ledger: ledger}))
		t.Cleanup(hs.Close)
		urls = append(urls, hs.URL)
	}
	return urls
}

// replayer returns a new client holding the cookies shopper holds for base
// now: what a client that saved its cookies and sends them later has.
func replayer(t *testing.T, shopper *http.Client, base string) *http.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	saved := shopper.Jar.Cookies(u)
	if len(saved) == 0 {
		t.Fatal("the shopper holds no cookie")
	}
	c := newShopper(t)
	c.Jar.SetCookies(u, saved)
	return c
}

// checkoutThenReplay adds a line on replica 0, saves the cookie, checks out
// on replica 0, and sends the saved cookie to replica 1: it returns what
// the replayed cookie's GET /api/cart and checkout were answered.
func checkoutThenReplay(t *testing.T, urls []string) (cart CartView, again response) {
	t.Helper()
	shopper := newShopper(t)
	do(t, shopper, urls[0], "POST", "/api/cart/items", `{"sku":"SKU-0010","qty":2}`).cart(t)
	old := replayer(t, shopper, urls[0])
	if r := do(t, shopper, urls[0], "POST", "/api/cart/checkout", ""); r.status != http.StatusOK {
		t.Fatalf("first checkout: %d %s", r.status, r.body)
	}
	if got := lines(do(t, shopper, urls[1], "GET", "/api/cart", "").cart(t)); got != "" {
		t.Fatalf("the shopper's cart after checkout: %q, want empty", got)
	}
	cart = do(t, old, urls[1], "GET", "/api/cart", "").cart(t)
	return cart, do(t, old, urls[1], "POST", "/api/cart/checkout", "")
}

// TestReplayedSealedCookieChecksOutAgain is the property of client-held
// state the ledger is for: without it, a cookie saved before checkout
// brings the cart back and orders it a second time.
func TestReplayedSealedCookieChecksOutAgain(t *testing.T) {
	cart, again := checkoutThenReplay(t, sealedReplicas(t, nil))
	if lines(cart) != "SKU-0010×2" {
		t.Errorf("replayed cookie shows cart %q, want SKU-0010×2 (the cart as saved)", lines(cart))
	}
	if again.status != http.StatusOK {
		t.Errorf("second checkout without a ledger: %d %s, want 200 (a second order)", again.status, again.body)
	}
}

// TestLedgerRefusesReplayedCheckout: with a ledger the replicas share, the
// replayed cookie's cart is still shown (reads stay stateless) but cannot
// be ordered again, and the answer empties it.
func TestLedgerRefusesReplayedCheckout(t *testing.T) {
	urls := sealedReplicas(t, NewLedger(newFlakyStore(t), 0))
	cart, again := checkoutThenReplay(t, urls)
	if lines(cart) != "SKU-0010×2" {
		t.Errorf("replayed cookie shows cart %q, want SKU-0010×2 (reads do not consult the ledger)", lines(cart))
	}
	if again.status != http.StatusConflict || again.errorCode(t) != "already_checked_out" {
		t.Fatalf("second checkout with a ledger: %d %s, want 409 already_checked_out", again.status, again.body)
	}
	// The 409 carries a cookie holding the emptied cart.
	stale := newShopper(t)
	u, _ := url.Parse(urls[1])
	stale.Jar.SetCookies(u, (&http.Response{Header: again.header}).Cookies())
	if got := lines(do(t, stale, urls[1], "GET", "/api/cart", "").cart(t)); got != "" {
		t.Errorf("cart after the refused replay: %q, want empty", got)
	}
	// A new cart of the same shopper checks out normally.
	do(t, stale, urls[1], "POST", "/api/cart/items", `{"sku":"SKU-0011","qty":1}`).cart(t)
	if r := do(t, stale, urls[0], "POST", "/api/cart/checkout", ""); r.status != http.StatusOK {
		t.Errorf("checkout of a new cart: %d %s, want 200", r.status, r.body)
	}
}

// TestLedgerDownFailsCheckoutOnly: a ledger that does not answer makes
// checkout 503 without touching the cart; every other route works.
func TestLedgerDownFailsCheckoutOnly(t *testing.T) {
	store := newFlakyStore(t)
	urls := sealedReplicas(t, NewLedger(store, 0))
	shopper := newShopper(t)
	do(t, shopper, urls[0], "POST", "/api/cart/items", `{"sku":"SKU-0010","qty":2}`).cart(t)
	store.Down.Store(true)
	r := do(t, shopper, urls[1], "POST", "/api/cart/checkout", "")
	if r.status != http.StatusServiceUnavailable || r.errorCode(t) != "store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("checkout with the ledger down: %d %s, want 503 store_unavailable with Retry-After", r.status, r.body)
	}
	if got := lines(do(t, shopper, urls[0], "POST", "/api/cart/items", `{"sku":"SKU-0011","qty":1}`).cart(t)); got != "SKU-0010×2 SKU-0011×1" {
		t.Errorf("cart with the ledger down: %q, want both lines", got)
	}
	store.Down.Store(false)
	if r := do(t, shopper, urls[1], "POST", "/api/cart/checkout", ""); r.status != http.StatusOK {
		t.Errorf("checkout with the ledger back: %d %s", r.status, r.body)
	}
}

func TestLedgerClaim(t *testing.T) {
	ctx := context.Background()
	store := newFlakyStore(t)
	l := NewLedger(store, time.Minute)
	if err := l.Claim(ctx, "NONCE1", "ord_a"); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := l.Claim(ctx, "NONCE1", "ord_a"); err != nil {
		t.Errorf("the same order again (a retried compare-and-swap): %v, want nil", err)
	}
	if err := l.Claim(ctx, "NONCE1", "ord_b"); !errors.Is(err, ErrReplayed) {
		t.Errorf("another order of the same cart: %v, want ErrReplayed", err)
	}
	if err := l.Claim(ctx, "NONCE2", "ord_b"); err != nil {
		t.Errorf("another cart: %v", err)
	}
	// Entries expire after the TTL.
	l.now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	if err := l.Claim(ctx, "NONCE3", "ord_c"); err != nil {
		t.Fatal(err)
	}
	l.now = time.Now
	if err := l.Claim(ctx, "NONCE3", "ord_d"); err != nil {
		t.Errorf("a claim past the TTL: %v, want nil (the entry expired)", err)
	}
	store.Down.Store(true)
	if err := l.Claim(ctx, "NONCE4", "ord_e"); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("claim with the store down: %v, want ErrUnavailable", err)
	}
}
