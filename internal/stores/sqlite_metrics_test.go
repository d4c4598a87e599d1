package stores

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSQLiteMetrics opens a SQLite backend with a registry: the four
// counters of the single writer's waits are exported, and closing the
// backend unregisters them (a replica that reopens its store can register
// them again).
func TestSQLiteMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := Config{Kind: SQLite, SQLitePath: filepath.Join(t.TempDir(), "s.db"), Registerer: reg}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := func() []string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "statelab_sqlitestore_") {
				out = append(out, mf.GetName())
			}
		}
		return out
	}
	for range 2 {
		b, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(names(), " "); got != "statelab_sqlitestore_busy_retries_total statelab_sqlitestore_busy_wait_seconds_total statelab_sqlitestore_writer_queue_seconds_total statelab_sqlitestore_writer_queued_total" {
			t.Errorf("exported: %s", got)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := names(); len(got) != 0 {
			t.Errorf("after Close: %v", got)
		}
	}
}
