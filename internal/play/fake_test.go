package play

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cart"
	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// fakeCluster is a test double of Cluster: one httptest server plays the
// balancer (sticky or round robin), its admin API and every replica's own
// address. Carts live per replica (memory) or in one shared map (an
// external store, or the client). It is just enough to drive the
// playground's wording, not a second cluster.
type fakeCluster struct {
	strategy strategy.Strategy
	kind     stores.Kind // app --store
	sticky   bool
	srv      *httptest.Server

	mu      sync.Mutex
	reps    []*fakeReplica
	shared  map[string]map[string]int // session -> sku -> qty, for non-memory stores
	storeUp bool
	rr      int
	nextSID int
	closed  bool
	calls   []string
}

type fakeReplica struct {
	id    string
	state cluster.State
	carts map[string]map[string]int
	reqs  uint64
}

func newFakeCluster(t *testing.T, st strategy.Strategy, replicas int) *fakeCluster {
	t.Helper()
	spec, ok := strategy.Lookup(st)
	if !ok {
		t.Fatalf("unknown strategy %q", st)
	}
	f := &fakeCluster{strategy: st, kind: spec.Store, sticky: spec.Policy == balancer.PolicySticky,
		shared: map[string]map[string]int{}, storeUp: true}
	for i := 1; i <= replicas; i++ {
		f.reps = append(f.reps, &fakeReplica{id: fmt.Sprintf("r%d", i), state: cluster.StateUp, carts: map[string]map[string]int{}})
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCluster) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeCluster) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/admin/backends":
		var out []balancer.BackendStatus
		for _, rep := range f.reps {
			out = append(out, balancer.BackendStatus{ID: rep.id, URL: f.srv.URL + "/replica/" + rep.id,
				Healthy: rep.state == cluster.StateUp, Requests: rep.reqs})
		}
		_ = json.NewEncoder(w).Encode(out)
	case strings.HasPrefix(r.URL.Path, "/replica/"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/replica/"), "/api/replica")
		for _, rep := range f.reps {
			if rep.id == id {
				var n *int
				if f.kind == "memory" || f.kind == "replicated" {
					c := len(rep.carts)
					n = &c
				}
				_ = json.NewEncoder(w).Encode(cart.ReplicaStatus{ID: id, Store: string(f.kind), Sessions: n})
				return
			}
		}
		http.NotFound(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/cart"):
		f.serveCart(w, r)
	default:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>shop</title><h1>shop</h1>")
	}
}

// pick chooses the replica for r as the balancer would; f.mu is held.
func (f *fakeCluster) pick(w http.ResponseWriter, r *http.Request) *fakeReplica {
	if f.sticky {
		if c, err := r.Cookie("lb"); err == nil {
			for _, rep := range f.reps {
				if rep.id == c.Value && rep.state == cluster.StateUp {
					return rep
				}
			}
		}
	}
	for range f.reps {
		rep := f.reps[f.rr%len(f.reps)]
		f.rr++
		if rep.state == cluster.StateUp {
			if f.sticky {
				http.SetCookie(w, &http.Cookie{Name: "lb", Value: rep.id, Path: "/"})
			}
			return rep
		}
	}
	return nil
}

func (f *fakeCluster) serveCart(w http.ResponseWriter, r *http.Request) {
	rep := f.pick(w, r)
	if rep == nil {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `{"error":{"code":"no_backend","message":"no healthy backend"}}`)
		return
	}
	rep.reqs++
	w.Header().Set("X-Served-By", rep.id)
	if !f.storeUp {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"code":"store_unavailable","message":"the session store is unreachable"}}`)
		return
	}
	sid := ""
	if c, err := r.Cookie("sid"); err == nil {
		sid = c.Value
	} else {
		f.nextSID++
		sid = fmt.Sprintf("s%d", f.nextSID)
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: sid, Path: "/"})
	}
	carts := f.shared
	if f.kind == "memory" {
		carts = rep.carts
	}
	cart := carts[sid]
	if cart == nil {
		cart = map[string]int{}
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/cart/items":
		var in struct {
			SKU string `json:"sku"`
			Qty int    `json:"qty"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		cart[in.SKU] += in.Qty
		carts[sid] = cart
		if f.kind == "replicated" {
			for _, other := range f.reps {
				other.carts[sid] = cart
			}
		}
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/cart/items/"):
		delete(cart, strings.TrimPrefix(r.URL.Path, "/api/cart/items/"))
	case r.Method == http.MethodPost && r.URL.Path == "/api/cart/checkout":
		delete(carts, sid)
		fmt.Fprint(w, `{"order_id":"o1"}`)
		return
	}
	type line struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	items := []line{}
	for sku, q := range cart {
		items = append(items, line{sku, q})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].SKU < items[j].SKU })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "served_by": rep.id})
}

func (f *fakeCluster) Strategy() strategy.Strategy { return f.strategy }
func (f *fakeCluster) BalancerURL() string         { return f.srv.URL }
func (f *fakeCluster) AdminURL() string            { return f.srv.URL }

func (f *fakeCluster) Replicas() []cluster.Replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cluster.Replica
	for _, r := range f.reps {
		out = append(out, cluster.Replica{ID: r.id, URL: f.srv.URL + "/replica/" + r.id, State: r.state})
	}
	return out
}

func (f *fakeCluster) Store() cluster.StoreInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	ext := f.kind.External()
	return cluster.StoreInfo{Kind: f.kind, External: ext, Up: f.storeUp || !ext}
}

func (f *fakeCluster) replica(id string) (*fakeReplica, error) {
	for _, r := range f.reps {
		if r.id == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w %q", cluster.ErrUnknownReplica, id)
}

func (f *fakeCluster) setState(call, id string, st cluster.State, wipe bool) error {
	f.record(call + " " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.replica(id)
	if err != nil {
		return err
	}
	r.state = st
	if wipe {
		r.carts = map[string]map[string]int{}
	}
	return nil
}

func (f *fakeCluster) Kill(_ context.Context, id string) error {
	return f.setState("kill", id, cluster.StateDown, true)
}
func (f *fakeCluster) Pause(_ context.Context, id string) error {
	return f.setState("pause", id, cluster.StatePaused, false)
}
func (f *fakeCluster) Resume(_ context.Context, id string) error {
	return f.setState("resume", id, cluster.StateUp, false)
}
func (f *fakeCluster) Restart(_ context.Context, id string) error {
	return f.setState("restart", id, cluster.StateUp, true)
}

func (f *fakeCluster) Add(context.Context) (string, error) {
	f.record("add")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("r%d", len(f.reps)+1)
	f.reps = append(f.reps, &fakeReplica{id: id, state: cluster.StateUp, carts: map[string]map[string]int{}})
	return id, nil
}

func (f *fakeCluster) Remove(_ context.Context, id string) error {
	f.record("remove " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.reps {
		if r.id == id {
			f.reps = append(f.reps[:i], f.reps[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w %q", cluster.ErrUnknownReplica, id)
}

func (f *fakeCluster) StopStore(context.Context) error {
	f.record("stop store")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeUp = false
	return nil
}

func (f *fakeCluster) StartStore(context.Context) error {
	f.record("start store")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeUp = true
	return nil
}

func (f *fakeCluster) Close() error {
	f.record("close")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeCluster) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// fakeStarter starts fake clusters and remembers them.
type fakeStarter struct {
	t        *testing.T
	mu       sync.Mutex
	started  []*fakeCluster
	gate     chan struct{} // when not nil, Start waits for it
	failWith error
}

func (fs *fakeStarter) start(ctx context.Context, st strategy.Strategy, replicas int) (Cluster, error) {
	fs.mu.Lock()
	gate, fail := fs.gate, fs.failWith
	fs.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	c := newFakeCluster(fs.t, st, replicas)
	fs.mu.Lock()
	fs.started = append(fs.started, c)
	fs.mu.Unlock()
	return c, nil
}

func (fs *fakeStarter) last() *fakeCluster {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.started[len(fs.started)-1]
}

// fakeShoppers records what the server asks of the background workload.
type fakeShoppers struct {
	mu     sync.Mutex
	url    string
	rate   float64
	closed bool
}

func (s *fakeShoppers) SetRate(r float64) { s.mu.Lock(); s.rate = r; s.mu.Unlock() }
func (s *fakeShoppers) Close() error      { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }
func (s *fakeShoppers) get() (string, float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url, s.rate, s.closed
}
