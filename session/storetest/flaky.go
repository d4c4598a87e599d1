package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/statelab/statelab/session"
)

// Flaky wraps a Store so that a test can switch it down (every call fails
// at once with an error wrapping session.ErrUnavailable, as a store that
// refuses connections does) or make every Put lose its compare-and-swap
// (session.ErrConflict). It is a Pinger and a Counter: it passes those on
// when the wrapped store has them.
type Flaky struct {
	session.Store
	// Down makes every call fail with session.ErrUnavailable.
	Down atomic.Bool
	// Conflict makes every Put fail with session.ErrConflict.
	Conflict atomic.Bool
}

var (
	_ session.Pinger  = (*Flaky)(nil)
	_ session.Counter = (*Flaky)(nil)
)

// NewFlaky returns s wrapped, up and without conflicts.
func NewFlaky(s session.Store) *Flaky { return &Flaky{Store: s} }

func (f *Flaky) fail() error {
	if f.Down.Load() {
		return fmt.Errorf("flaky store: connection refused: %w", session.ErrUnavailable)
	}
	return nil
}

// Get is the wrapped store's Get, unless Down.
func (f *Flaky) Get(ctx context.Context, key string) (session.Record, error) {
	if err := f.fail(); err != nil {
		return session.Record{}, err
	}
	return f.Store.Get(ctx, key)
}

// Put is the wrapped store's Put, unless Down or Conflict.
func (f *Flaky) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	if f.Conflict.Load() {
		return 0, fmt.Errorf("flaky store: %w", session.ErrConflict)
	}
	return f.Store.Put(ctx, key, rec)
}

// Touch is the wrapped store's Touch, unless Down.
func (f *Flaky) Touch(ctx context.Context, key string, idle time.Time) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key, idle)
}

// Delete is the wrapped store's Delete, unless Down.
func (f *Flaky) Delete(ctx context.Context, key string) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

// Ping fails when Down; otherwise it is the wrapped store's Ping, or nil.
func (f *Flaky) Ping(ctx context.Context) error {
	if err := f.fail(); err != nil {
		return err
	}
	if p, ok := f.Store.(session.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Count fails when Down or when the wrapped store cannot count; otherwise
// it is the wrapped store's Count.
func (f *Flaky) Count(ctx context.Context) (int, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	if c, ok := f.Store.(session.Counter); ok {
		return c.Count(ctx)
	}
	return 0, errors.New("flaky store: the wrapped store cannot count")
}
