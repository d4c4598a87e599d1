package balancer

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"
)

// testPool builds a balancer (no network) with one backend per weight, IDs
// b0, b1, ..., and returns it with its pool.
func testPool(t *testing.T, policy string, weights ...int) (*Balancer, *Pool) {
	t.Helper()
	cfg := Config{Policy: policy, Logger: testLogger(t), Secret: []byte("test secret")}
	for i, w := range weights {
		cfg.Backends = append(cfg.Backends, BackendConfig{ID: "b" + strconv.Itoa(i), URL: fmt.Sprintf("http://127.0.0.1:%d", 10000+i), Weight: w})
	}
	lb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lb, lb.defaultGroup.pool.Load()
}

func newReq() *Request { return &Request{Now: time.Now().UnixNano()} }

func TestRoundRobinSpreadAndWeights(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		picks   int
		want    []int
	}{
		{"equal", []int{1, 1, 1}, 300, []int{100, 100, 100}},
		{"weighted", []int{1, 2, 3}, 600, []int{100, 200, 300}},
		{"zero weight means one", []int{0, 1}, 10, []int{5, 5}},
		{"single", []int{5}, 7, []int{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, pool := testPool(t, PolicyRoundRobin, tt.weights...)
			counts := make(map[string]int)
			for i := 0; i < tt.picks; i++ {
				b := lb.defaultGroup.selector.Select(pool, newReq())
				if b == nil {
					t.Fatal("no backend selected")
				}
				counts[b.id]++
			}
			for i, w := range tt.want {
				if got := counts["b"+strconv.Itoa(i)]; got != w {
					t.Errorf("b%d got %d picks, want %d (all: %v)", i, got, w, counts)
				}
			}
		})
	}
}

func TestRoundRobinIsSmooth(t *testing.T) {
	// Weights 5,1,1 interleave as nginx's smooth weighted round robin does,
	// rather than sending five requests in a row to the heavy backend.
	lb, pool := testPool(t, PolicyRoundRobin, 5, 1, 1)
	want := []string{"b0", "b0", "b1", "b0", "b2", "b0", "b0"}
	for round := 0; round < 3; round++ {
		for i, w := range want {
			if got := lb.defaultGroup.selector.Select(pool, newReq()).id; got != w {
				t.Fatalf("round %d pick %d is %s, want %s (sequence %v)", round, i, got, w, want)
			}
		}
	}
}

func TestSelectorsSkipIneligible(t *testing.T) {
	for _, policy := range Policies {
		t.Run(policy, func(t *testing.T) {
			lb, pool := testPool(t, policy, 1, 1, 1, 1)
			bs := pool.Backends()
			bs[0].healthy.Store(false)                                     // down
			bs[1].draining.Store(true)                                     // draining
			bs[2].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano()) // ejected
			for i := 0; i < 50; i++ {
				r := newReq()
				r.HashKey = []byte(strconv.Itoa(i))
				if b := lb.defaultGroup.selector.Select(pool, r); b != bs[3] {
					t.Fatalf("picked %v, want b3 (the only eligible)", b.ID())
				}
			}
			r := newReq()
			r.markTried(bs[3])
			if b := lb.defaultGroup.selector.Select(pool, r); b != nil {
				t.Fatalf("picked %s with every backend ineligible", b.id)
			}
			r = newReq()
			r.Panic = true
			r.HashKey = []byte("k")
			if b := lb.defaultGroup.selector.Select(pool, r); b == nil || b == bs[1] {
				t.Fatalf("panic mode picked %v, want a non-draining backend", b)
			}
		})
	}
}

func TestLeastRequestPrefersIdle(t *testing.T) {
	tests := []struct {
		name     string
		inflight []int64
		weights  []int
		never    string // a backend that must never be picked
	}{
		{"two backends", []int64{10, 0}, []int{1, 1}, "b0"},
		{"busiest of four", []int64{3, 3, 50, 3}, []int{1, 1, 1, 1}, "b2"},
		{"weight scales load", []int64{4, 3}, []int{4, 1}, "b1"}, // 4/4 < 3/1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb, pool := testPool(t, PolicyLeastRequest, tt.weights...)
			for i, n := range tt.inflight {
				pool.Backends()[i].inflight.Store(n)
			}
			for i := 0; i < 500; i++ {
				if b := lb.defaultGroup.selector.Select(pool, newReq()); b.id == tt.never {
					t.Fatalf("picked %s, the busiest backend", b.id)
				}
			}
		})
	}
}

func TestHashIsConsistent(t *testing.T) {
	lb, pool := testPool(t, PolicyHash, 1, 1, 1, 1)
	owner := map[string]string{}
	counts := map[string]int{}
	for i := 0; i < 2000; i++ {
		key := "session-" + strconv.Itoa(i)
		r := newReq()
		r.HashKey = []byte(key)
		b := lb.defaultGroup.selector.Select(pool, r)
		owner[key] = b.id
		counts[b.id]++
		r2 := newReq()
		r2.HashKey = []byte(key)
		if again := lb.defaultGroup.selector.Select(pool, r2); again != b {
			t.Fatalf("key %s went to %s then %s", key, b.id, again.id)
		}
	}
	for id, n := range counts {
		if n < 2000/4/2 {
			t.Errorf("backend %s owns only %d of 2000 keys: %v", id, n, counts)
		}
	}
	// Removing b3 remaps only b3's keys.
	smaller := newPool(pool.Backends()[:3])
	for key, was := range owner {
		r := newReq()
		r.HashKey = []byte(key)
		now := lb.defaultGroup.selector.Select(smaller, r).id
		if was != "b3" && now != was {
			t.Fatalf("key %s moved from %s to %s though %s is still there", key, was, now, was)
		}
	}
}

func TestHashBoundedLoadUnderSkew(t *testing.T) {
	tests := []struct {
		name     string
		factor   float64
		backends int
	}{
		{"factor 1.25, 4 backends", 1.25, 4},
		{"factor 1.0, 3 backends", 1.0, 3},
		{"factor 2, 5 backends", 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			weights := make([]int, tt.backends)
			_, pool := testPool(t, PolicyHash, weights...)
			sel := &HashSelection{Factor: tt.factor}
			var total int64
			for i := 0; i < 1000; i++ {
				// Every request carries the same key: the worst skew.
				r := newReq()
				r.HashKey = []byte("hot")
				b := sel.Select(pool, r)
				b.inflight.Add(1)
				total++
				limit := int64(math.Ceil(tt.factor * float64(total) / float64(tt.backends)))
				for _, x := range pool.Backends() {
					if x.inflight.Load() > limit {
						t.Fatalf("after %d requests %s has %d in flight, bound %d", total, x.id, x.inflight.Load(), limit)
					}
				}
				// Let some requests finish, unevenly.
				if i%3 == 0 {
					bs := pool.Backends()
					if y := bs[i%len(bs)]; y.inflight.Load() > 0 {
						y.inflight.Add(-1)
						total--
					}
				}
			}
		})
	}
}

func TestStickySelection(t *testing.T) {
	lb, pool := testPool(t, PolicySticky, 1, 1, 1)
	bs := pool.Backends()
	cookie := func(b *Backend) *Request {
		r := newReq()
		r.Cookie = []byte(b.stickyValue)
		return r
	}
	tests := []struct {
		name  string
		setup func()
		req   *Request
		want  *Backend // nil: any backend but bs[1]
	}{
		{"cookie pins", func() {}, cookie(bs[1]), bs[1]},
		{"draining keeps its clients", func() { bs[1].draining.Store(true) }, cookie(bs[1]), bs[1]},
		{"down backend is redispatched", func() { bs[1].healthy.Store(false) }, cookie(bs[1]), nil},
		{"ejected backend is redispatched", func() { bs[1].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano()) }, cookie(bs[1]), nil},
		{"forged cookie is redispatched", func() { bs[1].draining.Store(true) }, &Request{Now: time.Now().UnixNano(), Cookie: []byte("b1")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, b := range bs {
				b.healthy.Store(true)
				b.draining.Store(false)
				b.ejectedUntil.Store(0)
			}
			tt.setup()
			got := lb.defaultGroup.selector.Select(pool, tt.req)
			if tt.want != nil && got != tt.want {
				t.Fatalf("picked %v, want %s", got, tt.want.id)
			}
			if tt.want == nil && (got == nil || got == bs[1]) {
				t.Fatalf("picked %v, want another backend than b1", got)
			}
		})
	}
}

func TestStickyCookieIsHMACOfID(t *testing.T) {
	mk := func(secret string) string {
		lb, err := New(Config{Policy: PolicySticky, Secret: []byte(secret), Logger: testLogger(t),
			Backends: []BackendConfig{{ID: "r1", URL: "http://127.0.0.1:9"}}})
		if err != nil {
			t.Fatal(err)
		}
		return lb.defaultGroup.pool.Load().backends[0].stickyValue
	}
	a, b, c := mk("one"), mk("one"), mk("two")
	if a != b {
		t.Errorf("same secret gave %q and %q", a, b)
	}
	if a == c {
		t.Errorf("different secrets gave the same value %q", a)
	}
	for _, leak := range []string{"r1", "127.0.0.1", "9"} {
		if a == leak {
			t.Errorf("cookie value %q leaks the backend", a)
		}
	}
}
