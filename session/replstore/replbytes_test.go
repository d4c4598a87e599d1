package replstore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/storetest"
)

// TestReplicatedBytes writes records of 1 KiB through a two-replica
// cluster (each record has one backup): the replicas' counters of bytes
// sent to backups add up to at least the data written and at most twice
// that plus the request's own fields (a request sent again counts again),
// and the counter is exported under its name.
func TestReplicatedBytes(t *testing.T) {
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	i := 0
	nodes := startCluster(t, 2, func(c *Config) { c.Registerer = regs[i]; i++ })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const writes, size = 20, 1024
	for i := range writes {
		k := storetest.NewKey(t)
		if _, err := nodes[i%2].Put(ctx, k, session.Record{Data: bytes.Repeat([]byte("x"), size), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	var sent float64
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() == "statelab_replstore_replicated_bytes_total" && len(mf.GetMetric()) == 1 {
				sent += mf.GetMetric()[0].GetCounter().GetValue()
				found = true
			}
		}
		if !found {
			t.Errorf("a replica does not export statelab_replstore_replicated_bytes_total")
		}
	}
	t.Logf("%.0f bytes sent to backups for %d writes of %d bytes", sent, writes, size)
	if sent < writes*size || sent > 2*writes*(size+200) {
		t.Errorf("%.0f bytes sent to backups for %d writes of %d bytes", sent, writes, size)
	}
}
