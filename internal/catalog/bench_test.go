package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/statelab/statelab/internal/testenv"
)

// BenchmarkCatalog measures one catalog replica on loopback HTTP over each
// database (PostgreSQL only with STATELAB_TEST_POSTGRES): a product lookup,
// and a two-word search returning a page of 20. One op is one HTTP request.
//
//	go test -run '^$' -bench BenchmarkCatalog -benchtime 5s ./internal/catalog
func BenchmarkCatalog(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run("db="+name, func(b *testing.B) {
			db := openBenchDB(b, name)
			srv, err := NewServer(Config{ID: "bench", Source: db})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			b.Cleanup(hs.Close)
			b.Run("op=product", func(b *testing.B) {
				testenv.HTTPLoad(b, 4, func(w, i int) *http.Request {
					req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/catalog/SKU-%04d", hs.URL, 1+(w*31+i)%Size), nil)
					return req
				})
			})
			b.Run("op=search", func(b *testing.B) {
				words := []string{"oak lamp", "walnut", "nordic chair", "glass bowl", "sku-01"}
				testenv.HTTPLoad(b, 4, func(w, i int) *http.Request {
					req, _ := http.NewRequest(http.MethodGet, hs.URL+"/api/catalog?limit=20&q="+url.QueryEscape(words[(w+i)%len(words)]), nil)
					return req
				})
			})
		})
	}
}

func openBenchDB(b *testing.B, name string) *DB {
	b.Helper()
	cfg := DBConfig{SQLitePath: b.TempDir() + "/catalog.db"}
	if name == "postgres" {
		cfg = DBConfig{PostgresURL: testenv.PostgresURL(b), PostgresSchema: "catalog_bench"}
	}
	db, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}
