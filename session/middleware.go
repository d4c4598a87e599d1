package session

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// CookieBudget is the largest serialized Set-Cookie value (name, value and
// attributes) a client-held Manager sets. RFC 6265 §6.1 asks browsers to
// keep at least 4096 bytes per cookie, measured that way; larger cookies are
// silently dropped by some browsers, so Update refuses them with ErrTooLarge.
const CookieBudget = 4096

// ctxKey finds a Manager's per-request state in a context. It holds the
// Manager so that two Managers (two cookies) can wrap one handler.
type ctxKey struct{ m *Manager }

// requestState is what a Manager knows about one request's session.
type requestState struct {
	secure bool               // the cookie gets the Secure attribute
	header func() http.Header // the response header

	mu          sync.Mutex
	raw         string // the request's session cookie value, "" if none
	id          string // server-side: the session ID in use, "" if none
	rec         Record // the session record this request last read or wrote
	cached      bool   // server-side: rec belongs to id
	opened      bool   // client-held: raw has been opened
	live        bool   // client-held: rec is a live session
	cookieSet   bool   // a Set-Cookie for the session was added
	wroteHeader bool   // the response header is on its way
}

// Handler is middleware: it reads the session cookie (if any) into the
// request context and makes Load, Update, Renew and Destroy work for that
// request. It adds `Vary: Cookie` and `Cache-Control: no-store` whenever it
// sets a cookie, so that no shared cache stores one client's session for
// another. Handler does no I/O itself: the store is read on the first Load or
// Update, so requests that ignore the session cost nothing.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &requestState{secure: m.secure(r), header: w.Header}
		if c, err := r.Cookie(m.cfg.CookieName); err == nil && c.Value != "" {
			st.raw = c.Value
			m.mode.adopt(st)
		}
		sw := &responseWriter{ResponseWriter: w, m: m, st: st}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{m}, st)))
		if !sw.done {
			// The handler wrote nothing; net/http writes the header after
			// we return, so this is the last moment to add to it.
			sw.done = true
			m.beforeHeader(st)
		}
	})
}

// secure reports whether the session cookie for r gets the Secure attribute.
func (m *Manager) secure(r *http.Request) bool {
	switch m.cfg.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// state returns the request state Handler put in ctx.
func (m *Manager) state(ctx context.Context) (*requestState, error) {
	st, ok := ctx.Value(ctxKey{m}).(*requestState)
	if !ok {
		return nil, ErrNoHandler
	}
	return st, nil
}

// setCookie sets the session cookie to a server-side session ID.
func (m *Manager) setCookie(st *requestState, id string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return m.writeCookieLocked(st, &http.Cookie{Value: id})
}

// writeCookieLocked completes c with the session cookie's name and
// attributes and puts it in the response header, replacing a session cookie
// set earlier in this request. st.mu must be held.
func (m *Manager) writeCookieLocked(st *requestState, c *http.Cookie) error {
	if st.wroteHeader {
		return ErrHeaderWritten
	}
	c.Name = m.cfg.CookieName
	c.Path = "/"
	c.HttpOnly = true
	c.Secure = st.secure
	c.SameSite = m.cfg.SameSite
	line := c.String()
	if line == "" {
		return fmt.Errorf("session: cookie value cannot be sent: %w", ErrInvalid)
	}
	if len(line) > CookieBudget {
		return fmt.Errorf("session: cookie of %d bytes is over the %d-byte budget: %w", len(line), CookieBudget, ErrTooLarge)
	}
	h := st.header()
	prefix := m.cfg.CookieName + "="
	kept := h["Set-Cookie"][:0]
	for _, v := range h["Set-Cookie"] {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = append(kept, line)
	if !hasToken(h.Values("Vary"), "Cookie") {
		h.Add("Vary", "Cookie")
	}
	h.Set("Cache-Control", "no-store")
	st.cookieSet = true
	return nil
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// beforeHeader runs once, just before the response header is written. On a
// client-held Manager it reseals a session that was read but not rewritten
// when its idle expiry is due to move, so that reading counts as activity
// there too.
func (m *Manager) beforeHeader(st *requestState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m.mode.beforeHeaderLocked(st)
	st.wroteHeader = true
}

// responseWriter notices when the response header is written, so that the
// Manager can still add its cookie before and refuse to after. Unwrap lets
// http.ResponseController reach the Flusher, Hijacker and deadlines of the
// writer beneath.
type responseWriter struct {
	http.ResponseWriter
	m    *Manager
	st   *requestState
	done bool
}

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	// 1xx responses other than 101 do not commit the final header.
	if !w.done && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.done = true
		w.m.beforeHeader(w.st)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom implements io.ReaderFrom, so that io.Copy into the response
// still reaches the writer beneath (and its sendfile path).
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return io.Copy(w.ResponseWriter, r)
}

// Flush implements http.Flusher when the writer beneath does.
func (w *responseWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the writer beneath, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
