package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/redisstore"
)

// errBoom is what the /fail handler's update function returns.
var errBoom = errors.New("boom")

// clock is a Config.Now that tests move by hand. It starts at the real time
// because memstore expires records by the real clock; the Manager's own
// checks follow this one.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// faultyStore wraps a Store and fails every call while down is set, the way
// a store fails when its backend is unreachable. It counts Puts.
type faultyStore struct {
	session.Store
	down atomic.Bool
	puts atomic.Int64
	gate atomic.Pointer[barrier] // when set, Gets wait at it
}

// barrier holds the first n callers of wait until all n have arrived, so
// that n concurrent Updates all read the same version before any writes.
type barrier struct {
	remaining atomic.Int64
	open      chan struct{}
}

func newBarrier(n int) *barrier {
	b := &barrier{open: make(chan struct{})}
	b.remaining.Store(int64(n))
	return b
}

func (b *barrier) wait() {
	switch n := b.remaining.Add(-1); {
	case n == 0:
		close(b.open)
	case n > 0:
		<-b.open
	}
}

func (s *faultyStore) fail(op string) error {
	return fmt.Errorf("faulty: %s: connection refused: %w", op, session.ErrUnavailable)
}

func (s *faultyStore) Get(ctx context.Context, key string) (session.Record, error) {
	if s.down.Load() {
		return session.Record{}, s.fail("get")
	}
	rec, err := s.Store.Get(ctx, key)
	if b := s.gate.Load(); b != nil {
		b.wait()
	}
	return rec, err
}

func (s *faultyStore) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if s.down.Load() {
		return 0, s.fail("put")
	}
	s.puts.Add(1)
	return s.Store.Put(ctx, key, rec)
}

func (s *faultyStore) Delete(ctx context.Context, key string) error {
	if s.down.Load() {
		return s.fail("delete")
	}
	return s.Store.Delete(ctx, key)
}

// env is one Manager behind a small app:
//
//	GET  /load     the session data, or "none"
//	POST /set?v=X  sets the data to X
//	POST /incr     adds one to a decimal counter
//	POST /fail     an update whose function fails
//	POST /renew, POST /destroy
//	POST /late     writes the header, then updates
type env struct {
	m       *session.Manager
	h       http.Handler
	clock   *clock
	logs    *testenv.Buffer
	store   *faultyStore        // nil in client-held mode
	sealer  *cookiestore.Sealer // nil in server-side mode
	mem     *memstore.Store
	reg     *prometheus.Registry
	lastErr atomic.Value // error of the last failed session call
}

type mode int

const (
	serverSide mode = iota
	clientHeld
)

func (md mode) String() string { return [...]string{"server", "client"}[md] }

func newEnv(t testing.TB, md mode, cfg session.Config) *env {
	t.Helper()
	e := &env{clock: &clock{now: time.Now()}, logs: &testenv.Buffer{}, reg: prometheus.NewRegistry()}
	cfg.Now = e.clock.Now
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Registerer = e.reg
	var err error
	switch md {
	case serverSide:
		e.mem = memstore.New()
		t.Cleanup(func() { e.mem.Close() })
		e.store = &faultyStore{Store: e.mem}
		e.m, err = session.NewManager(e.store, cfg)
	case clientHeld:
		e.sealer, err = cookiestore.FromSecret("manager test secret, 32 bytes...")
		if err == nil {
			e.m, err = session.NewClientManager(e.sealer, cfg)
		}
	}
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	e.h = e.m.Handler(http.HandlerFunc(e.serve))
	return e
}

func (e *env) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var err error
	switch r.URL.Path {
	case "/load":
		var data []byte
		data, err = e.m.Load(ctx)
		if err == nil {
			if data == nil {
				data = []byte("none")
			}
			w.Write(data)
			return
		}
	case "/set":
		err = e.m.Update(ctx, func([]byte) ([]byte, error) { return []byte(r.URL.Query().Get("v")), nil })
	case "/incr":
		err = e.m.Update(ctx, func(b []byte) ([]byte, error) {
			n, _ := strconv.Atoi(string(b))
			return strconv.AppendInt(nil, int64(n+1), 10), nil
		})
	case "/fail":
		err = e.m.Update(ctx, func([]byte) ([]byte, error) { return []byte("written anyway"), errBoom })
	case "/renew":
		err = e.m.Renew(ctx)
	case "/destroy":
		err = e.m.Destroy(ctx)
	case "/late":
		w.WriteHeader(http.StatusAccepted)
		err = e.m.Update(ctx, func([]byte) ([]byte, error) { return []byte("late"), nil })
		if err != nil {
			e.lastErr.Store(err)
		}
		return
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		e.lastErr.Store(err)
		switch {
		case errors.Is(err, errBoom):
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		case errors.Is(err, session.ErrUnavailable):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case errors.Is(err, session.ErrConflict):
			http.Error(w, err.Error(), http.StatusConflict)
		case errors.Is(err, session.ErrTooLarge):
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// client is one browser: it keeps the session cookie between requests.
type client struct {
	e      *env
	cookie string // value; "" for none
	tls    bool
}

// do sends one request and applies any session Set-Cookie to the client.
func (c *client) do(t testing.TB, method, target string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if c.tls {
		req.TLS = &tls.ConnectionState{}
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: c.e.m.CookieName(), Value: c.cookie})
	}
	rec := httptest.NewRecorder()
	c.e.h.ServeHTTP(rec, req)
	resp := rec.Result()
	if resp.StatusCode == http.StatusInternalServerError {
		t.Fatalf("%s %s: 500: %s", method, target, rec.Body)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name != c.e.m.CookieName() {
			continue
		}
		if ck.MaxAge < 0 {
			c.cookie = ""
		} else {
			c.cookie = ck.Value
		}
	}
	return resp
}

// body does a request, checks its status and returns its body.
func (c *client) body(t *testing.T, method, target string, status int) string {
	t.Helper()
	resp := c.do(t, method, target)
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d (%s), want %d", method, target, resp.StatusCode, strings.TrimSpace(b.String()), status)
	}
	return b.String()
}

func (c *client) load(t *testing.T) string {
	t.Helper()
	return c.body(t, "GET", "/load", http.StatusOK)
}

func (c *client) set(t *testing.T, v string) {
	t.Helper()
	c.body(t, "POST", "/set?v="+v, http.StatusNoContent)
}

func storeKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func bothModes(t *testing.T, f func(t *testing.T, md mode)) {
	for _, md := range []mode{serverSide, clientHeld} {
		t.Run(md.String(), func(t *testing.T) { f(t, md) })
	}
}

func TestNewSessionCookie(t *testing.T) {
	tests := []struct {
		name       string
		cfg        session.Config
		tls        bool
		proto      string
		wantName   string
		wantSecure bool
	}{
		{name: "defaults over http", wantName: "statelab_session"},
		{name: "defaults over tls", tls: true, wantName: "statelab_session", wantSecure: true},
		{name: "behind a tls proxy", proto: "https", wantName: "statelab_session", wantSecure: true},
		{name: "secure always", cfg: session.Config{Secure: session.SecureAlways}, wantName: "statelab_session", wantSecure: true},
		{name: "secure never", cfg: session.Config{Secure: session.SecureNever}, tls: true, wantName: "statelab_session"},
		{name: "host prefix", cfg: session.Config{HostPrefix: true, CookieName: "sid"}, wantName: "__Host-sid", wantSecure: true},
	}
	for _, tt := range tests {
		bothModes(t, func(t *testing.T, md mode) {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t, md, tt.cfg)
				req := httptest.NewRequest("POST", "/set?v=hello", nil)
				if tt.tls {
					req.TLS = &tls.ConnectionState{}
				}
				if tt.proto != "" {
					req.Header.Set("X-Forwarded-Proto", tt.proto)
				}
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				resp := rec.Result()
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("status %d: %s", resp.StatusCode, rec.Body)
				}
				cookies := resp.Cookies()
				if len(cookies) != 1 {
					t.Fatalf("Set-Cookie: %q, want one cookie", resp.Header.Values("Set-Cookie"))
				}
				c := cookies[0]
				if c.Name != tt.wantName || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
					c.Path != "/" || c.Domain != "" || c.Secure != tt.wantSecure || c.MaxAge != 0 {
					t.Fatalf("cookie %q: want name %s, HttpOnly, SameSite=Lax, Path=/, no Domain, Secure=%v, no Max-Age",
						resp.Header.Get("Set-Cookie"), tt.wantName, tt.wantSecure)
				}
				if got := resp.Header.Get("Vary"); got != "Cookie" {
					t.Errorf("Vary = %q, want Cookie", got)
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
				if md == serverSide {
					if raw, _ := base64.RawURLEncoding.Strict().DecodeString(c.Value); len(raw) != 32 {
						t.Errorf("session ID %q does not encode 32 bytes", c.Value)
					}
					if _, err := e.mem.Get(context.Background(), storeKey(c.Value)); err != nil {
						t.Errorf("store has no record under the SHA-256 of the ID: %v", err)
					}
					if _, err := e.mem.Get(context.Background(), c.Value); err == nil {
						t.Error("store holds the raw ID as a key")
					}
				}
			})
		})
	}
}

// TestNoCookieWithoutUpdate checks that reading never creates a session or
// sets a cookie, so caches may keep such responses.
func TestNoCookieWithoutUpdate(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		c := &client{e: e}
		resp := c.do(t, "GET", "/load")
		if len(resp.Header.Values("Set-Cookie")) != 0 || resp.Header.Get("Vary") != "" || resp.Header.Get("Cache-Control") != "" {
			t.Fatalf("Load without a session set headers: %v", resp.Header)
		}
		if md == serverSide {
			if n, _ := e.mem.Count(context.Background()); n != 0 {
				t.Fatalf("Load created %d records", n)
			}
		}
	})
}

func TestUpdateThenLoad(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		c := &client{e: e}
		if got := c.load(t); got != "none" {
			t.Fatalf("fresh client loads %q", got)
		}
		c.set(t, "one")
		first := c.cookie
		if got := c.load(t); got != "one" {
			t.Fatalf("load = %q, want one", got)
		}
		c.set(t, "two")
		if got := c.load(t); got != "two" {
			t.Fatalf("load = %q, want two", got)
		}
		if md == serverSide && c.cookie != first {
			t.Fatal("updating an existing session changed its ID")
		}
		other := &client{e: e}
		if got := other.load(t); got != "none" {
			t.Fatalf("another client sees %q", got)
		}
	})
}

func TestStrictMode(t *testing.T) {
	e := newEnv(t, serverSide, session.Config{})
	planted := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // well-formed, never issued
	c := &client{e: e, cookie: planted}
	if got := c.load(t); got != "none" {
		t.Fatalf("unknown ID loads %q", got)
	}
	c.set(t, "mine")
	if c.cookie == planted || c.cookie == "" {
		t.Fatalf("the planted ID was adopted (cookie %q)", c.cookie)
	}
	if _, err := e.mem.Get(context.Background(), storeKey(planted)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a record exists under the planted ID: %v", err)
	}
	attacker := &client{e: e, cookie: planted}
	if got := attacker.load(t); got != "none" {
		t.Fatalf("the planter sees %q", got)
	}
}

func TestMalformedCookies(t *testing.T) {
	bad := []string{
		"short",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", // non-canonical trailing bits
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+A", // not base64url
		strings.Repeat("A", 5000),
		"AThRlgdTJfbhf-k0uO_gU4qPu1IZrBh1ddHoZS4WZIf2icOGVWCQihJhzMLrHHpY4yynb0lj",
	}
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		for _, v := range bad {
			c := &client{e: e, cookie: v}
			if got := c.load(t); got != "none" {
				t.Fatalf("cookie %.20q… loads %q", v, got)
			}
			c.set(t, "fresh")
			if c.cookie == v {
				t.Fatalf("cookie %.20q… was kept", v)
			}
			if got := c.load(t); got != "fresh" {
				t.Fatalf("after replacing a bad cookie: load %q", got)
			}
			if strings.Contains(e.logs.String(), v) {
				t.Fatalf("the raw cookie value was logged: %s", e.logs)
			}
		}
		if !strings.Contains(e.logs.String(), "cookie_hash=") {
			t.Fatalf("no log line with a cookie hash: %s", e.logs)
		}
		// Each bad cookie came twice: with /load and with /set.
		if got := counter(t, e.reg, "statelab_session_invalid_cookies_total"); got != float64(2*len(bad)) {
			t.Fatalf("invalid cookie counter = %v, want %d", got, 2*len(bad))
		}
	})
}

func TestForgedSealedCookie(t *testing.T) {
	e := newEnv(t, clientHeld, session.Config{})
	c := &client{e: e}
	c.set(t, `{"role":"user"}`)
	good := c.cookie
	// Flip one character in the middle of the sealed value.
	i := len(good) / 2
	flip := byte('A')
	if good[i] == 'A' {
		flip = 'B'
	}
	forged := good[:i] + string(flip) + good[i+1:]
	f := &client{e: e, cookie: forged}
	if got := f.load(t); got != "none" {
		t.Fatalf("forged cookie loads %q", got)
	}
	logs := e.logs.String()
	if strings.Contains(logs, forged) || !strings.Contains(logs, "cookie_hash=") {
		t.Fatalf("want a log line with a hash and without the value, got: %s", logs)
	}
	if got := (&client{e: e, cookie: good}).load(t); got != `{"role":"user"}` {
		t.Fatalf("the genuine cookie loads %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 24 * time.Hour})
		c := &client{e: e}
		c.set(t, "idle")
		// Activity every 20 minutes keeps the session well past 30 minutes.
		for range 4 {
			e.clock.Advance(20 * time.Minute)
			if got := c.load(t); got != "idle" {
				t.Fatalf("active session lost: load %q", got)
			}
		}
		e.clock.Advance(30*time.Minute + time.Second)
		if got := c.load(t); got != "none" {
			t.Fatalf("session survived 30m idle: load %q", got)
		}
	})
}

func TestAbsoluteTimeout(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: time.Hour})
		c := &client{e: e}
		c.set(t, "abs")
		for range 2 {
			e.clock.Advance(20 * time.Minute)
			c.set(t, "abs") // writes count as activity too
		}
		e.clock.Advance(19 * time.Minute)
		if got := c.load(t); got != "abs" {
			t.Fatalf("at 59m: load %q", got)
		}
		e.clock.Advance(time.Minute)
		if got := c.load(t); got != "none" {
			t.Fatalf("session outlived its absolute timeout: load %q", got)
		}
	})
}

func TestRenew(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		c := &client{e: e}
		c.set(t, "cart")
		old := c.cookie
		c.body(t, "POST", "/renew", http.StatusNoContent)
		if c.cookie == old || c.cookie == "" {
			t.Fatal("Renew did not set a new cookie")
		}
		if got := c.load(t); got != "cart" {
			t.Fatalf("after Renew: load %q", got)
		}
		if md == serverSide {
			if got := (&client{e: e, cookie: old}).load(t); got != "none" {
				t.Fatalf("the old ID still works: load %q", got)
			}
			if n, _ := e.mem.Count(context.Background()); n != 1 {
				t.Fatalf("store holds %d records, want 1", n)
			}
		}
		// Without a session Renew does nothing.
		fresh := &client{e: e}
		resp := fresh.do(t, "POST", "/renew")
		if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 0 {
			t.Fatalf("Renew without a session: status %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
	})
}

func TestDestroy(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		c := &client{e: e}
		c.set(t, "bye")
		old := c.cookie
		resp := c.do(t, "POST", "/destroy")
		cs := resp.Cookies()
		if resp.StatusCode != http.StatusNoContent || len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Value != "" {
			t.Fatalf("Destroy: status %d, Set-Cookie %q; want an expired cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Error("expiring cookie sent without Cache-Control: no-store")
		}
		if md == serverSide {
			if got := (&client{e: e, cookie: old}).load(t); got != "none" {
				t.Fatalf("destroyed session still loads %q", got)
			}
		}
	})
}

// replica returns an env with its own Manager over e's store: another
// process of the same application.
func (e *env) replica(t testing.TB, cfg session.Config) *env {
	t.Helper()
	r := &env{clock: e.clock, logs: e.logs, store: e.store, mem: e.mem, reg: prometheus.NewRegistry()}
	cfg.Now = r.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	cfg.Registerer = r.reg
	var err error
	if r.m, err = session.NewManager(r.store, cfg); err != nil {
		t.Fatal(err)
	}
	r.h = r.m.Handler(http.HandlerFunc(r.serve))
	return r
}

// TestConcurrentUpdates sends 64 simultaneous increments of one session's
// counter; every one must take effect. Through one Manager they queue on its
// per-session lock and never conflict. Through 64 Managers (replicas) over one
// store, a barrier makes all of them read the same version before any writes,
// so compare-and-swap must resolve 63 conflicts; with a single attempt
// allowed, 63 must report ErrConflict, which shows the contention is real and
// nothing is lost silently.
func TestConcurrentUpdates(t *testing.T) {
	const n = 64
	tests := []struct {
		name          string
		replicas      bool
		attempts      int
		wantOK        int
		wantConflicts int
	}{
		{name: "one manager", wantOK: n},
		{name: "64 replicas", replicas: true, wantOK: n},
		{name: "64 replicas, one attempt", replicas: true, attempts: 1, wantOK: 1, wantConflicts: n - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := session.Config{MaxAttempts: tt.attempts}
			e := newEnv(t, serverSide, cfg)
			c := &client{e: e}
			c.set(t, "0")
			envs := []*env{e}
			if tt.replicas {
				for len(envs) < n {
					envs = append(envs, e.replica(t, cfg))
				}
				e.store.gate.Store(newBarrier(n))
			}
			var wg sync.WaitGroup
			statuses := make(chan int, n)
			for i := range n {
				wg.Go(func() {
					mine := &client{e: envs[i%len(envs)], cookie: c.cookie}
					statuses <- mine.do(t, "POST", "/incr").StatusCode
				})
			}
			wg.Wait()
			close(statuses)
			got := map[int]int{}
			for s := range statuses {
				got[s]++
			}
			if got[http.StatusNoContent] != tt.wantOK || got[http.StatusConflict] != tt.wantConflicts {
				t.Fatalf("statuses %v, want %d × 204 and %d × 409", got, tt.wantOK, tt.wantConflicts)
			}
			if load := c.load(t); load != strconv.Itoa(tt.wantOK) {
				t.Fatalf("counter = %s after %d acknowledged increments", load, tt.wantOK)
			}
			var updates, conflicts float64
			for _, r := range envs {
				updates += counter(t, r.reg, "statelab_session_updates_total")
				conflicts += counter(t, r.reg, "statelab_session_update_conflicts_total")
			}
			if updates != float64(tt.wantOK+1) {
				t.Fatalf("updates counters sum to %v, want %d", updates, tt.wantOK+1)
			}
			switch {
			case tt.replicas && conflicts < n-1:
				t.Fatalf("conflicts counters sum to %v, want at least %d", conflicts, n-1)
			case !tt.replicas && conflicts != 0:
				t.Fatalf("one manager met %v conflicts; its updates should have queued", conflicts)
			}
		})
	}
}

func TestUpdateFnError(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		c := &client{e: e}
		resp := c.do(t, "POST", "/fail")
		if resp.StatusCode != http.StatusUnprocessableEntity || len(resp.Cookies()) != 0 {
			t.Fatalf("fn error without a session: status %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
		c.set(t, "kept")
		var puts int64
		if md == serverSide {
			puts = e.store.puts.Load()
		}
		resp = c.do(t, "POST", "/fail")
		if resp.StatusCode != http.StatusUnprocessableEntity || len(resp.Cookies()) != 0 {
			t.Fatalf("fn error: status %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
		if err, _ := e.lastErr.Load().(error); err != errBoom {
			t.Fatalf("Update returned %v, want errBoom unchanged", err)
		}
		if md == serverSide && e.store.puts.Load() != puts {
			t.Fatal("Update wrote after fn failed")
		}
		if got := c.load(t); got != "kept" {
			t.Fatalf("load = %q after a failed update", got)
		}
	})
}

func TestStoreDown(t *testing.T) {
	e := newEnv(t, serverSide, session.Config{})
	c := &client{e: e}
	c.set(t, "before")
	e.store.down.Store(true)
	for _, target := range []string{"/load", "/set?v=x", "/incr", "/renew", "/destroy"} {
		method := "POST"
		if target == "/load" {
			method = "GET"
		}
		c.body(t, method, target, http.StatusServiceUnavailable)
		if err, _ := e.lastErr.Load().(error); !errors.Is(err, session.ErrUnavailable) {
			t.Fatalf("%s: error %v does not wrap ErrUnavailable", target, err)
		}
	}
	e.store.down.Store(false)
	if got := c.load(t); got != "before" {
		t.Fatalf("after the store came back: load %q", got)
	}
}

func TestCancelledContext(t *testing.T) {
	e := newEnv(t, serverSide, session.Config{})
	c := &client{e: e}
	c.set(t, "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/load", nil).WithContext(ctx)
	req.AddCookie(&http.Cookie{Name: e.m.CookieName(), Value: c.cookie})
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	err, _ := e.lastErr.Load().(error)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Load with a cancelled context: %v, want context.Canceled wrapped in ErrUnavailable", err)
	}
}

func TestUpdateAfterHeader(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		c := &client{e: e}
		resp := c.do(t, "POST", "/late")
		if len(resp.Cookies()) != 0 {
			t.Fatal("a cookie was set after the header was written")
		}
		if err, _ := e.lastErr.Load().(error); !errors.Is(err, session.ErrHeaderWritten) {
			t.Fatalf("Update after the header: %v, want ErrHeaderWritten", err)
		}
	})
}

func TestClientHeldTooLarge(t *testing.T) {
	e := newEnv(t, clientHeld, session.Config{CookieName: strings.Repeat("n", 200)})
	var ok, tooLarge int
	for n := 2800; n <= 3200; n += 10 {
		c := &client{e: e}
		resp := c.do(t, "POST", "/set?v="+strings.Repeat("x", n))
		switch resp.StatusCode {
		case http.StatusNoContent:
			ok++
			line := resp.Header.Get("Set-Cookie")
			if len(line) > session.CookieBudget {
				t.Fatalf("%d bytes of data: Set-Cookie of %d bytes passed", n, len(line))
			}
		case http.StatusRequestEntityTooLarge:
			tooLarge++
			if len(resp.Cookies()) != 0 {
				t.Fatal("a too-large update still set a cookie")
			}
		default:
			t.Fatalf("%d bytes of data: status %d", n, resp.StatusCode)
		}
	}
	if ok == 0 || tooLarge == 0 {
		t.Fatalf("sizes 2800..3200 with a 200-byte cookie name: %d fit, %d too large; want both", ok, tooLarge)
	}
}

func TestNoHandler(t *testing.T) {
	e := newEnv(t, serverSide, session.Config{})
	if _, err := e.m.Load(context.Background()); !errors.Is(err, session.ErrNoHandler) {
		t.Fatalf("Load outside Handler: %v", err)
	}
	if err := e.m.Update(context.Background(), func(b []byte) ([]byte, error) { return b, nil }); !errors.Is(err, session.ErrNoHandler) {
		t.Fatalf("Update outside Handler: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	s := memstore.New()
	t.Cleanup(func() { s.Close() })
	tests := []session.Config{
		{CookieName: "bad name"},
		{CookieName: "a;b"},
		{IdleTimeout: -time.Second},
		{AbsoluteTimeout: -time.Second},
		{MaxAttempts: -1},
		{Secure: session.SecureMode(9)},
		{SameSite: http.SameSiteNoneMode},
	}
	for _, cfg := range tests {
		if _, err := session.NewManager(s, cfg); err == nil {
			t.Errorf("NewManager(%+v) succeeded", cfg)
		}
	}
	if _, err := session.NewManager(nil, session.Config{}); err == nil {
		t.Error("NewManager(nil) succeeded")
	}
	if _, err := session.NewClientManager(nil, session.Config{}); err == nil {
		t.Error("NewClientManager(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := session.NewManager(s, session.Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := session.NewManager(s, session.Config{Registerer: reg}); err == nil {
		t.Error("two Managers registered the same metrics on one registry")
	}
}

// counter returns the value of the named counter in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestResponseWriterPassThrough checks that the middleware's writer keeps
// the powers of the writer beneath: flushing and io.Copy.
func TestResponseWriterPassThrough(t *testing.T) {
	e := newEnv(t, serverSide, session.Config{})
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := e.m.Update(r.Context(), func([]byte) ([]byte, error) { return []byte("x"), nil }); err != nil {
			t.Error(err)
		}
		io.Copy(w, strings.NewReader("copied"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the middleware: %v", err)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !rec.Flushed || rec.Body.String() != "copied" || len(rec.Result().Cookies()) != 1 {
		t.Fatalf("flushed %v, body %q, cookies %v", rec.Flushed, rec.Body, rec.Result().Cookies())
	}
}

// TestClientHeldResealOnEmptyResponse checks that reading a client-held
// session counts as activity even when the handler writes no body.
func TestClientHeldResealOnEmptyResponse(t *testing.T) {
	e := newEnv(t, clientHeld, session.Config{IdleTimeout: 30 * time.Minute})
	c := &client{e: e}
	c.set(t, "quiet")
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := e.m.Load(r.Context()); err != nil {
			t.Error(err)
		}
	}))
	for range 3 {
		e.clock.Advance(20 * time.Minute)
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: e.m.CookieName(), Value: c.cookie})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		cs := rec.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("no resealed cookie after a read 20 minutes later: %v", rec.Header())
		}
		c.cookie = cs[0].Value
	}
	if got := c.load(t); got != "quiet" {
		t.Fatalf("after 60 minutes of reads every 20: load %q", got)
	}
}

// TestEmptyDataIsASession checks that a session whose data is empty is still
// a session: Load returns non-nil and Update's fn gets non-nil.
func TestEmptyDataIsASession(t *testing.T) {
	bothModes(t, func(t *testing.T, md mode) {
		e := newEnv(t, md, session.Config{})
		var sawNil []bool
		h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := e.m.Update(r.Context(), func(b []byte) ([]byte, error) {
				sawNil = append(sawNil, b == nil)
				return []byte{}, nil
			})
			if err != nil {
				t.Error(err)
			}
			data, err := e.m.Load(r.Context())
			if err != nil || data == nil {
				t.Errorf("Load of a session with empty data = %v, %v; want empty, non-nil", data, err)
			}
		}))
		c := &client{e: e, cookie: ""}
		for range 2 {
			req := httptest.NewRequest("POST", "/", nil)
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: e.m.CookieName(), Value: c.cookie})
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			for _, ck := range rec.Result().Cookies() {
				c.cookie = ck.Value
			}
		}
		if len(sawNil) != 2 || !sawNil[0] || sawNil[1] {
			t.Fatalf("fn saw nil data: %v; want [true false] (new session, then existing)", sawNil)
		}
	})
}

// TestUnreachableRedis runs a Manager over a redisstore whose server is not
// there: requests must get ErrUnavailable promptly, never a hang or a 500.
func TestUnreachableRedis(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	m, err := session.NewManager(redisstore.New(client, redisstore.Options{Prefix: "unreachable:"}), session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var got []error
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		_, err := m.Load(ctx)
		got = append(got, err)
		got = append(got, m.Update(ctx, func(b []byte) ([]byte, error) { return []byte("x"), nil }))
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
	h.ServeHTTP(httptest.NewRecorder(), req)
	for i, err := range got {
		if !errors.Is(err, session.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: %v; want ErrUnavailable from the refused connection, not a timeout", i, err)
		}
	}
}
