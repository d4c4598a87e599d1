package main

import (
	"flag"
	"slices"
	"strings"

	"github.com/statelab/statelab/balancer"
)

// poolFlags are statelab lb's flags for named pools and path routes.
type poolFlags struct {
	pools, routes, backends, retryAll listFlag
}

// register adds the pool flags to fs.
func (p *poolFlags) register(fs *flag.FlagSet) {
	fs.Var(&p.pools, "pool", "named backend pool `NAME=POLICY` besides the default one (repeatable), e.g. pricing=round_robin")
	fs.Var(&p.routes, "route", "send paths under `PREFIX=POOL` to that pool (repeatable; longest prefix wins; the rest go to the default pool), e.g. /api/quote=pricing")
	fs.Var(&p.backends, "pool-backend", "backend of a named pool, `POOL=[ID=]URL` (repeatable)")
	fs.Var(&p.retryAll, "retry-all", "`POOL` whose requests are all safe to repeat: retried on another backend whatever the method (stateless pools only; repeatable)")
}

// apply adds the pools, routes and pool backends to cfg, or returns a usage
// error naming the bad flag.
func (p *poolFlags) apply(cfg *balancer.Config) error {
	index := map[string]int{}
	for _, spec := range p.pools {
		name, policy, ok := strings.Cut(spec, "=")
		if !ok || name == "" {
			return usageErrorf("lb", "invalid --pool %q: want NAME=POLICY", spec)
		}
		if !slices.Contains(balancer.Policies, policy) {
			return usageErrorf("lb", "invalid --pool %q: policy %q is not one of %s", spec, policy, strings.Join(balancer.Policies, ", "))
		}
		if _, dup := index[name]; dup || name == balancer.DefaultPool {
			return usageErrorf("lb", "invalid --pool %q: pool %q given twice (or named %q)", spec, name, balancer.DefaultPool)
		}
		index[name] = len(cfg.Pools)
		cfg.Pools = append(cfg.Pools, balancer.PoolConfig{Name: name, Policy: policy})
	}
	for _, spec := range p.backends {
		name, b, ok := strings.Cut(spec, "=")
		i, known := index[name]
		if !ok || !known {
			return usageErrorf("lb", "invalid --pool-backend %q: want POOL=[ID=]URL with a POOL given by --pool", spec)
		}
		cfg.Pools[i].Backends = append(cfg.Pools[i].Backends, parseBackendSpec(b))
	}
	for _, name := range p.retryAll {
		i, known := index[name]
		if !known {
			return usageErrorf("lb", "invalid --retry-all %q: no such --pool", name)
		}
		cfg.Pools[i].RetryAll = true
	}
	for _, spec := range p.routes {
		prefix, name, ok := strings.Cut(spec, "=")
		_, known := index[name]
		if !ok || !strings.HasPrefix(prefix, "/") || !(known || name == balancer.DefaultPool) {
			return usageErrorf("lb", "invalid --route %q: want /PREFIX=POOL with a POOL given by --pool", spec)
		}
		cfg.Routes = append(cfg.Routes, balancer.Route{Prefix: prefix, Pool: name})
	}
	return nil
}

// parseBackendSpec reads a --backend value: [ID=]URL (an ID has no "/").
func parseBackendSpec(s string) balancer.BackendConfig {
	if id, u, ok := strings.Cut(s, "="); ok && !strings.Contains(id, "/") {
		return balancer.BackendConfig{ID: id, URL: u}
	}
	return balancer.BackendConfig{URL: s}
}
