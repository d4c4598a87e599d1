package catalog

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/internal/httpapi"
)

// Config configures a Server.
type Config struct {
	// ID names this replica in X-Served-By; required.
	ID string
	// Source is where products are read; required (a *DB in production).
	Source Source
	// Limiter is the capacity model of the API; nil means unlimited.
	Limiter *httpapi.Limiter
	// Registry receives the statelab_catalog_* metrics; nil means a fresh one.
	Registry *prometheus.Registry
	// Ready reports whether the database answers, for /readyz; nil means
	// always ready.
	Ready func(ctx context.Context) error
	// Logger receives database failures; default slog.Default().
	Logger *slog.Logger
}

// Server is the catalog service's HTTP handler:
//
//	GET /api/catalog[?q=words&offset=N&limit=N]  → 200 Page (400 bad_query, query_too_long)
//	GET /api/catalog/{sku}                       → 200 Product (404 unknown_sku)
//
// plus /healthz, /readyz and /metrics. It keeps nothing between requests.
type Server struct {
	*httpapi.Service
	src Source
	log *slog.Logger
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("catalog: Config.Source is required")
	}
	svc, err := httpapi.NewService(httpapi.ServiceConfig{ID: cfg.ID, Name: "catalog", Limiter: cfg.Limiter, Registry: cfg.Registry, Ready: cfg.Ready})
	if err != nil {
		return nil, err
	}
	s := &Server{Service: svc, src: cfg.Source, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.Handle("/api/catalog", "catalog", map[string]http.HandlerFunc{http.MethodGet: s.handlePage})
	s.Handle("/api/catalog/{sku}", "product", map[string]http.HandlerFunc{http.MethodGet: s.handleProduct})
	return s, nil
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.src.Page(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	httpapi.WriteJSON(w, http.StatusOK, page)
}

func (s *Server) handleProduct(w http.ResponseWriter, r *http.Request) {
	p, err := s.src.Product(r.Context(), r.PathValue("sku"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	httpapi.WriteJSON(w, http.StatusOK, p)
}

// fail answers the error err maps to.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, s.classify(r, err))
}

func (s *Server) classify(r *http.Request, err error) *httpapi.Error {
	var ae *httpapi.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrUnknownSKU):
		return &httpapi.Error{Status: http.StatusNotFound, Code: "unknown_sku", Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "canceled", Message: "request canceled"}
	default:
		s.log.Warn("catalog: database unavailable", "path", r.URL.Path, "err", err)
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "database_unavailable", Message: "the catalog database is unavailable; try again shortly"}
	}
}
