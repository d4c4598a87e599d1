package play

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/webguard"
)

//go:embed web
var webFS embed.FS

// errBadRequest marks a control request that is malformed.
var errBadRequest = errors.New("bad request")

// maxControlBody bounds the JSON body of a control request.
const maxControlBody = 4 << 10

// maxObservedBody bounds the request and response bodies the shop proxy
// reads to follow your cart; bigger ones pass through unobserved.
const maxObservedBody = 1 << 20

// Handler returns the playground's HTTP handler (routes in the package
// documentation).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	assets, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.Handle("GET /play/assets/", http.StripPrefix("/play/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /play/events", s.handleEvents)
	mux.HandleFunc("GET /play/api/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("GET /play/api/log", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"events": s.Events()})
	})
	mux.HandleFunc("POST /play/api/strategy", s.handleStrategy)
	mux.HandleFunc("POST /play/api/replicas", s.handleAdd)
	mux.HandleFunc("POST /play/api/replicas/{id}/{act}", s.handleReplica)
	mux.HandleFunc("DELETE /play/api/replicas/{id}", s.handleReplica)
	mux.HandleFunc("POST /play/api/store/{act}", s.handleStore)
	mux.HandleFunc("POST /play/api/shoppers", s.handleShoppers)
	if s.game != nil {
		s.game.routes(mux)
	}
	mux.HandleFunc("/play/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such playground route: "+r.Method+" "+r.URL.Path)
	})
	mux.Handle("GET /shop", http.RedirectHandler("/shop/", http.StatusFound))
	mux.Handle("/shop/", http.StripPrefix("/shop", http.HandlerFunc(s.serveShop)))
	// The shop page may use absolute paths (/api/cart, /static/…): whatever
	// is not the playground's goes to the balancer too.
	mux.HandleFunc("/", s.serveShop)
	// The controls kill processes: another site open in the same browser
	// must not be able to post to them (CSRF), nor a page whose name was
	// rebound to this machine (DNS rebinding: only Host tells). Same-origin
	// pages and non-browser clients such as curl pass.
	return localHostOnly(securityHeaders(http.NewCrossOriginProtection().Handler(mux)))
}

// localHostOnly refuses requests whose Host is not an IP literal or
// localhost: a rebound DNS name makes an attacker's page same-origin with
// the playground.
func localHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !webguard.LocalHost(r.Host) {
			writeError(w, http.StatusForbidden, "bad_host", "open the playground by IP address or localhost (DNS rebinding protection)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// securityHeaders forbids every origin but this one: no CDN, no inline
// script, no framing by other sites.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/play/") {
			w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-src 'self'; frame-ancestors 'self'; img-src 'self' data:")
			w.Header().Set("X-Content-Type-Options", "nosniff")
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// handleEvents streams "state" and "log" Server-Sent Events until the
// client goes away or the server closes.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// Subscribe before reading the backlog so no event falls between them;
	// the page drops duplicates by sequence number.
	ch := s.hub.subscribe()
	defer s.hub.unsubscribe(ch)
	var buf bytes.Buffer
	buf.WriteString("retry: 2000\n\n")
	if msg, err := encodeSSE("state", s.State()); err == nil {
		buf.Write(msg)
	}
	for _, e := range s.Events() {
		if msg, err := encodeSSE("log", e); err == nil {
			buf.Write(msg)
		}
	}
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(buf.Bytes()) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-keepalive.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		case msg, ok := <-ch:
			if !ok || !write(msg) {
				return
			}
		}
	}
}

func (s *Server) handleStrategy(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Strategy string `json:"strategy"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if err := s.SetStrategy(in.Strategy); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.State())
}

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	id, err := s.AddReplica()
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *Server) handleReplica(w http.ResponseWriter, r *http.Request) {
	act := r.PathValue("act")
	if r.Method == http.MethodDelete {
		act = "remove"
	}
	if act == "remove" && r.Method != http.MethodDelete {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "remove a replica with DELETE /play/api/replicas/{id}")
		return
	}
	if err := s.ReplicaAction(act, r.PathValue("id")); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.State())
}

func (s *Server) handleStore(w http.ResponseWriter, r *http.Request) {
	if err := s.StoreAction(r.PathValue("act")); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.State())
}

func (s *Server) handleShoppers(w http.ResponseWriter, r *http.Request) {
	var in struct {
		On   *bool    `json:"on"`
		Rate *float64 `json:"rate"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	st := s.State()
	on, rate := st.Shoppers.On, st.Shoppers.Rate
	if in.On != nil {
		on = *in.On
	}
	if in.Rate != nil {
		rate = *in.Rate
	}
	if err := s.SetShoppers(on, rate); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.State())
}

// readJSON decodes a small JSON control body into v, or writes a 400 and
// returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", "bad JSON body: "+err.Error())
		return false
	}
	return true
}

// writeControlError maps a control's error to its status.
func writeControlError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, strategy.ErrUnknown):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, cluster.ErrUnknownReplica):
		writeError(w, http.StatusNotFound, "unknown_replica", err.Error())
	case errors.Is(err, ErrBusy):
		writeError(w, http.StatusConflict, "busy", err.Error())
	case errors.Is(err, cluster.ErrNoStore):
		writeError(w, http.StatusConflict, "no_store", err.Error())
	case errors.Is(err, ErrNoShoppers):
		writeError(w, http.StatusConflict, "no_shoppers", err.Error())
	case errors.Is(err, ErrNoCluster):
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "no_cluster", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "action_failed", err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: msg}})
}

// proxyInfo travels with a proxied request to the response hook.
type proxyInfo struct {
	target  *url.URL
	op      cartOp
	observe bool
}

type proxyInfoKey struct{}

// serveShop proxies a request of the shop pane to the running balancer,
// noting what it does to your cart.
func (s *Server) serveShop(w http.ResponseWriter, r *http.Request) {
	c := s.current()
	if c == nil {
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "no_cluster", "the cluster is being rebuilt; try again in a moment")
		return
	}
	target, err := url.Parse(c.BalancerURL())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("bad balancer URL: %v", err))
		return
	}
	info := &proxyInfo{target: target}
	var body []byte
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body, err = io.ReadAll(io.LimitReader(r.Body, maxObservedBody+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_body", "reading the request body: "+err.Error())
			return
		}
		rest := r.Body
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), rest), rest}
	}
	if len(body) <= maxObservedBody {
		info.op, info.observe = parseCartOp(r.Method, r.URL.Path, body)
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyInfoKey{}, info)))
}

// newProxy returns the reverse proxy of the shop pane.
func (s *Server) newProxy() http.Handler {
	return &httputil.ReverseProxy{
		Transport: s.tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			info, _ := pr.In.Context().Value(proxyInfoKey{}).(*proxyInfo)
			if info != nil {
				pr.SetURL(info.target)
			}
			pr.SetXForwarded()
			// Let the transport negotiate compression, so that it
			// decompresses and the observer can read the cart.
			pr.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: func(resp *http.Response) error {
			allowSameOriginFraming(resp.Header)
			info, _ := resp.Request.Context().Value(proxyInfoKey{}).(*proxyInfo)
			if info == nil || !info.observe {
				return nil
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxObservedBody))
			if err != nil {
				return fmt.Errorf("play: read response: %w", err)
			}
			rest := resp.Body
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), rest), rest}
			s.obs.Observe(info.op, resp.StatusCode, resp.Header.Get("X-Served-By"), b)
			s.publishState()
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("play: shop proxy", "path", r.URL.Path, "err", err)
			if info, _ := r.Context().Value(proxyInfoKey{}).(*proxyInfo); info != nil && info.observe {
				s.obs.Observe(info.op, http.StatusBadGateway, "", nil)
				s.publishState()
			}
			writeError(w, http.StatusBadGateway, "bad_gateway", "the balancer did not answer: "+err.Error())
		},
	}
}

// allowSameOriginFraming lets the dashboard show the shop page in its
// pane. The shop forbids framing (frame-ancestors 'none'), rightly for a
// shop on its own; through the playground it is framed by its own origin
// only, so the proxy relaxes that one directive to 'self' and leaves the
// rest of the policy as the shop set it.
func allowSameOriginFraming(h http.Header) {
	if csp := h.Values("Content-Security-Policy"); len(csp) > 0 {
		h.Del("Content-Security-Policy")
		for _, policy := range csp {
			parts := strings.Split(policy, ";")
			for i, p := range parts {
				if f := strings.Fields(p); len(f) > 0 && strings.EqualFold(f[0], "frame-ancestors") {
					parts[i] = " frame-ancestors 'self'"
					if i == 0 {
						parts[i] = strings.TrimSpace(parts[i])
					}
				}
			}
			h.Add("Content-Security-Policy", strings.Join(parts, ";"))
		}
	}
	if h.Get("X-Frame-Options") != "" {
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
}
