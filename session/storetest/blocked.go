package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// blockedDeadline is the deadline of each write RunBlockedWrites expects
// to be held back.
const blockedDeadline = 200 * time.Millisecond

// RunBlockedWrites checks that a store's writes held back by a lock (a
// row lock, a file lock another connection holds) end at their context's
// deadline. It stores a record under a new key, calls lock with the key
// (lock must take the lock and keep it until the caller releases it), then
// calls Put, Touch and Delete of the key, each with a deadline of 200 ms:
// each must return an error wrapping context.DeadlineExceeded and every
// error in also. It returns unchanged, which checks that the record still
// has its data and version: call it after releasing the lock to see that
// none of the writes took effect late, or before to see that reads do not
// wait for the lock.
func RunBlockedWrites(t *testing.T, ctx context.Context, s session.Store, lock func(key string), also ...error) (unchanged func()) {
	t.Helper()
	key := NewKey(t)
	v, err := s.Put(ctx, key, liveRecord([]byte("locked")))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	lock(key)
	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Put", func(ctx context.Context) error {
			_, err := s.Put(ctx, key, session.Record{Data: []byte("blocked"), Version: v, IdleExpiry: time.Now().Add(time.Hour)})
			return err
		}},
		{"Touch", func(ctx context.Context) error { return s.Touch(ctx, key, time.Now().Add(2*time.Hour)) }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, key) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			octx, cancel := context.WithTimeout(ctx, blockedDeadline)
			defer cancel()
			err := op.call(octx)
			for _, want := range append([]error{context.DeadlineExceeded}, also...) {
				if !errors.Is(err, want) {
					t.Fatalf("%s held back by a lock past its deadline: %v, want an error wrapping %v", op.name, err, want)
				}
			}
		})
	}
	return func() {
		t.Helper()
		rec, err := s.Get(ctx, key)
		if err != nil || string(rec.Data) != "locked" || rec.Version != v {
			t.Fatalf("after the blocked writes: %q v%d, %v; want %q v%d", rec.Data, rec.Version, err, "locked", v)
		}
	}
}
