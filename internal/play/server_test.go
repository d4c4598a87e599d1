package play

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// testServer is a playground over fake clusters, served by httptest.
type testServer struct {
	s       *Server
	starter *fakeStarter
	http    *httptest.Server
	client  *http.Client // a shopper with a cookie jar
}

func newTestServer(t *testing.T, st strategy.Strategy, configure ...func(*Config)) *testServer {
	t.Helper()
	starter := &fakeStarter{t: t}
	cfg := Config{
		Strategy:     st,
		Replicas:     3,
		Start:        starter.start,
		PollInterval: time.Hour, // the tests refresh explicitly
		Logger:       slog.New(slog.DiscardHandler),
	}
	for _, f := range configure {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{s: s, starter: starter, http: hs, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// do sends a request to the playground and returns the status and body.
func (ts *testServer) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.http.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// mustDo is do that fails the test unless the status is want.
func (ts *testServer) mustDo(t *testing.T, want int, method, path, body string) []byte {
	t.Helper()
	got, b := ts.do(t, method, path, body)
	if got != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, got, b, want)
	}
	return b
}

// eventsContaining returns the log lines that contain sub.
func (ts *testServer) eventsContaining(sub string) []string {
	var out []string
	for _, e := range ts.s.Events() {
		if strings.Contains(e.Text, sub) {
			out = append(out, e.Text)
		}
	}
	return out
}

func (ts *testServer) requireEvent(t *testing.T, sub string) {
	t.Helper()
	if len(ts.eventsContaining(sub)) == 0 {
		var all []string
		for _, e := range ts.s.Events() {
			all = append(all, e.Text)
		}
		t.Fatalf("no event contains %q; log:\n%s", sub, strings.Join(all, "\n"))
	}
}

func TestConfigValidation(t *testing.T) {
	start := func(context.Context, strategy.Strategy, int) (Cluster, error) { return nil, errors.New("unused") }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Start: start}, ""},
		{"unknown strategy", Config{Start: start, Strategy: "magic"}, "unknown strategy"},
		{"too many replicas", Config{Start: start, Replicas: MaxReplicas + 1}, "replicas must be"},
		{"negative replicas", Config{Start: start, Replicas: -1}, "replicas must be"},
		{"no start", Config{}, "Start is required"},
		{"rate too high", Config{Start: start, ShopperRate: MaxShopperRate + 1}, "shopper rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				st := s.State()
				if st.Strategy != "sticky" || st.Shoppers.Rate != 5 || st.Phase != "starting" {
					t.Fatalf("defaults: %+v", st)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestControlErrors(t *testing.T) {
	ts := newTestServer(t, "sticky")
	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/play/api/replicas/r9/kill", "", 404, "unknown_replica"},
		{"DELETE", "/play/api/replicas/r9", "", 404, "unknown_replica"},
		{"POST", "/play/api/replicas/r1/explode", "", 400, "bad_request"},
		{"POST", "/play/api/replicas/r1/remove", "", 405, "method_not_allowed"},
		{"POST", "/play/api/strategy", `{"strategy":"magic"}`, 400, "bad_request"},
		{"POST", "/play/api/strategy", `{"strategy":`, 400, "bad_json"},
		{"POST", "/play/api/strategy", `{"strategy":"cache","extra":1}`, 400, "bad_json"},
		{"POST", "/play/api/store/stop", "", 409, "no_store"},
		{"POST", "/play/api/store/explode", "", 400, "bad_request"},
		{"POST", "/play/api/shoppers", `{"on":true}`, 409, "no_shoppers"},
		{"GET", "/play/nothing", "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			b := ts.mustDo(t, tt.status, tt.method, tt.path, tt.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("body %s: want error code %q with a message", b, tt.code)
			}
		})
	}
	if calls := ts.starter.last().Calls(); len(calls) != 0 {
		t.Fatalf("rejected controls reached the cluster: %v", calls)
	}
}

// TestFailoverWording shops three items, kills the replica that served
// them and reads the cart again: the log must say, in plain words, what the
// strategy did to the cart.
// TestCrossSiteControlsRefused: a page of another site cannot post to the
// controls from the person's browser.
func TestCrossSiteControlsRefused(t *testing.T) {
	ts := newTestServer(t, "sticky")
	for _, h := range []struct{ name, value string }{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example"},
	} {
		req, err := http.NewRequest("POST", ts.http.URL+"/play/api/replicas/r1/kill", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(h.name, h.value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %s: status %d, want 403", h.name, h.value, resp.StatusCode)
		}
	}
	if calls := ts.starter.last().Calls(); len(calls) != 0 {
		t.Fatalf("a cross-site control reached the cluster: %v", calls)
	}
	req, _ := http.NewRequest("POST", ts.http.URL+"/play/api/replicas/r1/kill", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("same-origin control: status %d, want 200", resp.StatusCode)
	}
}

func TestFailoverWording(t *testing.T) {
	tests := []struct {
		strategy strategy.Strategy
		killed   string // the kill line, with %s for the killed replica
		after    string // the line after the next read, with %[1]s killed and %[2]s the new server
		lost     bool
	}{
		{"sticky", "%s killed — 1 cart lived only there", "your next request went to %[2]s: your cart is empty — the 3 items you had lived only on %[1]s", true},
		{"replicated", "%s killed — its one cart has a copy on another replica", "%[2]s read your cart from a peer's copy: nothing lost", false},
		{"cache", "%s killed — it held no carts: they live in Redis", "%[2]s read your cart from Redis: nothing lost", false},
		{"database", "%s killed — it held no carts: they live in SQLite", "%[2]s read your cart from SQLite: nothing lost", false},
		{"client", "%s killed — it held no carts: they live in the shoppers' cookies", "%[2]s read your cart from the cookie your browser sent: nothing lost", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.strategy), func(t *testing.T) {
			ts := newTestServer(t, tt.strategy)
			ts.mustDo(t, 200, "GET", "/shop/api/cart", "")
			for _, sku := range []string{"a", "b", "c"} {
				ts.mustDo(t, 200, "POST", "/shop/api/cart/items", `{"sku":"`+sku+`","qty":1}`)
			}
			if tt.strategy == "sticky" || tt.strategy == "replicated" {
				for _, e := range ts.s.Events() {
					if e.Kind != EventInfo {
						t.Fatalf("sticky shopping logged %q, want nothing", e.Text)
					}
				}
			}
			ts.s.refresh() // learn how many carts each replica holds
			victim := ts.s.State().You.ServedBy
			if victim == "" {
				t.Fatal("the observer did not see X-Served-By")
			}
			ts.mustDo(t, 200, "POST", "/play/api/replicas/"+victim+"/kill", "")
			ts.requireEvent(t, strings.ReplaceAll(tt.killed, "%s", victim))

			b := ts.mustDo(t, 200, "GET", "/shop/api/cart", "")
			var cart struct {
				Items    []CartLine `json:"items"`
				ServedBy string     `json:"served_by"`
			}
			if err := json.Unmarshal(b, &cart); err != nil {
				t.Fatal(err)
			}
			if cart.ServedBy == victim {
				t.Fatalf("the killed replica %s served the read", victim)
			}
			if got := len(cart.Items) == 0; got != tt.lost {
				t.Fatalf("cart after the kill = %+v; want lost=%v", cart.Items, tt.lost)
			}
			ts.requireEvent(t, fmtAfter(tt.after, victim, cart.ServedBy))
			you := ts.s.State().You
			if you.ServedBy != cart.ServedBy || len(you.Items) != len(cart.Items) {
				t.Fatalf("State().You = %+v, want served by %s with %d items", you, cart.ServedBy, len(cart.Items))
			}
		})
	}
}

func fmtAfter(format, killed, now string) string {
	return strings.NewReplacer("%[1]s", killed, "%[2]s", now).Replace(format)
}

func TestNaiveSpreadsTheCart(t *testing.T) {
	ts := newTestServer(t, "naive")
	ts.mustDo(t, 200, "GET", "/shop/api/cart", "")                           // r1: empty
	ts.mustDo(t, 200, "POST", "/shop/api/cart/items", `{"sku":"a","qty":1}`) // r2 gets a
	ts.mustDo(t, 200, "POST", "/shop/api/cart/items", `{"sku":"b","qty":1}`) // r3 has no a
	ts.requireEvent(t, "your next request went to r3: your cart is missing 1 item (a) — the item you had lived only on r2")
}

func TestStoreOutage(t *testing.T) {
	ts := newTestServer(t, "cache")
	ts.mustDo(t, 200, "POST", "/shop/api/cart/items", `{"sku":"a","qty":2}`)
	ts.mustDo(t, 200, "POST", "/play/api/store/stop", "")
	ts.requireEvent(t, "Redis stopped — replicas cannot read or write carts")
	if st := ts.s.State(); st.Store.Up || !st.Store.External || st.Store.Name != "Redis" {
		t.Fatalf("store state after stop = %+v", st.Store)
	}
	ts.mustDo(t, 503, "GET", "/shop/api/cart", "")
	ts.requireEvent(t, "your request failed — 503 from r")
	ts.requireEvent(t, "the session store is unreachable")
	ts.mustDo(t, 200, "POST", "/play/api/store/start", "")
	ts.mustDo(t, 200, "GET", "/shop/api/cart", "")
	ts.requireEvent(t, "read your cart from Redis: nothing lost")
}

func TestReplicaControls(t *testing.T) {
	ts := newTestServer(t, "sticky")
	steps := []struct {
		method, path string
		status       int
		call         string
		event        string
		state        map[string]string // replica id -> status after the step
	}{
		{"POST", "/play/api/replicas/r2/pause", 200, "pause r2", "r2 paused (SIGSTOP)", map[string]string{"r2": "paused"}},
		{"POST", "/play/api/replicas/r2/resume", 200, "resume r2", "r2 resumed (SIGCONT)", map[string]string{"r2": "up"}},
		{"POST", "/play/api/replicas/r3/kill", 200, "kill r3", "r3 killed — it held no carts, so none were lost", map[string]string{"r3": "down"}},
		{"POST", "/play/api/replicas/r3/restart", 200, "restart r3", "r3 restarted — it came back with empty memory", map[string]string{"r3": "up"}},
		{"POST", "/play/api/replicas", 201, "add", "r4 added — only new sessions go to it", map[string]string{"r4": "up"}},
		{"DELETE", "/play/api/replicas/r1", 200, "remove r1", "r1 removed — the balancer drained it", map[string]string{"r1": ""}},
	}
	for _, st := range steps {
		ts.mustDo(t, st.status, st.method, st.path, "")
		calls := ts.starter.last().Calls()
		if calls[len(calls)-1] != st.call {
			t.Fatalf("%s %s: last cluster call %q, want %q", st.method, st.path, calls[len(calls)-1], st.call)
		}
		ts.requireEvent(t, st.event)
		got := map[string]string{}
		for _, r := range ts.s.State().Replicas {
			got[r.ID] = r.Status
		}
		for id, want := range st.state {
			if got[id] != want {
				t.Fatalf("after %s: %s is %q, want %q (all %v)", st.call, id, got[id], want, got)
			}
		}
	}
}

func TestRebuild(t *testing.T) {
	ts := newTestServer(t, "sticky")
	first := ts.starter.last()
	ts.mustDo(t, 200, "POST", "/shop/api/cart/items", `{"sku":"a","qty":1}`)
	if !ts.s.State().You.Known {
		t.Fatal("the observer did not learn the cart")
	}
	b := ts.mustDo(t, 200, "POST", "/play/api/strategy", `{"strategy":"cache"}`)
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Strategy != "cache" || st.Phase != "running" || st.Balancer.Policy != "round_robin" || st.Store.Kind != "redis" {
		t.Fatalf("state after rebuild = %+v", st)
	}
	if !first.isClosed() {
		t.Fatal("the old cluster was not closed")
	}
	if ts.starter.last() == first || ts.starter.last().Strategy() != "cache" {
		t.Fatal("no new cache cluster was started")
	}
	if st.You.Known || st.You.ServedBy != "" {
		t.Fatalf("the observer kept the old cluster's cart: %+v", st.You)
	}
	ts.requireEvent(t, "cluster ready: cache strategy, 3 replicas behind a round_robin balancer — your cart lives in Redis")
	// The shop pane now reaches the new cluster.
	ts.mustDo(t, 200, "GET", "/shop/api/cart", "")
}

func TestReadyNamesTheDatabase(t *testing.T) {
	ts := newTestServer(t, "database")
	ts.requireEvent(t, "cluster ready: database strategy, 3 replicas behind a round_robin balancer — your cart lives in SQLite")
	if st := ts.s.State(); st.Where != "in SQLite" || st.Store.Name != "SQLite" {
		t.Fatalf("state names %q / %q, want SQLite", st.Where, st.Store.Name)
	}
}

func TestBusyAndFailedStart(t *testing.T) {
	ts := newTestServer(t, "sticky")
	gate := make(chan struct{})
	ts.starter.mu.Lock()
	ts.starter.gate = gate
	ts.starter.failWith = errors.New("no redis-server on PATH")
	ts.starter.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	var rebuildErr error
	go func() {
		defer wg.Done()
		rebuildErr = ts.s.SetStrategy("cache")
	}()
	waitFor(t, func() bool { return ts.s.State().Phase == "rebuilding" })
	ts.mustDo(t, 409, "POST", "/play/api/replicas", "")
	ts.mustDo(t, 503, "GET", "/shop/api/cart", "")
	close(gate)
	wg.Wait()
	if rebuildErr == nil || !strings.Contains(rebuildErr.Error(), "no redis-server on PATH") {
		t.Fatalf("SetStrategy = %v, want the start error", rebuildErr)
	}
	st := ts.s.State()
	if st.Phase != "failed" || !strings.Contains(st.Error, "no redis-server") {
		t.Fatalf("state after a failed start = %+v", st)
	}
	ts.mustDo(t, 503, "POST", "/play/api/replicas/r1/kill", "")
	// Choosing a strategy again recovers.
	ts.starter.mu.Lock()
	ts.starter.gate, ts.starter.failWith = nil, nil
	ts.starter.mu.Unlock()
	ts.mustDo(t, 200, "POST", "/play/api/strategy", `{"strategy":"sticky"}`)
	if st := ts.s.State(); st.Phase != "running" || st.Error != "" {
		t.Fatalf("state after recovery = %+v", st)
	}
}

// TestCloseDuringRebuild: a cluster that finishes starting after Close is
// closed at once, never left running.
func TestCloseDuringRebuild(t *testing.T) {
	ts := newTestServer(t, "sticky")
	gate := make(chan struct{})
	ts.starter.mu.Lock()
	ts.starter.gate = gate
	ts.starter.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- ts.s.SetStrategy("cache") }()
	waitFor(t, func() bool { return ts.s.State().Phase == "rebuilding" })
	closed := make(chan error, 1)
	go func() { closed <- ts.s.Close() }()
	// Close cancels the start; the starter sees its context end.
	if err := <-done; err == nil {
		t.Fatal("SetStrategy succeeded although the server closed")
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(gate)
	for _, c := range ts.starter.started {
		if !c.isClosed() {
			t.Fatalf("cluster %s left running after Close", c.Strategy())
		}
	}
}

func TestShoppers(t *testing.T) {
	var (
		mu      sync.Mutex
		started []*fakeShoppers
	)
	ts := newTestServer(t, "sticky", func(c *Config) {
		c.Shoppers = func(_ context.Context, url string, rate float64) (Shoppers, error) {
			sh := &fakeShoppers{url: url, rate: rate}
			mu.Lock()
			started = append(started, sh)
			mu.Unlock()
			return sh, nil
		}
	})
	last := func() *fakeShoppers {
		mu.Lock()
		defer mu.Unlock()
		if len(started) == 0 {
			t.Fatal("no shoppers were started")
		}
		return started[len(started)-1]
	}
	ts.mustDo(t, 200, "POST", "/play/api/shoppers", `{"on":true,"rate":12}`)
	if url, rate, closed := last().get(); url != ts.starter.last().BalancerURL() || rate != 12 || closed {
		t.Fatalf("shoppers started at %s rate %g closed %v", url, rate, closed)
	}
	ts.mustDo(t, 200, "POST", "/play/api/shoppers", `{"rate":30}`)
	if _, rate, _ := last().get(); rate != 30 {
		t.Fatalf("rate = %g after a change to 30", rate)
	}
	ts.mustDo(t, 400, "POST", "/play/api/shoppers", `{"rate":100000}`)

	first := last()
	ts.mustDo(t, 200, "POST", "/play/api/strategy", `{"strategy":"client"}`)
	if _, _, closed := first.get(); !closed {
		t.Fatal("shoppers of the old cluster were not stopped")
	}
	if url, rate, closed := last().get(); url != ts.starter.last().BalancerURL() || rate != 30 || closed {
		t.Fatalf("shoppers after rebuild: %s rate %g closed %v", url, rate, closed)
	}
	ts.mustDo(t, 200, "POST", "/play/api/shoppers", `{"on":false}`)
	if _, _, closed := last().get(); !closed {
		t.Fatal("shoppers were not stopped")
	}
	if st := ts.s.State().Shoppers; st.On || !st.Available {
		t.Fatalf("shoppers state = %+v", st)
	}
	ts.requireEvent(t, "background shoppers on — 12 requests per second")
	ts.requireEvent(t, "background shoppers off")
}

func TestEventStream(t *testing.T) {
	ts := newTestServer(t, "sticky")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", ts.http.URL+"/play/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func(name string, match func([]byte) bool) {
		t.Helper()
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == name:
				if match([]byte(strings.TrimPrefix(line, "data: "))) {
					return
				}
			}
		}
		t.Fatalf("stream ended before a matching %q event: %v", name, sc.Err())
	}
	next("state", func(b []byte) bool {
		var st State
		return json.Unmarshal(b, &st) == nil && st.Phase == "running" && len(st.Replicas) == 3
	})
	next("log", func(b []byte) bool { return bytes.Contains(b, []byte("cluster ready")) })
	ts.mustDo(t, 200, "POST", "/play/api/replicas/r2/kill", "")
	next("log", func(b []byte) bool {
		var e Event
		return json.Unmarshal(b, &e) == nil && e.Kind == EventAction && strings.HasPrefix(e.Text, "r2 killed")
	})
	next("state", func(b []byte) bool {
		var st State
		if json.Unmarshal(b, &st) != nil {
			return false
		}
		for _, r := range st.Replicas {
			if r.ID == "r2" && r.Status == "down" {
				return true
			}
		}
		return false
	})
	// Close ends the stream, so that an http.Server can shut down.
	if err := ts.s.Close(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if ctx.Err() != nil {
		t.Fatal("the stream did not end when the server closed")
	}
}

func TestDashboardAssets(t *testing.T) {
	ts := newTestServer(t, "sticky")
	resp, err := http.Get(ts.http.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET / = %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	for _, want := range []string{`<iframe id="shop-frame" src="/shop/"`, `/play/assets/play.js`, `aria-live`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("dashboard lacks %q", want)
		}
	}
	for _, path := range []string{"/play/assets/play.js", "/play/assets/play.css", "/play/assets/api.js", "/play/assets/game.js"} {
		ts.mustDo(t, 200, "GET", path, "")
	}
	// No CDN: no asset names another origin.
	err = fs.WalkDir(webFS, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("http://")) || bytes.Contains(b, []byte("https://")) || bytes.Contains(b, []byte("//cdn")) {
			t.Errorf("%s refers to another origin", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The shop page and its absolute paths reach the balancer.
	if b := ts.mustDo(t, 200, "GET", "/shop/", ""); !bytes.Contains(b, []byte("<h1>shop</h1>")) {
		t.Fatalf("/shop/ = %s", b)
	}
	ts.mustDo(t, 200, "GET", "/api/cart", "")
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the condition", cond)
}
