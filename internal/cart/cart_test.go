package cart

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCartChanges(t *testing.T) {
	cat := NewCatalog()
	full := Cart{}
	for i := range MaxLines {
		full.Lines = append(full.Lines, Line{SKU: cat.Products()[i].SKU, Qty: 1})
	}
	tests := []struct {
		name    string
		start   []Line
		change  func(*Cart) error
		want    []Line
		wantErr error
	}{
		{"add to empty", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", 2) },
			[]Line{{"SKU-0001", 2}}, nil},
		{"add appends new lines last", []Line{{"SKU-0005", 1}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 1) },
			[]Line{{"SKU-0005", 1}, {"SKU-0001", 1}}, nil},
		{"add to an existing line", []Line{{"SKU-0001", 2}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 3) },
			[]Line{{"SKU-0001", 5}}, nil},
		{"add up to 99", []Line{{"SKU-0001", 90}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 9) },
			[]Line{{"SKU-0001", 99}}, nil},
		{"add past 99", []Line{{"SKU-0001", 90}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 10) },
			[]Line{{"SKU-0001", 90}}, ErrQtyRange},
		{"add qty 0", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", 0) }, nil, ErrQtyRange},
		{"add qty 100", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", 100) }, nil, ErrQtyRange},
		{"add negative", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", -1) }, nil, ErrQtyRange},
		{"add unknown sku", nil, func(c *Cart) error { return c.Add(cat, "SKU-9999", 1) }, nil, ErrUnknownSKU},
		{"add to a full cart", full.Lines, func(c *Cart) error { return c.Add(cat, "SKU-1000", 1) }, full.Lines, ErrCartFull},
		{"add to a line of a full cart", full.Lines, func(c *Cart) error { return c.Add(cat, "SKU-0001", 1) },
			append([]Line{{"SKU-0001", 2}}, full.Lines[1:]...), nil},
		{"set", []Line{{"SKU-0001", 2}}, func(c *Cart) error { return c.Set("SKU-0001", 7) }, []Line{{"SKU-0001", 7}}, nil},
		{"set 0 removes", []Line{{"SKU-0001", 2}, {"SKU-0002", 1}}, func(c *Cart) error { return c.Set("SKU-0001", 0) },
			[]Line{{"SKU-0002", 1}}, nil},
		{"set 100", []Line{{"SKU-0001", 2}}, func(c *Cart) error { return c.Set("SKU-0001", 100) }, []Line{{"SKU-0001", 2}}, ErrQtyRange},
		{"set negative", []Line{{"SKU-0001", 2}}, func(c *Cart) error { return c.Set("SKU-0001", -1) }, []Line{{"SKU-0001", 2}}, ErrQtyRange},
		{"set missing line", []Line{{"SKU-0001", 2}}, func(c *Cart) error { return c.Set("SKU-0002", 1) }, []Line{{"SKU-0001", 2}}, ErrNoLine},
		{"remove", []Line{{"SKU-0001", 2}, {"SKU-0002", 1}, {"SKU-0003", 4}}, func(c *Cart) error { return c.Remove("SKU-0002") },
			[]Line{{"SKU-0001", 2}, {"SKU-0003", 4}}, nil},
		{"remove missing line", nil, func(c *Cart) error { return c.Remove("SKU-0002") }, nil, ErrNoLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Cart{Lines: slices.Clone(tt.start)}
			err := tt.change(&c)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(c.Lines, tt.want) {
				t.Errorf("lines %v, want %v", c.Lines, tt.want)
			}
		})
	}
}

func TestCheckoutEmptiesTheCart(t *testing.T) {
	cat := NewCatalog()
	c := Cart{Lines: []Line{{"SKU-0001", 2}, {"SKU-0002", 1}}}
	want := Price(cat, c.Lines)
	o, err := c.Checkout(cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Lines) != 0 {
		t.Errorf("cart still has %v after checkout", c.Lines)
	}
	if !strings.HasPrefix(o.ID, "ord_") || len(o.ID) != 24 {
		t.Errorf("order id %q, want ord_ and 20 characters", o.ID)
	}
	if o.TotalCents != want.TotalCents || len(o.Items) != 2 {
		t.Errorf("order %+v, want the quote %+v", o, want)
	}
	o2, err := (&Cart{Lines: []Line{{"SKU-0001", 1}}}).Checkout(cat)
	if err != nil || o2.ID == o.ID {
		t.Errorf("second order id %q (err %v) repeats %q", o2.ID, err, o.ID)
	}
	if _, err := c.Checkout(cat); !errors.Is(err, ErrEmptyCart) {
		t.Errorf("checkout of an empty cart: %v, want ErrEmptyCart", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, lines := range [][]Line{nil, {{"SKU-0001", 1}}, {{"SKU-0003", 99}, {"SKU-0001", 5}}} {
		data, err := Cart{Lines: lines}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCart(data)
		if err != nil {
			t.Fatalf("DecodeCart(%s): %v", data, err)
		}
		if len(got.Lines) != len(lines) || (len(lines) > 0 && !slices.Equal(got.Lines, lines)) {
			t.Errorf("round trip of %v gave %v", lines, got.Lines)
		}
	}
	if c, err := DecodeCart(nil); err != nil || len(c.Lines) != 0 {
		t.Errorf("DecodeCart(nil) = %v, %v; want an empty cart", c, err)
	}
}

func TestDecodeRejectsInvalidData(t *testing.T) {
	for _, data := range []string{
		`not json`,
		`{"lines":[{"sku":"SKU-0001","qty":0}]}`,
		`{"lines":[{"sku":"SKU-0001","qty":100}]}`,
		`{"lines":[{"sku":"","qty":1}]}`,
		`{"lines":[{"sku":"SKU-0001","qty":1},{"sku":"SKU-0001","qty":2}]}`,
		`{"lines":"x"}`,
	} {
		if c, err := DecodeCart([]byte(data)); err == nil {
			t.Errorf("DecodeCart(%s) = %v, want an error", data, c)
		}
	}
}

func TestPrice(t *testing.T) {
	cat := &Catalog{bySKU: map[string]int{"A": 0, "B": 1}, products: []Product{
		{SKU: "A", Name: "a", PriceCents: 1000},
		{SKU: "B", Name: "b", PriceCents: 2499},
	}}
	tests := []struct {
		name                                string
		lines                               []Line
		subtotal, tax, shipping, total, len int64
	}{
		{"empty: no shipping", nil, 0, 0, 0, 0, 0},
		{"below free shipping", []Line{{"A", 2}}, 2000, 160, ShippingCents, 2000 + 160 + ShippingCents, 1},
		{"at free shipping", []Line{{"A", 5}}, 5000, 400, 0, 5400, 1},
		{"tax rounds half up", []Line{{"B", 1}}, 2499, 200, ShippingCents, 2499 + 200 + ShippingCents, 1}, // 199.92
		{"unknown skus skipped", []Line{{"A", 1}, {"Z", 3}}, 1000, 80, ShippingCents, 1000 + 80 + ShippingCents, 1},
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
