package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/storetest"
)

// failoverPrefix is the key prefix of the failover tests' stores: keysOn
// picks keys by the slot of failoverPrefix+key.
const failoverPrefix = "statelab-failover:"

// topologyStores returns a function that opens a Store with dial (OpenCluster
// or OpenSentinel on one running topology, named what in errors) under a key
// prefix and a --redis-wait, closed when its test ends.
func topologyStores(what string, dial func(context.Context, redisstore.Options) (*redisstore.Store, error)) func(t *testing.T, prefix string, wait int) *redisstore.Store {
	return func(t *testing.T, prefix string, wait int) *redisstore.Store {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := dial(ctx, redisstore.Options{Prefix: prefix, Wait: wait})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// runConformanceWaits runs the conformance suite on Stores from open,
// without and with WAIT 1, each test under a prefix of its own.
func runConformanceWaits(t *testing.T, open func(t *testing.T, prefix string, wait int) *redisstore.Store) {
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprintf("conformance/wait=%d", wait), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) session.Store {
				return open(t, "statelab-test:"+storetest.NewKey(t)[:16]+":", wait)
			})
		})
	}
}

// failoverResult is what killing a master under writes cost.
type failoverResult struct {
	acked, ackedBefore int           // writes acknowledged, in all and before the kill
	errors             int64         // writes that failed
	lost               int           // acknowledged writes missing afterwards
	failover           time.Duration // kill → replica promoted
	resumed            time.Duration // kill → first acknowledged write started after it
}

func (r failoverResult) report(t *testing.T, what string, wait int) {
	t.Logf("%s, --redis-wait %d: %d writes acknowledged (%d before the kill), %d failed; replica promoted %v after the kill, first write started after the kill acknowledged at %v; %d acknowledged writes lost",
		what, wait, r.acked, r.ackedBefore, r.errors, r.failover.Round(time.Millisecond), r.resumed.Round(time.Millisecond), r.lost)
	if wait > 0 && r.lost != 0 {
		t.Errorf("with WAIT %d, %d acknowledged writes were lost; every acknowledged write was on the replica that was promoted", wait, r.lost)
	}
}

// killUnderWrites creates sessions under keys through s from two writers,
// kills the master that holds them (SIGKILL) once 300 were acknowledged,
// waits until promoted reports its replica promoted, calls recover (which
// brings a replica back, so that writes waiting for one can succeed again),
// keeps writing until 100 more writes were acknowledged, and then reads
// every acknowledged session back.
func killUnderWrites(t *testing.T, s *redisstore.Store, keys []string, doomed *redisProc, promoted func() bool, recover func()) failoverResult {
	t.Helper()
	var (
		mu           sync.Mutex
		acked        []string
		starts, ends []time.Time
		res          failoverResult
		next         atomic.Int64
		stop         = make(chan struct{})
		wg           sync.WaitGroup
	)
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for range 2 {
		wg.Go(func() {
			i := next.Add(1) - 1
			for int(i) < len(keys) {
				select {
				case <-stop:
					return
				default:
				}
				started := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := s.Put(ctx, keys[i], session.Record{Data: []byte(keys[i]), IdleExpiry: time.Now().Add(time.Hour)})
				cancel()
				switch {
				case err == nil:
					mu.Lock()
					acked = append(acked, keys[i])
					starts = append(starts, started)
					ends = append(ends, time.Now())
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				case errors.Is(err, session.ErrConflict):
					// An earlier attempt that failed took effect after
					// all: not acknowledged, so not counted.
				default:
					atomic.AddInt64(&res.errors, 1)
					time.Sleep(5 * time.Millisecond)
					continue // the same key again
				}
				i = next.Add(1) - 1
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitFor(t, 20*time.Second, "300 writes before the kill", func() (bool, error) { return ackedCount() >= 300, nil })
	killAt := time.Now()
	res.ackedBefore = ackedCount()
	doomed.kill()
	waitFor(t, 20*time.Second, "the replica to be promoted", func() (bool, error) { return promoted(), nil })
	res.failover = time.Since(killAt)
	recover()
	target := ackedCount() + 100
	waitFor(t, 30*time.Second, "100 writes acknowledged after the failover", func() (bool, error) {
		if int(next.Load()) >= len(keys) {
			t.Fatalf("ran out of keys (%d) before writes resumed", len(keys))
		}
		return ackedCount() >= target, nil
	})
	close(stop)
	wg.Wait()

	res.acked = len(acked)
	for i, at := range starts {
		if at.After(killAt) {
			res.resumed = ends[i].Sub(killAt)
			break
		}
	}
	var lost, unreadable atomic.Int64
	var rg sync.WaitGroup
	for w := range 4 {
		rg.Go(func() {
			for i := w; i < len(acked); i += 4 {
				for deadline := time.Now().Add(20 * time.Second); ; {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := s.Get(ctx, acked[i])
					cancel()
					if errors.Is(err, session.ErrNotFound) {
						lost.Add(1)
					}
					if err == nil || errors.Is(err, session.ErrNotFound) {
						break
					}
					if time.Now().After(deadline) {
						unreadable.Add(1)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	rg.Wait()
	if n := unreadable.Load(); n > 0 {
		t.Fatalf("%d acknowledged sessions could not be read back within 20 s", n)
	}
	res.lost = int(lost.Load())
	return res
}

// BenchmarkPutWait measures what waiting for a replica costs a write: Put
// (an update of one session) on a primary with one replica, both
// redis-server processes on loopback, without and with WAIT 1.
func BenchmarkPutWait(b *testing.B) {
	primary := startRedisProc(b, testenv.FreePort(b), b.TempDir())
	startRedisProc(b, testenv.FreePort(b), b.TempDir(), "--replicaof", "127.0.0.1", primary.addr[len("127.0.0.1:"):])
	waitReplicaSynced(b, primary)
	for _, wait := range []int{0, 1} {
		b.Run(fmt.Sprintf("wait=%d", wait), func(b *testing.B) {
			ctx := context.Background()
			s, err := redisstore.OpenURL(ctx, "redis://"+primary.addr+"/0", redisstore.Options{Wait: wait})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			key := storetest.NewKey(b)
			rec := session.Record{Data: make([]byte, 512), IdleExpiry: time.Now().Add(time.Hour)}
			v, err := s.Put(ctx, key, rec)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				rec.Version = v
				if v, err = s.Put(ctx, key, rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
