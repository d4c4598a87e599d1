package lab

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// runHot is the skewed part of the workload: one hot session (a shopper
// who never leaves) adds one item at the start and then reads its cart at
// w.hot times the offered rate until end, each read sent on schedule
// whether or not the previous one has been answered (open loop). Under a
// sticky policy every one of those requests goes to one replica; under
// round robin they spread like the rest.
func (w *workload) runHot(ctx context.Context, end int64) {
	if w.hot <= 0 || w.hot >= 1 || len(w.skus) == 0 {
		return
	}
	s := w.newShopper()
	sku := w.skus[0]
	s.do(ctx, s.id, 0, OpAdd, http.MethodPost, "/api/cart/items", map[string]any{"sku": sku, "qty": 1}, sku, 1)
	gap := int64(float64(time.Second) / (w.rate * w.hot))
	var wg sync.WaitGroup
	for next := w.now(); next < end; next += gap {
		if !w.sleepUntil(ctx, next) {
			break
		}
		wg.Add(1)
		go func(at int64) {
			defer wg.Done()
			s.do(ctx, s.id, at, OpRead, http.MethodGet, "/api/cart", nil, "", 0)
		}(next)
	}
	wg.Wait()
}
