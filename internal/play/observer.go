package play

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// CartLine is one line of your cart as the last response showed it.
type CartLine struct {
	// SKU identifies the product.
	SKU string `json:"sku"`
	// Name is the product's name (empty until a cart response names it).
	Name string `json:"name"`
	// Qty is the quantity, 1 to 99.
	Qty int `json:"qty"`
	// PriceCents is the unit price in cents.
	PriceCents int `json:"price_cents"`
}

// You is what the playground knows about the person shopping in the shop
// pane: the replica that served their last request and their cart as it
// came back.
type You struct {
	// ServedBy is the replica that served the last response, from
	// X-Served-By.
	ServedBy string `json:"served_by"`
	// Requests counts the requests that went through the shop pane.
	Requests int `json:"requests"`
	// Known reports whether Items reflects a cart response.
	Known bool `json:"known"`
	// Items is your cart, sorted by sku.
	Items []CartLine `json:"items"`
	// LastStatus is the HTTP status of the last response.
	LastStatus int `json:"last_status"`
}

// cartOp is what a request through the shop pane does to your cart.
type cartOp struct {
	kind string // "read", "add", "set", "remove", "checkout", "other"
	sku  string
	qty  int
}

// parseCartOp returns what method and path (with the /shop prefix already
// removed) do to the cart; body is the request body of a write.
func parseCartOp(method, path string, body []byte) (cartOp, bool) {
	if path != "/api/cart" && !strings.HasPrefix(path, "/api/cart/") {
		return cartOp{}, false
	}
	switch {
	case method == http.MethodGet && path == "/api/cart":
		return cartOp{kind: "read"}, true
	case method == http.MethodPost && path == "/api/cart/items":
		var in struct {
			SKU string `json:"sku"`
			Qty int    `json:"qty"`
		}
		if json.Unmarshal(body, &in) != nil || in.SKU == "" {
			return cartOp{kind: "other"}, true
		}
		return cartOp{kind: "add", sku: in.SKU, qty: in.Qty}, true
	case method == http.MethodPatch && strings.HasPrefix(path, "/api/cart/items/"):
		var in struct {
			Qty *int `json:"qty"`
		}
		sku := strings.TrimPrefix(path, "/api/cart/items/")
		if json.Unmarshal(body, &in) != nil || in.Qty == nil || sku == "" {
			return cartOp{kind: "other"}, true
		}
		if *in.Qty == 0 {
			return cartOp{kind: "remove", sku: sku}, true
		}
		return cartOp{kind: "set", sku: sku, qty: *in.Qty}, true
	case method == http.MethodDelete && strings.HasPrefix(path, "/api/cart/items/"):
		return cartOp{kind: "remove", sku: strings.TrimPrefix(path, "/api/cart/items/")}, true
	case method == http.MethodPost && path == "/api/cart/checkout":
		return cartOp{kind: "checkout"}, true
	}
	return cartOp{kind: "other"}, true
}

// observer watches the requests that go through the shop pane and tells, in
// the event log, what happened to your cart: which replica served you, and
// whether your cart survived the last fault. It compares each cart that
// comes back with the cart you should have: the previous one plus what you
// did since.
type observer struct {
	log *eventLog
	// context returns the running strategy and store kind.
	context func() (strategy.Strategy, stores.Kind)

	mu       sync.Mutex
	you      You
	expected map[string]CartLine // the cart you should have; valid when you.Known
	// fault is set by a fault that concerns you since your last response:
	// one on the replica that served you, or on the store.
	fault bool
}

func newObserver(log *eventLog, context func() (strategy.Strategy, stores.Kind)) *observer {
	return &observer{log: log, context: context, expected: map[string]CartLine{}}
}

// You returns what the observer knows about you.
func (o *observer) You() You {
	o.mu.Lock()
	defer o.mu.Unlock()
	y := o.you
	y.Items = append([]CartLine(nil), o.you.Items...)
	return y
}

// Fault tells the observer that a replica (or, with replica "", the store)
// failed or was restarted. When it is the replica that served you last, or
// the store, the next cart you see is reported even when nothing was lost.
func (o *observer) Fault(replica string) {
	o.mu.Lock()
	if replica == "" || replica == o.you.ServedBy {
		o.fault = true
	}
	o.mu.Unlock()
}

// Reset forgets your cart: the cluster was rebuilt and the old carts are
// gone with it, by design rather than by failure.
func (o *observer) Reset() {
	o.mu.Lock()
	o.you = You{}
	o.expected = map[string]CartLine{}
	o.fault = false
	o.mu.Unlock()
}

// cartBody is the part of a cart response the observer reads.
type cartBody struct {
	Items    *[]CartLine `json:"items"`
	ServedBy string      `json:"served_by"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Observe records one response to a request through the shop pane: op is
// what the request did to the cart, status, servedBy (X-Served-By) and body
// what came back.
func (o *observer) Observe(op cartOp, status int, servedBy string, body []byte) {
	st, storeKind := o.context()
	var cb cartBody
	_ = json.Unmarshal(body, &cb) // a body that is not a cart is simply not compared
	if servedBy == "" {
		servedBy = cb.ServedBy
	}

	o.mu.Lock()
	prevServer := o.you.ServedBy
	o.you.Requests++
	o.you.LastStatus = status
	if servedBy != "" {
		o.you.ServedBy = servedBy
	}
	var lines []string
	var kinds []EventKind
	say := func(k EventKind, s string) { kinds = append(kinds, k); lines = append(lines, s) }

	switch {
	case status >= 500:
		msg := ""
		if cb.Error != nil && cb.Error.Message != "" {
			msg = ": " + cb.Error.Message
		}
		who := "the balancer"
		if servedBy != "" {
			who = servedBy
		}
		say(EventError, fmt.Sprintf("your request failed — %d from %s%s", status, who, msg))
	case status >= 200 && status < 300:
		expected := o.applyLocked(op)
		if cb.Items != nil {
			got := map[string]CartLine{}
			for _, l := range *cb.Items {
				got[l.SKU] = l
			}
			if o.you.Known {
				var lost []string
				for sku := range expected {
					if _, ok := got[sku]; !ok {
						lost = append(lost, sku)
					}
				}
				sort.Strings(lost)
				switch {
				case len(lost) > 0:
					what := "your cart is empty"
					if len(got) > 0 {
						what = fmt.Sprintf("your cart is missing %s (%s)", plural(len(lost), "item", "items"), strings.Join(lost, ", "))
					}
					say(EventLoss, fmt.Sprintf("your next request went to %s: %s — %s",
						orUnknown(servedBy), what, lostWhere(len(lost), prevServer, servedBy, storeKind)))
				case o.fault && len(got) > 0:
					say(EventSafe, safeText(servedBy, prevServer, st, storeKind))
				}
			}
			o.expected = got
			o.you.Known = true
			o.you.Items = sortedLines(got)
			o.fault = false
		} else if o.you.Known {
			o.expected = expected
			o.you.Items = sortedLines(expected)
		}
	}
	o.mu.Unlock()
	for i := range lines {
		o.log.add(kinds[i], lines[i])
	}
}

// applyLocked returns the cart you should have after op succeeds.
func (o *observer) applyLocked(op cartOp) map[string]CartLine {
	next := make(map[string]CartLine, len(o.expected)+1)
	for k, v := range o.expected {
		next[k] = v
	}
	switch op.kind {
	case "add":
		l := next[op.sku]
		l.SKU = op.sku
		l.Qty += op.qty
		next[op.sku] = l
	case "set":
		l := next[op.sku]
		l.SKU = op.sku
		l.Qty = op.qty
		next[op.sku] = l
	case "remove":
		delete(next, op.sku)
	case "checkout":
		return map[string]CartLine{}
	}
	return next
}

func sortedLines(m map[string]CartLine) []CartLine {
	out := make([]CartLine, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}

func orUnknown(id string) string {
	if id == "" {
		return "another replica"
	}
	return id
}

// lostWhere completes "your cart is empty — …".
func lostWhere(n int, prev, now string, storeKind stores.Kind) string {
	items := plural(n, "item", "items")
	if storeKind == stores.Memory && prev != "" && prev != now {
		if n == 1 {
			return fmt.Sprintf("the item you had lived only on %s", prev)
		}
		return fmt.Sprintf("the %s you had lived only on %s", items, prev)
	}
	if storeKind == stores.Memory && prev == now && prev != "" {
		return fmt.Sprintf("%s lost its memory, and your %s with it", prev, items)
	}
	if n == 1 {
		return "the item you had is gone"
	}
	return fmt.Sprintf("the %s you had are gone", items)
}

// safeText is the log line for a cart that survived a fault.
func safeText(now, prev string, st strategy.Strategy, storeKind stores.Kind) string {
	if now != "" && now == prev {
		return fmt.Sprintf("%s served you again: your cart is intact", now)
	}
	if src := cartSource(st, storeKind); src != "" {
		return fmt.Sprintf("%s read your cart from %s: nothing lost", orUnknown(now), src)
	}
	return fmt.Sprintf("your request went to %s: your cart is intact", orUnknown(now))
}
