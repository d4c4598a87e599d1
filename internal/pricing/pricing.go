package pricing

import (
	"context"
	"net/http"
	"strconv"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
)

// Line is one product and how many of it: a line of a cart or of a quote
// request.
type Line struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// Bounds of a quote request.
const (
	// MinQty and MaxQty bound the quantity of one line.
	MinQty = 1
	MaxQty = 99
	// MaxLines bounds the lines of one quote.
	MaxLines = 1000
)

// Pricing rules of the shop, applied by Price.
const (
	// TaxBasisPoints is the sales tax rate, in hundredths of a percent (800
	// = 8%), applied to the subtotal and rounded half up to the cent.
	TaxBasisPoints = 800
	// ShippingCents is the flat shipping charge of a non-empty order below
	// FreeShippingCents.
	ShippingCents = 599
	// FreeShippingCents is the subtotal from which shipping is free.
	FreeShippingCents = 5000
)

// Quote is the price of a list of lines. Every amount is in cents.
type Quote struct {
	// Items are the priced lines, in the order given, unknown SKUs skipped.
	Items []PricedLine `json:"items"`
	// SubtotalCents is the sum of the lines' totals.
	SubtotalCents int64 `json:"subtotal_cents"`
	// TaxCents is the sales tax on the subtotal.
	TaxCents int64 `json:"tax_cents"`
	// ShippingCents is the shipping charge.
	ShippingCents int64 `json:"shipping_cents"`
	// TotalCents is subtotal + tax + shipping.
	TotalCents int64 `json:"total_cents"`
}

// PricedLine is a line with its product's name and prices.
type PricedLine struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"` // unit price
	LineCents  int64  `json:"line_cents"`  // PriceCents * Qty
}

// Price prices lines against the catalog. It is a pure function of its
// arguments: the pricing service, the monolith's quote endpoint and the
// cart's view all use it. Lines
// whose SKU is not in the catalog are skipped; callers validate first when
// that must be an error.
func Price(cat *catalog.Catalog, lines []Line) Quote {
	q := Quote{Items: make([]PricedLine, 0, len(lines))}
	for _, l := range lines {
		p, ok := cat.Lookup(l.SKU)
		if !ok {
			continue
		}
		pl := PricedLine{SKU: p.SKU, Name: p.Name, Qty: l.Qty, PriceCents: p.PriceCents, LineCents: p.PriceCents * int64(l.Qty)}
		q.Items = append(q.Items, pl)
		q.SubtotalCents += pl.LineCents
	}
	q.TaxCents = (q.SubtotalCents*TaxBasisPoints + 5000) / 10000
	if len(q.Items) > 0 && q.SubtotalCents < FreeShippingCents {
		q.ShippingCents = ShippingCents
	}
	q.TotalCents = q.SubtotalCents + q.TaxCents + q.ShippingCents
	return q
}

// Request is the body of POST /api/quote.
type Request struct {
	Items []Line `json:"items"`
}

// Pricer prices lines. Local prices in process; Client asks the pricing
// service. Both validate the lines first: an *httpapi.Error (400
// unknown_sku, qty_out_of_range, too_many_items) for bad input.
type Pricer interface {
	Quote(ctx context.Context, lines []Line) (Quote, error)
}

// Local is the in-process Pricer: Validate, then Price against its catalog
// (the generated one when nil). It is what the pricing service runs and
// what the monolith calls directly.
type Local struct {
	Catalog *catalog.Catalog
}

// Quote implements Pricer.
func (l Local) Quote(_ context.Context, lines []Line) (Quote, error) {
	cat := l.Catalog
	if cat == nil {
		cat = defaultCatalog
	}
	if err := Validate(cat, lines); err != nil {
		return Quote{}, err
	}
	return Price(cat, lines), nil
}

var defaultCatalog = catalog.New()

// Validate checks a quote request: at most MaxLines lines, each a known SKU
// with a quantity in MinQty..MaxQty. It returns an *httpapi.Error (400).
func Validate(cat *catalog.Catalog, lines []Line) error {
	if len(lines) > MaxLines {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "too_many_items", Message: "at most " + strconv.Itoa(MaxLines) + " items per quote"}
	}
	for _, l := range lines {
		if _, ok := cat.Lookup(l.SKU); !ok {
			return &httpapi.Error{Status: http.StatusBadRequest, Code: "unknown_sku", Message: "unknown sku " + strconv.Quote(l.SKU)}
		}
		if l.Qty < MinQty || l.Qty > MaxQty {
			return &httpapi.Error{Status: http.StatusBadRequest, Code: "qty_out_of_range", Message: "qty " + strconv.Itoa(l.Qty) + " is not in " + strconv.Itoa(MinQty) + ".." + strconv.Itoa(MaxQty)}
		}
	}
	return nil
}
