package cart

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/pricing"
)

// Limits of a cart.
const (
	// MinQty and MaxQty bound the quantity of one line.
	MinQty = pricing.MinQty
	MaxQty = pricing.MaxQty
	// MaxLines bounds the number of distinct products in one cart, so that a
	// cart always fits in a sealed cookie (4 KiB) as well as in every store.
	MaxLines = 50
)

// Errors of the cart domain. The HTTP API maps each to its status.
var (
	// ErrUnknownSKU is returned when a SKU is not in the catalog.
	ErrUnknownSKU = errors.New("cart: unknown sku")
	// ErrQtyRange is returned when a quantity, or the quantity a line would
	// reach, is outside MinQty..MaxQty.
	ErrQtyRange = errors.New("cart: quantity out of range")
	// ErrNoLine is returned when the cart has no line for a SKU.
	ErrNoLine = errors.New("cart: no such line in the cart")
	// ErrCartFull is returned when adding a product would make the cart hold
	// more than MaxLines distinct products.
	ErrCartFull = errors.New("cart: too many distinct products")
	// ErrEmptyCart is returned by Checkout when the cart has no lines.
	ErrEmptyCart = errors.New("cart: cart is empty")
)

// Line is one product in a cart and how many of it.
type Line = pricing.Line

// Cart is a shopper's cart: lines in the order they were first added, at most
// one per SKU. Its zero value is an empty cart. A Cart is a value held by one
// request; it is stored in the session as JSON (Encode, DecodeCart).
type Cart struct {
	Lines []Line `json:"lines"`
	// Nonce names this cart from its first line until it is checked out;
	// a Ledger refuses a second checkout of the same nonce (a replayed
	// sealed cookie). Empty for an empty cart.
	Nonce string `json:"nonce,omitempty"`
}

// DecodeCart returns the cart encoded in session data. Nil or empty data is
// an empty cart. Data that is not a cart returns an error; lines that are
// invalid (unknown shape, quantity out of range, duplicates) are an error
// too, so a cart read back is always a valid cart.
func DecodeCart(data []byte) (Cart, error) {
	var c Cart
	if len(data) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return Cart{}, fmt.Errorf("cart: decode session data: %w", err)
	}
	seen := make(map[string]bool, len(c.Lines))
	for _, l := range c.Lines {
		if l.SKU == "" || l.Qty < MinQty || l.Qty > MaxQty || seen[l.SKU] {
			return Cart{}, fmt.Errorf("cart: decode session data: invalid line %+v", l)
		}
		seen[l.SKU] = true
	}
	if len(c.Lines) > MaxLines {
		return Cart{}, fmt.Errorf("cart: decode session data: %d lines", len(c.Lines))
	}
	return c, nil
}

// Encode returns the cart as session data.
func (c Cart) Encode() ([]byte, error) {
	if c.Lines == nil {
		c.Lines = []Line{}
	}
	return json.Marshal(c)
}

// index returns the position of sku's line, or -1.
func (c Cart) index(sku string) int {
	return slices.IndexFunc(c.Lines, func(l Line) bool { return l.SKU == sku })
}

// Qty returns how many of sku the cart holds (0 when it has no line for it).
func (c Cart) Qty(sku string) int {
	if i := c.index(sku); i >= 0 {
		return c.Lines[i].Qty
	}
	return 0
}

// Add adds qty of the catalog product sku: to its line if the cart has one,
// otherwise as a new last line. qty must be in MinQty..MaxQty and so must
// the line's resulting quantity (ErrQtyRange); sku must be in the catalog
// (ErrUnknownSKU). On error the cart is unchanged.
func (c *Cart) Add(cat *catalog.Catalog, sku string, qty int) error {
	if _, ok := cat.Lookup(sku); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSKU, sku)
	}
	if qty < MinQty || qty > MaxQty {
		return fmt.Errorf("%w: qty %d is not in %d..%d", ErrQtyRange, qty, MinQty, MaxQty)
	}
	i := c.index(sku)
	if i < 0 {
		if len(c.Lines) >= MaxLines {
			return fmt.Errorf("%w: at most %d", ErrCartFull, MaxLines)
		}
		c.Lines = append(c.Lines, Line{SKU: sku, Qty: qty})
		if c.Nonce == "" {
			c.Nonce = newNonce()
		}
		return nil
	}
	if next := c.Lines[i].Qty + qty; next > MaxQty {
		return fmt.Errorf("%w: the line would hold %d, at most %d", ErrQtyRange, next, MaxQty)
	}
	c.Lines[i].Qty += qty
	return nil
}

// Set sets the quantity of sku's line to qty; qty 0 removes the line. qty
// must be in 0..MaxQty (ErrQtyRange) and the cart must have a line for sku
// (ErrNoLine). On error the cart is unchanged.
func (c *Cart) Set(sku string, qty int) error {
	if qty < 0 || qty > MaxQty {
		return fmt.Errorf("%w: qty %d is not in 0..%d", ErrQtyRange, qty, MaxQty)
	}
	i := c.index(sku)
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrNoLine, sku)
	}
	if qty == 0 {
		c.Lines = slices.Delete(c.Lines, i, i+1)
		return nil
	}
	c.Lines[i].Qty = qty
	return nil
}

// Remove removes sku's line (ErrNoLine when there is none).
func (c *Cart) Remove(sku string) error { return c.Set(sku, 0) }

// Checkout places an order for the cart's lines at the price q (the
// quote of exactly those lines), empties the cart and returns the order.
// An empty cart returns ErrEmptyCart.
func (c *Cart) Checkout(q pricing.Quote) (Order, error) { return c.checkout(newOrderID(), q) }

// checkout is Checkout with the order's ID chosen by the caller (so that a
// retried compare-and-swap places the same order). The emptied cart has no
// nonce: its next line starts a new cart.
func (c *Cart) checkout(id string, q pricing.Quote) (Order, error) {
	if len(c.Lines) == 0 {
		return Order{}, ErrEmptyCart
	}
	o := Order{ID: id, Quote: q}
	c.Lines, c.Nonce = nil, ""
	return o, nil
}

// Order is a placed order.
type Order struct {
	// ID identifies the order: "ord_" and 20 random base-32 characters.
	ID string `json:"order_id"`
	pricing.Quote
}

// newOrderID returns a fresh random order ID. crypto/rand.Read never fails
// (it crashes the program rather than return weak randomness).
func newOrderID() string {
	return "ord_" + rand.Text()[:20]
}

// newNonce returns a fresh random cart nonce: 20 base-32 characters (100
// bits), valid in a store key.
func newNonce() string { return rand.Text()[:20] }
