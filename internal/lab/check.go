package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// SetResult is what the set checker found, as Jepsen's set checker: every
// acknowledged add is an element that must be in the cart until something
// may have removed it.
type SetResult struct {
	// Carts counts carts with at least one acknowledged add.
	Carts int
	// CartsLost counts carts whose final read misses at least one item.
	CartsLost int
	// CartsUnchecked counts carts whose final read failed (they are not
	// counted as lost or intact).
	CartsUnchecked int
	// ItemsAcked counts acknowledged elements: distinct (cart, sku) with an
	// acknowledged add.
	ItemsAcked int
	// ItemsLost counts acknowledged elements missing from the final read
	// although nothing may have removed them.
	ItemsLost int
	// StaleReads counts reads (before the final one) missing an item whose
	// add was acknowledged before the read began and that nothing may have
	// removed before the read ended.
	StaleReads int
}

// removes reports whether op may remove sku from its cart.
func removes(op Op, sku string) bool {
	if op.Outcome == Failed {
		return false
	}
	switch op.Kind {
	case OpCheckout:
		return true
	case OpRemove:
		return op.SKU == sku
	case OpSetQty:
		return op.SKU == sku && op.Qty == 0
	}
	return false
}

// required reports whether sku must appear in read r of a cart whose ops are
// ops: an add of sku was acknowledged before r began, and no op that may
// remove sku could have taken effect between that add and r's end.
func required(ops []Op, sku string, r Op) bool {
	for _, a := range ops {
		if a.Kind != OpAdd || a.SKU != sku || a.Outcome != OK || a.Return >= r.Call {
			continue
		}
		removed := false
		for _, m := range ops {
			if !removes(m, sku) || m.Call >= r.Return {
				continue
			}
			// A remover that certainly ended before the add began cannot
			// undo it; one with an unknown outcome may take effect late.
			if m.Outcome == OK && m.Return < a.Call {
				continue
			}
			removed = true
			break
		}
		if !removed {
			return true
		}
	}
	return false
}

// CheckSets runs the set checker over a history.
func CheckSets(ops []Op) SetResult {
	var res SetResult
	carts := byCart(ops)
	ids := sortedKeys(carts)
	for _, id := range ids {
		cops := carts[id]
		acked := map[string]bool{}
		for _, op := range cops {
			if op.Kind == OpAdd && op.Outcome == OK {
				acked[op.SKU] = true
			}
		}
		var final *Op
		for i := range cops {
			op := &cops[i]
			if op.Kind != OpRead || op.Outcome != OK {
				continue
			}
			if op.Final {
				final = op
				continue
			}
			for sku := range acked {
				if op.Read[sku] == 0 && required(cops, sku, *op) {
					res.StaleReads++
					break
				}
			}
		}
		if len(acked) == 0 {
			continue
		}
		res.Carts++
		res.ItemsAcked += len(acked)
		if final == nil {
			res.CartsUnchecked++
			continue
		}
		lost := 0
		for sku := range acked {
			if final.Read[sku] == 0 && required(cops, sku, *final) {
				lost++
			}
		}
		res.ItemsLost += lost
		if lost > 0 {
			res.CartsLost++
		}
	}
	return res
}

// CheckCounters runs the counter check of the tabs scenario: for each line
// that several adds incremented (and nothing set or removed), the
// acknowledged increments missing from the final quantity are lost updates.
// Carts without a successful final read are skipped.
func CheckCounters(ops []Op) int {
	lost := 0
	for _, cops := range byCart(ops) {
		var final *Op
		for i := range cops {
			if cops[i].Final && cops[i].Kind == OpRead && cops[i].Outcome == OK {
				final = &cops[i]
			}
		}
		if final == nil {
			continue
		}
		adds := map[string]int{}
		ackedQty := map[string]int{}
		touched := map[string]bool{}
		checkedOut := false
		for _, op := range cops {
			switch op.Kind {
			case OpAdd:
				adds[op.SKU]++
				if op.Outcome == OK {
					ackedQty[op.SKU] += op.Qty
				}
			case OpSetQty, OpRemove:
				touched[op.SKU] = true
			case OpCheckout:
				// A checkout resets every counter of the cart.
				checkedOut = checkedOut || op.Outcome != Failed
			}
		}
		if checkedOut {
			continue
		}
		for sku, n := range adds {
			if n < 2 || touched[sku] {
				continue
			}
			if missing := ackedQty[sku] - final.Read[sku]; missing > 0 {
				lost += missing
			}
		}
	}
	return lost
}

// LinResult is the outcome of the per-cart linearizability check.
type LinResult struct {
	// Linearizable is true when every cart's history is linearizable,
	// false when one is not, and nil when the checker timed out on some
	// cart and found no violation.
	Linearizable *bool
	// Checked, Illegal and TimedOut count carts.
	Checked, Illegal, TimedOut int
	// IllegalCarts lists up to ten carts that are not linearizable.
	IllegalCarts []int
}

// cartInput is a porcupine operation input.
type cartInput struct {
	kind OpKind
	sku  string
	qty  int
}

// cartOutput is a porcupine operation output: for a read the cart it
// returned; for a write whether it was acknowledged.
type cartOutput struct {
	known bool   // false: unknown outcome, the write may or may not apply
	cart  string // canonical cart of a read
}

// cartModel is the sequential specification of one cart: a map of lines
// encoded canonically as "sku:qty,sku:qty" in sku order.
var cartModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st := decodeCart(state.(string))
		in := input.(cartInput)
		out := output.(cartOutput)
		switch in.kind {
		case OpRead:
			return out.cart == state.(string), state
		case OpAdd:
			q := st[in.sku] + in.qty
			if q > 99 {
				// The server refuses such an add: it cannot have been acknowledged.
				return !out.known, state
			}
			st[in.sku] = q
		case OpSetQty, OpRemove:
			if _, ok := st[in.sku]; !ok {
				// 404 unknown line: not acknowledged.
				return !out.known, state
			}
			if in.kind == OpRemove || in.qty == 0 {
				delete(st, in.sku)
			} else {
				st[in.sku] = in.qty
			}
		case OpCheckout:
			st = map[string]int{}
		}
		return true, encodeCart(st)
	},
	DescribeOperation: func(input, output any) string {
		in := input.(cartInput)
		out := output.(cartOutput)
		switch in.kind {
		case OpRead:
			return "read → {" + out.cart + "}"
		case OpCheckout:
			return "checkout" + outcomeSuffix(out)
		case OpRemove:
			return "remove " + in.sku + outcomeSuffix(out)
		}
		return fmt.Sprintf("%s %s %d%s", in.kind, in.sku, in.qty, outcomeSuffix(out))
	},
	DescribeState: func(state any) string { return "{" + state.(string) + "}" },
}

func outcomeSuffix(o cartOutput) string {
	if o.known {
		return " → ok"
	}
	return " → ?"
}

func encodeCart(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(m[k]))
	}
	return b.String()
}

func decodeCart(s string) map[string]int {
	m := map[string]int{}
	if s == "" {
		return m
	}
	for _, kv := range strings.Split(s, ",") {
		i := strings.LastIndexByte(kv, ':')
		q, _ := strconv.Atoi(kv[i+1:])
		m[kv[:i]] = q
	}
	return m
}

// porcupineOps turns one cart's ops into porcupine operations. Failed ops
// are left out (they did not happen); reads that failed or timed out say
// nothing and are left out; writes with an unknown outcome get a return
// time after the end of the history, so they may take effect at any point
// after their call, or never be observed.
func porcupineOps(cops []Op) []porcupine.Operation {
	var end int64
	for _, op := range cops {
		end = max(end, op.Return)
	}
	clients := map[int]int{}
	var out []porcupine.Operation
	for _, op := range cops {
		if op.Outcome == Failed || op.Kind == OpBrowse {
			continue
		}
		if op.Kind == OpRead && op.Outcome != OK {
			continue
		}
		cid, ok := clients[op.Client]
		if !ok {
			cid = len(clients)
			clients[op.Client] = cid
		}
		in := cartInput{kind: op.Kind, sku: op.SKU, qty: op.Qty}
		o := cartOutput{known: op.Outcome == OK}
		ret := op.Return
		if op.Kind == OpRead {
			o.cart = encodeCart(op.Read)
		} else if op.Outcome == Unknown {
			ret = end + 1
		}
		out = append(out, porcupine.Operation{ClientId: cid, Input: in, Call: op.Call, Output: o, Return: ret})
	}
	return out
}

// Fault is a fault injected at a moment of the run, for annotations.
type Fault struct {
	// At and End are nanoseconds on the run's clock (End = At for an instant).
	At, End int64
	// What says what happened, e.g. "kill r2".
	What string
}

// CheckLinearizable checks each cart's history for linearizability with
// porcupine, within budget overall (each cart gets at most a second). When
// vizDir is not empty, the first non-linearizable cart is drawn with
// porcupine's HTML visualization into vizDir/vizName, the faults annotated;
// the file name is returned.
func CheckLinearizable(ctx context.Context, ops []Op, budget time.Duration, faults []Fault, vizDir, vizName string) (LinResult, string, error) {
	var res LinResult
	deadline := time.Now().Add(budget)
	carts := byCart(ops)
	var firstIllegal []porcupine.Operation
	firstCart := -1
	for _, id := range sortedKeys(carts) {
		hist := porcupineOps(carts[id])
		if len(hist) == 0 {
			continue
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			res.TimedOut++
			continue
		}
		res.Checked++
		switch porcupine.CheckOperationsTimeout(cartModel, hist, min(left, time.Second)) {
		case porcupine.Illegal:
			res.Illegal++
			if len(res.IllegalCarts) < 10 {
				res.IllegalCarts = append(res.IllegalCarts, id)
			}
			if firstIllegal == nil {
				firstIllegal, firstCart = hist, id
			}
		case porcupine.Unknown:
			res.TimedOut++
		}
	}
	switch {
	case res.Illegal > 0:
		f := false
		res.Linearizable = &f
	case res.TimedOut == 0:
		t := true
		res.Linearizable = &t
	}
	if firstIllegal == nil || vizDir == "" {
		return res, "", nil
	}
	_, info := porcupine.CheckOperationsVerbose(cartModel, firstIllegal, 5*time.Second)
	var ann []porcupine.Annotation
	for _, f := range faults {
		ann = append(ann, porcupine.Annotation{Tag: "faults", Start: f.At, End: max(f.At, f.End), Description: f.What, BackgroundColor: "#fde2e2"})
	}
	ann = append(ann, porcupine.Annotation{Tag: "cart", Start: firstIllegal[0].Call, Description: "cart " + strconv.Itoa(firstCart)})
	info.AddAnnotations(ann)
	if err := os.MkdirAll(vizDir, 0o755); err != nil {
		return res, "", fmt.Errorf("lab: visualization: %w", err)
	}
	path := filepath.Join(vizDir, vizName)
	if err := porcupine.VisualizePath(cartModel, info, path); err != nil {
		return res, "", fmt.Errorf("lab: visualization: %w", err)
	}
	return res, vizName, nil
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
