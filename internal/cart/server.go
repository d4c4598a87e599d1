package cart

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/internal/pricing"
	"github.com/statelab/statelab/session"
)

// DefaultStoreTimeout is the deadline of a request's session store work when
// Config.StoreTimeout is zero.
const DefaultStoreTimeout = 5 * time.Second

// DefaultDependencyTimeout is the deadline of a request's calls to the
// catalog and pricing services when Config.DependencyTimeout is zero.
const DefaultDependencyTimeout = 5 * time.Second

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// ID names this replica in X-Served-By, served_by and /api/replica;
	// required.
	ID string

	// StoreName is the kind of store the sessions live in ("memory",
	// "redis", …), reported by /api/replica and in metrics.
	StoreName string

	// Manager keeps the carts; required. The Server wraps its cart routes
	// with Manager.Handler itself.
	Manager *session.Manager

	// Store is the store behind Manager, if any (nil for sealed cookies).
	// The Server never reads sessions through it: it only uses its optional
	// powers, session.Pinger for /readyz and session.Counter for
	// /api/replica and the sessions gauge.
	Store session.Store

	// Catalog is the reference copy of the products the cart shows names
	// and unit prices from; nil means catalog.New(). The catalog service's
	// database is seeded from the same generator.
	Catalog *catalog.Catalog

	// Products is where GET /api/catalog reads and where an added SKU is
	// checked; nil means Catalog in process (the monolith). A
	// *catalog.Client makes the cart call the catalog service.
	Products catalog.Source

	// Pricer prices POST /api/quote and checkout; nil means pricing.Local
	// on Catalog (the monolith). A *pricing.Client makes the cart call the
	// pricing service.
	Pricer pricing.Pricer

	// DependencyTimeout bounds one request's calls to Products and Pricer
	// (retries included); default DefaultDependencyTimeout.
	DependencyTimeout time.Duration

	// Limiter is the capacity model applied to the API and the shop page
	// (not to /healthz, /readyz and /metrics); nil means unlimited.
	Limiter *httpapi.Limiter

	// Registry is where the Server registers its metrics and what /metrics
	// serves; nil means a fresh registry. Register the session Manager's
	// and the Go runtime's collectors on the same one to export them too.
	Registry *prometheus.Registry

	// StoreTimeout is the deadline for a request's session work (load or
	// compare-and-swap update, retries included); default
	// DefaultStoreTimeout. Past it the request is answered 503.
	StoreTimeout time.Duration

	// Logger receives the Server's log lines; default slog.Default().
	Logger *slog.Logger

	// Ledger, when not nil, refuses a second checkout of the same cart
	// (409 already_checked_out, and the stale cart is emptied): the remedy
	// for replayed sealed cookies. Nil: carts held by the client can be
	// checked out again by sending an old cookie (server-side stores are
	// not affected: the checkout emptied the one copy).
	Ledger *Ledger
}

// Server is the cart service's HTTP handler: the API of docs/cart.md, the
// shop page, and the operational endpoints (/healthz, /readyz, /metrics). Every
// response carries X-Served-By. A Server is safe for concurrent use.
type Server struct {
	id           string
	storeName    string
	mgr          *session.Manager
	store        session.Store
	catalog      *catalog.Catalog
	products     catalog.Source
	pricer       pricing.Pricer
	depTimeout   time.Duration
	remote       bool // Products or Pricer is another service
	limiter      *httpapi.Limiter
	registry     *prometheus.Registry
	storeTimeout time.Duration
	log          *slog.Logger
	ledger       *Ledger
	metrics      *metrics
	handler      http.Handler

	catalogJSON []byte       // the whole catalog response, encoded once
	inflight    atomic.Int64 // shop requests (API and page) being served
	draining    atomic.Bool  // set by Drain: /readyz answers 503
}

// NewServer returns a Server for cfg, or an error naming what is missing.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.ID == "":
		return nil, errors.New("cart: Config.ID is required")
	case cfg.Manager == nil:
		return nil, errors.New("cart: Config.Manager is required")
	case cfg.StoreTimeout < 0:
		return nil, errors.New("cart: negative Config.StoreTimeout")
	}
	s := &Server{
		id:           cfg.ID,
		storeName:    cfg.StoreName,
		mgr:          cfg.Manager,
		store:        cfg.Store,
		catalog:      cfg.Catalog,
		products:     cfg.Products,
		pricer:       cfg.Pricer,
		depTimeout:   cmp.Or(cfg.DependencyTimeout, DefaultDependencyTimeout),
		limiter:      cfg.Limiter,
		registry:     cfg.Registry,
		storeTimeout: cmp.Or(cfg.StoreTimeout, DefaultStoreTimeout),
		log:          cfg.Logger,
		ledger:       cfg.Ledger,
	}
	if s.catalog == nil {
		s.catalog = catalog.New()
	}
	s.remote = s.products != nil || s.pricer != nil
	if s.products == nil {
		s.products = s.catalog
	}
	if s.pricer == nil {
		s.pricer = pricing.Local{Catalog: s.catalog}
	}
	if s.limiter == nil {
		s.limiter = httpapi.NewLimiter(0, 0, 0)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if s.metrics, err = newMetrics(s.registry, s); err != nil {
		return nil, err
	}
	if s.catalogJSON, err = json.Marshal(catalog.Page{Products: s.catalog.Products(), Total: s.catalog.Len()}); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the cart service.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes /readyz answer 503 from now on, so that a balancer stops
// sending new requests before the process shuts down. Requests still
// arriving are served normally.
func (s *Server) Drain() { s.draining.Store(true) }

// routes builds the Server's handler tree. Routing is by path only; each
// route dispatches on the method itself so that a wrong method gets a JSON
// 405 with Allow, and the catch-all gives a JSON 404.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(name string, methods map[string]http.HandlerFunc) http.Handler {
		return s.instrument(name, true, s.limiter.Wrap(byMethod(methods)))
	}
	cart := func(name string, methods map[string]http.HandlerFunc) http.Handler {
		return s.instrument(name, true, s.limiter.Wrap(s.mgr.Handler(byMethod(methods))))
	}
	ops := func(name string, methods map[string]http.HandlerFunc) http.Handler {
		return s.instrument(name, false, byMethod(methods))
	}
	mux.Handle("/api/catalog", api("catalog", map[string]http.HandlerFunc{http.MethodGet: s.handleCatalog}))
	mux.Handle("/api/quote", api("quote", map[string]http.HandlerFunc{http.MethodPost: s.handleQuote}))
	mux.Handle("/api/cart", cart("cart", map[string]http.HandlerFunc{http.MethodGet: s.handleCart}))
	mux.Handle("/api/cart/items", cart("cart_add", map[string]http.HandlerFunc{http.MethodPost: s.handleAdd}))
	mux.Handle("/api/cart/items/{sku}", cart("cart_line", map[string]http.HandlerFunc{
		http.MethodPatch:  s.handleSet,
		http.MethodDelete: s.handleRemove,
	}))
	mux.Handle("/api/cart/checkout", cart("checkout", map[string]http.HandlerFunc{http.MethodPost: s.handleCheckout}))
	mux.Handle("/api/replica", ops("replica", map[string]http.HandlerFunc{http.MethodGet: s.handleReplica}))
	mux.Handle("/healthz", ops("healthz", map[string]http.HandlerFunc{http.MethodGet: s.handleHealthz}))
	mux.Handle("/readyz", ops("readyz", map[string]http.HandlerFunc{http.MethodGet: s.handleReadyz}))
	mux.Handle("/metrics", ops("metrics", map[string]http.HandlerFunc{
		http.MethodGet: promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP,
	}))
	mux.Handle("/static/", api("static", map[string]http.HandlerFunc{http.MethodGet: staticHandler().ServeHTTP}))
	page := api("page", map[string]http.HandlerFunc{http.MethodGet: servePage})
	notFound := s.instrument("not_found", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such route: " + r.URL.Path})
	}))
	mux.Handle("/{$}", page)
	mux.Handle("/", notFound)
	return s.servedBy(mux)
}

// servedBy sets X-Served-By on every response, before any handler (or the
// mux's own redirects) can write the header.
func (s *Server) servedBy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", s.id)
		next.ServeHTTP(w, r)
	})
}

// instrument counts route's requests by status code and observes their
// latency; with inflight it also counts them in the in-flight gauge (the
// shop's work, as opposed to probes and scrapes).
func (s *Server) instrument(route string, inflight bool, next http.Handler) http.Handler {
	var count *atomic.Int64
	if inflight {
		count = &s.inflight
	}
	return httpapi.Instrument(route, s.metrics.requests, s.metrics.latency, count, next)
}

// byMethod dispatches on the request method (see httpapi.ByMethod).
func byMethod(methods map[string]http.HandlerFunc) http.HandlerFunc { return httpapi.ByMethod(methods) }

// fail answers r with the API error err maps to, counting store failures
// and logging what is not the client's fault.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	e, storeFailure := classify(err)
	switch {
	case storeFailure:
		s.metrics.storeErrors.WithLabelValues(op).Inc()
		s.log.Warn("cart: session store unavailable", "op", op, "path", r.URL.Path, "err", err)
	case e.Code == "dependency_unavailable":
		s.metrics.depErrors.WithLabelValues(op).Inc()
		s.log.Warn("cart: dependency unavailable", "op", op, "path", r.URL.Path, "err", err)
	case e.Status >= 500 && e.Code != "canceled":
		s.log.Error("cart: request failed", "op", op, "path", r.URL.Path, "err", err)
	}
	writeError(w, e)
}

// handleCatalog serves GET /api/catalog: the whole catalog, or with
// ?q=words&offset=N&limit=N one page of the matching products (see
// catalog.ParseQuery). It is stateless: it reads no session and any
// replica gives the same answer. In the monolith the whole catalog is one
// precomputed answer; otherwise the page comes from the catalog service.
func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if !s.remote && !v.Has("q") && !v.Has("offset") && !v.Has("limit") {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(s.catalogJSON)
		return
	}
	q, err := catalog.ParseQuery(v)
	if err != nil {
		s.fail(w, r, "catalog", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.depTimeout)
	defer cancel()
	page, err := s.products.Page(ctx, q)
	if err != nil {
		s.fail(w, r, "catalog", err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, page)
}

// handleQuote serves POST /api/quote: it prices the lines in the request
// body (subtotal, tax, shipping, total). It is stateless: it reads no
// session and writes nothing, so any replica gives the same answer.
func (s *Server) handleQuote(w http.ResponseWriter, r *http.Request) {
	var req pricing.Request
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, r, "quote", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.depTimeout)
	defer cancel()
	q, err := s.pricer.Quote(ctx, req.Items)
	if err != nil {
		s.fail(w, r, "quote", err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

// validate checks a SKU against the catalog (the catalog service, when
// there is one) and a quantity against minQty..MaxQty, before any session
// work.
func (s *Server) validate(ctx context.Context, sku string, qty, minQty int) error {
	ctx, cancel := context.WithTimeout(ctx, s.depTimeout)
	defer cancel()
	if _, err := s.products.Product(ctx, sku); err != nil {
		if errors.Is(err, catalog.ErrUnknownSKU) {
			return &apiError{Status: http.StatusBadRequest, Code: "unknown_sku", Message: "unknown sku " + strconv.Quote(sku)}
		}
		return err
	}
	if qty < minQty || qty > MaxQty {
		return &apiError{Status: http.StatusBadRequest, Code: "qty_out_of_range", Message: "qty " + strconv.Itoa(qty) + " is not in " + strconv.Itoa(minQty) + ".." + strconv.Itoa(MaxQty)}
	}
	return nil
}

// CartView is the body of GET /api/cart and of every successful cart change.
type CartView struct {
	// Items are the cart's lines in the order they were added.
	Items []CartItem `json:"items"`
	// TotalCents is the sum of price_cents × qty over the items, before tax
	// and shipping (POST /api/quote and checkout add those).
	TotalCents int64 `json:"total_cents"`
	// ServedBy is the replica that answered.
	ServedBy string `json:"served_by"`
}

// CartItem is one line of a CartView.
type CartItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"` // unit price
}

// view renders c for the API.
func (s *Server) view(c Cart) CartView {
	v := CartView{Items: make([]CartItem, 0, len(c.Lines)), ServedBy: s.id}
	for _, pl := range pricing.Price(s.catalog, c.Lines).Items {
		v.Items = append(v.Items, CartItem{SKU: pl.SKU, Name: pl.Name, Qty: pl.Qty, PriceCents: pl.PriceCents})
		v.TotalCents += pl.LineCents
	}
	return v
}

// decode returns the cart in session data. Data that does not decode (which
// only a bug or a hand-edited store can cause) is logged and treated as an
// empty cart, so the shopper is not stuck with a session that always fails.
func (s *Server) decode(data []byte) Cart {
	c, err := DecodeCart(data)
	if err != nil {
		s.log.Warn("cart: discarding undecodable cart", "err", err)
		return Cart{}
	}
	return c
}

// storeContext bounds a request's session work by the store timeout.
func (s *Server) storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.storeTimeout)
}

// handleCart serves GET /api/cart. It never creates a session.
func (s *Server) handleCart(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.storeContext(r)
	defer cancel()
	data, err := s.mgr.Load(ctx)
	if err != nil {
		s.fail(w, r, "load", err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(s.decode(data)))
}

// update applies change to the request's cart through Manager.Update
// (compare-and-swap, retried on conflict) and answers with the cart as
// stored. If change fails nothing is written and the error is answered.
func (s *Server) update(w http.ResponseWriter, r *http.Request, change func(*Cart) error) {
	ctx, cancel := s.storeContext(r)
	defer cancel()
	var stored Cart
	err := s.mgr.Update(ctx, func(data []byte) ([]byte, error) {
		c := s.decode(data)
		if err := change(&c); err != nil {
			return nil, err
		}
		stored = c
		return c.Encode()
	})
	if err != nil {
		s.fail(w, r, "update", err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(stored))
}

// addRequest is the body of POST /api/cart/items.
type addRequest struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// handleAdd serves POST /api/cart/items: qty more of sku, added to its line
// if the cart has one (400 if the line would then exceed MaxQty).
func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req addRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, r, "add", err)
		return
	}
	if err := s.validate(r.Context(), req.SKU, req.Qty, MinQty); err != nil {
		s.fail(w, r, "add", err)
		return
	}
	s.update(w, r, func(c *Cart) error { return c.Add(s.catalog, req.SKU, req.Qty) })
}

// setRequest is the body of PATCH /api/cart/items/{sku}.
type setRequest struct {
	Qty *int `json:"qty"`
}

// handleSet serves PATCH /api/cart/items/{sku}: set the line's quantity (0
// removes it; 404 if the cart has no such line).
func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) {
	var req setRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, r, "set", err)
		return
	}
	if req.Qty == nil {
		s.fail(w, r, "set", &apiError{Status: http.StatusBadRequest, Code: "bad_json", Message: `request body must be {"qty": N}`})
		return
	}
	qty := *req.Qty
	if qty < 0 || qty > MaxQty {
		s.fail(w, r, "set", &apiError{Status: http.StatusBadRequest, Code: "qty_out_of_range", Message: "qty " + strconv.Itoa(qty) + " is not in 0.." + strconv.Itoa(MaxQty)})
		return
	}
	sku := r.PathValue("sku")
	s.update(w, r, func(c *Cart) error { return c.Set(sku, qty) })
}

// handleRemove serves DELETE /api/cart/items/{sku} (404 if the cart has no
// such line).
func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	s.update(w, r, func(c *Cart) error { return c.Remove(sku) })
}

// checkoutResponse is the body of POST /api/cart/checkout.
type checkoutResponse struct {
	Order
	ServedBy string `json:"served_by"`
}

// handleCheckout serves POST /api/cart/checkout: it places the order,
// empties the cart in the same compare-and-swap, and returns the order (400
// for an empty cart). With a Ledger, a cart that was already checked out
// (an old copy sent again) is emptied and answered 409.
func (s *Server) handleCheckout(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.storeContext(r)
	defer cancel()
	var order Order
	var replayed error
	orderID := newOrderID() // the same across compare-and-swap retries
	err := s.mgr.Update(ctx, func(data []byte) ([]byte, error) {
		c := s.decode(data)
		if len(c.Lines) == 0 {
			return nil, ErrEmptyCart
		}
		// Price inside the compare-and-swap, so the order is for exactly
		// the lines it empties; if pricing fails nothing is written.
		qctx, qcancel := context.WithTimeout(ctx, s.depTimeout)
		q, err := s.pricer.Quote(qctx, c.Lines)
		qcancel()
		if err != nil {
			return nil, err
		}
		if replayed, err = s.claim(ctx, c, orderID); err != nil {
			return nil, err
		}
		if replayed != nil {
			return Cart{}.Encode() // a stale copy: empty it, order nothing
		}
		o, err := c.checkout(orderID, q)
		if err != nil {
			return nil, err
		}
		order = o
		return c.Encode()
	})
	switch {
	case err != nil:
		s.fail(w, r, "checkout", err)
	case replayed != nil:
		s.metrics.replays.Inc()
		s.log.Debug("cart: replayed cart refused", "err", replayed)
		writeError(w, &apiError{Status: http.StatusConflict, Code: "already_checked_out", Message: replayed.Error() + "; the cart has been emptied"})
	default:
		s.log.Info("cart: order placed", "order_id", order.ID, "total_cents", order.TotalCents)
		writeJSON(w, http.StatusOK, checkoutResponse{Order: order, ServedBy: s.id})
	}
}

// claim records c's checkout as orderID in the Ledger, if there is one. It
// returns the ErrReplayed error when c was already checked out, and any
// other error (a ledger that is down) as err.
func (s *Server) claim(ctx context.Context, c Cart, orderID string) (replayed, err error) {
	if s.ledger == nil || c.Nonce == "" {
		return nil, nil
	}
	err = s.ledger.Claim(ctx, c.Nonce, orderID)
	if errors.Is(err, ErrReplayed) {
		return err, nil
	}
	return nil, err
}

// ReplicaStatus is the body of GET /api/replica.
type ReplicaStatus struct {
	// ID is the replica's id.
	ID string `json:"id"`
	// Store is the kind of store its sessions live in.
	Store string `json:"store"`
	// Sessions is the number of live sessions its store holds, or null when
	// the store cannot count them (sealed cookies) or failed to.
	Sessions *int `json:"sessions"`
	// Inflight is the number of shop requests (API and page) it is serving
	// now, queued ones included.
	Inflight int `json:"inflight"`
}

// handleReplica serves GET /api/replica.
func (s *Server) handleReplica(w http.ResponseWriter, r *http.Request) {
	st := ReplicaStatus{ID: s.id, Store: s.storeName, Inflight: int(s.inflight.Load())}
	if counter, ok := s.store.(session.Counter); ok {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if n, err := counter.Count(ctx); err == nil {
			st.Sessions = &n
		} else {
			s.metrics.storeErrors.WithLabelValues("count").Inc()
		}
	}
	writeJSON(w, http.StatusOK, st)
}

// handleHealthz serves GET /healthz: 200 while the process is alive.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	httpapi.SetInstance(w.Header())
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": s.id})
}

// handleReadyz serves GET /readyz: 200 when the replica can serve carts (its
// store answers a ping), 503 with Retry-After when it cannot or is
// draining for shutdown.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	httpapi.SetInstance(w.Header())
	if s.draining.Load() {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "draining", Message: "the replica is shutting down"})
		return
	}
	if p, ok := s.store.(session.Pinger); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			s.metrics.storeErrors.WithLabelValues("ping").Inc()
			writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: "the session store is unreachable: " + err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "id": s.id})
}
