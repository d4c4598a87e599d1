package lab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/statelab/statelab/internal/strategy"
)

// claimNumber returns the number of the claim whose text is text.
func claimNumber(t *testing.T, text string) int {
	t.Helper()
	for i, c := range claims {
		if c.text == text {
			return i + 1
		}
	}
	t.Fatalf("no claim %q in the table", text)
	return 0
}

// replayClaimRows are the replay claim's rows of TestClaimBoundaries:
// either side of replayMinReorders, and an empty probe.
func replayClaimRows(runOf func(strategy.Strategy, Scenario, func(*RunResult)) *Run) []struct {
	name string
	runs []*Run
	want Verdict
	says string
} {
	replay := func(attempts, back, again int) func(*RunResult) {
		return func(r *RunResult) { r.Replay = &Replay{Attempts: attempts, CartsBack: back, Reordered: again} }
	}
	return []struct {
		name string
		runs []*Run
		want Verdict
		says string
	}{
		{"one second order", []*Run{runOf(strategy.Client, Steady, replay(6, 6, replayMinReorders)), runOf(strategy.Cache, Steady, replay(6, 0, 0))},
			Holds, "cache 0/6"},
		{"below the threshold", []*Run{runOf(strategy.Client, Steady, replay(6, 6, replayMinReorders-1))}, DoesNotHold, "ledger"},
		{"nothing checked out", []*Run{runOf(strategy.Client, Steady, replay(0, 0, 0))}, NotMeasured, "checked nothing out"},
		{"no probe", []*Run{runOf(strategy.Client, Steady, nil)}, NotMeasured, ""},
		{"missing", []*Run{runOf(strategy.Cache, Steady, replay(6, 0, 0))}, NotMeasured, "client × steady"},
	}
}

// TestReplayProbe runs the probe against a shop whose carts live in the
// cookie (a client-held cart, replayable) and one whose carts live on the
// server (not replayable).
func TestReplayProbe(t *testing.T) {
	for _, tt := range []struct {
		name       string
		clientHeld bool
		want       Replay
	}{
		{"client-held", true, Replay{Attempts: replayShoppers, CartsBack: replayShoppers, Reordered: replayShoppers}},
		{"server-side", false, Replay{Attempts: replayShoppers}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(tinyShop(tt.clientHeld))
			defer hs.Close()
			if got := replayProbe(context.Background(), hs.URL, []string{"SKU-1"}, http.DefaultTransport); got != tt.want {
				t.Errorf("probe found %+v, want %+v", got, tt.want)
			}
		})
	}
}

// tinyShop is a cart API of one-line carts: with clientHeld the cart is the
// cookie's value itself, otherwise the cookie names a cart kept here.
func tinyShop(clientHeld bool) http.Handler {
	var mu sync.Mutex
	carts := map[string]bool{} // session → cart has a line
	next := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		c, _ := r.Cookie("s")
		full := c != nil && (clientHeld && c.Value == "full" || !clientHeld && carts[c.Value])
		set := func(full bool) {
			v := "empty"
			switch {
			case clientHeld && full:
				v = "full"
			case !clientHeld:
				if c == nil {
					next++
					c = &http.Cookie{Value: strings.Repeat("x", next)}
				}
				v, carts[c.Value] = c.Value, full
			}
			http.SetCookie(w, &http.Cookie{Name: "s", Value: v, Path: "/"})
		}
		switch {
		case r.URL.Path == "/api/cart/items":
			set(true)
			w.Write([]byte(`{"items":[{}]}`))
		case r.URL.Path == "/api/cart/checkout" && full:
			set(false)
			w.Write([]byte(`{"order_id":"o"}`))
		case r.URL.Path == "/api/cart/checkout":
			w.WriteHeader(http.StatusBadRequest)
		case full:
			w.Write([]byte(`{"items":[{}]}`))
		default:
			w.Write([]byte(`{"items":[]}`))
		}
	})
}
