package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestKeyLocksExclusive(t *testing.T) {
	k := New()
	const n = 32
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holders = map[string]int{}
	)
	for i := range n {
		key := []string{"a", "b"}[i%2]
		wg.Go(func() {
			for range 50 {
				unlock, err := k.Lock(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				holders[key]++
				if holders[key] != 1 {
					t.Errorf("%d goroutines hold %q", holders[key], key)
				}
				mu.Unlock()
				mu.Lock()
				holders[key]--
				mu.Unlock()
				unlock()
			}
		})
	}
	wg.Wait()
	for i := range k.shards {
		if n := len(k.shards[i].locks); n != 0 {
			t.Fatalf("shard %d still holds %d locks after every unlock", i, n)
		}
	}
}

func TestKeyLocksCancel(t *testing.T) {
	k := New()
	unlock, err := k.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := k.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held key with an expiring context: %v", err)
	}
	unlock()
	again, err := k.Lock(context.Background(), "k")
	if err != nil {
		t.Fatalf("lock after the cancelled waiter left: %v", err)
	}
	again()
}
