package httpapi

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Limiter is a replica's capacity model, so that scaling out is visible on a
// small machine: every request waits Work (a timer wait, not a CPU burn, so
// a 2-core machine can run many replicas), at most MaxInflight requests run
// at once, up to Queue more wait for a slot in arrival order, and any
// further request is refused at once with 503 and Retry-After. A replica
// with MaxInflight slots therefore serves at most MaxInflight/Work requests
// a second, whatever the machine.
//
// A Limiter is safe for concurrent use. Its zero value is not usable; create
// it with NewLimiter.
type Limiter struct {
	work     time.Duration
	slots    chan struct{} // one token per running request; nil: unlimited
	queueMax int64

	running  atomic.Int64
	queued   atomic.Int64
	rejected atomic.Uint64
	// busyNS sums the time requests held a slot (or ran, when unlimited);
	// held counts them.
	busyNS atomic.Int64
	held   atomic.Uint64
}

// NewLimiter returns a Limiter. work is each request's wait (0: none);
// maxInflight bounds concurrent requests (0: unbounded, and queue is then
// ignored); queue bounds the requests waiting for a slot (0: none wait, a
// request that finds every slot busy is refused). Negative values count as 0.
func NewLimiter(work time.Duration, maxInflight, queue int) *Limiter {
	l := &Limiter{work: max(work, 0), queueMax: int64(max(queue, 0))}
	if maxInflight > 0 {
		l.slots = make(chan struct{}, maxInflight)
	}
	return l
}

// Running returns the number of requests holding a slot now.
func (l *Limiter) Running() int { return int(l.running.Load()) }

// Queued returns the number of requests waiting for a slot now.
func (l *Limiter) Queued() int { return int(l.queued.Load()) }

// Rejected returns how many requests were refused because the queue was
// full, since the Limiter was made.
func (l *Limiter) Rejected() uint64 { return l.rejected.Load() }

// Slots returns MaxInflight: how many requests run at once (0: unlimited).
func (l *Limiter) Slots() int { return cap(l.slots) }

// BusySeconds returns the time requests have held a slot since the Limiter
// was made, summed over requests: over an interval, its growth divided by
// Slots and the interval is the share of the capacity model in use.
func (l *Limiter) BusySeconds() float64 { return float64(l.busyNS.Load()) / 1e9 }

// Held returns how many requests have held a slot and released it.
func (l *Limiter) Held() uint64 { return l.held.Load() }

// Wrap returns next behind the limiter.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.acquire(w, r) {
			return
		}
		defer l.release(time.Now())
		if l.work > 0 {
			t := time.NewTimer(l.work)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the client is gone; nobody reads an answer
			}
		}
		next.ServeHTTP(w, r)
	})
}

// acquire takes a slot for r, queueing when allowed. It answers r itself
// and returns false when r must not run.
func (l *Limiter) acquire(w http.ResponseWriter, r *http.Request) bool {
	if l.slots == nil {
		l.running.Add(1)
		return true
	}
	select {
	case l.slots <- struct{}{}:
		l.running.Add(1)
		return true
	default:
	}
	if l.queued.Add(1) > l.queueMax {
		l.queued.Add(-1)
		l.rejected.Add(1)
		WriteError(w, &Error{http.StatusServiceUnavailable, "overloaded", "the replica is at capacity; try again shortly"})
		return false
	}
	defer l.queued.Add(-1)
	select {
	case l.slots <- struct{}{}:
		l.running.Add(1)
		return true
	case <-r.Context().Done():
		return false
	}
}

// release frees the slot taken at since and counts the time it was held.
func (l *Limiter) release(since time.Time) {
	l.busyNS.Add(int64(time.Since(since)))
	l.held.Add(1)
	l.running.Add(-1)
	if l.slots != nil {
		<-l.slots
	}
}
