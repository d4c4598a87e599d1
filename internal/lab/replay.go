package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// Replay is what the replay probe of a steady run found: shoppers who
// saved their cookies before checkout and sent them again after it, as a
// client holding a copy of its state can (results.json's "replay").
type Replay struct {
	// Attempts counts probe shoppers whose first checkout succeeded.
	Attempts int `json:"attempts"`
	// CartsBack counts those whose saved cookies showed the checked-out
	// cart again.
	CartsBack int `json:"carts_back"`
	// Reordered counts those whose saved cookies checked the cart out a
	// second time: a second order for one cart.
	Reordered int `json:"reordered"`
}

// replayShoppers is how many shoppers the probe sends: enough that the
// counts are not one lucky request, few enough to cost well under a second.
const replayShoppers = 6

// replayProbe sends replayShoppers shoppers through the balancer at base
// after the measured run: each adds one sku, saves its cookies, checks
// out, then sends the saved cookies to GET /api/cart and checkout again.
func replayProbe(ctx context.Context, base string, skus []string, transport http.RoundTripper) Replay {
	var mu sync.Mutex
	var out Replay
	var wg sync.WaitGroup
	for i := range replayShoppers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checkedOut, back, again := replayOne(ctx, base, skus[i%len(skus)], transport)
			mu.Lock()
			defer mu.Unlock()
			if checkedOut {
				out.Attempts++
				out.CartsBack += btoi(back)
				out.Reordered += btoi(again)
			}
		}()
	}
	wg.Wait()
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// replayOne is one probe shopper; see replayProbe.
func replayOne(ctx context.Context, base, sku string, transport http.RoundTripper) (checkedOut, cartBack, reordered bool) {
	u, err := url.Parse(base)
	if err != nil {
		return false, false, false
	}
	shopper := probeClient(transport)
	if probe(ctx, shopper, http.MethodPost, base+"/api/cart/items", fmt.Sprintf(`{"sku":%q,"qty":1}`, sku), nil) != http.StatusOK {
		return false, false, false
	}
	saved := probeClient(transport)
	saved.Jar.SetCookies(u, shopper.Jar.Cookies(u))
	if probe(ctx, shopper, http.MethodPost, base+"/api/cart/checkout", "", nil) != http.StatusOK {
		return false, false, false
	}
	var cart struct {
		Items []json.RawMessage `json:"items"`
	}
	cartBack = probe(ctx, saved, http.MethodGet, base+"/api/cart", "", &cart) == http.StatusOK && len(cart.Items) > 0
	reordered = probe(ctx, saved, http.MethodPost, base+"/api/cart/checkout", "", nil) == http.StatusOK
	return true, cartBack, reordered
}

// probeClient returns a client with its own cookie jar over transport.
func probeClient(transport http.RoundTripper) *http.Client {
	jar, _ := cookiejar.New(nil) // never fails with nil options
	return &http.Client{Transport: transport, Jar: jar, CheckRedirect: noRedirect, Timeout: 5 * time.Second}
}

// probe sends one request and returns its status (0 when it failed),
// decoding a 200 answer into v when v is not nil.
func probe(ctx context.Context, c *http.Client, method, target, body string, v any) int {
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		return 0
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// replayClaimText is the replay claim of the claims table.
const replayClaimText = "Client-held state can be replayed: a cookie saved before checkout brings the cart back and orders it again."

// replayMinReorders: client-held state counts as replayable when at least
// one saved cookie placed a second order. One is enough: a replay the
// server cannot tell from the original is the property itself, not noise
// of a loaded machine (no timing is involved).
const replayMinReorders = 1

// serverSide are the strategies the replay claim compares the client
// strategy with: the ones whose carts live on the server side.
var serverSide = []strategy.Strategy{strategy.Sticky, strategy.Replicated, strategy.Cache, strategy.Database}

// judgeReplay: a sealed cookie saved before checkout brings the cart back
// and orders it again; a server-side session ID replayed finds the
// emptied cart.
func judgeReplay(ix runIndex) (Verdict, string) {
	c := ix.get(strategy.Client, Steady).Replay
	if c == nil || c.Attempts == 0 {
		return NotMeasured, "the replay probe of client × steady checked nothing out"
	}
	ev := fmt.Sprintf("client: of %d shoppers who sent their pre-checkout cookie again, %d saw the cart back and %d ordered it a second time", c.Attempts, c.CartsBack, c.Reordered)
	var others []string
	for _, st := range serverSide {
		if r := ix.get(st, Steady); r != nil && r.Replay != nil && r.Replay.Attempts > 0 {
			others = append(others, fmt.Sprintf("%s %d/%d", st, r.Replay.Reordered, r.Replay.Attempts))
		}
	}
	if len(others) > 0 {
		ev += "; second orders from replayed cookies under the server-side strategies: " + strings.Join(others, ", ")
	}
	if c.Reordered >= replayMinReorders {
		return Holds, ev + "; the remedy, app --checkout-ledger, refuses them (409) at the price of one shared-store write per checkout"
	}
	return DoesNotHold, ev + " (a checkout ledger refused them)"
}
