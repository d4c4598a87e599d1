package balancer

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Selector picks the backend for one attempt of a request. Select returns
// nil when no backend qualifies. Implementations must be safe for concurrent
// use and must only return backends for which req.Eligible (a new client) or
// req.Reachable (a client already pinned to it) is true.
type Selector interface {
	Select(pool *Pool, req *Request) *Backend
}

var (
	_ Selector = (*RoundRobinSelection)(nil)
	_ Selector = (*LeastRequestSelection)(nil)
	_ Selector = (*StickySelection)(nil)
	_ Selector = (*HashSelection)(nil)
)

// Pool is an immutable snapshot of the balancer's backends. Adding or
// removing a backend replaces the pool; a request keeps the pool it started
// with.
type Pool struct {
	backends []*Backend
	byID     map[string]*Backend
	byCookie map[string]*Backend
}

func newPool(bs []*Backend) *Pool {
	p := &Pool{backends: bs, byID: make(map[string]*Backend, len(bs)), byCookie: make(map[string]*Backend, len(bs))}
	for _, b := range bs {
		p.byID[b.id] = b
		p.byCookie[b.stickyValue] = b
	}
	return p
}

// Backends returns every backend of the pool, including unavailable and
// draining ones, in the order they were added. The caller must not modify it.
func (p *Pool) Backends() []*Backend { return p.backends }

// ByStickyValue returns the backend whose sticky cookie value is v, or nil.
func (p *Pool) ByStickyValue(v []byte) *Backend { return p.byCookie[string(v)] }

// panicking reports whether fewer than threshold of the non-draining
// backends are available at now.
func (p *Pool) panicking(now int64, threshold float64) bool {
	if threshold <= 0 {
		return false
	}
	total, avail := 0, 0
	for _, b := range p.backends {
		if b.draining.Load() {
			continue
		}
		total++
		if b.Available(now) {
			avail++
		}
	}
	return total > 0 && float64(avail) < threshold*float64(total)
}

// Request is what a Selector knows about the request it places.
type Request struct {
	// Cookie is the value of the sticky cookie the client sent, or nil.
	Cookie []byte

	// HashKey is the key the hash policy hashes (Config.HashKey: a cookie,
	// a header or a path segment), or the client address when there is
	// none.
	HashKey []byte

	// Now is the time of the attempt in unix nanoseconds.
	Now int64

	// Panic is true when too few backends are available and health must be
	// ignored (see Config.PanicThreshold).
	Panic bool

	group     *poolGroup // the pool the request was routed to
	retrySlot bool       // holds a retry-budget slot (retry.go)
	tried     []*Backend
	triedBuf  [4]*Backend

	body cappedBody // the client's streamed body, if any (body.go)
}

// Tried reports whether b already had an attempt of this request.
func (r *Request) Tried(b *Backend) bool {
	for _, t := range r.tried {
		if t == b {
			return true
		}
	}
	return false
}

func (r *Request) markTried(b *Backend) {
	if r.tried == nil {
		r.tried = r.triedBuf[:0]
	}
	r.tried = append(r.tried, b)
}

// Eligible reports whether b may take a new client: not draining, not tried
// by this request, available (or the balancer is in panic mode), and below
// its connection limit (Config.BackendMaxConn).
func (r *Request) Eligible(b *Backend) bool {
	return !b.draining.Load() && !r.Tried(b) && (r.Panic || b.Available(r.Now)) && b.hasRoom()
}

// Reachable reports whether b may take a request from a client already
// pinned to it: like Eligible, but a draining backend qualifies, and so does
// one at its connection limit (the request then queues for it).
func (r *Request) Reachable(b *Backend) bool {
	return !r.Tried(b) && (r.Panic || b.Available(r.Now))
}

// RoundRobinSelection spreads requests over the eligible backends in smooth
// weighted round robin (as nginx does): over any window of sum(weights)
// picks each backend gets exactly its weight, interleaved.
type RoundRobinSelection struct {
	mu sync.Mutex
}

// Select implements Selector.
func (s *RoundRobinSelection) Select(pool *Pool, req *Request) *Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *Backend
	var total int64
	for _, b := range pool.backends {
		if !req.Eligible(b) {
			continue
		}
		w := b.effectiveMilli(req.Now)
		b.rrCurrent += w
		total += w
		if best == nil || b.rrCurrent > best.rrCurrent {
			best = b
		}
	}
	if best != nil {
		best.rrCurrent -= total
	}
	return best
}

// LeastRequestSelection samples two distinct eligible backends at random and
// picks the one with fewer in-flight requests per unit of weight (the power
// of two choices).
type LeastRequestSelection struct{}

// Select implements Selector.
func (LeastRequestSelection) Select(pool *Pool, req *Request) *Backend {
	var buf [16]*Backend
	el := buf[:0]
	for _, b := range pool.backends {
		if req.Eligible(b) {
			el = append(el, b)
		}
	}
	switch len(el) {
	case 0:
		return nil
	case 1:
		return el[0]
	}
	i := rand.IntN(len(el))
	j := rand.IntN(len(el) - 1)
	if j >= i {
		j++
	}
	a, b := el[i], el[j]
	// (a.inflight+1)/a.weight <= (b.inflight+1)/b.weight without division;
	// the +1 lets a weight (a slow start's, say) count between idle
	// backends too.
	wa, wb := a.effectiveMilli(req.Now), b.effectiveMilli(req.Now)
	if (a.inflight.Load()+1)*wb <= (b.inflight.Load()+1)*wa {
		return a
	}
	return b
}

// StickySelection pins clients to backends. A request whose cookie names a
// reachable backend goes there (even if it is draining); any other request
// is placed in round robin, and the proxy rewrites the client's cookie to
// name the chosen backend.
type StickySelection struct {
	RoundRobinSelection
}

// Select implements Selector.
func (s *StickySelection) Select(pool *Pool, req *Request) *Backend {
	if len(req.Cookie) > 0 {
		if b := pool.ByStickyValue(req.Cookie); b != nil && req.Reachable(b) {
			return b
		}
	}
	return s.RoundRobinSelection.Select(pool, req)
}

// HashSelection maps Request.HashKey onto a consistent-hash ring (100
// points per unit of weight) and walks it from the key's point to the first
// eligible backend whose in-flight count is below
// ceil(Factor × (total in-flight + 1) / eligible backends): consistent
// hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016;
// HAProxy's hash-balance-factor). Under concurrency the bound is checked
// without a lock, so it can be overshot by the number of racing requests.
type HashSelection struct {
	// Factor is the load bound, at least 1. Zero means 1.25.
	Factor float64

	ring atomic.Pointer[hashRing]
	mu   sync.Mutex
}

type hashRing struct {
	pool   *Pool
	points []ringPoint
}

type ringPoint struct {
	hash uint64
	b    *Backend
}

const ringPointsPerWeight = 100

func (s *HashSelection) ringFor(pool *Pool) *hashRing {
	if r := s.ring.Load(); r != nil && r.pool == pool {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.ring.Load(); r != nil && r.pool == pool {
		return r
	}
	r := &hashRing{pool: pool}
	var key []byte
	for _, b := range pool.backends {
		for i := 0; i < b.weight*ringPointsPerWeight; i++ {
			key = append(append(key[:0], b.id...), byte(i), byte(i>>8), byte(i>>16))
			r.points = append(r.points, ringPoint{hash: hashKey(key), b: b})
		}
	}
	slices.SortFunc(r.points, func(x, y ringPoint) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return 0
	})
	s.ring.Store(r)
	return r
}

// Select implements Selector.
func (s *HashSelection) Select(pool *Pool, req *Request) *Backend {
	ring := s.ringFor(pool)
	if len(ring.points) == 0 {
		return nil
	}
	var n, total int64
	for _, b := range pool.backends {
		if req.Eligible(b) {
			n++
			total += b.inflight.Load()
		}
	}
	if n == 0 {
		return nil
	}
	factor := s.Factor
	if factor == 0 {
		factor = 1.25
	}
	limit := int64(math.Ceil(factor * float64(total+1) / float64(n)))
	h := hashKey(req.HashKey)
	i, _ := slices.BinarySearchFunc(ring.points, h, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	for k := 0; k < len(ring.points); k++ {
		p := ring.points[(i+k)%len(ring.points)]
		if p.b.inflight.Load() < limit && req.Eligible(p.b) {
			return p.b
		}
	}
	return nil
}

// hashKey is 64-bit FNV-1a followed by a murmur3 finaliser, so that similar
// keys spread over the ring.
func hashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9f34ca4fe53
	h ^= h >> 33
	return h
}
