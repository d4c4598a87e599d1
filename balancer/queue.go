package balancer

import (
	"errors"
	"time"
)

// The per-backend connection limit and queue (HAProxy's maxconn): with
// Config.BackendMaxConn set, a backend serves at most that many proxied
// requests at once. A backend at its limit is not eligible for new
// clients; when every backend that could take a request is at its limit
// (or a sticky client's own backend is), the request waits in the queue
// until a slot frees, up to Config.QueueTimeout, and then gets 503 with
// Retry-After. Every freed slot wakes the waiters, which try again.

// errQueueTimeout is what pick returns when the queue wait expired.
var errQueueTimeout = errors.New("balancer: queue timeout")

// hasRoom reports whether b is below its connection limit (if any).
func (b *Backend) hasRoom() bool {
	return b.maxConn <= 0 || b.inflight.Load() < b.maxConn
}

// acquire takes one of b's request slots, or reports false when b is at
// its limit.
func (b *Backend) acquire() bool {
	max := b.maxConn
	if max <= 0 {
		b.inflight.Add(1)
		return true
	}
	for {
		n := b.inflight.Load()
		if n >= max {
			return false
		}
		if b.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives back b's slot and wakes the queue if anyone waits.
func (lb *Balancer) release(b *Backend) {
	b.inflight.Add(-1)
	if lb.queued.Load() > 0 {
		lb.wakeMu.Lock()
		close(lb.wake)
		lb.wake = make(chan struct{})
		lb.wakeMu.Unlock()
	}
}

// wakeChan returns the channel the next release closes.
func (lb *Balancer) wakeChan() chan struct{} {
	lb.wakeMu.Lock()
	defer lb.wakeMu.Unlock()
	return lb.wake
}

// pick selects a backend for the next attempt of r and takes one of its
// slots. It returns nil, nil when no backend is available, and nil,
// errQueueTimeout when backends were available but full for the whole
// queue timeout (or the balancer closed meanwhile).
func (lb *Balancer) pick(pool *Pool, r *Request) (*Backend, error) {
	limited := lb.cfg.BackendMaxConn > 0
	var deadline time.Time
	for {
		var wake chan struct{}
		if limited {
			wake = lb.wakeChan()
		}
		r.Panic = pool.panicking(r.Now, lb.cfg.PanicThreshold)
		b := r.group.selector.Select(pool, r)
		switch {
		case b != nil && b.acquire():
			return b, nil
		case b == nil && (!limited || !lb.anyFull(pool, r)):
			return nil, nil
		}
		if deadline.IsZero() {
			// Count as queued first, then look again: a slot freed before
			// the count was visible woke nobody.
			deadline = time.Now().Add(lb.cfg.QueueTimeout)
			lb.queued.Add(1)
			defer lb.queued.Add(-1)
			continue
		}
		if !lb.waitSlot(wake, deadline) {
			lb.queueTimeouts.Add(1)
			return nil, errQueueTimeout
		}
		r.Now = time.Now().UnixNano()
	}
}

// waitSlot waits for wake until deadline; it reports false on timeout or
// when the balancer closes.
func (lb *Balancer) waitSlot(wake chan struct{}, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
		return true
	case <-t.C:
		return false
	case <-lb.done:
		return false
	}
}

// anyFull reports whether a backend that could take r is only held back
// by its connection limit.
func (lb *Balancer) anyFull(pool *Pool, r *Request) bool {
	for _, b := range pool.backends {
		if !b.hasRoom() && r.Reachable(b) && (!b.draining.Load() || string(r.Cookie) == b.stickyValue) {
			return true
		}
	}
	return false
}
