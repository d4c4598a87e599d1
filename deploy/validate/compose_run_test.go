package validate

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeProfilesRun runs a Compose profile without Docker: every
// statelab service of the profile becomes a statelab process on this
// machine with the environment compose.yaml gives it, only the addresses
// changed (service names become loopback ports; Redis and PostgreSQL become
// the test services). Then a shopper goes through the profile's balancer:
// adds, reads, quotes (routed to pricing), searches (routed to catalog) and
// checks out (the cart calls pricing). It proves the file's wiring works,
// not just that it parses.
func TestComposeProfilesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := statelabBinary(t)
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			storeURL := testStore(t, st)
			p, err := loadCompose(t, []string{"STATELAB_SECRET=" + testSecret, "STATELAB_ADMIN_TOKEN=" + testAdminToken}, st.name)
			if err != nil {
				t.Fatal(err)
			}
			lbURL := runProfile(t, bin, p, st, storeURL)
			shop(t, lbURL, st, true)
		})
	}
}

// testStore returns the URL of the test service the strategy's store needs
// (STATELAB_TEST_REDIS or STATELAB_TEST_POSTGRES), "" when it needs none;
// when the variable is not set it skips (fails with
// STATELAB_REQUIRE_SERVICES=1) saying what is missing.
func testStore(t *testing.T, st strategy) string {
	t.Helper()
	var env, what string
	switch {
	case st.redis:
		env, what = "STATELAB_TEST_REDIS", "a Redis"
	case st.pg:
		env, what = "STATELAB_TEST_POSTGRES", "a PostgreSQL"
	default:
		return ""
	}
	if u := os.Getenv(env); u != "" {
		return u
	}
	if os.Getenv("STATELAB_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is not set and STATELAB_REQUIRE_SERVICES=1", env)
	}
	t.Skipf("set %s to %s to run this profile", env, what)
	return ""
}

// runProfile starts the profile's statelab services as processes and
// returns the balancer's URL once it serves carts.
func runProfile(t *testing.T, bin string, p *types.Project, st strategy, storeURL string) string {
	t.Helper()
	port := map[string]string{}    // service → its loopback host:port
	cluster := map[string]string{} // replicated service → its cluster host:port
	var names []string
	for name, s := range p.Services {
		if s.Build != nil {
			names = append(names, name)
			port[name] = freeAddr(t)
			if st.store == "replicated" && s.Command[0] == "app" {
				cluster[name] = freeAddr(t)
			}
		}
	}
	slices.Sort(names)
	var clusterAddrs []string
	for _, name := range names {
		if a, ok := cluster[name]; ok {
			clusterAddrs = append(clusterAddrs, a)
		}
	}
	rewrite := func(v string) string {
		for _, name := range names {
			v = strings.ReplaceAll(v, "http://"+name+":8080", "http://"+port[name])
		}
		switch {
		case strings.HasPrefix(v, "redis://redis:"), strings.Contains(v, "@postgres:5432/"):
			return storeURL
		case v == "replicated-peers:7946":
			return strings.Join(clusterAddrs, ",")
		}
		return v
	}
	dir := t.TempDir()
	// Stateless services first, the balancer last, as depends_on orders them.
	order := func(n string) int {
		switch c := p.Services[n].Command[0]; c {
		case "pricing", "catalog":
			return 0
		case "app":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(names, func(a, b string) int { return order(a) - order(b) })
	var lbURL string
	var procs []*process
	for _, name := range names {
		s := p.Services[name]
		env := []string{}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "STATELAB_") {
				env = append(env, kv)
			}
		}
		for k, v := range s.Environment {
			if v != nil {
				env = append(env, k+"="+rewrite(*v))
			}
		}
		env = append(env, "STATELAB_LISTEN="+port[name])
		switch s.Command[0] {
		case "lb":
			env = append(env, "STATELAB_ADMIN="+freeAddr(t))
			lbURL = "http://" + port[name]
		case "catalog":
			env = append(env, "STATELAB_SQLITE="+filepath.Join(dir, name+".db"))
		case "app":
			if a, ok := cluster[name]; ok {
				env = append(env, "STATELAB_CLUSTER_LISTEN="+a)
			}
		}
		procs = append(procs, startProcess(t, bin, name, s.Command, env))
	}
	// The shop is up when the balancer serves a cart from a ready replica.
	waitServing(t, lbURL, procs)
	return lbURL
}

// process is a statelab process a test started.
type process struct {
	name  string
	ready string        // its /readyz URL; empty for a balancer
	done  chan struct{} // closed when it exits
	out   *lockedBuffer
}

// startProcess starts statelab with args and env and kills it at cleanup,
// logging its output if the test failed.
func startProcess(t *testing.T, bin, name string, args, env []string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := &process{name: name, done: make(chan struct{}), out: &lockedBuffer{}}
	if args[0] != "lb" {
		for _, kv := range env {
			if addr, ok := strings.CutPrefix(kv, "STATELAB_LISTEN="); ok {
				p.ready = "http://" + addr + "/readyz"
			}
		}
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s (%s):\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// waitServing polls until every one of procs is ready (GET /readyz 200: its
// store reachable, a replicated replica joined) and the balancer at url
// serves GET /api/cart, failing at once if one of procs exits (a bad flag or
// variable exits with status 2).
func waitServing(t *testing.T, url string, procs []*process) {
	t.Helper()
	ok200 := func(u string) bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	poll(t, 60*time.Second, "every process to be ready and the balancer at "+url+" to serve /api/cart", func() bool {
		for _, p := range procs {
			select {
			case <-p.done:
				t.Fatalf("%s exited:\n%s", p.name, p.out.String())
			default:
			}
			if p.ready != "" && !ok200(p.ready) {
				return false
			}
		}
		return ok200(url + "/api/cart")
	})
}

// shop is one shopper's visit through the balancer at lbURL.
//
// With services, the quote and the search must be served by the pricing and
// catalog replicas; without, by the cart itself (the monolith).
func shop(t *testing.T, lbURL string, st strategy, services bool) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	do := func(method, path, body string, want int) (string, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, lbURL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return string(b), resp.Header
	}
	do(http.MethodPost, "/api/cart/items", `{"sku":"SKU-0001","qty":2}`, http.StatusOK)
	// naive loses carts by design: its read may land on another replica.
	if b, _ := do(http.MethodGet, "/api/cart", "", http.StatusOK); !strings.Contains(b, `"SKU-0001"`) && st.name != "naive" {
		t.Errorf("the cart read back without the item just added: %s", b)
	}
	_, h := do(http.MethodPost, "/api/quote", `{"items":[{"sku":"SKU-0002","qty":1}]}`, http.StatusOK)
	if by := h.Get("X-Served-By"); services != strings.HasPrefix(by, "pricing-") {
		t.Errorf("/api/quote served by %q (pricing service deployed: %v)", by, services)
	}
	_, h = do(http.MethodGet, "/api/catalog?q=SKU-0003", "", http.StatusOK)
	if by := h.Get("X-Served-By"); services != strings.HasPrefix(by, "catalog-") {
		t.Errorf("/api/catalog served by %q (catalog service deployed: %v)", by, services)
	}
	if st.name != "naive" {
		// The cart prices the order through the pricing replicas.
		if b, _ := do(http.MethodPost, "/api/cart/checkout", "", http.StatusOK); !strings.Contains(b, `"order_id"`) {
			t.Errorf("checkout answered %s, want an order", b)
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// poll calls cond until it is true, failing t after within.
func poll(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's two output streams.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
