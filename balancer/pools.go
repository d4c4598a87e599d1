package balancer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// DefaultPool is the name of the pool that Config.Policy and Config.Backends
// describe, and that takes every request no route sends elsewhere.
const DefaultPool = "default"

// ErrUnknownPool is returned when a route or a backend names a pool that is
// not configured.
var ErrUnknownPool = errors.New("balancer: unknown pool")

// PoolConfig describes a named pool of backends besides the default one:
// requests that a Route sends to it are spread over its backends with its
// own policy.
type PoolConfig struct {
	// Name names the pool in routes, the admin API and logs: 1-64 bytes of
	// [A-Za-z0-9._-], not "default".
	Name string `json:"name"`
	// Policy is the pool's selection policy (as Config.Policy); empty means
	// round_robin.
	Policy string `json:"policy"`
	// RetryAll makes every request to the pool retryable on another
	// backend like an idempotent one, whatever its method: for stateless
	// services whose every endpoint is safe to repeat (a quote computed
	// from the request). Never set it for a pool whose POSTs change state.
	RetryAll bool `json:"retry_all,omitempty"`
	// Backends are the pool's initial backends (their Pool field is
	// ignored). Backend IDs are unique across all pools.
	Backends []BackendConfig `json:"backends,omitempty"`
}

// Route sends requests whose path is Prefix, or starts with Prefix followed
// by "/", to Pool. A Prefix ending in "/" matches any path under it. The
// longest matching prefix wins; unmatched requests go to the default pool.
// The path matched is the normalised one (dot segments resolved, escapes
// decoded), so "/api/quote/../cart" is not routed as a quote.
type Route struct {
	Prefix string `json:"prefix"`
	Pool   string `json:"pool"`
}

// PoolStatus is a snapshot of one pool, as GET /admin/pools shows it.
type PoolStatus struct {
	Name     string          `json:"name"`
	Policy   string          `json:"policy"`
	RetryAll bool            `json:"retry_all"`
	Routes   []string        `json:"routes"`
	Backends []BackendStatus `json:"backends"`
}

// initialBackends counts the backends of every pool of c.
func (c *Config) initialBackends() int {
	n := len(c.Backends)
	for _, p := range c.Pools {
		n += len(p.Backends)
	}
	return n
}

// poolGroup is a named pool's runtime state: its policy, its selector and
// the current snapshot of its backends.
type poolGroup struct {
	name     string
	policy   string
	selector Selector
	retryAll bool
	pool     atomic.Pointer[Pool]
}

// newGroups builds the pools of cfg (the default one first) and the
// routes, longest prefix first.
func (lb *Balancer) newGroups(cfg Config) error {
	lb.groups = map[string]*poolGroup{}
	defs := append([]PoolConfig{{Name: DefaultPool, Policy: cfg.Policy, Backends: cfg.Backends}}, cfg.Pools...)
	seen := map[string]bool{}
	for i, pc := range defs {
		if i > 0 && (pc.Name == DefaultPool || !validID(pc.Name) || strings.Contains(pc.Name, ":")) {
			return fmt.Errorf("%w: pool name %q: want 1-64 bytes of [A-Za-z0-9._-], not %q", ErrInvalidConfig, pc.Name, DefaultPool)
		}
		if lb.groups[pc.Name] != nil {
			return fmt.Errorf("%w: pool %q configured twice", ErrInvalidConfig, pc.Name)
		}
		if pc.Policy == "" {
			pc.Policy = PolicyRoundRobin
		}
		sel, err := newSelector(pc.Policy, cfg.HashFactor)
		if err != nil {
			return err
		}
		g := &poolGroup{name: pc.Name, policy: pc.Policy, selector: sel, retryAll: pc.RetryAll}
		var bs []*Backend
		for _, bc := range pc.Backends {
			b, err := lb.newBackend(bc)
			if err != nil {
				return err
			}
			if seen[b.id] {
				return fmt.Errorf("%w: %q", ErrDuplicateBackend, b.id)
			}
			seen[b.id] = true
			b.pool = pc.Name
			bs = append(bs, b)
		}
		g.pool.Store(newPool(bs))
		lb.groups[pc.Name] = g
		lb.order = append(lb.order, g)
	}
	lb.defaultGroup = lb.groups[DefaultPool]
	for _, rt := range cfg.Routes {
		if rt.Prefix == "" || rt.Prefix[0] != '/' {
			return fmt.Errorf("%w: route prefix %q must start with /", ErrInvalidConfig, rt.Prefix)
		}
		g := lb.groups[rt.Pool]
		if g == nil {
			return fmt.Errorf("%w: route %s → %q", ErrUnknownPool, rt.Prefix, rt.Pool)
		}
		if slices.ContainsFunc(lb.routes, func(r route) bool { return r.prefix == rt.Prefix }) {
			return fmt.Errorf("%w: route prefix %q given twice", ErrInvalidConfig, rt.Prefix)
		}
		lb.routes = append(lb.routes, route{prefix: rt.Prefix, group: g})
	}
	slices.SortStableFunc(lb.routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })
	return nil
}

// route is one compiled Route.
type route struct {
	prefix string
	group  *poolGroup
}

// groupFor returns the pool a request for path goes to.
func (lb *Balancer) groupFor(path []byte) *poolGroup {
	for _, rt := range lb.routes {
		p := rt.prefix
		if len(path) < len(p) || string(path[:len(p)]) != p {
			continue
		}
		if len(path) == len(p) || p[len(p)-1] == '/' || path[len(p)] == '/' {
			return rt.group
		}
	}
	return lb.defaultGroup
}

// findBackend returns the backend with the given ID and its pool, or nils.
func (lb *Balancer) findBackend(id string) (*poolGroup, *Backend) {
	for _, g := range lb.order {
		if b := g.pool.Load().byID[id]; b != nil {
			return g, b
		}
	}
	return nil, nil
}

// allBackends returns every backend of every pool, default pool first.
func (lb *Balancer) allBackends() []*Backend {
	var out []*Backend
	for _, g := range lb.order {
		out = append(out, g.pool.Load().backends...)
	}
	return out
}

// Pools reports every pool with its routes and backends, default first.
func (lb *Balancer) Pools() []PoolStatus {
	out := make([]PoolStatus, 0, len(lb.order))
	for _, g := range lb.order {
		ps := PoolStatus{Name: g.name, Policy: g.policy, RetryAll: g.retryAll, Routes: []string{}, Backends: []BackendStatus{}}
		for _, rt := range lb.routes {
			if rt.group == g {
				ps.Routes = append(ps.Routes, rt.prefix)
			}
		}
		for _, b := range g.pool.Load().backends {
			ps.Backends = append(ps.Backends, b.Status())
		}
		out = append(out, ps)
	}
	return out
}
