package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statelab/statelab/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// This file is the cart's end-to-end lesson: three `statelab app` processes
// behind a `statelab lb` process, for every store; a shopper adds three items
// through the balancer, the replica that served them is SIGKILLed, and the
// shopper reads the cart again. Every store but bare memory keeps the cart.

// proc is a statelab child process with its log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *testenv.Buffer
	done chan struct{}
}

// startProc starts bin with args, its stderr and stdout captured, and kills
// it when the test ends.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = envWithoutStatelab()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, p.log.String())
		}
	})
	return p
}

// envWithoutStatelab is this process's environment without the STATELAB_*
// variables, which would act as flag defaults in a statelab child.
func envWithoutStatelab() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STATELAB_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill SIGKILLs p and waits for it to be gone.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// waitLog polls p's log until re matches and returns the match's groups.
func (p *proc) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before logging %v:\n%s", p.name, re, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %v in time:\n%s", p.name, re, p.log.String())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

var (
	appServing  = regexp.MustCompile(`msg="app: serving".* addr=(\S+)`)
	clusterAddr = regexp.MustCompile(`msg="app: serving".* cluster_addr=(\S+)`)
)

// poll calls try until it returns true or the deadline passes.
func poll(t *testing.T, what string, timeout time.Duration, try func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, what, try)
}

// e2eCart is GET /api/cart's body as the test reads it.
type e2eCart struct {
	Items []struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	} `json:"items"`
	ServedBy string `json:"served_by"`
}

func (c e2eCart) skus() []string {
	var s []string
	for _, it := range c.Items {
		s = append(s, it.SKU)
	}
	slices.Sort(s)
	return s
}

// shopperRequest sends one request through the balancer and returns the
// status, X-Served-By and body; a transport error is status 0.
func shopperRequest(client *http.Client, method, url, body string) (int, string, []byte) {
	resp, b, err := send(client, method, url, body, "")
	if err != nil {
		return 0, "", []byte(err.Error())
	}
	return resp.StatusCode, resp.Header.Get("X-Served-By"), b
}

// send sends one request within 5 s: body as JSON when not empty, cookie
// as the Cookie header when not empty. It returns the response with its
// body read, or the transport error.
func send(client *http.Client, method, url, body, cookie string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json") // JSON endpoints refuse other types (415)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body) // a body cut short is still an answer
	return resp, b, nil
}

// e2eStore is one row of the kill-the-serving-replica test.
type e2eStore struct {
	store    string
	policy   string
	survives bool                                 // the cart outlives its replica
	args     func(t *testing.T) []string          // store flags shared by the three replicas
	replica  func(i int, peers []string) []string // per-replica flags
}

func TestKillServingReplica(t *testing.T) {
	bin := testenv.StatelabBinary(t)
	secret := "e2e shared secret " + rand.Text()
	stores := []e2eStore{
		{store: "memory", policy: "sticky", survives: false},
		{store: "cookie", policy: "round_robin", survives: true},
		{store: "sqlite", policy: "round_robin", survives: true, args: func(t *testing.T) []string {
			return []string{"--sqlite", filepath.Join(t.TempDir(), "sessions.db")}
		}},
		{store: "redis", policy: "round_robin", survives: true, args: func(t *testing.T) []string {
			return []string{"--redis", testenv.RedisURL(t), "--redis-prefix", "statelab-e2e-" + strings.ToLower(rand.Text()[:10]) + ":"}
		}},
		{store: "postgres", policy: "round_robin", survives: true, args: func(t *testing.T) []string {
			url, schema := testenv.PostgresURL(t), "statelab_e2e_"+strings.ToLower(rand.Text()[:10])
			t.Cleanup(func() { dropSchema(t, url, schema) })
			return []string{"--postgres", url, "--postgres-schema", schema}
		}},
		{store: "replicated", policy: "sticky", survives: true, replica: func(i int, peers []string) []string {
			args := []string{"--cluster-listen", "127.0.0.1:0"}
			if len(peers) > 0 {
				args = append(args, "--peers", strings.Join(peers, ","))
			}
			return args
		}},
	}
	for _, st := range stores {
		t.Run(st.store, func(t *testing.T) {
			t.Parallel()
			killServingReplica(t, bin, secret, st)
		})
	}
}

func killServingReplica(t *testing.T, bin, secret string, st e2eStore) {
	var common []string
	if st.args != nil {
		common = st.args(t)
	}
	apps := map[string]*proc{}
	var backends, peers []string
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("%s-r%d", st.store, i)
		args := []string{"app", "--listen", "127.0.0.1:0", "--id", id, "--store", st.store, "--secret", secret}
		args = append(args, common...)
		if st.replica != nil {
			args = append(args, st.replica(i, peers)...)
		}
		p := startProc(t, id, bin, args...)
		addr := p.waitLog(t, appServing)[1]
		if st.replica != nil {
			peers = append(peers, p.waitLog(t, clusterAddr)[1])
		}
		apps[id] = p
		backends = append(backends, "http://"+addr)
	}
	if st.store == "replicated" {
		// Every member must see the other two before a write can have a
		// backup on another process.
		for i, u := range backends {
			re := regexp.MustCompile(fmt.Sprintf(`statelab_replstore_members\{node="%s-r%d"\} 3`, st.store, i+1))
			poll(t, "cluster membership", 20*time.Second, func() bool {
				_, _, body := shopperRequest(http.DefaultClient, "GET", u+"/metrics", "")
				return re.Match(body)
			})
		}
	}

	lbPort := testenv.FreePort(t)
	lbArgs := []string{"lb", "--listen", fmt.Sprintf("127.0.0.1:%d", lbPort), "--admin", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"--policy", st.policy, "--health-path", "/readyz", "--health-interval", "100ms"}
	for _, b := range backends {
		lbArgs = append(lbArgs, "--backend", b)
	}
	startProc(t, st.store+"-lb", bin, lbArgs...)
	lb := fmt.Sprintf("http://127.0.0.1:%d", lbPort)

	jar, _ := cookiejar.New(nil)
	shopper := &http.Client{Jar: jar}
	poll(t, "the balancer to serve", 20*time.Second, func() bool {
		code, _, _ := shopperRequest(shopper, "GET", lb+"/api/catalog?limit=1", "")
		return code == http.StatusOK
	})

	want := []string{"SKU-0011", "SKU-0022", "SKU-0033"}
	var servedBy []string
	for _, sku := range want {
		code, by, body := shopperRequest(shopper, "POST", lb+"/api/cart/items", `{"sku":"`+sku+`","qty":2}`)
		if code != http.StatusOK {
			t.Fatalf("add %s through the balancer: %d %s", sku, code, body)
		}
		servedBy = append(servedBy, by)
	}
	victim := servedBy[len(servedBy)-1]
	if st.policy == "sticky" && (servedBy[0] != victim || servedBy[1] != victim) {
		t.Fatalf("sticky policy spread one shopper over %v", servedBy)
	}
	if apps[victim] == nil {
		t.Fatalf("X-Served-By %q names no replica", victim)
	}
	apps[victim].kill()

	var after e2eCart
	poll(t, "a live replica to answer for the cart", 20*time.Second, func() bool {
		code, by, body := shopperRequest(shopper, "GET", lb+"/api/cart", "")
		if code != http.StatusOK || by == victim {
			return false
		}
		if err := json.Unmarshal(body, &after); err != nil {
			t.Fatalf("cart body %q: %v", body, err)
		}
		return true
	})
	if after.ServedBy == victim || apps[after.ServedBy] == nil {
		t.Fatalf("cart served by %q after %q was killed", after.ServedBy, victim)
	}
	got := after.skus()
	switch {
	case st.survives && !slices.Equal(got, want):
		t.Errorf("%s: after killing %s the cart read on %s holds %v, want all of %v", st.store, victim, after.ServedBy, got, want)
	case !st.survives && len(got) != 0:
		t.Errorf("%s: the cart survived its replica (%v on %s); memory behind sticky sessions must lose it", st.store, got, after.ServedBy)
	}
	for _, it := range after.Items {
		if it.Qty != 2 {
			t.Errorf("%s: line %s has qty %d, want 2", st.store, it.SKU, it.Qty)
		}
	}
	t.Logf("%s: items added on %v, %s killed, cart read on %s: %v", st.store, servedBy, victim, after.ServedBy, got)
}

// dropSchema removes a test's PostgreSQL schema and everything in it.
func dropSchema(t *testing.T, url, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}
