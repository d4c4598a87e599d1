package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cart"
)

// Kill sends SIGKILL to replica id, as a crash or an OOM kill would. The
// replica stays a backend of the balancer (which must notice it is dead);
// Restart brings it back. Killing a replica that is down is not an error.
// An ended ctx stops the kill before the signal is sent.
func (c *Cluster) Kill(ctx context.Context, id string) error {
	return c.signalReplica(ctx, id, func(p *process) error {
		if p == nil || p.exited() {
			return errAlreadyDown
		}
		p.kill()
		return nil
	}, StateDown, EventKill, " killed (SIGKILL): whatever lived only in its memory is gone")
}

// Pause stops replica id with SIGSTOP: it keeps its sockets but answers
// nothing, like a long GC pause or a frozen VM. An ended ctx stops it before
// the signal is sent.
func (c *Cluster) Pause(ctx context.Context, id string) error {
	return c.signalReplica(ctx, id, stopCont(syscall.SIGSTOP), StatePaused, EventPause, " paused (SIGSTOP): it holds its connections but answers nothing")
}

// Resume continues a paused replica with SIGCONT. An ended ctx stops it
// before the signal is sent.
func (c *Cluster) Resume(ctx context.Context, id string) error {
	return c.signalReplica(ctx, id, stopCont(syscall.SIGCONT), StateUp, EventResume, " resumed (SIGCONT)")
}

// What a signal function of signalReplica returns for a replica whose
// process is not running: errAlreadyDown when that is what it wanted (a
// kill), errNotRunning when it cannot be done (pause, resume).
var (
	errAlreadyDown = errors.New("cluster: already down")
	errNotRunning  = errors.New("cluster: not running")
)

// replicaOp takes the operation lock for a control of replica id and
// returns the replica, its current process (nil if never started) and the
// function that releases the lock. It fails (the lock released) for an
// unknown replica or a closed cluster.
func (c *Cluster) replicaOp(id string) (*replica, *process, func(), error) {
	c.opMu.Lock()
	r, err := c.get(id)
	if err != nil {
		c.opMu.Unlock()
		return nil, nil, nil, err
	}
	c.mu.Lock()
	p := r.proc
	c.mu.Unlock()
	return r, p, c.opMu.Unlock, nil
}

// stopCont returns the signal function of Pause and Resume: a replica that
// is not running cannot be paused or resumed.
func stopCont(sig syscall.Signal) func(p *process) error {
	return func(p *process) error {
		if p == nil || p.exited() {
			return errNotRunning
		}
		if err := p.signal(sig, false); err != nil {
			return err
		}
		if sig == syscall.SIGSTOP {
			p.waitStopped(2 * time.Second)
		}
		return nil
	}
}

// signalReplica runs send on replica id's process, then records its new
// state and the event kind with msg.
func (c *Cluster) signalReplica(ctx context.Context, id string, send func(p *process) error, state State, kind EventKind, msg string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, p, done, err := c.replicaOp(id)
	if err != nil {
		return err
	}
	defer done()
	err = send(p)
	switch {
	case errors.Is(err, errAlreadyDown):
		return nil
	case errors.Is(err, errNotRunning):
		return fmt.Errorf("cluster: %s is not running", id)
	case err != nil:
		return err
	}
	c.mu.Lock()
	r.state = state
	c.mu.Unlock()
	c.event(kind, id, id+msg)
	return nil
}

// Restart stops replica id gracefully (SIGTERM, then SIGKILL after the stop
// grace) if it runs, starts it again on the same port with the same id, and
// waits until it answers. A replica that was killed comes back this way.
func (c *Cluster) Restart(ctx context.Context, id string) error {
	r, p, done, err := c.replicaOp(id)
	if err != nil {
		return err
	}
	defer done()
	how := "started again"
	if p != nil && !p.exited() {
		p.stop(c.cfg.StopGrace)
		how = "restarted gracefully (SIGTERM, then started again)"
	}
	if err := c.launch(r); err != nil {
		return err
	}
	if err := c.waitReady(ctx, r); err != nil {
		return err
	}
	c.event(EventRestart, id, id+" "+how)
	return nil
}

// Add starts a new replica, waits until it answers and adds it to the
// balancer through the admin API, like scaling out. It returns the new
// replica.
func (c *Cluster) Add(ctx context.Context) (Replica, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return Replica{}, ErrClosed
	}
	r, err := c.newReplica()
	if err != nil {
		return Replica{}, err
	}
	if err := c.launch(r); err != nil {
		return Replica{}, err
	}
	if err := c.waitReadyMoving(ctx, r, func() error { return c.launch(r) }); err != nil {
		return Replica{}, err
	}
	if err := c.adminAdd(ctx, r); err != nil {
		return Replica{}, err
	}
	c.event(EventAdd, r.id, r.id+" added to the balancer (scale out)")
	out, _ := c.Replica(r.id)
	return out, nil
}

// Remove drains replica id through the balancer's admin API (no new
// sessions; requests in flight finish), waits until the balancer no longer
// lists it (bounded by the ready timeout), then stops it gracefully and
// forgets it, like scaling in.
func (c *Cluster) Remove(ctx context.Context, id string) error {
	r, _, done, err := c.replicaOp(id)
	if err != nil {
		return err
	}
	defer done()
	c.mu.Lock()
	lbID, inLB := r.lbID, r.inLB
	if inLB {
		r.state = StateDraining
	}
	c.mu.Unlock()
	if inLB {
		if err := c.adminDelete(ctx, lbID); err != nil {
			return err
		}
		err := c.waitBackends(ctx, func(bs []balancer.BackendStatus) bool {
			for _, b := range bs {
				if b.ID == lbID {
					return false
				}
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	c.mu.Lock()
	p := r.proc
	r.inLB = false
	c.mu.Unlock()
	if p != nil {
		p.stop(c.cfg.StopGrace)
	}
	c.mu.Lock()
	delete(c.replicas, id)
	for i, o := range c.order {
		if o == id {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	c.event(EventRemove, id, id+" drained and removed (scale in)")
	return nil
}

// Status asks replica id directly (bypassing the balancer) for its
// /api/replica status, with a one-second deadline.
func (c *Cluster) Status(ctx context.Context, id string) (cart.ReplicaStatus, error) {
	r, err := c.get(id)
	if err != nil {
		return cart.ReplicaStatus{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url()+"/api/replica", nil)
	if err != nil {
		return cart.ReplicaStatus{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return cart.ReplicaStatus{}, fmt.Errorf("cluster: status of %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return cart.ReplicaStatus{}, fmt.Errorf("cluster: status of %s: %s", id, resp.Status)
	}
	var st cart.ReplicaStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return cart.ReplicaStatus{}, fmt.Errorf("cluster: status of %s: %w", id, err)
	}
	return st, nil
}
