package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/httpapi"
)

func newDBServer(t *testing.T) (*DB, *httptest.Server) {
	t.Helper()
	db, err := Open(context.Background(), DBConfig{SQLitePath: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := NewServer(Config{ID: "c1", Source: db, Ready: db.Ping})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return db, ts
}

func TestServerEndpoints(t *testing.T) {
	_, ts := newDBServer(t)
	tests := []struct {
		path   string
		status int
		code   string // error code, or "" for success
		total  int    // for a page
	}{
		{"/api/catalog", 200, "", Size},
		{"/api/catalog?q=oak+lamp&limit=5", 200, "", 12},
		{"/api/catalog?q=" + strings.Repeat("a", MaxQueryBytes), 200, "", 0},
		{"/api/catalog?q=" + strings.Repeat("a", MaxQueryBytes+1), 400, "query_too_long", 0},
		{"/api/catalog?q=" + strings.Repeat("a", 1<<20), 400, "query_too_long", 0},
		{"/api/catalog?limit=0", 400, "bad_query", 0},
		{"/api/catalog?limit=x", 400, "bad_query", 0},
		{"/api/catalog?offset=-1", 400, "bad_query", 0},
		{"/api/catalog?q=%ff", 400, "bad_query", 0},
		{"/api/catalog/SKU-0042", 200, "", 0},
		{"/api/catalog/SKU-9999", 404, "unknown_sku", 0},
		{"/nope", 404, "not_found", 0},
	}
	for _, tt := range tests {
		t.Run(tt.path[:min(len(tt.path), 40)], func(t *testing.T) {
			resp, err := http.Get(ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Served-By") != "c1" {
				t.Fatalf("status %d served by %q, want %d by c1: %.200s", resp.StatusCode, resp.Header.Get("X-Served-By"), tt.status, body)
			}
			switch {
			case tt.code != "":
				var eb httpapi.ErrorBody
				if json.Unmarshal(body, &eb) != nil || eb.Error.Code != tt.code {
					t.Errorf("body %.200s, want error code %s", body, tt.code)
				}
			case strings.HasPrefix(tt.path, "/api/catalog/"):
				var p Product
				if json.Unmarshal(body, &p) != nil || p.SKU != "SKU-0042" || p.Name == "" {
					t.Errorf("product %s", body)
				}
			default:
				var p Page
				if json.Unmarshal(body, &p) != nil || p.Total != tt.total || p.Products == nil {
					t.Errorf("page %.200s, want total %d", body, tt.total)
				}
			}
		})
	}
}

func TestServerWhenTheDatabaseIsGone(t *testing.T) {
	db, ts := newDBServer(t)
	db.Close()
	for _, path := range []string{"/readyz", "/api/catalog?q=lamp", "/api/catalog/SKU-0001"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d (Retry-After %q), want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

func TestClientAgainstServer(t *testing.T) {
	_, ts := newDBServer(t)
	c, err := NewClient(httpapi.ClientConfig{URLs: []string{ts.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, _ := New().Page(ctx, Query{Text: "walnut", Offset: 3, Limit: 7})
	got, err := c.Page(ctx, Query{Text: "walnut", Offset: 3, Limit: 7})
	if err != nil || got.Total != want.Total || len(got.Products) != 7 || got.Products[0] != want.Products[0] {
		t.Errorf("Page = %+v, %v; want %+v", got, err, want)
	}
	if p, err := c.Product(ctx, "SKU-0100"); err != nil || p.SKU != "SKU-0100" {
		t.Errorf("Product = %+v, %v", p, err)
	}
	if _, err := c.Product(ctx, "SKU-0000"); !errors.Is(err, ErrUnknownSKU) {
		t.Errorf("unknown product: %v, want ErrUnknownSKU", err)
	}
	if _, err := c.Product(ctx, "../admin?x=1"); !errors.Is(err, ErrUnknownSKU) {
		t.Errorf("path-like sku: %v, want ErrUnknownSKU (escaped, not a route)", err)
	}
	if _, err := c.Page(ctx, Query{Text: strings.Repeat("a", MaxQueryBytes+1), Limit: 1}); err == nil {
		t.Error("an over-long query was sent")
	}
}
