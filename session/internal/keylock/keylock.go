// Package keylock is a set of per-key locks: one waiter at a time per key,
// no lock held for any other key. The session Manager uses it to queue the
// Updates of one session within a process; replstore to serialise a
// primary's writes to one key.
package keylock

import (
	"context"
	"hash/maphash"
	"sync"
)

// Map holds the locks of keys that are held or waited for; a key nobody
// holds takes no memory. The zero Map is not usable: call New. A Map is safe
// for concurrent use.
type Map struct {
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

// keyLock is one key's lock: a one-slot semaphore (waiting senders queue in
// order, so it is fair, and a wait can be cancelled) and the number of
// goroutines holding or waiting for it.
type keyLock struct {
	sem  chan struct{}
	refs int
}

// New returns an empty Map.
func New() *Map {
	k := &Map{seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].locks = make(map[string]*keyLock)
	}
	return k
}

// Lock waits until the caller holds key's lock and returns the function
// that releases it. It gives up with ctx's error when ctx ends first.
func (k *Map) Lock(ctx context.Context, key string) (unlock func(), err error) {
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
		return nil, ctx.Err()
	}
}
