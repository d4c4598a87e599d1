package balancer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/statelab/statelab/internal/webguard"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler returns the runtime admin API:
//
//	GET    /admin/pools          → 200, JSON array of PoolStatus (policy, routes, backends)
//	GET    /admin/backends       → 200, JSON array of BackendStatus (?pool=NAME: one
//	                               pool's; 404 unknown pool)
//	POST   /admin/backends       {"url","id"?,"weight"?,"pool"?} → 201 with the BackendStatus;
//	                               400 bad JSON, URL or unknown pool, 409 duplicate id
//	                               (in any pool) or Config.MaxBackends reached
//	GET    /admin/backends/{id}  → 200 with the BackendStatus, 404 unknown id
//	DELETE /admin/backends/{id}  → 202 with the (draining) BackendStatus; the
//	                               backend is removed once drained; 404 unknown id
//	GET    /metrics              → Prometheus text format
//	GET    /healthz              → 200 {"status":"ok"}: the balancer runs (for
//	                               container health checks; needs no token)
//	GET    /debug/pprof/...      → the Go runtime's profiles (net/http/pprof):
//	                               where the process spends CPU and memory
//
// Errors are JSON {"error":{"code","message"}}. Every request first passes
// guardAdmin: the bearer token if Config.AdminToken is set (401 without
// it), else a Host that is an IP literal or localhost (403 bad_host: DNS
// rebinding); cross-site browser requests are refused (403 cross_origin)
// and POST bodies must be application/json (415). Without a token, serve
// it on a loopback address only.
func (lb *Balancer) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/backends", lb.adminList)
	mux.HandleFunc("GET /admin/pools", lb.adminPools)
	mux.HandleFunc("POST /admin/backends", lb.adminAdd)
	mux.HandleFunc("GET /admin/backends/{id}", lb.adminGet)
	mux.HandleFunc("DELETE /admin/backends/{id}", lb.adminRemove)
	mux.Handle("GET /metrics", promhttp.HandlerFor(lb.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	notAllowed := func(allow string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			adminError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
		}
	}
	mux.HandleFunc("/admin/backends", notAllowed("GET, POST"))
	mux.HandleFunc("/admin/pools", notAllowed("GET"))
	mux.HandleFunc("/admin/backends/{id}", notAllowed("GET, DELETE"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "not_found", "no such admin endpoint")
	})
	return lb.guardAdmin(mux)
}

// guardAdmin refuses admin requests that a web page could have made on the
// operator's behalf, and, with a token configured, any request without it.
func (lb *Balancer) guardAdmin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusForbidden, "cross_origin", "cross-site requests to the admin API are refused")
	}))
	inner := cop.Handler(next)
	var want [sha256.Size]byte
	if lb.cfg.AdminToken != "" {
		want = sha256.Sum256([]byte(lb.cfg.AdminToken))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lb.cfg.AdminToken != "" && !(r.URL.Path == "/healthz" && r.Method == http.MethodGet) {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			got := sha256.Sum256([]byte(strings.TrimSpace(token)))
			if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="statelab lb admin"`)
				adminError(w, http.StatusUnauthorized, "unauthorized", "a valid Authorization: Bearer token is required")
				return
			}
		} else if lb.cfg.AdminToken == "" && !webguard.LocalHost(r.Host) {
			adminError(w, http.StatusForbidden, "bad_host", "the Host must be an IP address or localhost (DNS rebinding protection); configure an admin token to use a name")
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				adminError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the request body must be sent as Content-Type: application/json")
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
}

func (lb *Balancer) adminList(w http.ResponseWriter, r *http.Request) {
	pool := r.URL.Query().Get("pool")
	if pool == "" {
		writeJSON(w, http.StatusOK, lb.Backends())
		return
	}
	g := lb.groups[pool]
	if g == nil {
		adminError(w, http.StatusNotFound, "unknown_pool", "no pool named "+pool)
		return
	}
	out := []BackendStatus{}
	for _, b := range g.pool.Load().backends {
		out = append(out, b.Status())
	}
	writeJSON(w, http.StatusOK, out)
}

func (lb *Balancer) adminPools(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, lb.Pools())
}

func (lb *Balancer) adminGet(w http.ResponseWriter, r *http.Request) {
	st, err := lb.Backend(r.PathValue("id"))
	if err != nil {
		adminError(w, http.StatusNotFound, "unknown_backend", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (lb *Balancer) adminAdd(w http.ResponseWriter, r *http.Request) {
	var bc BackendConfig
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bc); err != nil {
		adminError(w, http.StatusBadRequest, "bad_json", "request body must be a JSON object {\"url\",\"id\",\"weight\"}: "+err.Error())
		return
	}
	if dec.More() {
		adminError(w, http.StatusBadRequest, "bad_json", "request body must hold one JSON object")
		return
	}
	if strings.TrimSpace(bc.URL) == "" {
		adminError(w, http.StatusBadRequest, "invalid_backend", "url is required")
		return
	}
	st, err := lb.AddBackend(bc)
	switch {
	case errors.Is(err, ErrUnknownPool):
		adminError(w, http.StatusBadRequest, "unknown_pool", err.Error())
	case errors.Is(err, ErrDuplicateBackend):
		adminError(w, http.StatusConflict, "duplicate_backend", err.Error())
	case errors.Is(err, ErrTooManyBackends):
		adminError(w, http.StatusConflict, "too_many_backends", err.Error())
	case errors.Is(err, ErrInvalidBackend):
		adminError(w, http.StatusBadRequest, "invalid_backend", err.Error())
	case errors.Is(err, ErrClosed):
		adminError(w, http.StatusServiceUnavailable, "closed", err.Error())
	case err != nil:
		adminError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		writeJSON(w, http.StatusCreated, st)
	}
}

func (lb *Balancer) adminRemove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, err := lb.DrainBackend(id)
	if err != nil {
		adminError(w, http.StatusNotFound, "unknown_backend", err.Error())
		return
	}
	// The drain outlives the admin request; Close cuts it short. Adding to
	// the WaitGroup under lb.mu keeps it from racing with Close's Wait.
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		adminError(w, http.StatusServiceUnavailable, "closed", ErrClosed.Error())
		return
	}
	lb.wg.Add(1)
	lb.mu.Unlock()
	go func() {
		defer lb.wg.Done()
		_ = lb.RemoveBackend(context.Background(), id)
	}()
	writeJSON(w, http.StatusAccepted, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// adminError writes the JSON error body of the admin API.
func adminError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: msg}})
}
