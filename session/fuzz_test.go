package session_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statelab/statelab/session"
)

// FuzzCookie sends arbitrary Cookie headers through the middleware of both
// kinds of Manager. Whatever arrives, the request must be served (no panic,
// no 500), Load must never set a cookie and must find no session except the
// one the seeds carry, and an Update must issue a fresh cookie rather than
// adopt a value the client sent.
func FuzzCookie(f *testing.F) {
	quiet := session.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	type target struct {
		e      *env
		cookie string // a live session's cookie value, "seeded"
	}
	var targets []target
	for _, md := range []mode{serverSide, clientHeld} {
		e := newEnv(f, md, quiet)
		c := &client{e: e}
		req := httptest.NewRequest("POST", "/set?v=seeded", nil)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		for _, ck := range rec.Result().Cookies() {
			c.cookie = ck.Value
		}
		if c.cookie == "" {
			f.Fatalf("%v: seeding a session set no cookie", md)
		}
		targets = append(targets, target{e: e, cookie: c.cookie})
		f.Add("statelab_session=" + c.cookie)
		f.Add("statelab_session=" + c.cookie[:len(c.cookie)-1])
		f.Add("other=1; statelab_session=" + c.cookie + "; statelab_session=x")
	}
	f.Add("")
	f.Add("statelab_session=")
	f.Add(`statelab_session="quoted"`)
	f.Add("statelab_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, header string) {
		for _, tg := range targets {
			// The seeded session is the only live one; earlier inputs that
			// carried its cookie may have set it to "fuzz". In client-held
			// mode another process's seeds (the fuzzing coordinator's) open
			// too, since they were sealed with the same secret.
			load := httptest.NewRequest("GET", "/load", nil)
			load.Header.Set("Cookie", header)
			rec := httptest.NewRecorder()
			tg.e.h.ServeHTTP(rec, load)
			if rec.Code != http.StatusOK || len(rec.Result().Cookies()) != 0 {
				t.Fatalf("Load with Cookie %q: status %d, Set-Cookie %q", header, rec.Code, rec.Header().Values("Set-Cookie"))
			}
			body := rec.Body.String()
			if body != "none" && !tg.e.genuine(load, tg.cookie) {
				t.Fatalf("Cookie %q loads %q", header, body)
			}
			set := httptest.NewRequest("POST", "/set?v=fuzz", nil)
			set.Header.Set("Cookie", header)
			rec = httptest.NewRecorder()
			tg.e.h.ServeHTTP(rec, set)
			if rec.Code != http.StatusNoContent {
				t.Fatalf("Update with Cookie %q: status %d: %s", header, rec.Code, rec.Body)
			}
			cs := rec.Result().Cookies()
			if len(cs) > 1 {
				t.Fatalf("Update with Cookie %q set %d cookies", header, len(cs))
			}
			if len(cs) == 1 && cs[0].Value != tg.cookie && strings.Contains(header, "="+cs[0].Value) {
				t.Fatalf("Update adopted the client's value %q", cs[0].Value)
			}
		}
	})
}

// genuine reports whether r carries a session cookie this env issued: the
// seeded server-side ID, or any value the env's sealer opens.
func (e *env) genuine(r *http.Request, seeded string) bool {
	for _, c := range r.Cookies() {
		if c.Name != e.m.CookieName() {
			continue
		}
		if c.Value == seeded {
			return true
		}
		if e.sealer != nil {
			if _, err := e.sealer.Open(c.Value, e.clock.Now()); err == nil {
				return true
			}
		}
	}
	return false
}
