package scsbench_test

import (
	"flag"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/statelab/statelab/bench/scsbench"
	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
)

var (
	workers    = flag.Int("workers", 32, "concurrent requests of one session in the lost-update run")
	increments = flag.Int("increments", 25, "increments each worker makes in the lost-update run")
)

func impls(tb testing.TB) []scsbench.Impl {
	tb.Helper()
	ims, cleanup, err := scsbench.New(scsbench.Options{RedisURL: testenv.RedisURL(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cleanup)
	return ims
}

// BenchmarkUpdate measures uncontended updates: each parallel worker has its
// own session and increments its counter once per request, read and written
// through Redis by the library's middleware (16 workers per GOMAXPROCS).
func BenchmarkUpdate(b *testing.B) {
	for _, im := range impls(b) {
		b.Run(im.Name, func(b *testing.B) {
			var failed atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := scsbench.NewClient(im, "")
				for pb.Next() {
					if code, _ := c.Do(); code != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d requests failed", n)
			}
		})
	}
}

// BenchmarkContendedUpdate measures updates when -workers clients share one
// session, with lost and failed updates reported as metrics.
func BenchmarkContendedUpdate(b *testing.B) {
	for _, im := range impls(b) {
		b.Run(im.Name, func(b *testing.B) {
			r, err := scsbench.LostUpdates(im, *workers, max(b.N / *workers, 1))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(r.Lost), "lost")
			b.ReportMetric(float64(r.Failed), "failed")
			b.ReportMetric(r.Throughput, "req/s")
		})
	}
}

// TestLostUpdates sends -workers × -increments concurrent increments of one
// session's counter through each library. statelab must lose none and fail
// none. scs's figure is only reported: it saves the whole session at the end
// of each request, so concurrent requests overwrite each other.
func TestLostUpdates(t *testing.T) {
	for _, im := range impls(t) {
		r, err := scsbench.LostUpdates(im, *workers, *increments)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-8s %d workers × %d increments: acknowledged %d, failed %d, final count %d, lost %d (%.1f%%)",
			r.Impl, *workers, *increments, r.Acked, r.Failed, r.Final, r.Lost, 100*float64(r.Lost)/float64(max(r.Acked, 1)))
		if r.Impl == "statelab" {
			if r.Lost != 0 || r.Final != r.Acked {
				t.Errorf("statelab: %d acknowledged increments, final count %d", r.Acked, r.Final)
			}
			if r.Failed != 0 {
				t.Errorf("statelab: %d increments failed (conflict not resolved in %d attempts)", r.Failed, session.DefaultMaxAttempts)
			}
		}
	}
}
