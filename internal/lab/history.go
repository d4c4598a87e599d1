package lab

import (
	"sort"
	"sync"
)

// OpKind is what a recorded operation did to a cart.
type OpKind string

// The operations a shopper performs.
const (
	// OpAdd adds Qty of SKU (POST /api/cart/items); qty adds to an existing line.
	OpAdd OpKind = "add"
	// OpSetQty sets the quantity of SKU to Qty (PATCH /api/cart/items/{sku}).
	OpSetQty OpKind = "set"
	// OpRemove removes the line of SKU (DELETE /api/cart/items/{sku}).
	OpRemove OpKind = "remove"
	// OpCheckout places the order and empties the cart.
	OpCheckout OpKind = "checkout"
	// OpRead reads the cart (GET /api/cart); Read holds what it returned.
	OpRead OpKind = "read"
	// OpBrowse is a stateless request (catalog, quote); it is timed and
	// counted but not checked.
	OpBrowse OpKind = "browse"
)

// Outcome is what the client knows about an operation's effect.
type Outcome uint8

// The outcomes of an operation.
const (
	// OK means the server acknowledged it (2xx).
	OK Outcome = iota
	// Failed means it certainly did not take effect (a 4xx answer, or a
	// connection refused before the request was sent).
	Failed
	// Unknown means it may or may not have taken effect: it timed out, its
	// replica died mid-flight, or it got a 5xx.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Op is one operation of the history. Times are nanoseconds on the run's
// single monotonic clock.
type Op struct {
	// Cart identifies the cart (one per shopper; the tabs of a shopper share it).
	Cart int
	// Client identifies the sequential client that issued the op (a
	// shopper, or one tab of a shopper).
	Client int
	// Kind is the operation.
	Kind OpKind
	// SKU and Qty are its arguments (Qty for add and set).
	SKU string
	Qty int
	// Call and Return are when the request was sent and its answer (or
	// failure) came back.
	Call, Return int64
	// Outcome is ok, failed or unknown.
	Outcome Outcome
	// Status is the HTTP status, 0 when there was none.
	Status int
	// ServedBy is the X-Served-By of the answer, if any.
	ServedBy string
	// Cause is why the request failed ("503 store_unavailable", "no
	// answer: timeout", …); empty when it was answered with a 2xx.
	Cause string
	// Read is the cart a successful read returned: sku → qty.
	Read map[string]int
	// Final marks the final read of a cart after the run.
	Final bool
}

// History collects the operations of a run from many goroutines.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of every recorded op, ordered by call time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// byCart groups the cart operations of ops (everything but browse) by cart,
// each group in call order.
func byCart(ops []Op) map[int][]Op {
	m := map[int][]Op{}
	for _, op := range ops {
		if op.Kind == OpBrowse {
			continue
		}
		m[op.Cart] = append(m[op.Cart], op)
	}
	for _, g := range m {
		sort.SliceStable(g, func(i, j int) bool { return g[i].Call < g[j].Call })
	}
	return m
}
