package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/statelab/statelab/internal/testenv"
)

// dbs returns the databases the tests run on, by name: SQLite, and
// PostgreSQL (in a fresh schema, dropped after; skipped without
// STATELAB_TEST_POSTGRES). Each entry, called on the subtest, returns a
// function that opens a new *DB on that one database.
func dbs() map[string]func(t *testing.T) func() (*DB, error) {
	return map[string]func(t *testing.T) func() (*DB, error){
		"sqlite": func(t *testing.T) func() (*DB, error) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			return func() (*DB, error) { return Open(context.Background(), DBConfig{SQLitePath: path}) }
		},
		"postgres": func(t *testing.T) func() (*DB, error) {
			url := testenv.PostgresURL(t)
			schema := "catalog_test_" + strings.ToLower(rand.Text()[:10])
			t.Cleanup(func() {
				db, err := sql.Open("pgx", url)
				if err == nil {
					_, err = db.Exec(`DROP SCHEMA IF EXISTS ` + pgx.Identifier{schema}.Sanitize() + ` CASCADE`)
					db.Close()
				}
				if err != nil {
					t.Errorf("dropping schema %s: %v", schema, err)
				}
			})
			return func() (*DB, error) {
				return Open(context.Background(), DBConfig{PostgresURL: url, PostgresSchema: schema})
			}
		},
	}
}

// TestDBSeedsOnceUnderConcurrentStarts opens one database from several
// replicas at once: every Open succeeds and the table holds exactly the
// generated catalog.
func TestDBSeedsOnceUnderConcurrentStarts(t *testing.T) {
	for name, setup := range dbs() {
		t.Run(name, func(t *testing.T) {
			open := setup(t)
			const replicas = 4
			var wg sync.WaitGroup
			opened := make([]*DB, replicas)
			errs := make([]error, replicas)
			for i := range replicas {
				wg.Go(func() { opened[i], errs[i] = open() })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
				t.Cleanup(func() { opened[i].Close() })
			}
			page, err := opened[0].Page(context.Background(), Query{Limit: MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != Size || !slices.Equal(page.Products, New().Products()) {
				t.Fatalf("table holds %d products (page of %d), want the %d generated ones", page.Total, len(page.Products), Size)
			}
		})
	}
}

// TestDBAnswersLikeTheGenerator checks every database against the
// in-memory catalog for a table of lookups and searches.
func TestDBAnswersLikeTheGenerator(t *testing.T) {
	mem := New()
	ctx := context.Background()
	queries := []Query{
		{Limit: 20},
		{Offset: 20, Limit: 20},
		{Offset: Size - 5, Limit: 20},
		{Offset: Size, Limit: 20},
		{Text: "sku-0042", Limit: 10},
		{Text: "OAK lamp", Limit: 100},
		{Text: "  oak   lamp  classic ", Limit: 100},
		{Text: "lamp", Offset: 10, Limit: 5},
		{Text: "no such thing", Limit: 10},
		{Text: "%", Limit: 10},
		{Text: "_", Limit: 10},
		{Text: `\`, Limit: 10},
		{Text: "ç'\"; drop table x", Limit: 10},
	}
	for name, setup := range dbs() {
		t.Run(name, func(t *testing.T) {
			db, err := setup(t)()
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range queries {
				want, _ := mem.Page(ctx, q)
				got, err := db.Page(ctx, q)
				if err != nil {
					t.Fatalf("Page(%+v): %v", q, err)
				}
				if got.Total != want.Total || !slices.Equal(got.Products, want.Products) {
					t.Errorf("Page(%+v) = %d of %d, want %d of %d", q, len(got.Products), got.Total, len(want.Products), want.Total)
				}
			}
			for _, sku := range []string{"SKU-0001", "SKU-1200", "SKU-0000", "", "x' OR '1'='1"} {
				want, wantErr := mem.Product(ctx, sku)
				got, err := db.Product(ctx, sku)
				if got != want || errors.Is(err, ErrUnknownSKU) != errors.Is(wantErr, ErrUnknownSKU) || (err != nil) != (wantErr != nil) {
					t.Errorf("Product(%q) = %+v, %v; want %+v, %v", sku, got, err, want, wantErr)
				}
			}
			if _, err := db.Page(ctx, Query{Text: strings.Repeat("a", MaxQueryBytes+1), Limit: 1}); err == nil {
				t.Error("an over-long query was accepted")
			}
			if err := db.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
			db.Close()
			if _, err := db.Product(ctx, "SKU-0001"); !errors.Is(err, ErrDatabase) {
				t.Errorf("Product on a closed database: %v, want ErrDatabase", err)
			}
		})
	}
}

func TestOpenRefusesBadConfigs(t *testing.T) {
	for _, cfg := range []DBConfig{
		{},
		{SQLitePath: "a.db", PostgresURL: "postgres://x"},
		{PostgresURL: "postgres://x", PostgresSchema: "bad schema"},
		{SQLitePath: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")},
	} {
		if db, err := Open(context.Background(), cfg); err == nil {
			db.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}
