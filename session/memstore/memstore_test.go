package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/storetest"
)

func newStore(tb testing.TB) *memstore.Store {
	tb.Helper()
	s := memstore.New()
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store { return newStore(t) })
}

func BenchmarkGet(b *testing.B)    { storetest.BenchGet(b, newStore(b)) }
func BenchmarkUpdate(b *testing.B) { storetest.BenchUpdate(b, newStore(b)) }

func TestConformanceCapped(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store {
		s := memstore.NewWithOptions(memstore.Options{MaxSessions: 1 << 20})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestMaxSessions: a full store refuses new sessions with ErrFull (and
// session.ErrUnavailable, so callers answer 503), keeps serving the ones it
// holds, and frees expired records to make room.
func TestMaxSessions(t *testing.T) {
	ctx := context.Background()
	s := memstore.NewWithOptions(memstore.Options{MaxSessions: 10})
	t.Cleanup(func() { _ = s.Close() })
	live := func() session.Record {
		return session.Record{Data: []byte("cart"), IdleExpiry: time.Now().Add(time.Hour), AbsoluteExpiry: time.Now().Add(time.Hour)}
	}
	versions := map[string]uint64{}
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("k%02d-0123456789abcdef", i)
		v, err := s.Put(ctx, key, live())
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		versions[key] = v
	}
	_, err := s.Put(ctx, "one-too-many-0123456789", live())
	if !errors.Is(err, memstore.ErrFull) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("11th session: %v, want ErrFull and session.ErrUnavailable", err)
	}
	// Existing sessions are still served and updated.
	for key, v := range versions {
		rec := live()
		rec.Version = v
		if _, err := s.Put(ctx, key, rec); err != nil {
			t.Fatalf("update %s in a full store: %v", key, err)
		}
	}
	// Deleting one makes room for one.
	if err := s.Delete(ctx, "k00-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "after-delete-0123456789", live()); err != nil {
		t.Fatalf("put after delete: %v", err)
	}
	if _, err := s.Put(ctx, "full-again-0123456789", live()); !errors.Is(err, memstore.ErrFull) {
		t.Fatalf("full again: %v", err)
	}

	// Expired records are freed on demand when the store is full.
	s2 := memstore.NewWithOptions(memstore.Options{MaxSessions: 5})
	t.Cleanup(func() { _ = s2.Close() })
	for i := 0; i < 5; i++ {
		past := session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(-time.Second), AbsoluteExpiry: time.Now().Add(time.Hour)}
		if _, err := s2.Put(ctx, fmt.Sprintf("old%02d-0123456789abcdef", i), past); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s2.Put(ctx, "fresh-0123456789abcdef", live()); err != nil {
		t.Fatalf("full of expired records: %v, want room made", err)
	}
}
