package cart

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/pricing"
)

func TestCartChanges(t *testing.T) {
	cat := catalog.New()
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
			[]Line{{SKU: "SKU-0001", Qty: 2}}, nil},
		{"add appends new lines last", []Line{{SKU: "SKU-0005", Qty: 1}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 1) },
			[]Line{{SKU: "SKU-0005", Qty: 1}, {SKU: "SKU-0001", Qty: 1}}, nil},
		{"add to an existing line", []Line{{SKU: "SKU-0001", Qty: 2}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 3) },
			[]Line{{SKU: "SKU-0001", Qty: 5}}, nil},
		{"add up to 99", []Line{{SKU: "SKU-0001", Qty: 90}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 9) },
			[]Line{{SKU: "SKU-0001", Qty: 99}}, nil},
		{"add past 99", []Line{{SKU: "SKU-0001", Qty: 90}}, func(c *Cart) error { return c.Add(cat, "SKU-0001", 10) },
			[]Line{{SKU: "SKU-0001", Qty: 90}}, ErrQtyRange},
		{"add qty 0", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", 0) }, nil, ErrQtyRange},
		{"add qty 100", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", 100) }, nil, ErrQtyRange},
		{"add negative", nil, func(c *Cart) error { return c.Add(cat, "SKU-0001", -1) }, nil, ErrQtyRange},
		{"add unknown sku", nil, func(c *Cart) error { return c.Add(cat, "SKU-9999", 1) }, nil, ErrUnknownSKU},
		{"add to a full cart", full.Lines, func(c *Cart) error { return c.Add(cat, "SKU-1000", 1) }, full.Lines, ErrCartFull},
		{"add to a line of a full cart", full.Lines, func(c *Cart) error { return c.Add(cat, "SKU-0001", 1) },
			append([]Line{{SKU: "SKU-0001", Qty: 2}}, full.Lines[1:]...), nil},
		{"set", []Line{{SKU: "SKU-0001", Qty: 2}}, func(c *Cart) error { return c.Set("SKU-0001", 7) }, []Line{{SKU: "SKU-0001", Qty: 7}}, nil},
		{"set 0 removes", []Line{{SKU: "SKU-0001", Qty: 2}, {SKU: "SKU-0002", Qty: 1}}, func(c *Cart) error { return c.Set("SKU-0001", 0) },
			[]Line{{SKU: "SKU-0002", Qty: 1}}, nil},
		{"set 100", []Line{{SKU: "SKU-0001", Qty: 2}}, func(c *Cart) error { return c.Set("SKU-0001", 100) }, []Line{{SKU: "SKU-0001", Qty: 2}}, ErrQtyRange},
		{"set negative", []Line{{SKU: "SKU-0001", Qty: 2}}, func(c *Cart) error { return c.Set("SKU-0001", -1) }, []Line{{SKU: "SKU-0001", Qty: 2}}, ErrQtyRange},
		{"set missing line", []Line{{SKU: "SKU-0001", Qty: 2}}, func(c *Cart) error { return c.Set("SKU-0002", 1) }, []Line{{SKU: "SKU-0001", Qty: 2}}, ErrNoLine},
		{"remove", []Line{{SKU: "SKU-0001", Qty: 2}, {SKU: "SKU-0002", Qty: 1}, {SKU: "SKU-0003", Qty: 4}}, func(c *Cart) error { return c.Remove("SKU-0002") },
			[]Line{{SKU: "SKU-0001", Qty: 2}, {SKU: "SKU-0003", Qty: 4}}, nil},
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
	cat := catalog.New()
	c := Cart{Lines: []Line{{SKU: "SKU-0001", Qty: 2}, {SKU: "SKU-0002", Qty: 1}}}
	want := pricing.Price(cat, c.Lines)
	o, err := c.Checkout(want)
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
	o2, err := (&Cart{Lines: []Line{{SKU: "SKU-0001", Qty: 1}}}).Checkout(pricing.Price(cat, []Line{{SKU: "SKU-0001", Qty: 1}}))
	if err != nil || o2.ID == o.ID {
		t.Errorf("second order id %q (err %v) repeats %q", o2.ID, err, o.ID)
	}
	if _, err := c.Checkout(want); !errors.Is(err, ErrEmptyCart) {
		t.Errorf("checkout of an empty cart: %v, want ErrEmptyCart", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, lines := range [][]Line{nil, {{SKU: "SKU-0001", Qty: 1}}, {{SKU: "SKU-0003", Qty: 99}, {SKU: "SKU-0001", Qty: 5}}} {
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
