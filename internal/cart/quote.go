package cart

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
// arguments: the stateless quote endpoint and the cart both use it. Lines
// whose SKU is not in the catalog are skipped; callers validate first when
// that must be an error.
func Price(cat *Catalog, lines []Line) Quote {
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
