package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Size is the number of products in the catalog New builds.
const Size = 1200

// Product is one item the shop sells. It is immutable.
type Product struct {
	// SKU identifies the product: "SKU-" and four digits, e.g. "SKU-0001".
	SKU string `json:"sku"`
	// Name is the product's display name.
	Name string `json:"name"`
	// PriceCents is the unit price in cents.
	PriceCents int64 `json:"price_cents"`
}

// Catalog is the shop's product list in memory, ordered by SKU: the
// generator the database is seeded from, and the monolith's catalog. It is
// built once and never changes, so it is safe for concurrent use without
// locking. It is a Source.
type Catalog struct {
	products []Product
	bySKU    map[string]int
	search   []string // lower-case "sku name" of each product, for Search
}

// The name parts New combines: len(finishes)*len(materials)*len(kinds)
// must be at least Size so that every name is distinct.
var (
	finishes  = []string{"Classic", "Compact", "Deluxe", "Rustic", "Modern", "Vintage", "Nordic", "Urban", "Coastal", "Alpine", "Studio", "Heritage"}
	materials = []string{"Oak", "Walnut", "Steel", "Linen", "Ceramic", "Copper", "Bamboo", "Glass", "Wool", "Leather"}
	kinds     = []string{"Chair", "Lamp", "Table", "Mug", "Shelf", "Clock", "Vase", "Rug", "Bowl", "Stool"}
)

// New returns the shop's catalog of Size products, SKU-0001 to SKU-1200.
// It is a pure function of the constants above: every replica, on every
// run, builds exactly the same catalog, so replicas agree on names and
// prices without sharing anything.
func New() *Catalog {
	c := &Catalog{
		products: make([]Product, Size),
		bySKU:    make(map[string]int, Size),
		search:   make([]string, Size),
	}
	for i := range Size {
		n := i + 1
		// Walk the name space with strides coprime to each list's length, so
		// neighbouring SKUs get visibly different names.
		kind := kinds[i%len(kinds)]
		material := materials[(i/len(kinds))%len(materials)]
		finish := finishes[(i/(len(kinds)*len(materials)))%len(finishes)]
		p := Product{
			SKU:        fmt.Sprintf("SKU-%04d", n),
			Name:       finish + " " + material + " " + kind,
			PriceCents: price(n),
		}
		c.products[i] = p
		c.bySKU[p.SKU] = i
		c.search[i] = searchText(p)
	}
	return c
}

// FromProducts returns a catalog of the given products (in SKU order, SKUs
// distinct), for tests and tools that need other products than New's.
func FromProducts(ps []Product) *Catalog {
	c := &Catalog{products: ps, bySKU: make(map[string]int, len(ps)), search: make([]string, len(ps))}
	for i, p := range ps {
		c.bySKU[p.SKU] = i
		c.search[i] = searchText(p)
	}
	return c
}

// price returns product n's unit price in cents: between 1.99 and 249.99,
// always ending in .99, spread by a fixed integer hash (no randomness).
func price(n int) int64 {
	h := uint32(n) * 2654435761 // Knuth's multiplicative hash
	h ^= h >> 16
	return int64(h%249)*100 + 199
}

// Len returns the number of products.
func (c *Catalog) Len() int { return len(c.products) }

// Products returns all products ordered by SKU. The caller must not modify
// the returned slice.
func (c *Catalog) Products() []Product { return c.products }

// Lookup returns the product with the given SKU, and whether it exists.
func (c *Catalog) Lookup(sku string) (Product, bool) {
	i, ok := c.bySKU[sku]
	if !ok {
		return Product{}, false
	}
	return c.products[i], true
}

// Search returns the products whose SKU or name contains every
// whitespace-separated word of query (case-insensitive), ordered by SKU,
// skipping the first offset matches and returning at most limit of them
// (limit <= 0 means no limit), along with the total number of matches. An
// empty query matches every product.
func (c *Catalog) Search(query string, offset, limit int) (page []Product, total int) {
	words := strings.Fields(strings.ToLower(query))
	offset = max(offset, 0)
	for i, text := range c.search {
		if !containsAll(text, words) {
			continue
		}
		if total >= offset && (limit <= 0 || len(page) < limit) {
			page = append(page, c.products[i])
		}
		total++
	}
	return page, total
}

func containsAll(text string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// Product returns the product with the given SKU, or an error wrapping
// ErrUnknownSKU. It implements Source.
func (c *Catalog) Product(_ context.Context, sku string) (Product, error) {
	p, ok := c.Lookup(sku)
	if !ok {
		return Product{}, fmt.Errorf("%w %q", ErrUnknownSKU, sku)
	}
	return p, nil
}

// Page returns the page of products q asks for. It implements Source.
func (c *Catalog) Page(_ context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	products, total := c.Search(q.Text, q.Offset, q.Limit)
	if products == nil {
		products = []Product{}
	}
	return Page{Products: products, Total: total}, nil
}

// ErrUnknownSKU is returned when no product has the SKU asked for.
var ErrUnknownSKU = errors.New("unknown sku")
