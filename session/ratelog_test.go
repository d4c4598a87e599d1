package session_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// TestInvalidCookieLogsAreRateLimited: a client sending garbage session
// cookies gets one Info line per 10 s, not one per request (the rest are at
// Debug and counted). Before, every invalid cookie wrote an Info line.
func TestInvalidCookieLogsAreRateLimited(t *testing.T) {
	for _, md := range []mode{serverSide, clientHeld} {
		t.Run(md.String(), func(t *testing.T) {
			e := newEnv(t, md, session.Config{})
			send := func(n int) {
				for i := 0; i < n; i++ {
					req := httptest.NewRequest(http.MethodGet, "/load", nil)
					req.AddCookie(&http.Cookie{Name: "statelab_session", Value: "garbage-" + strings.Repeat("x", i%7+1)})
					e.h.ServeHTTP(httptest.NewRecorder(), req)
				}
			}
			infos := func() []string {
				var out []string
				for _, l := range strings.Split(e.logs.String(), "\n") {
					if strings.Contains(l, "level=INFO") && strings.Contains(l, "session cookie") {
						out = append(out, l)
					}
				}
				return out
			}
			send(100)
			if got := infos(); len(got) != 1 {
				t.Fatalf("100 invalid cookies wrote %d Info lines, want 1:\n%s", len(got), strings.Join(got, "\n"))
			}
			e.clock.Advance(11 * time.Second)
			send(1)
			got := infos()
			if len(got) != 2 || !strings.Contains(got[1], "suppressed_since_last=99") {
				t.Fatalf("after 11 s: Info lines\n%s\nwant a second one counting 99 held back", strings.Join(got, "\n"))
			}
		})
	}
}
