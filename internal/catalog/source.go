package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/statelab/statelab/internal/httpapi"
)

// Bounds of a Query.
const (
	// MaxQueryBytes bounds the search text: a longer query is refused (400
	// query_too_long) rather than matched, because matching costs time in
	// proportion to its length times the catalog size.
	MaxQueryBytes = 200
	// MaxLimit is the largest page, and the page size when none is asked
	// for (the whole generated catalog fits in one page).
	MaxLimit = Size
	// MaxOffset bounds the offset of a page.
	MaxOffset = 1_000_000
)

// Source reads products. Implementations: *Catalog (in memory), *DB (a
// shared database) and *Client (the catalog service over HTTP). All are
// safe for concurrent use.
type Source interface {
	// Product returns the product with the given SKU, or an error wrapping
	// ErrUnknownSKU.
	Product(ctx context.Context, sku string) (Product, error)
	// Page returns one page of the products matching q, ordered by SKU.
	Page(ctx context.Context, q Query) (Page, error)
}

// Query asks for one page of a search.
type Query struct {
	// Text holds the words every result must contain in its SKU or name
	// (case-insensitive); empty matches every product.
	Text string
	// Offset is the number of matches skipped.
	Offset int
	// Limit is the largest number of products returned, 1..MaxLimit.
	Limit int
}

// Validate returns an *httpapi.Error (400) when q is out of bounds.
func (q Query) Validate() error {
	switch {
	case len(q.Text) > MaxQueryBytes:
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "query_too_long",
			Message: "q is " + strconv.Itoa(len(q.Text)) + " bytes; at most " + strconv.Itoa(MaxQueryBytes) + " are allowed"}
	case !utf8.ValidString(q.Text):
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "bad_query", Message: "q is not valid UTF-8"}
	case q.Offset < 0 || q.Offset > MaxOffset || q.Limit < 1 || q.Limit > MaxLimit:
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "bad_query",
			Message: fmt.Sprintf("offset must be an integer in 0..%d and limit in 1..%d", MaxOffset, MaxLimit)}
	}
	return nil
}

// Page is one page of a search: the body of GET /api/catalog.
type Page struct {
	// Products are the page's products, ordered by SKU.
	Products []Product `json:"products"`
	// Total is the number of products matching the query, on every page.
	Total int `json:"total"`
}

// ParseQuery reads a Query from the parameters of GET /api/catalog: q,
// offset (default 0) and limit (default MaxLimit). It returns an
// *httpapi.Error (400) naming what is wrong.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Text: v.Get("q"), Limit: MaxLimit}
	bad := &httpapi.Error{Status: http.StatusBadRequest, Code: "bad_query",
		Message: fmt.Sprintf("offset must be an integer in 0..%d and limit in 1..%d", MaxOffset, MaxLimit)}
	var err error
	if s := v.Get("offset"); s != "" {
		if q.Offset, err = strconv.Atoi(s); err != nil {
			return Query{}, bad
		}
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil {
			return Query{}, bad
		}
	}
	if err := q.Validate(); err != nil {
		return Query{}, err
	}
	return q, nil
}

// values returns q as URL parameters, the inverse of ParseQuery.
func (q Query) values() url.Values {
	v := url.Values{}
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	v.Set("offset", strconv.Itoa(q.Offset))
	v.Set("limit", strconv.Itoa(q.Limit))
	return v
}
