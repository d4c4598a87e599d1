package cart

import (
	"fmt"
	"strings"
)

// CatalogSize is the number of products in the catalog NewCatalog builds.
const CatalogSize = 1200

// Product is one item the shop sells. It is immutable.
type Product struct {
	// SKU identifies the product: "SKU-" and four digits, e.g. "SKU-0001".
	SKU string `json:"sku"`
	// Name is the product's display name.
	Name string `json:"name"`
	// PriceCents is the unit price in cents.
	PriceCents int64 `json:"price_cents"`
}

// Catalog is the shop's product list, ordered by SKU. It is built once and
// never changes, so it is safe for concurrent use without locking.
type Catalog struct {
	products []Product
	bySKU    map[string]int
	search   []string // lower-case "sku name" of each product, for Search
}

// The name parts NewCatalog combines: len(finishes)*len(materials)*len(kinds)
// must be at least CatalogSize so that every name is distinct.
var (
	finishes  = []string{"Classic", "Compact", "Deluxe", "Rustic", "Modern", "Vintage", "Nordic", "Urban", "Coastal", "Alpine", "Studio", "Heritage"}
	materials = []string{"Oak", "Walnut", "Steel", "Linen", "Ceramic", "Copper", "Bamboo", "Glass", "Wool", "Leather"}
	kinds     = []string{"Chair", "Lamp", "Table", "Mug", "Shelf", "Clock", "Vase", "Rug", "Bowl", "Stool"}
)

// NewCatalog returns the shop's catalog of CatalogSize products, SKU-0001 to
// SKU-1200. It is a pure function of the constants above: every replica, on
// every run, builds exactly the same catalog, so replicas agree on names and
// prices without sharing anything.
func NewCatalog() *Catalog {
	c := &Catalog{
		products: make([]Product, CatalogSize),
		bySKU:    make(map[string]int, CatalogSize),
		search:   make([]string, CatalogSize),
	}
	for i := range CatalogSize {
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
		c.search[i] = strings.ToLower(p.SKU + " " + p.Name)
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
