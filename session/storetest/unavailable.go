package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/statelab/statelab/session"
)

// RunUnavailable checks a store whose backend cannot be reached (a closed
// port, a stopped server): every method, and Count and Ping when the store
// has them, must return an error wrapping session.ErrUnavailable before the
// call's context deadline, and never hang. newDeadStore makes such a store
// and registers its cleanup with t.Cleanup.
//
// "Before the deadline" is checked with the context itself: when the call
// returns, its context must not be done yet. Nothing measures wall time.
func RunUnavailable(t *testing.T, newDeadStore func(t *testing.T) session.Store) {
	t.Helper()
	s := newDeadStore(t)
	for _, op := range ops(s, NewKey(t)) {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			err := noHang(t, op.name, func() error { return op.call(ctx) })
			if ctxErr := ctx.Err(); ctxErr != nil {
				t.Fatalf("%s returned only after its context was done (%v): err = %v", op.name, ctxErr, err)
			}
			if !errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("%s against an unreachable backend: err = %v, want an error wrapping session.ErrUnavailable", op.name, err)
			}
			for _, wrong := range []error{session.ErrNotFound, session.ErrConflict} {
				if errors.Is(err, wrong) {
					t.Fatalf("%s against an unreachable backend: err = %v also wraps %v", op.name, err, wrong)
				}
			}
		})
	}
}
