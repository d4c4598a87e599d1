package cluster

import (
	"context"
	"time"

	"github.com/statelab/statelab/internal/machine"
)

// A child is told its port and binds it itself, moments after freePort
// found it free; on a busy machine another program can take it in
// between, and the child exits with "address already in use". Such an
// exit during start-up is not a crash (startProcess marks it expected), and
// where nothing outside the cluster knows the port yet — a replica before
// the balancer lists it, the balancer's admin address, its listen address
// before any replica was told it — the cluster picks new ports and starts
// the child again, up to portAttempts times in all.

// portAttempts is how many times a child that lost its port is started.
const portAttempts = 3

// lostPort reports whether p exited during start-up because its address
// was taken.
func lostPort(p *process) bool {
	return p != nil && p.exited() && machine.AddrInUse(p.ownLog())
}

// waitReadyMoving is waitReady for a replica that may still move: when its
// process lost its port and no one but the cluster knows the port yet, the
// replica gets new ports and is started again with relaunch.
func (c *Cluster) waitReadyMoving(ctx context.Context, r *replica, relaunch func() error) error {
	for attempt := 1; ; attempt++ {
		err := c.waitReady(ctx, r)
		c.mu.Lock()
		// A replica with a cluster address may have been named in the
		// --peers of the replicas started after it: it keeps its ports.
		p, movable := r.proc, !r.inLB && r.host == nil && r.clusterAddr == ""
		c.mu.Unlock()
		if err == nil || attempt >= portAttempts || !movable || !lostPort(p) {
			return err
		}
		if err := c.movePorts(r); err != nil {
			return err
		}
		c.log.Info("cluster: replica lost its port before binding it, starting it again", "replica", r.id, "attempt", attempt+1)
		if err := relaunch(); err != nil {
			return err
		}
	}
}

// movePorts gives r a new HTTP port.
func (c *Cluster) movePorts(r *replica) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.mu.Lock()
	r.port = port
	c.mu.Unlock()
	return nil
}

// readyStretch caps how much a loaded machine stretches ReadyTimeout.
const readyStretch = 4

// readyTimeout is Config.ReadyTimeout stretched by the machine's load
// (machine.Scaled, at most readyStretch times).
func (c *Cluster) readyTimeout() time.Duration {
	return machine.Scaled(c.cfg.ReadyTimeout, readyStretch)
}
