package memstore_test

import (
	"testing"

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
