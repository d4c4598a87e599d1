package pricing

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
)

// Config configures a Server.
type Config struct {
	// ID names this replica in X-Served-By; required.
	ID string
	// Catalog holds the prices; nil means the generated catalog.
	Catalog *catalog.Catalog
	// Limiter is the capacity model of the API; nil means unlimited.
	Limiter *httpapi.Limiter
	// Registry receives the statelab_pricing_* metrics; nil means a fresh one.
	Registry *prometheus.Registry
}

// Server is the pricing service's HTTP handler:
//
//	POST /api/quote {"items":[{"sku","qty"}…]} → 200 Quote
//	    (400 bad_json, unknown_sku, qty_out_of_range, too_many_items; 413 body_too_large)
//
// plus /healthz, /readyz and /metrics. It keeps nothing between requests.
type Server struct {
	*httpapi.Service
	pricer Local
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) (*Server, error) {
	svc, err := httpapi.NewService(httpapi.ServiceConfig{ID: cfg.ID, Name: "pricing", Limiter: cfg.Limiter, Registry: cfg.Registry})
	if err != nil {
		return nil, err
	}
	s := &Server{Service: svc, pricer: Local{Catalog: cfg.Catalog}}
	s.Handle("/api/quote", "quote", map[string]http.HandlerFunc{http.MethodPost: s.handleQuote})
	return s, nil
}

func (s *Server) handleQuote(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := httpapi.DecodeBody(w, r, &req); err != nil {
		httpapi.WriteError(w, err.(*httpapi.Error))
		return
	}
	q, err := s.pricer.Quote(r.Context(), req.Items)
	if err != nil {
		var ae *httpapi.Error
		if !errors.As(err, &ae) {
			ae = &httpapi.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
		}
		httpapi.WriteError(w, ae)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, q)
}

// Client is a Pricer that calls the pricing service over HTTP, with the
// timeouts, retries and client-side round robin of httpapi.Client. A quote
// changes nothing, so the POST is safe to retry.
type Client struct {
	c *httpapi.Client
}

// NewClient returns a Client for cfg (cfg.Service defaults to "pricing").
func NewClient(cfg httpapi.ClientConfig) (*Client, error) {
	if cfg.Service == "" {
		cfg.Service = "pricing"
	}
	c, err := httpapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Quote implements Pricer: POST /api/quote.
func (c *Client) Quote(ctx context.Context, lines []Line) (Quote, error) {
	if lines == nil {
		lines = []Line{}
	}
	var q Quote
	if err := c.c.Call(ctx, http.MethodPost, "/api/quote", Request{Items: lines}, &q); err != nil {
		return Quote{}, err
	}
	return q, nil
}
