package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
)

func TestAppBadFlagsExit2WithOneLine(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--store", "floppy"}, "--store"},
		{[]string{"--store", "redis"}, "--redis"},
		{[]string{"--store", "redis", "--redis", "redis://127.0.0.1:1/0", "--redis-cluster", "127.0.0.1:2"}, "--redis-cluster"},
		{[]string{"--store", "redis", "--redis-cluster", "nohostport"}, "--redis-cluster"},
		{[]string{"--store", "redis", "--redis-sentinel", "127.0.0.1:26379"}, "--redis-sentinel"},
		{[]string{"--store", "redis", "--redis", "redis://127.0.0.1:1/0", "--redis-wait", "-1"}, "--redis-wait"},
		{[]string{"--repl-quorum", "0"}, "--repl-quorum"},
		{[]string{"--repl-quorum", "most"}, "--repl-quorum"},
		{[]string{"--repl-quorum", "3"}, "--repl-quorum"},
		{[]string{"--store-retry", "-1s"}, "--store-retry"},
		{[]string{"--store", "postgres"}, "--postgres"},
		{[]string{"--store", "sqlite", "--sqlite", ""}, "--sqlite"},
		{[]string{"--store", "replicated", "--cluster-listen", "nowhere"}, "--cluster-listen"},
		{[]string{"--store", "replicated", "--peers", "a:1,oops"}, "--peers"},
		{[]string{"--secret", "short"}, "--secret"},
		{[]string{"--work", "-1s"}, "--work"},
		{[]string{"--work", "soon"}, "-work"},
		{[]string{"--max-inflight", "-1"}, "--max-inflight"},
		{[]string{"--queue", "-1"}, "--queue"},
		{[]string{"--max-sessions", "-1"}, "--max-sessions"},
		{[]string{"--old-secret", "0123456789abcdef0123"}, "--old-secret"},
		{[]string{"--store", "cookie", "--secret", "0123456789abcdef0123", "--old-secret", "short"}, "--old-secret"},
		{[]string{"--checkout-ledger", "sqlite"}, "--checkout-ledger"},
		{[]string{"--store", "cookie", "--checkout-ledger", "memory"}, "--checkout-ledger"},
		{[]string{"--store", "cookie", "--checkout-ledger", "redis"}, "--redis"},
		{[]string{"--store", "cookie", "--checkout-ledger", "postgres"}, "--postgres"},
		{[]string{"--drain-delay", "-1s"}, "--drain-delay"},
		{[]string{"--listen", "nope"}, "--listen"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := NewMain(io.Discard, &stderr).Run(context.Background(), append([]string{"app"}, tt.args...))
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if !strings.HasPrefix(first, "statelab app: ") || !strings.Contains(first, tt.want) {
				t.Errorf("first line %q does not name %q", first, tt.want)
			}
		})
	}
}

func TestAppEnvironmentDefaults(t *testing.T) {
	t.Setenv("STATELAB_STORE", "floppy")
	var stderr bytes.Buffer
	if code := NewMain(io.Discard, &stderr).Run(context.Background(), []string{"app"}); code != 2 || !strings.Contains(stderr.String(), "floppy") {
		t.Errorf("exit %d, stderr %q: STATELAB_STORE was not read", code, stderr.String())
	}
}

var servingAddr = regexp.MustCompile(`msg="app: serving".* addr=(\S+)`)

// startApp runs statelab app in this process with args and returns its
// base URL, its log, and a stop function that cancels it (as SIGTERM
// would) and returns its exit status.
func startApp(t *testing.T, args ...string) (base string, log *testenv.Buffer, stop func() int) {
	t.Helper()
	log = &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- NewMain(io.Discard, log).Run(ctx, append([]string{"app", "--listen", "127.0.0.1:0"}, args...))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := servingAddr.FindStringSubmatch(log.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("app exited with %d before serving: %s", code, log.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("app did not start serving: %s", log.String())
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			code = <-done
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return base, log, stop
}

func TestAppServesAndShutsDownGracefully(t *testing.T) {
	base, log, stop := startApp(t, "--store", "memory", "--id", "solo", "--max-inflight", "4", "--work", "1ms")
	if !strings.Contains(log.String(), "random one") {
		t.Errorf("no log line about the random secret: %s", log.String())
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := client.Post(base+"/api/cart/items", "application/json", strings.NewReader(`{"sku":"SKU-0007","qty":2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Served-By") != "solo" {
		t.Fatalf("add: %s, X-Served-By %q", resp.Status, resp.Header.Get("X-Served-By"))
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
		if path == "/metrics" && !strings.Contains(string(body), "statelab_session_updates_total 1") {
			t.Errorf("/metrics lacks the session manager's counters")
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d after a graceful stop; log: %s", code, log.String())
	}
	if !strings.Contains(log.String(), `msg="app: stopped"`) {
		t.Errorf("no stop line in the log: %s", log.String())
	}
}

func TestAppCookieStoreWithSecret(t *testing.T) {
	secret := "0123456789abcdef-shared"
	a, _, _ := startApp(t, "--store", "cookie", "--id", "a", "--secret", secret)
	b, log, _ := startApp(t, "--store", "cookie", "--id", "b", "--secret", secret)
	if strings.Contains(log.String(), "random one") {
		t.Error("logged a random secret although --secret was given")
	}
	jar, _ := cookiejar.New(nil) // both on 127.0.0.1: the cookie goes to both
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := client.Post(a+"/api/cart/items", "application/json", strings.NewReader(`{"sku":"SKU-0100","qty":4}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(b + "/api/cart")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"sku":"SKU-0100","name":`) || !strings.Contains(string(body), `"served_by":"b"`) {
		t.Errorf("replica b's view of the cart: %s", body)
	}
}

// startRedis runs a throwaway redis-server on port and returns a function
// that SIGKILLs it. The test fails if it does not answer in time.
func startRedis(t *testing.T, port int) (stop func()) {
	t.Helper()
	p := startProc(t, "redis-server", "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning")
	poll(t, "redis-server to accept connections", 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p.kill
}

// TestAppStartsWithRedisDown starts the app before its Redis: it serves,
// with /healthz 200 and /readyz and the cart API 503 with Retry-After,
// (a request that needs no session, such as GET /api/cart without a
// cookie, is served) until the test starts redis-server on the address it was given, then
// becomes ready by itself. With --store-retry 0 it exits instead.
func TestAppStartsWithRedisDown(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	port := testenv.FreePort(t)
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)

	var stderr bytes.Buffer
	if code := NewMain(io.Discard, &stderr).Run(context.Background(), []string{"app", "--listen", "127.0.0.1:0", "--store", "redis", "--redis", url, "--store-retry", "0"}); code != 1 {
		t.Fatalf("--store-retry 0 with Redis down: exit %d, want 1; stderr: %s", code, stderr.String())
	}

	base, _, _ := startApp(t, "--store", "redis", "--id", "r", "--redis", url, "--store-retry", "100ms")
	status := appStatus(t, base)
	expectAliveNotReady(t, status, "with Redis not started")

	startRedis(t, port)
	poll(t, "the app to become ready once Redis runs", 20*time.Second, func() bool {
		code, _ := status("GET", "/readyz", "")
		return code == http.StatusOK
	})
	if code, _ := status("POST", "/api/cart/items", `{"sku":"SKU-0001","qty":1}`); code != http.StatusOK {
		t.Errorf("add once Redis runs: %d, want 200", code)
	}
}

func TestAppAnswers503WhileRedisIsDownAndRecovers(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	port := testenv.FreePort(t)
	stopRedis := startRedis(t, port)
	base, _, _ := startApp(t, "--store", "redis", "--id", "r", "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	add := func() int {
		code, _, _ := shopperRequest(client, "POST", base+"/api/cart/items", `{"sku":"SKU-0001","qty":1}`)
		return code
	}
	if code := add(); code != http.StatusOK {
		t.Fatalf("add with redis up: %d", code)
	}

	stopRedis()
	for _, path := range []string{"/api/cart", "/readyz"} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s with redis down: %s, Retry-After %q; want 503 with Retry-After", path, resp.Status, resp.Header.Get("Retry-After"))
		}
	}
	if code := add(); code != http.StatusServiceUnavailable {
		t.Errorf("add with redis down: %d, want 503", code)
	}

	startRedis(t, port) // an empty Redis on the same address: the app must reconnect by itself
	poll(t, "the app to serve again without a restart", 20*time.Second, func() bool {
		return add() == http.StatusOK
	})
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz after redis came back: %s", resp.Status)
	}
}

func TestAppDrainDelayKeepsServingWithReadinessOff(t *testing.T) {
	base, log, stop := startApp(t, "--store", "memory", "--id", "d", "--drain-delay", "4s")
	exited := make(chan int, 1)
	go func() { exited <- stop() }()
	poll(t, "readiness to turn 503 after SIGTERM", 10*time.Second, func() bool {
		code, _, _ := shopperRequest(http.DefaultClient, "GET", base+"/readyz", "")
		return code == http.StatusServiceUnavailable
	})
	// Readiness is off, but the replica still serves what it is sent.
	if code, by, body := shopperRequest(http.DefaultClient, "GET", base+"/api/catalog?limit=1", ""); code != http.StatusOK || by != "d" {
		t.Errorf("request during the drain delay: %d by %q: %s", code, by, body)
	}
	if code := <-exited; code != 0 {
		t.Errorf("exit %d; log: %s", code, log.String())
	}
	if !strings.Contains(log.String(), "still serving") {
		t.Errorf("no drain line in the log: %s", log.String())
	}
}

// TestAppMaxSessions: one client minting sessions cannot grow a memory
// store without bound: beyond --max-sessions new sessions get 503 with
// Retry-After, while the sessions already held keep working. Before the
// flag the store took every session it was given.
func TestAppMaxSessions(t *testing.T) {
	base, _, _ := startApp(t, "--store", "memory", "--max-sessions", "3")
	add := func(c *http.Client) *http.Response {
		t.Helper()
		resp, err := c.Post(base+"/api/cart/items", "application/json", strings.NewReader(`{"sku":"SKU-0001","qty":1}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	var holders []*http.Client
	for i := 0; i < 3; i++ {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		if resp := add(c); resp.StatusCode != http.StatusOK {
			t.Fatalf("session %d: status %d", i, resp.StatusCode)
		}
		holders = append(holders, c)
	}
	jar, _ := cookiejar.New(nil)
	resp := add(&http.Client{Jar: jar, Timeout: 10 * time.Second})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th session: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for i, c := range holders {
		if resp := add(c); resp.StatusCode != http.StatusOK {
			t.Fatalf("existing session %d in a full store: status %d", i, resp.StatusCode)
		}
	}
}

// TestAppRedisCluster serves carts from a Redis Cluster given by
// --redis-cluster (a private one-node cluster holding every slot), with
// --redis-wait 0 (a one-node cluster has no replica to wait for).
func TestAppRedisCluster(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	port := 0
	for range 50 {
		p := testenv.FreePort(t)
		if p+10000 > 65535 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err == nil {
			ln.Close()
			port = p
			break
		}
	}
	if port == 0 {
		t.Fatal("no free port pair for a cluster node")
	}
	dir := t.TempDir()
	startProc(t, "redis-cluster-node", "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf", "--dir", dir,
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	assigned := false
	poll(t, "the one-node cluster to be ok", 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if !assigned {
			assigned = rc.ClusterAddSlotsRange(ctx, 0, 16383).Err() == nil
			return false
		}
		info, err := rc.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})

	base, _, _ := startApp(t, "--store", "redis", "--id", "c", "--redis-cluster", addr, "--redis-wait", "0")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	if code, _, body := shopperRequest(client, "POST", base+"/api/cart/items", `{"sku":"SKU-0007","qty":2}`); code != http.StatusOK {
		t.Fatalf("add through a Redis Cluster store: %d %s", code, body)
	}
	if code, _, body := shopperRequest(client, "GET", base+"/api/cart", ""); code != http.StatusOK || !strings.Contains(string(body), `"sku":"SKU-0007"`) {
		t.Fatalf("cart: %d %s", code, body)
	}
	if n, err := rc.DBSize(context.Background()).Result(); err != nil || n == 0 {
		t.Fatalf("the cluster node holds %d keys (%v), want the session", n, err)
	}
}

// TestAppCookieKeyRotationAndFlags: --old-secret keeps cookies sealed with
// a previous key readable while new ones are sealed with --secret;
// --cookie-host-prefix and --cookie-secure set the cookie's name and
// Secure flag. Before, the app had none of these flags.
func TestAppCookieKeyRotationAndFlags(t *testing.T) {
	const oldKey, newKey = "old-key-0123456789abcdef-0123456789", "new-key-0123456789abcdef-0123456789"
	add := func(base string) *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/cart/items", strings.NewReader(`{"sku":"SKU-0001","qty":2}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
			t.Fatalf("add: %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
		return resp.Cookies()[0]
	}
	items := func(base string, c *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/cart", nil)
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Items []struct{ Qty int } }
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, it := range v.Items {
			n += it.Qty
		}
		return n
	}
	oldBase, _, _ := startApp(t, "--store", "cookie", "--secret", oldKey)
	sealedOld := add(oldBase)
	rotated, _, _ := startApp(t, "--store", "cookie", "--secret", newKey, "--old-secret", oldKey)
	if n := items(rotated, sealedOld); n != 2 {
		t.Fatalf("during rotation a cookie sealed with the old key shows %d items, want 2", n)
	}
	sealedNew := add(rotated)
	newOnly, _, _ := startApp(t, "--store", "cookie", "--secret", newKey)
	if n := items(newOnly, sealedNew); n != 2 {
		t.Fatalf("a cookie sealed during rotation is not sealed with the new key (%d items)", n)
	}
	if n := items(newOnly, sealedOld); n != 0 {
		t.Fatalf("without --old-secret an old cookie still opens (%d items)", n)
	}

	hostBase, _, _ := startApp(t, "--store", "memory", "--cookie-host-prefix")
	if c := add(hostBase); c.Name != "__Host-statelab_session" || !c.Secure || c.Path != "/" || c.Domain != "" {
		t.Fatalf("--cookie-host-prefix: cookie %+v", c)
	}
	secBase, _, _ := startApp(t, "--store", "memory", "--cookie-secure")
	if c := add(secBase); c.Name != "statelab_session" || !c.Secure {
		t.Fatalf("--cookie-secure over plain HTTP: cookie %+v", c)
	}
	if c := add(oldBase); c.Secure {
		t.Fatalf("default over plain HTTP: cookie %+v is Secure", c)
	}
}
