package replstore

import (
	"context"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/storetest"
)

// benchStores returns the stores the replication benchmarks compare: a
// plain memstore, and one replica (n0) of three-replica clusters with
// synchronous and asynchronous replication.
func benchStores(b *testing.B) []struct {
	name  string
	store session.Store
} {
	b.Helper()
	mem := memstore.New()
	b.Cleanup(func() { mem.Close() })
	syncNodes := startCluster(b, 3, nil)
	asyncNodes := startCluster(b, 3, func(c *Config) { c.Async, c.Quorum = true, QuorumOne })
	return []struct {
		name  string
		store session.Store
	}{
		{"memstore", mem},
		{"sync", syncNodes[0]},
		{"async", asyncNodes[0]},
	}
}

// BenchmarkPut measures one Put (an update of an existing 1 KiB record with
// the version it holds) through replica n0, for keys whose primary is that
// replica or another one: the latency of a replicated write as a client of
// any replica sees it (two thirds of the writes are forwarded).
func BenchmarkPut(b *testing.B) { benchPut(b, false) }

// BenchmarkPutAtPrimary is BenchmarkPut for keys whose primary is n0: no
// forwarding, so the difference to memstore is the cost of replication
// itself.
func BenchmarkPutAtPrimary(b *testing.B) { benchPut(b, true) }

func benchPut(b *testing.B, atPrimary bool) {
	data := make([]byte, storetest.BenchPayload)
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			const nkeys = 64
			keys := make([]string, nkeys)
			versions := make([]uint64, nkeys)
			for i := range keys {
				keys[i] = storetest.NewKey(b)
				if rs, ok := st.store.(*Store); ok && atPrimary {
					keys[i] = keyOwnedBy(b, rs, rs.name)
				}
				v, err := st.store.Put(ctx, keys[i], session.Record{Data: data, IdleExpiry: time.Now().Add(time.Hour)})
				if err != nil {
					b.Fatalf("Put: %v", err)
				}
				versions[i] = v
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % nkeys
				v, err := st.store.Put(ctx, keys[k], session.Record{Data: data, Version: versions[k], IdleExpiry: time.Now().Add(time.Hour)})
				if err != nil {
					b.Fatalf("Put: %v", err)
				}
				versions[k] = v
				i++
			}
		})
	}
}

// BenchmarkPutParallel measures Put throughput with GOMAXPROCS×4 writers,
// each updating its own keys through replica n0.
func BenchmarkPutParallel(b *testing.B) {
	data := make([]byte, storetest.BenchPayload)
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				key := storetest.NewKey(b)
				var version uint64
				for pb.Next() {
					v, err := st.store.Put(ctx, key, session.Record{Data: data, Version: version, IdleExpiry: time.Now().Add(time.Hour)})
					if err != nil {
						b.Errorf("Put: %v", err)
						return
					}
					version = v
				}
			})
		})
	}
}

// BenchmarkUpdate runs the shared read-modify-write benchmark (Get then
// Put) through replica n0.
func BenchmarkUpdate(b *testing.B) {
	for _, st := range benchStores(b) {
		b.Run(st.name, func(b *testing.B) { storetest.BenchUpdate(b, st.store) })
	}
}
