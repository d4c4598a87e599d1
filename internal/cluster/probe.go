package cluster

import (
	"slices"

	"github.com/statelab/statelab/internal/stores"
)

// Processes names the processes of the cluster that a measurement can read
// in /proc: the balancer's and the store's PIDs (0 when the cluster did not
// start one, or it is not running) and the URL the replicas reach the store
// at (empty for a store inside the replicas or the client).
type Processes struct {
	// BalancerPID is the balancer's process id.
	BalancerPID int
	// StorePID is the redis-server the cluster started; 0 for a Redis,
	// PostgreSQL or SQLite it did not start.
	StorePID int
	// StoreKind is the kind of the store the replicas use.
	StoreKind stores.Kind
	// StoreURL is the --redis or --postgres URL the replicas were given
	// (through the fault proxy when there is one); empty otherwise.
	StoreURL string
}

// Processes returns the balancer's and the store's process ids and the
// store's URL as the replicas see it.
func (c *Cluster) Processes() Processes {
	c.mu.Lock()
	p := Processes{}
	if c.lb != nil && !c.lb.exited() {
		p.BalancerPID = c.lb.pid()
	}
	c.mu.Unlock()
	if c.store == nil {
		return p
	}
	p.StoreKind = c.Store().Kind
	if r, ok := c.store.fault.(*redisServer); ok {
		r.mu.Lock()
		if r.proc != nil && !r.proc.exited() {
			p.StorePID = r.proc.pid()
		}
		r.mu.Unlock()
	}
	for _, flag := range []string{"--redis", "--postgres"} {
		if i := slices.Index(c.store.appArgs, flag); i >= 0 && i+1 < len(c.store.appArgs) {
			p.StoreURL = c.store.appArgs[i+1]
		}
	}
	return p
}
