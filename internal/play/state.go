package play

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cart"
	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// State is one snapshot of the playground, as the dashboard shows it. It is
// sent as the "state" Server-Sent Event and by GET /play/api/state.
type State struct {
	// Strategy is the running (or starting) strategy.
	Strategy strategy.Strategy `json:"strategy"`
	// Strategies lists the strategies a person may choose.
	Strategies []strategy.Strategy `json:"strategies"`
	// Phase is "starting", "running", "rebuilding" or "failed".
	Phase string `json:"phase"`
	// Error says why the phase is "failed".
	Error string `json:"error,omitempty"`
	// Busy names the control that is running, if any.
	Busy string `json:"busy,omitempty"`
	// Where completes "your cart lives …" for the strategy.
	Where string `json:"where"`
	// Balancer is the load balancer.
	Balancer BalancerState `json:"balancer"`
	// Replicas lists every replica, in id order.
	Replicas []ReplicaState `json:"replicas"`
	// Store is where the carts live.
	Store StoreState `json:"store"`
	// Shoppers is the background workload.
	Shoppers ShoppersState `json:"shoppers"`
	// You is the person shopping in the shop pane.
	You You `json:"you"`
	// Game is the game view (absent when the playground has none).
	Game *GameState `json:"game,omitempty"`
}

// BalancerState is the balancer as the dashboard shows it.
type BalancerState struct {
	// URL is the balancer's traffic address.
	URL string `json:"url"`
	// Policy is its --policy.
	Policy string `json:"policy"`
	// Reachable reports whether its admin API answered the last poll.
	Reachable bool `json:"reachable"`
	// RPS is the requests per second it forwarded over the last poll.
	RPS float64 `json:"rps"`
}

// ReplicaState is one replica as the dashboard shows it.
type ReplicaState struct {
	// ID is the replica's id.
	ID string `json:"id"`
	// Status is "up", "down", "paused", "draining", "unhealthy" or
	// "starting".
	Status string `json:"status"`
	// Inflight is the number of requests the balancer has in flight to it.
	Inflight int `json:"inflight"`
	// RPS is its requests per second over the last poll.
	RPS float64 `json:"rps"`
	// Requests is the total the balancer sent it.
	Requests int64 `json:"requests"`
	// Sessions is how many carts it holds, when its store can tell (nil
	// otherwise, or when it did not answer).
	Sessions *int `json:"sessions"`
	// Weight is its weight in the balancer (0 when the balancer does not
	// list it).
	Weight int `json:"weight"`
	// EffectiveWeight is the weight the balancer gives it now: below
	// Weight while it ramps up after being added or coming back up (the
	// balancer's --slow-start).
	EffectiveWeight float64 `json:"effective_weight"`
	// Restarts is how many times the balancer saw it restart between two
	// health checks (a new process identity, or an answer after a refused
	// connection), since the balancer started.
	Restarts uint64 `json:"restarts"`
}

// StoreState is the store as the dashboard shows it.
type StoreState struct {
	// Kind is the app's --store.
	Kind stores.Kind `json:"kind"`
	// Name is its human name ("Redis", "replica memory").
	Name string `json:"name"`
	// Addr is where it is, when it is external.
	Addr string `json:"addr,omitempty"`
	// External reports whether it can be stopped and started.
	External bool `json:"external"`
	// Up reports whether it is running.
	Up bool `json:"up"`
	// Sessions is how many carts an external store holds, when the
	// replicas can tell (nil otherwise).
	Sessions *int `json:"sessions"`
}

// ShoppersState is the background workload as the dashboard shows it.
type ShoppersState struct {
	// Available reports whether the server can run background shoppers.
	Available bool `json:"available"`
	// On reports whether they are running.
	On bool `json:"on"`
	// Rate is the shoppers' total requests per second.
	Rate float64 `json:"rate"`
}

// pollTimeout bounds every request the poller makes: a paused replica must
// not hold the dashboard back.
const pollTimeout = 400 * time.Millisecond

// getJSON fetches url into v with the poll timeout.
func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("play: poll %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("play: poll %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("play: poll %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("play: poll %s: %w", url, err)
	}
	return nil
}

// sample is one balancer request counter reading, for requests per second.
type sample struct {
	at       time.Time
	requests int64
}

// rateWindow is how far back requests per second look: long enough to
// smooth bursts of a few requests, short enough to show a kill at once.
const rateWindow = 2 * time.Second

// rateOf appends the reading (now, requests) to history, drops readings
// older than rateWindow (keeping at least one before now), and returns the
// requests per second over what remains.
func rateOf(history []sample, now time.Time, requests int64) ([]sample, float64) {
	if n := len(history); n > 0 && requests < history[n-1].requests {
		history = history[:0] // the counter restarted (a restarted balancer)
	}
	history = append(history, sample{at: now, requests: requests})
	for len(history) > 2 && now.Sub(history[1].at) >= rateWindow {
		history = history[1:]
	}
	first := history[0]
	if d := now.Sub(first.at); d > 0 {
		return history, float64(requests-first.requests) / d.Seconds()
	}
	return history, 0
}

// poll reads the balancer's and every replica's view of the cluster c.
// prev holds the recent counter readings of each replica and is updated.
func poll(ctx context.Context, client *http.Client, c Cluster, prev map[string][]sample, now time.Time) (BalancerState, []ReplicaState) {
	procs := c.Replicas()
	var (
		backends []balancer.BackendStatus
		adminErr error
		views    = make([]*cart.ReplicaStatus, len(procs))
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		adminErr = getJSON(ctx, client, c.AdminURL()+"/admin/backends", &backends)
	}()
	for i, p := range procs {
		if p.State == cluster.StateDown || p.State == cluster.StatePaused {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v cart.ReplicaStatus
			if getJSON(ctx, client, p.URL+"/api/replica", &v) == nil {
				views[i] = &v
			}
		}()
	}
	wg.Wait()

	bal := BalancerState{URL: c.BalancerURL(), Reachable: adminErr == nil}
	byID := map[string]balancer.BackendStatus{}
	byURL := map[string]balancer.BackendStatus{}
	for _, b := range backends {
		byID[b.ID] = b
		byURL[b.URL] = b
	}
	out := make([]ReplicaState, 0, len(procs))
	seen := map[string]bool{}
	for i, p := range procs {
		r := ReplicaState{ID: p.ID}
		b, inLB := byID[p.ID]
		if !inLB {
			b, inLB = byURL[p.URL]
		}
		switch {
		case p.State == cluster.StateDown:
			r.Status = "down"
		case p.State == cluster.StatePaused:
			r.Status = "paused"
		case !bal.Reachable:
			r.Status = "up"
		case !inLB:
			r.Status = "starting"
		case b.Draining:
			r.Status = "draining"
		case !b.Healthy:
			r.Status = "unhealthy"
		default:
			r.Status = "up"
		}
		if inLB {
			key := p.ID
			seen[key] = true
			r.Inflight = int(b.Inflight)
			r.Requests = int64(b.Requests)
			r.Weight, r.EffectiveWeight, r.Restarts = b.Weight, b.EffectiveWeight, b.Restarts
			prev[key], r.RPS = rateOf(prev[key], now, r.Requests)
			if p.State == cluster.StateDown {
				r.RPS = 0 // what the window remembers from before its death
			}
			bal.RPS += r.RPS
		}
		if v := views[i]; v != nil {
			r.Sessions = v.Sessions
			if !inLB {
				r.Inflight = v.Inflight
			}
		}
		out = append(out, r)
	}
	for k := range prev {
		if !seen[k] {
			delete(prev, k)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return replicaLess(out[i].ID, out[j].ID) })
	return bal, out
}

// replicaLess orders ids such as r2 before r10.
func replicaLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
