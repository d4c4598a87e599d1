package play

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

func TestParseCartOp(t *testing.T) {
	tests := []struct {
		method, path, body string
		want               cartOp
		ok                 bool
	}{
		{"GET", "/api/cart", "", cartOp{kind: "read"}, true},
		{"POST", "/api/cart/items", `{"sku":"SKU-1","qty":2}`, cartOp{kind: "add", sku: "SKU-1", qty: 2}, true},
		{"POST", "/api/cart/items", `{"qty":2}`, cartOp{kind: "other"}, true},
		{"POST", "/api/cart/items", `not json`, cartOp{kind: "other"}, true},
		{"PATCH", "/api/cart/items/SKU-1", `{"qty":5}`, cartOp{kind: "set", sku: "SKU-1", qty: 5}, true},
		{"PATCH", "/api/cart/items/SKU-1", `{"qty":0}`, cartOp{kind: "remove", sku: "SKU-1"}, true},
		{"PATCH", "/api/cart/items/SKU-1", `{}`, cartOp{kind: "other"}, true},
		{"DELETE", "/api/cart/items/SKU-1", "", cartOp{kind: "remove", sku: "SKU-1"}, true},
		{"POST", "/api/cart/checkout", "", cartOp{kind: "checkout"}, true},
		{"PUT", "/api/cart", "", cartOp{kind: "other"}, true},
		{"GET", "/api/catalog", "", cartOp{}, false},
		{"GET", "/api/cartography", "", cartOp{}, false},
		{"GET", "/", "", cartOp{}, false},
	}
	for _, tt := range tests {
		got, ok := parseCartOp(tt.method, tt.path, []byte(tt.body))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCartOp(%s %s %s) = %+v, %v; want %+v, %v", tt.method, tt.path, tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

// TestObserverSequences feeds the observer responses directly and checks
// the one line each sequence must end with (or that it stays silent).
func TestObserverSequences(t *testing.T) {
	type resp struct {
		op       cartOp
		status   int
		servedBy string
		body     string
	}
	read := cartOp{kind: "read"}
	add := func(sku string) cartOp { return cartOp{kind: "add", sku: sku, qty: 1} }
	tests := []struct {
		name  string
		kind  stores.Kind
		fault string
		steps []resp
		want  string // "" means no event at all
	}{
		{"quiet shopping", "memory", "", []resp{
			{read, 200, "r1", `{"items":[]}`},
			{add("a"), 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
		}, ""},
		{"removal is not a loss", "memory", "", []resp{
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1},{"sku":"b","qty":1}]}`},
			{cartOp{kind: "remove", sku: "a"}, 200, "r1", `{"items":[{"sku":"b","qty":1}]}`},
		}, ""},
		{"checkout is not a loss", "memory", "", []resp{
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
			{cartOp{kind: "checkout"}, 200, "r1", `{"order_id":"o-1"}`},
			{read, 200, "r2", `{"items":[]}`},
		}, ""},
		{"add without a cart body still counts", "memory", "", []resp{
			{read, 200, "r1", `{"items":[]}`},
			{add("a"), 201, "r1", `{"sku":"a","qty":1}`},
			{read, 200, "r2", `{"items":[]}`},
		}, "your next request went to r2: your cart is empty — the item you had lived only on r1"},
		{"same replica restarted", "memory", "r1", []resp{
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1},{"sku":"b","qty":1}]}`},
			{read, 200, "r1", `{"items":[]}`},
		}, "your next request went to r1: your cart is empty — r1 lost its memory, and your 2 items with it"},
		{"store lost data", "redis", "-store-", []resp{
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
			{read, 200, "r2", `{"items":[]}`},
		}, "your next request went to r2: your cart is empty — the item you had is gone"},
		{"a fault elsewhere is not yours", "memory", "r3", []resp{
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
		}, ""},
		{"paused and resumed, still yours", "memory", "r1", []resp{
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
			{read, 200, "r1", `{"items":[{"sku":"a","qty":1}]}`},
		}, "r1 served you again: your cart is intact"},
		{"gateway error", "memory", "", []resp{
			{read, 502, "", ``},
		}, "your request failed — 502 from the balancer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newEventLog(50, nil)
			o := newObserver(log, func() (strategy.Strategy, stores.Kind) { return strategy.Sticky, tt.kind })
			for i, st := range tt.steps {
				if i == len(tt.steps)-1 && tt.fault != "" {
					o.Fault(strings.TrimSuffix(tt.fault, "-store-"))
				}
				o.Observe(st.op, st.status, st.servedBy, []byte(st.body))
			}
			events := log.snapshot()
			if tt.want == "" {
				if len(events) != 0 {
					t.Fatalf("events = %+v, want none", events)
				}
				return
			}
			if len(events) == 0 || events[len(events)-1].Text != tt.want {
				t.Fatalf("events = %+v, want the last to be %q", events, tt.want)
			}
		})
	}
}

func TestKilledText(t *testing.T) {
	tests := []struct {
		kind     stores.Kind
		sessions int
		known    bool
		want     string
	}{
		{"memory", 37, true, "r2 killed — 37 carts lived only there"},
		{"memory", 1, true, "r2 killed — 1 cart lived only there"},
		{"memory", 0, false, "r2 killed — every cart that lived only there is gone"},
		{"replicated", 5, true, "r2 killed — its 5 carts have copies on other replicas"},
		{"redis", 0, false, "r2 killed — it held no carts: they live in Redis"},
		{"postgres", 0, false, "r2 killed — it held no carts: they live in PostgreSQL"},
	}
	for _, tt := range tests {
		if got := killedText("r2", tt.kind, tt.sessions, tt.known); got != tt.want {
			t.Errorf("killedText(%s, %d, %v) = %q, want %q", tt.kind, tt.sessions, tt.known, got, tt.want)
		}
	}
	if !strings.Contains(restartedText("r1", "memory"), "empty memory") {
		t.Error("a restarted memory replica must say its carts are gone")
	}
}

func TestAllowSameOriginFraming(t *testing.T) {
	tests := []struct{ in, want string }{
		{"default-src 'self'; frame-ancestors 'none'", "default-src 'self'; frame-ancestors 'self'"},
		{"frame-ancestors 'none'; default-src 'self'", "frame-ancestors 'self'; default-src 'self'"},
		{"default-src 'self'", "default-src 'self'"},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set("Content-Security-Policy", tt.in)
		h.Set("X-Frame-Options", "DENY")
		allowSameOriginFraming(h)
		if got := h.Get("Content-Security-Policy"); got != tt.want {
			t.Errorf("CSP %q became %q, want %q", tt.in, got, tt.want)
		}
		if got := h.Get("X-Frame-Options"); got != "SAMEORIGIN" {
			t.Errorf("X-Frame-Options = %q, want SAMEORIGIN", got)
		}
	}
}

func TestRateOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var h []sample
	steps := []struct {
		ms       int
		requests int64
		want     float64
	}{
		{0, 100, 0},     // one reading: no rate yet
		{500, 110, 20},  // 10 in 0.5s
		{1000, 110, 10}, // 10 in 1s
		{2500, 140, 15}, // the reading at 0 leaves the window: 30 since 500ms, in 2s
		{3000, 140, 15}, // 30 since 1000ms, in 2s
		{3500, 5, 0},    // counter restarted: history reset
		{4000, 15, 20},  // 10 in 0.5s
	}
	for _, st := range steps {
		var got float64
		h, got = rateOf(h, at(st.ms), st.requests)
		if got != st.want {
			t.Fatalf("at %dms with %d requests: rate %g, want %g", st.ms, st.requests, got, st.want)
		}
	}
}
