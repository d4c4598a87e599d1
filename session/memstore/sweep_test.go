package memstore

import (
	"context"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// TestSweeperFreesExpired checks that the background sweeper frees records
// that expired, and keeps live ones.
func TestSweeperFreesExpired(t *testing.T) {
	s := NewWithOptions(Options{SweepInterval: 10 * time.Millisecond})
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	past := time.Now().Add(-time.Second)
	future := time.Now().Add(time.Hour)
	for _, k := range []string{"expired-1", "expired-2"} {
		if _, err := s.Put(ctx, k, session.Record{Data: []byte("x"), IdleExpiry: past}); err != nil {
			t.Fatalf("Put(%s): %v", k, err)
		}
	}
	if _, err := s.Put(ctx, "live", session.Record{Data: []byte("x"), IdleExpiry: future}); err != nil {
		t.Fatalf("Put(live): %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.held() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("sweeper left %d records in memory, want 1", s.held())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Get(ctx, "live"); err != nil {
		t.Fatalf("Get(live) after sweep: %v", err)
	}
}

// TestSweepDirect checks sweep's accounting without the ticker.
func TestSweepDirect(t *testing.T) {
	s := New()
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	now := time.Now()
	recs := map[string]session.Record{
		"idle-gone":     {IdleExpiry: now.Add(-time.Millisecond)},
		"absolute-gone": {IdleExpiry: now.Add(time.Hour), AbsoluteExpiry: now.Add(-time.Millisecond)},
		"live":          {IdleExpiry: now.Add(time.Hour), AbsoluteExpiry: now.Add(2 * time.Hour)},
	}
	for k, r := range recs {
		if _, err := s.Put(ctx, k, r); err != nil {
			t.Fatalf("Put(%s): %v", k, err)
		}
	}
	if got := s.sweep(now); got != 2 {
		t.Fatalf("sweep freed %d records, want 2", got)
	}
	if got := s.held(); got != 1 {
		t.Fatalf("held = %d after sweep, want 1", got)
	}
}

// TestCloseIdempotent checks that Close can be called twice.
func TestCloseIdempotent(t *testing.T) {
	s := New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNegativeSweepIntervalDisables: a negative SweepInterval means "no
// sweeper" here as in pgstore and sqlitestore; expired records are still
// never returned.
func TestNegativeSweepIntervalDisables(t *testing.T) {
	s := NewWithOptions(Options{SweepInterval: -1})
	t.Cleanup(func() { s.Close() })
	if s.sweeper.Running() {
		t.Fatal("a negative SweepInterval started a sweeper")
	}
	if d := NewWithOptions(Options{}); !d.sweeper.Running() {
		t.Error("a zero SweepInterval runs no sweeper, want DefaultSweepInterval")
	} else {
		d.Close()
	}
}
