package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/statelab/statelab/balancer"
)

// The balancer pools of the microservice shape and the paths routed to
// them; everything else goes to the default pool, the carts.
const (
	// PoolPricing is the pool of `statelab pricing` replicas (/api/quote).
	PoolPricing = "pricing"
	// PoolCatalog is the pool of `statelab catalog` replicas (/api/catalog).
	PoolCatalog = "catalog"
)

// ErrNoServices is returned by the service operations (AddService,
// RestartService) on a cluster started without Config.Services: the
// monolith, where pricing and the catalog live inside the carts.
var ErrNoServices = errors.New("cluster: no separate services (the monolith shape)")

// Services describes the stateless services a cluster runs beside its cart
// replicas: the microservice shape of docs/services.md. The balancer routes
// /api/quote to the pricing pool, /api/catalog to the catalog pool and the
// rest to the carts, and the carts call pricing and the catalog through the
// balancer. A nil Services is the monolith: the carts price and list
// products in process.
type Services struct {
	// Pricing is how many pricing replicas start. Zero means 1.
	Pricing int
	// PricingPolicy is the pricing pool's balancer policy. Empty means
	// round_robin.
	PricingPolicy string
	// Catalog is how many catalog replicas start (they share one SQLite
	// file in the cluster's directory). Zero means 1.
	Catalog int
}

// withDefaults returns s with the defaults its comments give.
func (s Services) withDefaults() Services {
	if s.Pricing == 0 {
		s.Pricing = 1
	}
	if s.Catalog == 0 {
		s.Catalog = 1
	}
	if s.PricingPolicy == "" {
		s.PricingPolicy = balancer.PolicyRoundRobin
	}
	return s
}

// serviceSet is the runtime of the services: their replicas by pool.
// Guarded by Cluster.mu, except the replicas' process fields, which follow
// replica's rules.
type serviceSet struct {
	cfg    Services
	pools  map[string][]*replica // by pool name, in creation order
	nextID map[string]int
}

// poolPrefix is the letter of a pool's replica ids: p1, p2, c1.
func poolPrefix(pool string) string { return pool[:1] }

// HasServices reports whether the cluster runs the microservice shape.
func (c *Cluster) HasServices() bool { return c.cfg.Services != nil }

// startServices launches the configured pricing and catalog replicas and
// waits until they answer. The balancer is started after them, with their
// pools.
func (c *Cluster) startServices(ctx context.Context) error {
	if c.cfg.Services == nil {
		return nil
	}
	cfg := c.cfg.Services.withDefaults()
	if cfg.Pricing < 1 || cfg.Catalog < 1 {
		return fmt.Errorf("%w: Services needs at least one pricing and one catalog replica", ErrBadConfig)
	}
	c.mu.Lock()
	c.svc = &serviceSet{cfg: cfg, pools: map[string][]*replica{}, nextID: map[string]int{}}
	c.mu.Unlock()
	var started []*replica
	var pools []string // started[i]'s pool
	for pool, n := range map[string]int{PoolPricing: cfg.Pricing, PoolCatalog: cfg.Catalog} {
		for i := 0; i < n; i++ {
			r, err := c.newServiceReplica(pool)
			if err != nil {
				return err
			}
			if err := c.launchService(r, pool); err != nil {
				return err
			}
			started = append(started, r)
			pools = append(pools, pool)
		}
	}
	for i, r := range started {
		if err := c.waitReadyMoving(ctx, r, func() error { return c.launchService(r, pools[i]) }); err != nil {
			return err
		}
	}
	return nil
}

// newServiceReplica allocates the next replica id of pool and its port.
func (c *Cluster) newServiceReplica(pool string) (*replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.svc.nextID[pool]++
	r := &replica{id: poolPrefix(pool) + strconv.Itoa(c.svc.nextID[pool]), port: port, state: StateDown}
	c.svc.pools[pool] = append(c.svc.pools[pool], r)
	return r, nil
}

// serviceArgs is the command line of service replica r of pool: the carts'
// capacity model, and a drain delay of three health-check intervals so that
// the balancer stops sending before a stopping replica closes.
func (c *Cluster) serviceArgs(r *replica, pool string) []string {
	args := []string{pool,
		"--listen", "127.0.0.1:" + strconv.Itoa(r.port),
		"--id", r.id,
		"--drain-delay", (3 * c.cfg.HealthInterval).String(),
	}
	if pool == PoolCatalog {
		args = append(args, "--sqlite", filepath.Join(c.dir, "catalog.db"))
	}
	if c.cfg.Work > 0 {
		args = append(args, "--work", c.cfg.Work.String())
	}
	if c.cfg.MaxInflight > 0 {
		args = append(args, "--max-inflight", strconv.Itoa(c.cfg.MaxInflight))
	}
	return args
}

// launchService starts service replica r's process.
func (c *Cluster) launchService(r *replica, pool string) error {
	return c.startReplica(r, c.cfg.Binary, c.serviceArgs(r, pool), nil)
}

// serviceAppArgs are the flags that make a cart replica call the services
// through the balancer (none in the monolith).
func (c *Cluster) serviceAppArgs() []string {
	if c.cfg.Services == nil {
		return nil
	}
	return []string{"--pricing", c.lbURL, "--catalog", c.lbURL}
}

// servicePoolArgs are the balancer's flags for the service pools and
// routes, with the replicas started so far (none in the monolith). The
// pricing pool retries every request on another replica: a quote changes
// nothing, so repeating one is always safe.
func (c *Cluster) servicePoolArgs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.svc == nil {
		return nil
	}
	args := []string{
		"--pool", PoolPricing + "=" + c.svc.cfg.PricingPolicy,
		"--pool", PoolCatalog + "=" + balancer.PolicyRoundRobin,
		"--route", "/api/quote=" + PoolPricing,
		"--route", "/api/catalog=" + PoolCatalog,
		"--retry-all", PoolPricing, "--retry-all", PoolCatalog,
	}
	for _, pool := range []string{PoolPricing, PoolCatalog} {
		for _, r := range c.svc.pools[pool] {
			args = append(args, "--pool-backend", pool+"="+r.id+"="+r.url())
			r.lbID, r.inLB = r.id, true
		}
	}
	return args
}

// serviceCount is how many service replicas the balancer starts with.
func (c *Cluster) serviceCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.svc == nil {
		return 0
	}
	return len(c.svc.pools[PoolPricing]) + len(c.svc.pools[PoolCatalog])
}

// serviceProcsLocked returns the service replicas' processes, for Close
// (c.mu held).
func (c *Cluster) serviceProcsLocked() []*process {
	if c.svc == nil {
		return nil
	}
	var out []*process
	for _, reps := range c.svc.pools {
		for _, r := range reps {
			if r.proc != nil {
				out = append(out, r.proc)
			}
		}
	}
	return out
}

// ServiceReplicas returns a snapshot of pool's replicas in creation order;
// none on a monolith or for an unknown pool.
func (c *Cluster) ServiceReplicas(pool string) []Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.svc == nil {
		return nil
	}
	out := make([]Replica, 0, len(c.svc.pools[pool]))
	for _, r := range c.svc.pools[pool] {
		out = append(out, c.replicaLocked(r))
	}
	return out
}

// serviceReplica finds service replica id and its pool.
func (c *Cluster) serviceReplica(id string) (*replica, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, "", ErrClosed
	}
	if c.svc == nil {
		return nil, "", ErrNoServices
	}
	for pool, reps := range c.svc.pools {
		for _, r := range reps {
			if r.id == id {
				return r, pool, nil
			}
		}
	}
	return nil, "", fmt.Errorf("%w %q", ErrUnknownReplica, id)
}

// AddService starts a new replica of pool (PoolPricing or PoolCatalog),
// waits until it answers and adds it to the pool through the balancer's
// admin API, like scaling that one service out. The carts are not touched.
func (c *Cluster) AddService(ctx context.Context, pool string) (Replica, error) {
	r, err := c.StartSpare(ctx, pool)
	if err != nil {
		return Replica{}, err
	}
	rep, _, err := c.serviceReplica(r.ID)
	if err != nil {
		return Replica{}, err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if err := c.adminPost(ctx, rep, balancer.BackendConfig{ID: rep.id, URL: rep.url(), Weight: 1, Pool: pool}); err != nil {
		return Replica{}, err
	}
	c.event(EventAdd, r.ID, r.ID+" added to the "+pool+" pool (scale out of one service)")
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicaLocked(rep), nil
}

// StartSpare starts a new replica of pool and waits until it answers,
// without adding it to the balancer: a fresh replica to send requests to
// directly (its URL), as the lab's replay does.
func (c *Cluster) StartSpare(ctx context.Context, pool string) (Replica, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	closed, svc := c.closed, c.svc
	c.mu.Unlock()
	switch {
	case closed:
		return Replica{}, ErrClosed
	case svc == nil:
		return Replica{}, ErrNoServices
	case pool != PoolPricing && pool != PoolCatalog:
		return Replica{}, fmt.Errorf("%w: no pool %q", ErrBadConfig, pool)
	}
	r, err := c.newServiceReplica(pool)
	if err != nil {
		return Replica{}, err
	}
	if err := c.launchService(r, pool); err != nil {
		return Replica{}, err
	}
	if err := c.waitReadyMoving(ctx, r, func() error { return c.launchService(r, pool) }); err != nil {
		return Replica{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicaLocked(r), nil
}

// RestartService deploys service replica id again: SIGTERM (it turns
// /readyz to 503 and keeps serving for its drain delay, so the balancer's
// health checks stop sending first, then finishes what is in flight), a
// new process on the same port, and a wait until the balancer lists it
// healthy again — so that rolling a pool one replica at a time never has
// two replicas out at once.
func (c *Cluster) RestartService(ctx context.Context, id string) error {
	r, _, err := c.serviceReplica(id)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	p, pool, inLB, lbID := r.proc, "", r.inLB, r.lbID
	for name, reps := range c.svc.pools {
		for _, o := range reps {
			if o == r {
				pool = name
			}
		}
	}
	c.mu.Unlock()
	if p != nil && !p.exited() {
		p.stop(c.cfg.StopGrace + 3*c.cfg.HealthInterval)
	}
	if err := c.launchService(r, pool); err != nil {
		return err
	}
	if err := c.waitReady(ctx, r); err != nil {
		return err
	}
	if inLB {
		err := c.waitBackends(ctx, func(bs []balancer.BackendStatus) bool {
			for _, b := range bs {
				if b.ID == lbID {
					return b.Healthy
				}
			}
			return false
		})
		if err != nil {
			return err
		}
	}
	c.event(EventRestart, id, id+" deployed again (drained, SIGTERM, started, healthy in the "+pool+" pool)")
	return nil
}
