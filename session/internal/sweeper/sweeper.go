// Package sweeper runs a session store's periodic expiry sweep in the
// background. Stores check expiry on every read, so a sweep only frees space;
// this package owns the goroutine, its ticker and a clean stop, not what a
// sweep does.
package sweeper

import (
	"context"
	"sync"
	"time"
)

// Sweeper calls a sweep function on a ticker until Stop.
type Sweeper struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start calls sweep every interval in a new goroutine. The context given to
// sweep is cancelled by Stop, so a sweep in progress ends promptly. With an
// interval of zero or less nothing runs, and Stop returns at once.
func Start(interval time.Duration, sweep func(ctx context.Context)) *Sweeper {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sweeper{cancel: cancel, done: make(chan struct{})}
	if interval <= 0 {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sweep(ctx)
			}
		}
	}()
	return s
}

// Stop cancels the sweeper, including a sweep in progress, and waits for its
// goroutine to exit. It is safe to call more than once.
func (s *Sweeper) Stop() {
	s.once.Do(s.cancel)
	<-s.done
}

// Running reports whether the sweeper's goroutine runs: false when it was
// started with an interval of zero or less, or has been stopped.
func (s *Sweeper) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}
