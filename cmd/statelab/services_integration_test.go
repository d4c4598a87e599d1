package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/pricing"
	"github.com/statelab/statelab/internal/testenv"
)

// This file is the services' end-to-end lesson: a cart, two pricing
// replicas and a catalog replica, each its own process, behind one
// `statelab lb` that routes /api/quote and /api/catalog to their own pools
// (the cart calls pricing and the catalog through it too). Shoppers add,
// quote, search and check out while one pricing replica is SIGKILLed: no
// shopper sees an error (the quote is idempotent and retried) and no cart
// change is lost.

var (
	pricingServing = regexp.MustCompile(`msg="pricing: serving".* addr=(\S+)`)
	catalogServing = regexp.MustCompile(`msg="catalog: serving".* addr=(\S+)`)
)

// shopperState is what one shopper believes its cart holds.
type shopperState struct {
	client *http.Client
	lines  map[string]int
	orders int
}

func TestServicesSurviveAKilledPricingReplica(t *testing.T) {
	bin := testenv.StatelabBinary(t)
	p1 := startProc(t, "pricing-1", bin, "pricing", "--listen", "127.0.0.1:0", "--id", "p1")
	p2 := startProc(t, "pricing-2", bin, "pricing", "--listen", "127.0.0.1:0", "--id", "p2")
	c1 := startProc(t, "catalog-1", bin, "catalog", "--listen", "127.0.0.1:0", "--id", "c1",
		"--sqlite", filepath.Join(t.TempDir(), "catalog.db"))
	lbPort, appPort, adminPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	lb := fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	startProc(t, "cart-1", bin, "app", "--listen", fmt.Sprintf("127.0.0.1:%d", appPort), "--id", "r1", "--store", "memory",
		"--pricing", lb, "--catalog", lb)
	startProc(t, "lb", bin, "lb", "--listen", fmt.Sprintf("127.0.0.1:%d", lbPort), "--admin", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--health-path", "/readyz", "--health-interval", "100ms",
		"--backend", fmt.Sprintf("r1=http://127.0.0.1:%d", appPort),
		"--pool", "pricing=round_robin", "--retry-all", "pricing",
		"--pool-backend", "pricing=p1=http://"+p1.waitLog(t, pricingServing)[1],
		"--pool-backend", "pricing=p2=http://"+p2.waitLog(t, pricingServing)[1],
		"--pool", "catalog=round_robin",
		"--pool-backend", "catalog=c1=http://"+c1.waitLog(t, catalogServing)[1],
		"--route", "/api/quote=pricing", "--route", "/api/catalog=catalog")
	poll(t, "the balancer and the cart to serve", 20*time.Second, func() bool {
		code, by, _ := shopperRequest(http.DefaultClient, "GET", lb+"/api/cart", "")
		return code == http.StatusOK && by == "r1"
	})

	const shoppers, rounds, killAt = 4, 40, 10
	var (
		served    sync.Map // X-Served-By of quotes → count
		failures  atomic.Int64
		started   atomic.Int64 // rounds begun, all shoppers together
		killed    = make(chan struct{})
		killOnce  sync.Once
		firstFail sync.Once
		failMsg   string
	)
	fail := func(format string, args ...any) {
		failures.Add(1)
		firstFail.Do(func() { failMsg = fmt.Sprintf(format, args...) })
	}
	states := make([]*shopperState, shoppers)
	var wg sync.WaitGroup
	for s := range shoppers {
		jar, _ := cookiejar.New(nil)
		st := &shopperState{client: &http.Client{Jar: jar}, lines: map[string]int{}}
		states[s] = st
		wg.Go(func() {
			for round := range rounds {
				if started.Add(1) == shoppers*killAt {
					killOnce.Do(func() { p1.kill(); close(killed) })
				}
				shopRound(st, lb, s, round, &served, fail)
			}
		})
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("the pricing replica was never killed")
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d shopper requests failed; first: %s", n, failMsg)
	}
	// Both replicas served quotes (so the kill hit a serving replica), and
	// p2 took over.
	for _, id := range []string{"p1", "p2"} {
		if n, _ := served.Load(id); n == nil || n.(int) == 0 {
			t.Errorf("pricing replica %s served no quote", id)
		}
	}
	// The kill was felt: the balancer retried requests that met the dead
	// replica, and the shoppers never saw them fail.
	_, _, metrics := shopperRequest(http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort), "")
	if m := regexp.MustCompile(`(?m)^statelab_lb_retries_total (\d+)`).FindSubmatch(metrics); m == nil || string(m[1]) == "0" {
		t.Errorf("the balancer retried nothing after the kill (statelab_lb_retries_total %q)", m)
	}
	// No cart change was lost: every cart holds what its shopper added
	// since its last checkout.
	for s, st := range states {
		code, _, body := shopperRequest(st.client, "GET", lb+"/api/cart", "")
		var c e2eCart
		if code != http.StatusOK || json.Unmarshal(body, &c) != nil {
			t.Fatalf("shopper %d: GET /api/cart: %d %s", s, code, body)
		}
		got := map[string]int{}
		for _, it := range c.Items {
			got[it.SKU] = it.Qty
		}
		if !maps.Equal(got, st.lines) {
			t.Errorf("shopper %d: cart %v, want %v", s, got, st.lines)
		}
		if st.orders == 0 {
			t.Errorf("shopper %d placed no order", s)
		}
	}
}

// shopRound is one round of a shopper: add an item, quote the cart through
// the pricing pool, search the catalog, and every fifth round check out
// (the cart prices the order through the balancer). Any answer but 200 is
// a failure; so is an order whose total is not the cart's price.
func shopRound(st *shopperState, lb string, s, round int, served *sync.Map, fail func(string, ...any)) {
	sku := fmt.Sprintf("SKU-%04d", 1+(s*97+round*13)%catalog.Size)
	code, _, body := shopperRequest(st.client, "POST", lb+"/api/cart/items", `{"sku":"`+sku+`","qty":1}`)
	if code != http.StatusOK {
		fail("shopper %d round %d: add %s: %d %s", s, round, sku, code, body)
		return
	}
	st.lines[sku]++
	lines := make([]pricing.Line, 0, len(st.lines))
	for _, k := range slices.Sorted(maps.Keys(st.lines)) {
		lines = append(lines, pricing.Line{SKU: k, Qty: st.lines[k]})
	}
	want := pricing.Price(catalog.New(), lines)
	reqBody, _ := json.Marshal(pricing.Request{Items: lines})
	code, by, body := shopperRequest(st.client, "POST", lb+"/api/quote", string(reqBody))
	var q pricing.Quote
	if code != http.StatusOK || json.Unmarshal(body, &q) != nil || q.TotalCents != want.TotalCents {
		fail("shopper %d round %d: quote: %d by %q %s, want total %d", s, round, code, by, body, want.TotalCents)
		return
	}
	n, _ := served.LoadOrStore(by, 0)
	served.Store(by, n.(int)+1)
	if code, _, body := shopperRequest(st.client, "GET", lb+"/api/catalog?q=oak&limit=3", ""); code != http.StatusOK {
		fail("shopper %d round %d: search: %d %s", s, round, code, body)
		return
	}
	if round%5 != 4 {
		return
	}
	code, _, body = shopperRequest(st.client, "POST", lb+"/api/cart/checkout", "")
	var order pricing.Quote
	if code != http.StatusOK || json.Unmarshal(body, &order) != nil || order.TotalCents != want.TotalCents {
		fail("shopper %d round %d: checkout: %d %s, want total %d", s, round, code, body, want.TotalCents)
		return
	}
	st.lines = map[string]int{}
	st.orders++
}
