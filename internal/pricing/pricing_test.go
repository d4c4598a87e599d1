package pricing

import (
	"testing"

	"github.com/statelab/statelab/internal/catalog"
)

func TestPrice(t *testing.T) {
	cat := catalog.FromProducts([]catalog.Product{
		{SKU: "A", Name: "a", PriceCents: 1000},
		{SKU: "B", Name: "b", PriceCents: 2499},
	})
	tests := []struct {
		name                                string
		lines                               []Line
		subtotal, tax, shipping, total, len int64
	}{
		{"empty: no shipping", nil, 0, 0, 0, 0, 0},
		{"below free shipping", []Line{{SKU: "A", Qty: 2}}, 2000, 160, ShippingCents, 2000 + 160 + ShippingCents, 1},
		{"at free shipping", []Line{{SKU: "A", Qty: 5}}, 5000, 400, 0, 5400, 1},
		{"tax rounds half up", []Line{{SKU: "B", Qty: 1}}, 2499, 200, ShippingCents, 2499 + 200 + ShippingCents, 1}, // 199.92
		{"unknown skus skipped", []Line{{SKU: "A", Qty: 1}, {SKU: "Z", Qty: 3}}, 1000, 80, ShippingCents, 1000 + 80 + ShippingCents, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := Price(cat, tt.lines)
			if q.SubtotalCents != tt.subtotal || q.TaxCents != tt.tax || q.ShippingCents != tt.shipping || q.TotalCents != tt.total || int64(len(q.Items)) != tt.len {
				t.Errorf("Price = %+v, want subtotal %d tax %d shipping %d total %d, %d items", q, tt.subtotal, tt.tax, tt.shipping, tt.total, tt.len)
			}
		})
	}
}
