package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// workload drives shoppers through the balancer at an open-loop arrival
// rate and records every request.
type workload struct {
	base     string
	baseURL  *url.URL
	rate     float64 // offered requests per second
	poisson  bool
	seed     uint64
	duration time.Duration
	think    time.Duration
	timeout  time.Duration
	tabs     int     // shoppers with this many concurrent tabs; 0 or 1: one tab
	hot      float64 // share of the requests sent by the hot session (skew)
	skus     []string

	origin    time.Time // the run clock's zero
	transport *http.Transport
	hist      History
	rec       *recorder

	mu     sync.Mutex
	carts  []*shopper // every shopper, for the final reads
	nextID int
}

// workloadConfig is what shapes a workload: its offered load, its
// shoppers' pace and how long it lasts.
type workloadConfig struct {
	rate    float64 // offered requests per second
	poisson bool    // Poisson arrivals seeded by seed, or evenly spaced
	seed    uint64
	think   time.Duration // between a shopper's steps
	timeout time.Duration // of every request
	tabs    int           // tabs per shopper; 0 or 1: one tab
	// hot is the share of the requests (0..1) a single hot session sends
	// (see runHot); the shoppers send the rest.
	hot float64
	// measure is how long shoppers keep arriving after the warm-up.
	measure time.Duration
	// warmUp, when set, has shoppers arrive for one shopper's lifetime
	// before the measured part starts, so that the measured load is the
	// offered load from its first second. Warm-up requests are checked
	// like any other but not timed or counted.
	warmUp bool
}

// newWorkload returns a workload of shoppers of the catalog skus sent to
// the balancer at base. Its clock starts with run.
func newWorkload(base string, skus []string, cfg workloadConfig) (*workload, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("lab: balancer URL: %w", err)
	}
	w := &workload{
		base:    base,
		baseURL: u,
		skus:    skus,
		rate:    cfg.rate,
		poisson: cfg.poisson,
		seed:    cfg.seed,
		think:   cfg.think,
		timeout: cfg.timeout,
		tabs:    cfg.tabs,
		hot:     cfg.hot,
		transport: &http.Transport{
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
		rec: newRecorder(8),
	}
	if cfg.warmUp {
		w.rec.from = int64(w.lifetime())
	}
	w.duration = time.Duration(w.rec.from) + cfg.measure
	return w, nil
}

// warmUp is the length of the warm-up on the run clock.
func (w *workload) warmUp() int64 { return w.rec.from }

// startClock sets the run clock's zero to now; run and the fault
// injection read the clock from there.
func (w *workload) startClock() { w.origin = time.Now() }

// now returns the run clock: nanoseconds since the origin, monotonic.
func (w *workload) now() int64 { return int64(time.Since(w.origin)) }

// at converts a run-clock time to wall time (with its monotonic reading).
func (w *workload) at(t int64) time.Time { return w.origin.Add(time.Duration(t)) }

// stepsPerShopper is how many requests one shopper's script sends, on
// average; it turns the request rate into a shopper arrival rate.
func (w *workload) stepsPerShopper() float64 {
	if w.tabs > 1 {
		return float64(1 + w.tabs*tabSteps)
	}
	return shopperSteps
}

// lifetime is how long one shopper's script lasts when nothing is late.
func (w *workload) lifetime() time.Duration {
	if w.tabs > 1 {
		return w.think * (tabSteps + 1)
	}
	return w.think * 12 // the script without checkout
}

// run sends shoppers until the duration has passed or ctx ends, then waits
// for every shopper to finish its current request.
func (w *workload) run(ctx context.Context) {
	end := int64(w.duration)
	rng := rand.New(rand.NewPCG(w.seed, 0x5eed))
	meanGap := float64(time.Second) * w.stepsPerShopper() / (w.rate * (1 - w.hot))
	var wg sync.WaitGroup
	if w.hot > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runHot(ctx, end)
		}()
	}
	next := int64(0)
	for next < end {
		if !w.sleepUntil(ctx, next) {
			break
		}
		s := w.newShopper()
		wg.Add(1)
		go func(arrival int64) {
			defer wg.Done()
			s.shop(ctx, arrival, end)
		}(next)
		gap := meanGap
		if w.poisson {
			gap = rng.ExpFloat64() * meanGap
		}
		next += int64(gap)
	}
	wg.Wait()
}

// sleepUntil waits until run-clock time t; false if ctx ended first.
func (w *workload) sleepUntil(ctx context.Context, t int64) bool {
	return sleepUntilTime(ctx, w.at(t))
}

// sleepUntilTime waits until when; false if ctx ended first.
func sleepUntilTime(ctx context.Context, when time.Time) bool {
	d := time.Until(when)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// shopper is one virtual user with its own cookie jar (shared by its tabs).
type shopper struct {
	w      *workload
	id     int
	client *http.Client
	jar    http.CookieJar
	rng    *rand.Rand
}

func (w *workload) newShopper() *shopper {
	w.mu.Lock()
	w.nextID++
	id := w.nextID
	w.mu.Unlock()
	jar, _ := cookiejar.New(nil) // cookiejar.New never fails with nil options
	s := &shopper{
		w:      w,
		id:     id,
		client: &http.Client{Transport: w.transport, Jar: jar, CheckRedirect: noRedirect},
		jar:    jar,
		rng:    rand.New(rand.NewPCG(w.seed, uint64(id))),
	}
	w.mu.Lock()
	w.carts = append(w.carts, s)
	w.mu.Unlock()
	return s
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// shopperSteps is the mean number of requests of the single-tab script
// below: twelve, and three more for the quarter of shoppers who check out.
const shopperSteps = 12.75

// tabSteps is the number of requests each tab sends after the first add.
const tabSteps = 9

// shop runs the shopper's script, one step every think time from arrival,
// until its script ends or the run does (no step is scheduled at or after
// end).
func (s *shopper) shop(ctx context.Context, arrival, end int64) {
	if s.w.tabs > 1 {
		s.shopTabs(ctx, arrival, end)
		return
	}
	skus := s.pick(4)
	sched := arrival
	step := func(kind OpKind, method, path string, body any, sku string, qty int) bool {
		if sched >= end || ctx.Err() != nil {
			return false
		}
		s.do(ctx, s.id, sched, kind, method, path, body, sku, qty)
		sched += int64(s.w.think)
		return true
	}
	read := func() bool { return step(OpRead, http.MethodGet, "/api/cart", nil, "", 0) }
	add := func(sku string) bool {
		return step(OpAdd, http.MethodPost, "/api/cart/items", map[string]any{"sku": sku, "qty": 1 + s.rng.IntN(3)}, sku, 0)
	}
	_ = step(OpBrowse, http.MethodGet, "/api/catalog", nil, "", 0) &&
		add(skus[0]) && read() &&
		add(skus[1]) && read() &&
		add(skus[2]) &&
		step(OpSetQty, http.MethodPatch, "/api/cart/items/"+url.PathEscape(skus[0]), map[string]any{"qty": 5}, skus[0], 5) && read() &&
		step(OpRemove, http.MethodDelete, "/api/cart/items/"+url.PathEscape(skus[1]), nil, skus[1], 0) && read() &&
		add(skus[3]) && read() &&
		(s.rng.IntN(4) != 0 ||
			(step(OpBrowse, http.MethodPost, "/api/quote", map[string]any{"items": []map[string]any{{"sku": skus[3], "qty": 1}}}, "", 0) &&
				step(OpCheckout, http.MethodPost, "/api/cart/checkout", nil, "", 0) && read()))
}

// shopTabs runs the tabs script: the first tab adds a shared line, then
// every tab concurrently adds its own line and increments the shared one,
// reading the cart between steps.
func (s *shopper) shopTabs(ctx context.Context, arrival, end int64) {
	skus := s.pick(s.w.tabs + 1)
	shared := skus[0]
	incr := map[string]any{"sku": shared, "qty": 1}
	if arrival >= end {
		return
	}
	s.do(ctx, s.id*100, arrival, OpAdd, http.MethodPost, "/api/cart/items", incr, shared, 1)
	var wg sync.WaitGroup
	for tab := 1; tab <= s.w.tabs; tab++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := s.id*100 + tab
			// Tabs start a little apart, like a person switching tabs.
			sched := arrival + int64(s.w.think)*int64(tab)/int64(s.w.tabs)
			for i := 0; i < tabSteps; i++ {
				if sched >= end || ctx.Err() != nil {
					return
				}
				switch {
				case i == 0:
					own := skus[tab]
					s.do(ctx, client, sched, OpAdd, http.MethodPost, "/api/cart/items", map[string]any{"sku": own, "qty": 1}, own, 1)
				case i%3 == 2:
					s.do(ctx, client, sched, OpRead, http.MethodGet, "/api/cart", nil, "", 0)
				default:
					s.do(ctx, client, sched, OpAdd, http.MethodPost, "/api/cart/items", incr, shared, 1)
				}
				sched += int64(s.w.think)
			}
		}()
	}
	wg.Wait()
}

// pick returns n distinct skus from the catalog.
func (s *shopper) pick(n int) []string {
	out := make([]string, 0, n)
	seen := map[int]bool{}
	for len(out) < n && len(seen) < len(s.w.skus) {
		i := s.rng.IntN(len(s.w.skus))
		if !seen[i] {
			seen[i] = true
			out = append(out, s.w.skus[i])
		}
	}
	return out
}

// cartResponse is the body of GET /api/cart.
type cartResponse struct {
	Items []struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	} `json:"items"`
}

// do sends one request at its scheduled time (or at once if that has
// passed), records it, and returns the op. For OpAdd, qty is taken from the
// body when it is 0.
func (s *shopper) do(ctx context.Context, client int, sched int64, kind OpKind, method, path string, body any, sku string, qty int) Op {
	if kind == OpAdd && qty == 0 {
		if m, ok := body.(map[string]any); ok {
			qty, _ = m["qty"].(int)
		}
	}
	s.w.sleepUntil(ctx, sched)
	op := s.send(ctx, client, kind, method, path, body, sku, qty)
	if kind != OpBrowse {
		s.w.hist.Add(op)
	}
	s.w.rec.record(s.id, sample{at: sched, lat: op.Return - sched, err: op.Status/100 != 2, answer4: op.Status/100 == 4, cause: op.Cause, servedBy: op.ServedBy}, s.cookieBytes())
	return op
}

// send performs one request and classifies its outcome.
func (s *shopper) send(ctx context.Context, client int, kind OpKind, method, path string, body any, sku string, qty int) Op {
	op := Op{Cart: s.id, Client: client, Kind: kind, SKU: sku, Qty: qty}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body) // bodies are maps of strings and ints
		rd = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, s.w.timeout)
	defer cancel()
	op.Call = s.w.now()
	req, err := http.NewRequestWithContext(rctx, method, s.w.base+path, rd)
	if err != nil {
		op.Return, op.Outcome, op.Cause = s.w.now(), Failed, "bad request: "+err.Error()
		return op
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		op.Return = s.w.now()
		op.Outcome = Unknown
		op.Cause = transportCause(err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			op.Outcome = Failed // never sent
		}
		return op
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	op.Return = s.w.now()
	op.Status = resp.StatusCode
	op.ServedBy = resp.Header.Get("X-Served-By")
	if resp.StatusCode/100 != 2 {
		op.Cause = answerCause(resp.StatusCode, data)
	}
	switch {
	case rerr != nil:
		op.Outcome = Unknown
	case resp.StatusCode/100 == 2:
		op.Outcome = OK
	case kind == OpRemove && resp.StatusCode == http.StatusNotFound:
		// The balancer retries a DELETE on another replica after a
		// connection error (it is idempotent), so "not in the cart" may
		// answer a retry of a removal the dead replica made.
		op.Outcome = Unknown
	case resp.StatusCode/100 == 4:
		op.Outcome = Failed
	default:
		// A 5xx may come after the write happened (a replica dying
		// mid-request, a store timing out on the acknowledgement).
		op.Outcome = Unknown
	}
	if kind == OpRead && op.Outcome == OK {
		var cr cartResponse
		if err := json.Unmarshal(data, &cr); err != nil {
			op.Outcome = Unknown
			return op
		}
		op.Read = make(map[string]int, len(cr.Items))
		for _, it := range cr.Items {
			op.Read[it.SKU] += it.Qty
		}
	}
	return op
}

// cookieBytes is the size of the Cookie header the shopper sends now.
func (s *shopper) cookieBytes() int {
	n := 0
	for _, c := range s.jar.Cookies(s.w.baseURL) {
		n += len(c.Name) + 1 + len(c.Value) + 2
	}
	return n
}

// finalReads reads every cart once more after the run (up to three
// attempts each, a few at a time), marking the reads Final.
func (w *workload) finalReads(ctx context.Context) {
	w.mu.Lock()
	carts := append([]*shopper(nil), w.carts...)
	w.mu.Unlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, s := range carts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
				op := s.send(ctx, s.id*100+99, OpRead, http.MethodGet, "/api/cart", nil, "", 0)
				op.Final = true
				if op.Outcome == OK || attempt == 2 {
					w.hist.Add(op)
					return
				}
				w.sleepUntil(ctx, w.now()+int64(100*time.Millisecond))
			}
		}()
	}
	wg.Wait()
}

// fetchSKUs reads the catalog once to learn the skus shoppers may add.
func fetchSKUs(ctx context.Context, base string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/catalog", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lab: read the catalog: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lab: read the catalog: %s", resp.Status)
	}
	var cat struct {
		Products []struct {
			SKU string `json:"sku"`
		} `json:"products"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		return nil, fmt.Errorf("lab: read the catalog: %w", err)
	}
	var skus []string
	for _, p := range cat.Products {
		if p.SKU != "" {
			skus = append(skus, p.SKU)
		}
	}
	if len(skus) < 16 {
		return nil, fmt.Errorf("lab: the catalog lists %d products; the workload needs at least 16", len(skus))
	}
	return skus, nil
}
