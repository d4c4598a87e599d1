package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
)

func TestCatalogIsDeterministicAndWellFormed(t *testing.T) {
	a, b := New(), New()
	if !slices.Equal(a.Products(), b.Products()) {
		t.Fatal("two catalogs differ: the catalog must be a pure function")
	}
	if a.Len() < 1000 {
		t.Fatalf("catalog has %d products, want at least 1000", a.Len())
	}
	skuRE := regexp.MustCompile(`^SKU-\d{4}$`)
	names := map[string]bool{}
	for i, p := range a.Products() {
		if want := fmt.Sprintf("SKU-%04d", i+1); p.SKU != want {
			t.Fatalf("product %d has SKU %q, want %q", i, p.SKU, want)
		}
		if !skuRE.MatchString(p.SKU) {
			t.Errorf("malformed SKU %q", p.SKU)
		}
		if names[p.Name] {
			t.Errorf("duplicate name %q", p.Name)
		}
		names[p.Name] = true
		if p.PriceCents < 199 || p.PriceCents > 24999 || p.PriceCents%100 != 99 {
			t.Errorf("%s: price %d cents out of 1.99..249.99 or not ending in .99", p.SKU, p.PriceCents)
		}
		if got, ok := a.Lookup(p.SKU); !ok || got != p {
			t.Errorf("Lookup(%q) = %+v, %v", p.SKU, got, ok)
		}
	}
	// Prices must actually vary, not be one constant.
	prices := map[int64]bool{}
	for _, p := range a.Products() {
		prices[p.PriceCents] = true
	}
	if len(prices) < 100 {
		t.Errorf("only %d distinct prices", len(prices))
	}
}

func TestCatalogLookupMisses(t *testing.T) {
	c := New()
	for _, sku := range []string{"", "SKU-0000", "SKU-9999", "sku-0001", "SKU-1", " SKU-0001"} {
		if p, ok := c.Lookup(sku); ok {
			t.Errorf("Lookup(%q) = %+v, want a miss", sku, p)
		}
	}
}

func TestCatalogSearch(t *testing.T) {
	c := New()
	tests := []struct {
		query         string
		offset, limit int
		wantTotal     int
		wantFirst     string // SKU of the first result, "" for none
		wantLen       int
	}{
		{"", 0, 0, Size, "SKU-0001", Size},
		{"", 0, 20, Size, "SKU-0001", 20},
		{"", 20, 20, Size, "SKU-0021", 20},
		{"", Size - 5, 20, Size, "SKU-1196", 5},
		{"", Size, 20, Size, "", 0},
		{"sku-0042", 0, 10, 1, "SKU-0042", 1},
		{"OAK lamp", 0, 100, 12, "SKU-0002", 12},
		{"  oak   lamp  classic ", 0, 100, 1, "SKU-0002", 1},
		{"no such thing", 0, 10, 0, "", 0},
		{"", -3, 1, Size, "SKU-0001", 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d/%d", tt.query, tt.offset, tt.limit), func(t *testing.T) {
			page, total := c.Search(tt.query, tt.offset, tt.limit)
			if total != tt.wantTotal || len(page) != tt.wantLen {
				t.Fatalf("Search = %d products of total %d, want %d of %d", len(page), total, tt.wantLen, tt.wantTotal)
			}
			first := ""
			if len(page) > 0 {
				first = page[0].SKU
			}
			if first != tt.wantFirst {
				t.Errorf("first result %q, want %q", first, tt.wantFirst)
			}
		})
	}
}
