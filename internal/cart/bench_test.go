package cart

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/replstore"
)

// benchStores are the stores BenchmarkCart runs, in report order.
// "replicated" is a three-member in-process cluster with synchronous
// replication, "replicated-async" the same with asynchronous replication.
var benchStores = []string{"memory", "replicated", "replicated-async", "redis", "postgres", "sqlite", "cookie"}

// BenchmarkCart measures cart throughput through one cart Server on
// loopback HTTP, for every store, with the same client: each parallel
// shopper alternates adding an item and reading its cart, and checks out
// every 20 adds so that carts stay small. One op is one HTTP request.
//
//	go test -run '^$' -bench BenchmarkCart -benchtime 5s ./internal/cart
func BenchmarkCart(b *testing.B) {
	for _, kind := range benchStores {
		b.Run("store="+kind, func(b *testing.B) {
			backend := openBenchStore(b, kind)
			mgr, err := backend.NewManager(session.Config{Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := NewServer(Config{ID: "bench", StoreName: kind, Manager: mgr, Store: backend.Store, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			b.Cleanup(hs.Close)
			// cpu-µs/req counts this process (server and client): blind to
			// the CPU an external store (Redis, PostgreSQL) spends.
			testenv.HTTPLoadSessions(b, 4, func(n, i int) *http.Request {
				var req *http.Request
				switch {
				case i%40 == 39:
					req, _ = http.NewRequest("POST", hs.URL+"/api/cart/checkout", nil)
				case i%2 == 0:
					sku := fmt.Sprintf("SKU-%04d", 1+(n*37+i)%catalog.Size)
					req, _ = http.NewRequest("POST", hs.URL+"/api/cart/items", strings.NewReader(`{"sku":"`+sku+`","qty":1}`))
					req.Header.Set("Content-Type", "application/json")
				default:
					req, _ = http.NewRequest("GET", hs.URL+"/api/cart", nil)
				}
				return req
			})
		})
	}
}

// openBenchStore opens a store of the given kind for one benchmark, with
// its own Redis prefix, PostgreSQL schema or SQLite file, and closes it at
// the end.
func openBenchStore(b *testing.B, kind string) *stores.Backend {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := strings.ToLower(rand.Text()[:10])
	cfg := stores.Config{Kind: stores.Kind(kind), Secret: "benchmark secret, 16+ bytes", Logger: quiet}
	switch kind {
	case "replicated", "replicated-async":
		return openBenchCluster(b, ctx, kind == "replicated-async")
	case "redis":
		cfg.RedisURL, cfg.RedisPrefix = testenv.RedisURL(b), "statelab-bench-"+run+":"
	case "postgres":
		cfg.PostgresURL, cfg.PostgresSchema = testenv.PostgresURL(b), "statelab_bench_"+run
		b.Cleanup(func() { dropSchema(b, cfg.PostgresURL, cfg.PostgresSchema) })
	case "sqlite":
		cfg.SQLitePath = filepath.Join(b.TempDir(), "sessions.db")
	}
	backend, err := stores.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	return backend
}

// openBenchCluster starts three replicated-store members on loopback and
// returns the first; the other two hold its backups.
func openBenchCluster(b *testing.B, ctx context.Context, async bool) *stores.Backend {
	b.Helper()
	var first *stores.Backend
	var peers []string
	for i := range 3 {
		backend, err := stores.Open(ctx, stores.Config{
			Kind: stores.Replicated, NodeName: fmt.Sprintf("m%d", i), ClusterListen: "127.0.0.1:0",
			Peers: peers, AsyncReplication: async, Secret: "benchmark secret, 16+ bytes", Logger: quiet,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { backend.Close() })
		rs := backend.Store.(*replstore.Store)
		peers = append(peers, rs.ClusterAddr())
		if first == nil {
			first = backend
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(first.Store.(*replstore.Store).Members()) < 3 {
		if time.Now().After(deadline) {
			b.Fatal("the three members did not see each other")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	return first
}

// dropSchema removes a benchmark's PostgreSQL schema and everything in it.
func dropSchema(tb testing.TB, url, schema string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
	}
}
