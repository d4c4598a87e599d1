package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cluster"
)

// The scenarios of the microservice shape (docs/services.md): the cart
// strategy under test keeps the carts; pricing and the catalog run as
// their own services behind the balancer's path pools.
const (
	// Surge makes quote traffic jump mid-run and scales only pricing; the
	// same surge then runs on the monolith, which has to scale the carts.
	Surge Scenario = "surge"
	// Deploy rolls every pricing replica (drain, SIGTERM, start, healthy)
	// under traffic, one at a time.
	Deploy Scenario = "deploy"
)

// The services scenarios' schedules and sizes.
const (
	// surgeAt is when quote traffic jumps by surgeFactor; surgeScaleAt is
	// when the lab reacts by scaling, surgeAdded replicas at once.
	surgeAt, surgeScaleAt = 0.30, 0.40
	surgeFactor           = 4
	surgeAdded            = 3
	// quoteShare is the quote rate outside the surge, as a share of the
	// cart workload's rate.
	quoteShare = 0.25
	// deployPricing is how many pricing replicas the deploy rolls, at
	// deployFrom and deployTo of the run; deployPolicy balances them.
	deployPricing          = 2
	deployFrom, deployTo   = 0.20, 0.50
	deployPolicy           = balancer.PolicyLeastRequest
	replaySample           = 50 // requests replayed on a fresh replica, per service
	maxProbe, minProbe     = 2 * time.Second, 500 * time.Millisecond
	probeShare             = 6 // a capacity probe lasts the run's duration / probeShare
	surgeWhat, deployWhatP = "quotes ×4", "deploy "
)

// services reports whether s runs the microservice shape.
func (s Scenario) services() bool { return s == Surge || s == Deploy }

// servicesShape is the cluster's Services for cfg: nil for a monolith.
func (cfg Config) servicesShape() *cluster.Services {
	switch {
	case cfg.monolith || !cfg.Scenario.services():
		return nil
	case cfg.Scenario == Deploy:
		return &cluster.Services{Pricing: deployPricing, PricingPolicy: deployPolicy}
	}
	return &cluster.Services{Pricing: 1}
}

// servicesPlan is the fault schedule of surge and deploy.
func (s Scenario) servicesPlan() []faultStep {
	noop := func(context.Context, *cluster.Cluster) error { return nil }
	switch s {
	case Surge:
		steps := []faultStep{{at: surgeAt, what: surgeWhat, do: noop}}
		for i := 0; i < surgeAdded; i++ {
			steps = append(steps, faultStep{at: surgeScaleAt, what: "scale out +1 (pricing; the monolith: a cart)", do: func(ctx context.Context, c *cluster.Cluster) error {
				if c.HasServices() {
					_, err := c.AddService(ctx, cluster.PoolPricing)
					return err
				}
				_, err := c.Add(ctx)
				return err
			}})
		}
		return steps
	case Deploy:
		var steps []faultStep
		for i := 0; i < deployPricing; i++ {
			id := "p" + strconv.Itoa(i+1)
			at := deployFrom + (deployTo-deployFrom)*float64(i)/float64(max(1, deployPricing-1))
			steps = append(steps, faultStep{at: at, what: deployWhatP + id, do: func(ctx context.Context, c *cluster.Cluster) error { return c.RestartService(ctx, id) }})
		}
		return steps
	}
	return nil
}

// ServicesResult is what a surge or deploy run measured of the service
// that was scaled or deployed (results.json's "services"; docs/lab.md).
type ServicesResult struct {
	// Shape is "services" (pricing and the catalog on their own) or
	// "monolith" (everything in the carts).
	Shape string `json:"shape"`
	// ScaledPool is the pool the lab scaled or deployed: "pricing", or
	// "cart" on the monolith.
	ScaledPool string `json:"scaled_pool"`
	// ReplicasBefore and ReplicasAfter count the scaled pool's replicas.
	ReplicasBefore int `json:"replicas_before"`
	ReplicasAfter  int `json:"replicas_after"`
	// CartReplicasBefore and CartReplicasAfter count the carts; CartRestarts
	// counts cart processes started again during the run.
	CartReplicasBefore int `json:"cart_replicas_before"`
	CartReplicasAfter  int `json:"cart_replicas_after"`
	CartRestarts       int `json:"cart_restarts"`
	// ProcessesAdded is how many processes the scaling started; RSSAddedMB
	// their resident memory at the end and CPUAddedS the CPU time they used.
	ProcessesAdded int     `json:"processes_added"`
	RSSAddedMB     float64 `json:"rss_added_mb"`
	CPUAddedS      float64 `json:"cpu_added_s"`
	// QuoteRPS is the quote rate offered outside the surge; SurgeFactor
	// multiplies it from the surge on (1: no surge).
	QuoteRPS    float64 `json:"quote_rps"`
	SurgeFactor float64 `json:"surge_factor"`
	// Quotes and QuoteErrors count the quote stream's requests during the
	// window (from the surge on; the whole run for deploy); QuoteLatencyMS
	// are their latencies.
	Quotes         int64   `json:"quotes"`
	QuoteErrors    int64   `json:"quote_errors"`
	QuoteLatencyMS Latency `json:"quote_latency_ms"`
	// CartCalls, CartErrors and CartP99MS are the shoppers' requests the
	// carts answered (or nobody did) in the same window: on the services
	// shape their quotes and catalog reads go to those services instead.
	CartCalls  int64   `json:"cart_calls"`
	CartErrors int64   `json:"cart_errors"`
	CartP99MS  float64 `json:"cart_p99_ms"`
	// CapacityBeforeRPS and CapacityAfterRPS are the quote capacity of the
	// pool that serves quotes, probed with a closed loop before and after
	// the run; Linearity is the capacity gained per replica added over the
	// first replicas' capacity per replica (1: perfectly linear).
	CapacityBeforeRPS float64 `json:"capacity_before_rps"`
	CapacityAfterRPS  float64 `json:"capacity_after_rps"`
	Linearity         float64 `json:"linearity"`
	// PoolPolicy is the policy of the pool serving quotes; PoolImbalance
	// its busiest replica's share of the quotes of the second capacity
	// probe over the mean (1: even).
	PoolPolicy    string  `json:"pool_policy"`
	PoolImbalance float64 `json:"pool_imbalance"`
	// ItemsLost and CartImbalance repeat the cart workload's numbers
	// (useful in Monolith).
	ItemsLost     int     `json:"items_lost"`
	CartImbalance float64 `json:"cart_imbalance"`
	// ReplicasForCapacity (the monolith, surge only) is how many cart
	// replicas give the quote capacity pricing ended the surge with, at the
	// monolith's measured quote capacity per cart replica.
	ReplicasForCapacity int `json:"replicas_for_capacity,omitempty"`
	// Replay is the replay of recorded requests on fresh replicas (deploy).
	Replay *ReplayResult `json:"replay,omitempty"`
	// Monolith is the same surge on the monolith (surge only).
	Monolith *ServicesResult `json:"monolith,omitempty"`
}

// ReplayResult counts recorded requests sent again to a fresh replica
// that answered exactly as the original did (served_by aside).
type ReplayResult struct {
	// PricingRequests quotes were replayed on a fresh pricing replica.
	PricingRequests  int `json:"pricing_requests"`
	PricingIdentical int `json:"pricing_identical"`
	// CartRequests reads of non-empty carts (the final reads, with their
	// cookies) were replayed on a fresh cart replica.
	CartRequests  int `json:"cart_requests"`
	CartIdentical int `json:"cart_identical"`
}

// serviceLoad is the services scenarios' part of a run: the quote stream,
// the capacity probes, the replay; nil for the other scenarios.
type serviceLoad struct {
	cfg    Config
	c      *cluster.Cluster
	skus   []string
	client *http.Client
	rec    *recorder
	wg     sync.WaitGroup
	res    ServicesResult

	mu       sync.Mutex
	recorded []exchange // quotes kept for the replay
	before   map[string]bool
	carts    []cluster.Replica
}

// exchange is one recorded request and its answer.
type exchange struct {
	body, answer []byte
}

// newServiceLoad probes the quote capacity and records what exists before
// the run; nil when cfg's scenario is not a services one.
func newServiceLoad(ctx context.Context, cfg Config, c *cluster.Cluster, skus []string) *serviceLoad {
	if !cfg.Scenario.services() {
		return nil
	}
	l := &serviceLoad{cfg: cfg, c: c, skus: skus, before: map[string]bool{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}}
	l.res = ServicesResult{Shape: "services", ScaledPool: cluster.PoolPricing, QuoteRPS: round(cfg.Rate*quoteShare, 1), SurgeFactor: 1}
	if cfg.Scenario == Surge {
		l.res.SurgeFactor = surgeFactor
	}
	l.res.PoolPolicy = deployPolicy
	if cfg.Scenario == Surge || cfg.monolith {
		l.res.PoolPolicy = balancer.PolicyRoundRobin
	}
	if !c.HasServices() {
		l.res.Shape, l.res.ScaledPool, l.res.PoolPolicy = "monolith", "cart", cfg.Strategy.Spec().Policy
	}
	for _, r := range l.scaled() {
		l.before[r.ID] = true
	}
	l.res.ReplicasBefore = len(l.before)
	l.res.CartReplicasBefore = len(c.Replicas())
	l.res.CapacityBeforeRPS, _ = l.probe(ctx, len(l.before))
	return l
}

// scaled returns the replicas of the pool the scenario scales.
func (l *serviceLoad) scaled() []cluster.Replica {
	if l.c.HasServices() {
		return l.c.ServiceReplicas(cluster.PoolPricing)
	}
	return l.c.Replicas()
}

// start sends the quote stream on w's clock until w's end: an open loop
// at the quote rate, surgeFactor times it from the surge on.
func (l *serviceLoad) start(ctx context.Context, w *workload) {
	if l == nil {
		return
	}
	l.rec = newRecorder(4)
	l.rec.from = w.rec.from
	surge := w.rec.from + int64(surgeAt*float64(w.duration-time.Duration(w.rec.from)))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		rng := rand.New(rand.NewPCG(l.cfg.Seed, 0x9007e))
		var inflight sync.WaitGroup
		for next, i := int64(0), 0; next < int64(w.duration); i++ {
			if !w.sleepUntil(ctx, next) {
				break
			}
			body := l.quoteBody(rng)
			inflight.Add(1)
			go func(sched int64) {
				defer inflight.Done()
				l.quote(ctx, w, sched, body, i)
			}(next)
			rate := l.res.QuoteRPS
			if next >= surge {
				rate *= l.res.SurgeFactor
			}
			next += int64(float64(time.Second) / rate)
		}
		inflight.Wait()
	}()
}

// quoteBody is a quote of one to three random lines.
func (l *serviceLoad) quoteBody(rng *rand.Rand) []byte {
	var items []map[string]any
	for n := 1 + rng.IntN(3); n > 0; n-- {
		items = append(items, map[string]any{"sku": l.skus[rng.IntN(len(l.skus))], "qty": 1 + rng.IntN(3)})
	}
	b, _ := json.Marshal(map[string]any{"items": items}) // maps of strings and ints
	return b
}

// quote sends one quote through the balancer at its scheduled time and
// records it; the first replaySample answered ones are kept for the
// replay.
func (l *serviceLoad) quote(ctx context.Context, w *workload, sched int64, body []byte, worker int) {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	status, servedBy, answer := post(rctx, l.client, w.base+"/api/quote", body)
	s := sample{at: sched, lat: w.now() - sched, err: status/100 != 2, servedBy: servedBy}
	if s.err {
		s.cause = answerCause(status, answer)
	}
	l.rec.record(worker, s, 0)
	if status == http.StatusOK && sched >= w.rec.from {
		l.mu.Lock()
		if len(l.recorded) < replaySample {
			l.recorded = append(l.recorded, exchange{body, answer})
		}
		l.mu.Unlock()
	}
}

// post sends body to url and returns the status (0: no answer), the
// X-Served-By header and the answer's body.
func post(ctx context.Context, client *http.Client, url string, body []byte) (int, string, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", nil
	}
	return resp.StatusCode, resp.Header.Get("X-Served-By"), answer
}

// stop waits for the quote stream, measures what the scaling added and,
// once the balancer lists every backend healthy, probes the capacity
// again. It must run after the scenario's last step.
func (l *serviceLoad) stop(ctx context.Context) {
	if l == nil {
		return
	}
	l.wg.Wait()
	now := l.scaled()
	l.res.ReplicasAfter = len(now)
	for _, r := range now {
		if l.before[r.ID] || r.PID == 0 {
			continue
		}
		l.res.ProcessesAdded++
		rss, cpu := procUsage(r.PID)
		l.res.RSSAddedMB += rss
		l.res.CPUAddedS += cpu
	}
	l.res.RSSAddedMB, l.res.CPUAddedS = round(l.res.RSSAddedMB, 1), round(l.res.CPUAddedS, 2)
	l.carts = l.c.Replicas()
	l.res.CartReplicasAfter = len(l.carts)
	for _, r := range l.carts {
		l.res.CartRestarts += max(0, r.Starts-1)
	}
	settle(ctx, started{l.c})
	l.res.CapacityAfterRPS, l.res.PoolImbalance = l.probe(ctx, len(now))
	if l.res.CapacityBeforeRPS > 0 && l.res.ReplicasBefore > 0 && l.res.ReplicasAfter > l.res.ReplicasBefore {
		perReplica := l.res.CapacityBeforeRPS / float64(l.res.ReplicasBefore)
		gained := l.res.CapacityAfterRPS - l.res.CapacityBeforeRPS
		l.res.Linearity = round(gained/(perReplica*float64(l.res.ReplicasAfter-l.res.ReplicasBefore)), 3)
	}
}

// procUsage returns process pid's resident memory in MB and the CPU time
// it used in seconds, from /proc (zeros where it cannot be read).
func procUsage(pid int) (rssMB, cpuS float64) {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rssMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// Fields after the command (which may hold spaces) start after ")".
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpuS = (ut + st) / 100 // USER_HZ is 100 on Linux
			}
		}
	}
	return rssMB, cpuS
}

// probe measures the quote capacity of the pool serving quotes: a closed
// loop of twice as many clients as its replicas have slots, for a sixth of
// the run (0.5 to 2 s). It returns the quotes answered 200 per second and
// the busiest replica's share of them over the mean (the pool's balance
// under full load).
func (l *serviceLoad) probe(ctx context.Context, replicas int) (rps, imbalance float64) {
	d := min(maxProbe, max(minProbe, l.cfg.Duration/probeShare))
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	body := []byte(`{"items":[{"sku":"` + l.skus[0] + `","qty":1}]}`)
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	began := time.Now()
	for i := 0; i < 2*max(1, replicas)*max(1, l.cfg.MaxInflight); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if status, by, _ := post(ctx, l.client, l.c.URL()+"/api/quote", body); status == http.StatusOK && ctx.Err() == nil {
					mu.Lock()
					served[by]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	total, busiest := 0, 0
	for _, n := range served {
		total += n
		busiest = max(busiest, n)
	}
	if total == 0 {
		return 0, 0
	}
	mean := float64(total) / float64(max(replicas, len(served)))
	return round(float64(total)/time.Since(began).Seconds(), 1), round(float64(busiest)/mean, 3)
}

// replay sends the recorded quotes to a fresh pricing replica, and the
// final reads of non-empty carts (with their cookies) to a fresh cart
// replica, directly, and counts the identical answers. Deploy only.
func (l *serviceLoad) replay(ctx context.Context, w *workload) error {
	if l == nil || l.cfg.Scenario != Deploy || !l.c.HasServices() {
		return nil
	}
	res := &ReplayResult{}
	l.res.Replay = res
	spare, err := l.c.StartSpare(ctx, cluster.PoolPricing)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	l.mu.Lock()
	recorded := append([]exchange(nil), l.recorded...)
	l.mu.Unlock()
	for _, ex := range recorded {
		rctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		status, _, answer := post(rctx, l.client, spare.URL+"/api/quote", ex.body)
		cancel()
		res.PricingRequests++
		if status == http.StatusOK && sameAnswer(ex.answer, answer) {
			res.PricingIdentical++
		}
	}
	fresh, err := l.c.Add(ctx)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	res.CartRequests, res.CartIdentical = replayCarts(ctx, w, fresh.URL)
	return nil
}

// replayCarts reads up to replaySample non-empty carts through the
// balancer, sends each read again with the same Cookie header to the
// fresh cart replica at url, and counts the identical answers.
func replayCarts(ctx context.Context, w *workload, url string) (requests, identical int) {
	w.mu.Lock()
	shoppers := append([]*shopper(nil), w.carts...)
	w.mu.Unlock()
	direct := &http.Client{Transport: w.transport, CheckRedirect: noRedirect}
	for _, s := range shoppers {
		if requests == replaySample || ctx.Err() != nil {
			break
		}
		cookie := cookieHeader(s.jar.Cookies(w.baseURL))
		status, original := getWithCookie(ctx, direct, w.base+"/api/cart", cookie, w.timeout)
		var view struct {
			Items []json.RawMessage `json:"items"`
		}
		if status != http.StatusOK || json.Unmarshal(original, &view) != nil || len(view.Items) == 0 {
			continue
		}
		requests++
		if status, again := getWithCookie(ctx, direct, url+"/api/cart", cookie, w.timeout); status == http.StatusOK && sameAnswer(original, again) {
			identical++
		}
	}
	return requests, identical
}

// cookieHeader is the Cookie header a client with cookies sends.
func cookieHeader(cookies []*http.Cookie) string {
	parts := make([]string, len(cookies))
	for i, c := range cookies {
		parts[i] = c.Name + "=" + c.Value
	}
	return strings.Join(parts, "; ")
}

// getWithCookie GETs url with the Cookie header cookie and returns the
// status (0: no answer) and the body.
func getWithCookie(ctx context.Context, client *http.Client, url, cookie string, timeout time.Duration) (int, []byte) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}

// sameAnswer compares two JSON answers, ignoring the served_by field that
// names the replica.
func sameAnswer(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	for _, v := range []any{x, y} {
		if m, ok := v.(map[string]any); ok {
			delete(m, "served_by")
		}
	}
	xb, _ := json.Marshal(x) // re-encoding sorts the keys
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// summarizeServices fills in run.Result.Services from the recording: the
// quote stream and the shoppers' requests in the window (from the surge
// on; the whole run for deploy), the pool's balance after the last step,
// and the carts' balance without the services' replicas.
func summarizeServices(cfg Config, rec *recording, run *Run) {
	l := rec.svc
	if l == nil {
		return
	}
	res := l.res
	r := &run.Result
	from := int64(0)
	if cfg.Scenario == Surge {
		from = int64(surgeAt * float64(cfg.Duration))
	}
	_, quotes, _ := l.rec.merged()
	res.Quotes, res.QuoteErrors, res.QuoteLatencyMS = window(quotes, from, rec.end)

	// After a surge, the balance counts once the pool is scaled; a deploy
	// takes every replica out once, in turn, so the whole run counts.
	settled := int64(0)
	if n := len(run.Faults); n > 0 && cfg.Scenario == Surge {
		settled = run.Faults[n-1].End
	}

	// The shoppers' quotes and catalog reads are served by the services:
	// the carts' balance counts only the carts.
	carts := map[string]bool{}
	for _, id := range rec.replicas {
		carts[id] = true
	}
	var cartSamples []sample
	for _, s := range rec.samples {
		if s.servedBy == "" || carts[s.servedBy] {
			cartSamples = append(cartSamples, s)
		}
	}
	r.ReplicaShare, _ = shares(cartSamples, 0, rec.end, rec.replicas)
	for id, v := range r.ReplicaShare {
		r.ReplicaShare[id] = round(v, 4)
	}
	_, imb := shares(cartSamples, settled, rec.end, rec.replicas)
	r.Imbalance = round(imb, 3)
	var cartLat Latency
	res.CartCalls, res.CartErrors, cartLat = window(cartSamples, from, rec.end)
	res.CartP99MS = cartLat.P99
	res.CartImbalance, res.ItemsLost = r.Imbalance, r.ItemsLost
	r.Services = &res
}

// window counts the samples scheduled in [from, to), their errors and
// their latency percentiles.
func window(samples []sample, from, to int64) (n, errs int64, lat Latency) {
	h := newHistogram()
	for _, s := range samples {
		if s.at < from || s.at >= to {
			continue
		}
		n++
		if s.err {
			errs++
		}
		_ = h.RecordValue(max(1, s.lat/1000))
	}
	if n == 0 {
		return 0, 0, Latency{}
	}
	ms := func(q float64) float64 { return round(float64(h.ValueAtQuantile(q))/1000, 2) }
	return n, errs, Latency{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: round(float64(h.Max())/1000, 2)}
}

// compareMonolith runs the same surge on the monolith, after the services
// shape's run, and records it as run's Services.Monolith.
func compareMonolith(ctx context.Context, cfg Config, run *Run) error {
	if cfg.Scenario != Surge || cfg.monolith || run.Result.Services == nil || ctx.Err() != nil {
		return nil
	}
	cfg.monolith = true
	if p := cfg.Progress; p != nil {
		cfg.Progress = func(s string) { p("(the monolith) " + s) }
	}
	mono, err := RunOne(ctx, cfg)
	if mono == nil {
		return fmt.Errorf("the monolith's surge: %w", err)
	}
	if m := mono.Result.Services; m != nil {
		s := run.Result.Services
		if m.ReplicasBefore > 0 && m.CapacityBeforeRPS > 0 {
			m.ReplicasForCapacity = int(math.Ceil(s.CapacityAfterRPS / (m.CapacityBeforeRPS / float64(m.ReplicasBefore))))
		}
		s.Monolith = m
	}
	if mono.Err != nil {
		return fmt.Errorf("the monolith's surge: %w", mono.Err)
	}
	return nil
}
