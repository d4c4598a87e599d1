package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// h builds a one-cart history from ops, numbering clients and carts.
type hb struct {
	ops []Op
	t   int64
}

// op appends an op taking 10ns after the previous one, by client 0.
func (b *hb) op(kind OpKind, sku string, qty int, out Outcome, read map[string]int) *hb {
	return b.opc(0, kind, sku, qty, out, read)
}

func (b *hb) opc(client int, kind OpKind, sku string, qty int, out Outcome, read map[string]int) *hb {
	b.t += 10
	b.ops = append(b.ops, Op{Cart: 1, Client: client, Kind: kind, SKU: sku, Qty: qty, Call: b.t, Return: b.t + 5, Outcome: out, Read: read})
	return b
}

func (b *hb) final(read map[string]int) []Op {
	b.t += 10
	return append(b.ops, Op{Cart: 1, Kind: OpRead, Call: b.t, Return: b.t + 5, Outcome: OK, Read: read, Final: true})
}

func TestCheckSets(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want SetResult
	}{
		{
			name: "intact cart",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRead, "", 0, OK, map[string]int{"a": 1}).
				op(OpAdd, "b", 2, OK, nil).final(map[string]int{"a": 1, "b": 2}),
			want: SetResult{Carts: 1, ItemsAcked: 2},
		},
		{
			name: "lost item",
			ops:  new(hb).op(OpAdd, "a", 1, OK, nil).op(OpAdd, "b", 1, OK, nil).final(map[string]int{"b": 1}),
			want: SetResult{Carts: 1, CartsLost: 1, ItemsAcked: 2, ItemsLost: 1},
		},
		{
			name: "stale read",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRead, "", 0, OK, map[string]int{}).
				final(map[string]int{"a": 1}),
			want: SetResult{Carts: 1, ItemsAcked: 1, StaleReads: 1},
		},
		{
			name: "removed item is neither lost nor stale",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRemove, "a", 0, OK, nil).
				op(OpRead, "", 0, OK, map[string]int{}).final(map[string]int{}),
			want: SetResult{Carts: 1, ItemsAcked: 1},
		},
		{
			name: "remove with unknown outcome may have happened",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRemove, "a", 0, Unknown, nil).
				final(map[string]int{}),
			want: SetResult{Carts: 1, ItemsAcked: 1},
		},
		{
			name: "failed remove did not happen",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRemove, "a", 0, Failed, nil).
				final(map[string]int{}),
			want: SetResult{Carts: 1, CartsLost: 1, ItemsAcked: 1, ItemsLost: 1},
		},
		{
			name: "unknown-outcome add missing is not lost",
			ops:  new(hb).op(OpAdd, "a", 1, Unknown, nil).op(OpAdd, "b", 1, OK, nil).final(map[string]int{"b": 1}),
			want: SetResult{Carts: 1, ItemsAcked: 1},
		},
		{
			name: "checkout empties the cart",
			ops:  new(hb).op(OpAdd, "a", 1, OK, nil).op(OpCheckout, "", 0, OK, nil).final(map[string]int{}),
			want: SetResult{Carts: 1, ItemsAcked: 1},
		},
		{
			name: "failed final read leaves the cart unchecked",
			ops:  new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRead, "", 0, Unknown, nil).ops,
			want: SetResult{Carts: 1, ItemsAcked: 1, CartsUnchecked: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckSets(tt.ops); got != tt.want {
				t.Errorf("CheckSets = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckCounters(t *testing.T) {
	// Two tabs increment line "a" concurrently: 1 + 3 acknowledged
	// increments, one unknown.
	concurrent := func(final int) []Op {
		ops := []Op{
			{Cart: 1, Client: 0, Kind: OpAdd, SKU: "a", Qty: 1, Call: 0, Return: 10, Outcome: OK},
			{Cart: 1, Client: 0, Kind: OpAdd, SKU: "a", Qty: 1, Call: 20, Return: 40, Outcome: OK},
			{Cart: 1, Client: 1, Kind: OpAdd, SKU: "a", Qty: 1, Call: 25, Return: 45, Outcome: OK},
			{Cart: 1, Client: 1, Kind: OpAdd, SKU: "a", Qty: 1, Call: 50, Return: 60, Outcome: OK},
			{Cart: 1, Client: 0, Kind: OpAdd, SKU: "a", Qty: 1, Call: 50, Return: 90, Outcome: Unknown},
			{Cart: 1, Kind: OpRead, Call: 100, Return: 110, Outcome: OK, Read: map[string]int{"a": final}, Final: true},
		}
		return ops
	}
	tests := []struct {
		name  string
		final int
		want  int
	}{
		{"all increments kept", 4, 0},
		{"unknown increment applied too", 5, 0},
		{"one lost update", 3, 1},
		{"last writer wins", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckCounters(concurrent(tt.final)); got != tt.want {
				t.Errorf("CheckCounters = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheckLinearizable(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name string
		ops  []Op
		want *bool
	}{
		{
			name: "sequential and consistent",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRead, "", 0, OK, map[string]int{"a": 1}).
				op(OpSetQty, "a", 3, OK, nil).op(OpAdd, "b", 1, OK, nil).
				final(map[string]int{"a": 3, "b": 1}),
			want: &yes,
		},
		{
			name: "stale read is not linearizable",
			ops:  new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRead, "", 0, OK, map[string]int{}).final(map[string]int{"a": 1}),
			want: &no,
		},
		{
			name: "lost update is not linearizable",
			ops: []Op{
				{Cart: 1, Client: 0, Kind: OpAdd, SKU: "a", Qty: 1, Call: 0, Return: 10, Outcome: OK},
				{Cart: 1, Client: 1, Kind: OpAdd, SKU: "a", Qty: 1, Call: 5, Return: 15, Outcome: OK},
				{Cart: 1, Client: 0, Kind: OpRead, Call: 20, Return: 30, Outcome: OK, Read: map[string]int{"a": 1}, Final: true},
			},
			want: &no,
		},
		{
			name: "concurrent read may see either state",
			ops: []Op{
				{Cart: 1, Client: 0, Kind: OpAdd, SKU: "a", Qty: 1, Call: 0, Return: 100, Outcome: OK},
				{Cart: 1, Client: 1, Kind: OpRead, Call: 10, Return: 20, Outcome: OK, Read: map[string]int{}},
				{Cart: 1, Client: 1, Kind: OpRead, Call: 30, Return: 40, Outcome: OK, Read: map[string]int{"a": 1}},
			},
			want: &yes,
		},
		{
			name: "unknown-outcome write may never be observed",
			ops: new(hb).op(OpAdd, "a", 1, OK, nil).op(OpAdd, "b", 1, Unknown, nil).
				final(map[string]int{"a": 1}),
			want: &yes,
		},
		{
			name: "unknown-outcome write may be observed later",
			ops: new(hb).op(OpAdd, "b", 1, Unknown, nil).op(OpRead, "", 0, OK, map[string]int{}).
				final(map[string]int{"b": 1}),
			want: &yes,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _, err := CheckLinearizable(context.Background(), tt.ops, 5*time.Second, nil, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Linearizable == nil || *res.Linearizable != *tt.want {
				t.Errorf("Linearizable = %v, want %v (%+v)", fmtBool(res.Linearizable), *tt.want, res)
			}
		})
	}
}

func TestCheckLinearizableVisualizesFailingCart(t *testing.T) {
	dir := t.TempDir()
	ops := new(hb).op(OpAdd, "a", 1, OK, nil).op(OpRead, "", 0, OK, map[string]int{}).final(map[string]int{"a": 1})
	res, name, err := CheckLinearizable(context.Background(), ops, 5*time.Second, []Fault{{At: 12, What: "kill r2"}}, dir, "lin.html")
	if err != nil {
		t.Fatal(err)
	}
	if res.Illegal != 1 || name != "lin.html" {
		t.Fatalf("res = %+v, file %q; want one illegal cart drawn to lin.html", res, name)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "kill r2") {
		t.Errorf("visualization does not carry the fault annotation")
	}
}

func TestCheckLinearizableOutOfBudget(t *testing.T) {
	ops := new(hb).op(OpAdd, "a", 1, OK, nil).final(map[string]int{"a": 1})
	res, _, err := CheckLinearizable(context.Background(), ops, 0, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Linearizable != nil || res.TimedOut != 1 {
		t.Errorf("res = %+v, want linearizable null with one cart timed out", res)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "null"
	}
	if *b {
		return "true"
	}
	return "false"
}
