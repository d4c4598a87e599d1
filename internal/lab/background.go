package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// MaxBackgroundRate is the highest request rate StartBackground accepts.
const MaxBackgroundRate = 1000.0

// backgroundSegment is how long one stretch of background load runs before
// a fresh workload (and an empty history) replaces it, so that a
// background workload running for hours keeps no growing history.
const backgroundSegment = time.Minute

// Background is the lab's shopper workload running until it is stopped, as
// the playground's background shoppers: the same script and the same
// open-loop arrivals as a lab run, at a rate that can change, with no
// history kept and nothing checked. Its methods are safe for concurrent use.
type Background struct {
	base string
	skus []string

	mu     sync.Mutex
	rate   float64
	cancel context.CancelFunc // ends the current segment
	wake   chan struct{}      // a rate change while idle

	stop context.CancelFunc
	done chan struct{}
}

// StartBackground reads the catalog of the balancer at balancerURL and
// starts shoppers sending rate requests per second in total (0 to
// MaxBackgroundRate; 0 waits for SetRate). They run until Close or until
// ctx ends.
func StartBackground(ctx context.Context, balancerURL string, rate float64) (*Background, error) {
	if rate < 0 || rate > MaxBackgroundRate {
		return nil, fmt.Errorf("lab: background rate must be 0 to %g requests per second, not %g", MaxBackgroundRate, rate)
	}
	skus, err := fetchSKUs(ctx, balancerURL)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	b := &Background{base: balancerURL, skus: skus, rate: rate, wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go b.loop(ctx)
	return b, nil
}

// SetRate changes the total request rate; the current shoppers stop and
// new ones arrive at the new rate. Rates outside 0 to MaxBackgroundRate are
// clamped.
func (b *Background) SetRate(rate float64) {
	rate = min(max(rate, 0), MaxBackgroundRate)
	b.mu.Lock()
	b.rate = rate
	if b.cancel != nil {
		b.cancel()
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Close stops the shoppers and waits until every request has returned.
func (b *Background) Close() error {
	b.stop()
	<-b.done
	return nil
}

func (b *Background) loop(ctx context.Context) {
	defer close(b.done)
	seed := rand.Uint64()
	for ctx.Err() == nil {
		b.mu.Lock()
		rate := b.rate
		segCtx, cancel := context.WithCancel(ctx)
		b.cancel = cancel
		b.mu.Unlock()
		if rate <= 0 {
			select {
			case <-ctx.Done():
			case <-b.wake:
			}
			cancel()
			continue
		}
		d := DefaultConfig(false)
		seed++
		w, err := newWorkload(b.base, b.skus, workloadConfig{rate: rate, seed: seed, poisson: true,
			measure: backgroundSegment, think: d.Think, timeout: d.Timeout})
		if err != nil {
			cancel()
			return // unreachable: the URL was parsed when the catalog was read
		}
		w.startClock()
		w.run(segCtx)
		w.transport.CloseIdleConnections()
		cancel()
		if errors.Is(ctx.Err(), context.Canceled) {
			return
		}
	}
}
