package sweeper

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestSweeperRunsUntilStopped(t *testing.T) {
	var stopped atomic.Bool
	swept := make(chan struct{}, 1)
	s := Start(time.Millisecond, func(ctx context.Context) {
		if stopped.Load() {
			t.Error("sweep ran after Stop returned")
		}
		select {
		case swept <- struct{}{}:
		default:
		}
	})
	for i := 0; i < 3; i++ { // it keeps running, tick after tick
		select {
		case <-swept:
		case <-time.After(10 * time.Second):
			t.Fatalf("sweep %d never ran", i+1)
		}
	}
	s.Stop()
	stopped.Store(true)
	s.Stop() // a second Stop is harmless
}

func TestStopCancelsASweepInProgress(t *testing.T) {
	started := make(chan struct{})
	var sawCancel atomic.Bool
	s := Start(time.Millisecond, func(ctx context.Context) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		sawCancel.Store(true)
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep never ran")
	}
	s.Stop()
	if !sawCancel.Load() {
		t.Fatal("Stop returned before the running sweep saw its context cancelled")
	}
}

func TestZeroIntervalRunsNothing(t *testing.T) {
	s := Start(0, func(ctx context.Context) { t.Error("sweep ran with interval 0") })
	s.Stop()
}
