package session

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
)

// keyLocks serialises the Updates of one session within this process. The
// store's compare-and-swap is what makes concurrent updates safe, across
// processes too; the lock only keeps requests of one session on one replica
// from colliding with each other over and over. Without it, 32 requests of one
// session retry in a storm and the unlucky ones run out of attempts; with it,
// they queue in arrival order and conflicts arise only between replicas.
type keyLocks struct {
	seed   maphash.Seed
	shards [64]keyLockShard
}

type keyLockShard struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

// keyLock is one session's lock: a one-slot semaphore (waiting senders queue
// in order, so it is fair, and a wait can be cancelled) and the number of
// goroutines holding or waiting for it.
type keyLock struct {
	sem  chan struct{}
	refs int
}

func newKeyLocks() *keyLocks {
	k := &keyLocks{seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].locks = make(map[string]*keyLock)
	}
	return k
}

// lock waits until the caller holds key's lock, and returns the function that
// releases it. It gives up with ctx.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	sh := &k.shards[maphash.String(k.seed, key)%uint64(len(k.shards))]
	sh.mu.Lock()
	l := sh.locks[key]
	if l == nil {
		l = &keyLock{sem: make(chan struct{}, 1)}
		sh.locks[key] = l
	}
	l.refs++
	sh.mu.Unlock()

	release := func() {
		sh.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(sh.locks, key)
		}
		sh.mu.Unlock()
	}
	select {
	case l.sem <- struct{}{}:
		return func() { <-l.sem; release() }, nil
	case <-ctx.Done():
		release()
		return nil, fmt.Errorf("session: update: %w", ctx.Err())
	}
}
