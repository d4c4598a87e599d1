package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/machine"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startCluster starts a cluster for the test and closes it at cleanup,
// failing the test if Close reports an error (a crash).
func startCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	cfg.Binary = testenv.StatelabBinary(t)
	cfg.Dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), machine.Scaled(30*time.Second, readyStretch))
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
			t.Errorf("Close left %s behind", c.Dir())
		}
	})
	return c
}

// get GETs url and returns the status and X-Served-By, using jar's client.
func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	return send(client, http.MethodGet, url, "")
}

// send sends one request within 3 s, body as JSON when not empty, and
// returns the status and X-Served-By; status 0 when nothing answered.
func send(client *http.Client, method, url, body string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, ""
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Served-By")
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, cond)
}

func replicaState(c *Cluster, id string) State {
	r, _ := c.Replica(id)
	return r.State
}

func TestClusterLifecycle(t *testing.T) {
	const secret = "lifecycle-secret-0123456789abcdef"
	c := startCluster(t, Config{Strategy: strategy.Naive, Replicas: 2, Secret: secret})
	// The secret reaches the children through their environment, never
	// their command line, which every local user can read.
	pids := []int{c.lb.pid()}
	for _, r := range c.Replicas() {
		pids = append(pids, r.PID)
	}
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cmdline), secret) || len(cmdline) == 0 {
			t.Fatalf("process %d: command line %q carries the secret", pid, cmdline)
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(environ), "STATELAB_SECRET="+secret) {
			t.Fatalf("process %d: the secret is not in its environment", pid)
		}
	}
	client := &http.Client{}
	served := map[string]bool{}
	for i := 0; i < 6; i++ {
		code, by := get(t, client, c.URL()+"/api/cart")
		if code != http.StatusOK {
			t.Fatalf("GET /api/cart through the balancer: status %d", code)
		}
		served[by] = true
	}
	if !served["r1"] || !served["r2"] {
		t.Fatalf("round robin served by %v, want r1 and r2", served)
	}

	t.Run("kill and restart", func(t *testing.T) {
		if err := c.Kill(context.Background(), "r1"); err != nil {
			t.Fatal(err)
		}
		if r, _ := c.Replica("r1"); r.State != StateDown || r.PID != 0 {
			t.Fatalf("after Kill: %+v, want down with no pid", r)
		}
		if code, _ := get(t, client, c.Replicas()[0].URL+"/healthz"); code != 0 {
			t.Fatalf("killed replica still answers (%d)", code)
		}
		if err := c.Restart(context.Background(), "r1"); err != nil {
			t.Fatal(err)
		}
		r, _ := c.Replica("r1")
		if r.State != StateUp || r.Starts != 2 {
			t.Fatalf("after Restart: %+v, want up, started twice", r)
		}
		if code, by := get(t, client, r.URL+"/healthz"); code != http.StatusOK || by != "r1" {
			t.Fatalf("restarted replica: status %d served by %q", code, by)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		if err := c.Pause(context.Background(), "r2"); err != nil {
			t.Fatal(err)
		}
		if got := replicaState(c, "r2"); got != StatePaused {
			t.Fatalf("state %s, want paused", got)
		}
		short := &http.Client{Timeout: 300 * time.Millisecond}
		if code, _ := get(t, short, c.Replicas()[1].URL+"/healthz"); code != 0 {
			t.Fatalf("paused replica answered %d", code)
		}
		if err := c.Resume(context.Background(), "r2"); err != nil {
			t.Fatal(err)
		}
		if code, _ := get(t, client, c.Replicas()[1].URL+"/healthz"); code != http.StatusOK {
			t.Fatalf("resumed replica: status %d", code)
		}
	})

	t.Run("add and remove", func(t *testing.T) {
		r, err := c.Add(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != "r3" || r.State != StateUp || !r.InBalancer {
			t.Fatalf("added %+v, want r3 up in the balancer", r)
		}
		eventually(t, "r3 to serve through the balancer", func() bool {
			_, by := get(t, client, c.URL()+"/api/cart")
			return by == "r3"
		})
		if err := c.Remove(context.Background(), "r3"); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Replica("r3"); ok {
			t.Fatal("removed replica still listed")
		}
		bs, err := c.Backends(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 2 {
			t.Fatalf("balancer lists %d backends after removal, want 2: %+v", len(bs), bs)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if err := c.Kill(context.Background(), "r9"); !errors.Is(err, ErrUnknownReplica) {
			t.Errorf("Kill(r9) = %v, want ErrUnknownReplica", err)
		}
		if err := c.StopStore(context.Background()); !errors.Is(err, ErrNoStore) {
			t.Errorf("StopStore on naive = %v, want ErrNoStore", err)
		}
	})

	kinds := map[EventKind]int{}
	for _, e := range c.Events(0) {
		kinds[e.Kind]++
	}
	for _, k := range []EventKind{EventStarted, EventKill, EventRestart, EventPause, EventResume, EventAdd, EventRemove} {
		if kinds[k] == 0 {
			t.Errorf("no %s event in %v", k, kinds)
		}
	}
	if kinds[EventCrash] != 0 {
		t.Errorf("crash events without a crash: %+v", c.Crashes())
	}
}

func TestClusterReportsCrash(t *testing.T) {
	cfg := Config{Strategy: strategy.Sticky, Replicas: 1, Binary: testenv.StatelabBinary(t), Dir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), machine.Scaled(30*time.Second, readyStretch))
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Replica("r1")
	// Kill it behind the cluster's back: that is a crash.
	if err := syscall.Kill(r.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the crash to be reported", func() bool { return len(c.Crashes()) == 1 })
	if got := replicaState(c, "r1"); got != StateDown {
		t.Errorf("crashed replica state %s, want down", got)
	}
	if err := c.Close(); !errors.Is(err, ErrCrashed) || !strings.Contains(err.Error(), "r1") {
		t.Errorf("Close = %v, want ErrCrashed naming r1", err)
	}
}

func TestClusterRedisStopStart(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	c := startCluster(t, Config{Strategy: strategy.Cache, Replicas: 1})
	st := c.Store()
	if !st.External || !st.Managed || !st.Up || st.Kind != "redis" {
		t.Fatalf("store %+v, want a managed redis, up", st)
	}
	port := c.store.fault.(*redisServer).port
	ctx := context.Background()
	if _, err := redisCommand(ctx, port, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopStore(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Store().Up {
		t.Fatal("store still up after StopStore")
	}
	if _, err := redisCommand(ctx, port, "PING"); err == nil {
		t.Fatal("redis answers after StopStore")
	}
	if err := c.StartStore(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := redisCommand(ctx, port, "GET", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got != "$1" { // bulk string of length 1: "v" follows
		t.Fatalf("GET k after restart = %q, want the value kept", got)
	}
}

func TestFaultProxy(t *testing.T) {
	p := echoProxy(t) // an echo server stands for the store

	echo := func() error {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "ping\n" {
			return errors.New("bad echo " + line)
		}
		return nil
	}
	if err := echo(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	held, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// Wait until the proxy tracks the held connection, then cut.
	eventually(t, "the proxy to track the connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) >= 2
	})
	p.cut()
	if err := echo(); err == nil {
		t.Fatal("proxy still forwards after cut")
	}
	held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatal("held connection survived the cut")
	}
	if err := p.restore(); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}

func TestStartBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no strategy", Config{Binary: "x"}, strategy.ErrUnknown},
		{"no binary", Config{Strategy: strategy.Naive}, ErrBadConfig},
		{"negative replicas", Config{Strategy: strategy.Naive, Binary: "x", Replicas: -1}, ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Start(context.Background(), tt.cfg); !errors.Is(err, tt.want) {
				t.Errorf("Start = %v, want %v", err, tt.want)
			}
		})
	}
}

// shop adds sku to the cart of client's session through the balancer and
// returns the status (0 when the request failed or timed out).
func shop(t *testing.T, client *http.Client, base, sku string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/cart/items", strings.NewReader(`{"sku":"`+sku+`","qty":1}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// firstSKUs reads the catalog through the balancer.
func firstSKUs(t *testing.T, base string, n int) []string {
	t.Helper()
	resp, err := http.Get(base + "/api/catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cat struct {
		Products []struct {
			SKU string `json:"sku"`
		} `json:"products"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil || len(cat.Products) < n {
		t.Fatalf("catalog: %v (%d products)", err, len(cat.Products))
	}
	var out []string
	for _, p := range cat.Products[:n] {
		out = append(out, p.SKU)
	}
	return out
}

// TestClusterStoreOutage stops and starts each kind of external store the
// cluster can fail, checking that writes fail while it is down, work again
// after, and that nothing written before is lost.
func TestClusterStoreOutage(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"sqlite", func(t *testing.T) Config { return Config{Strategy: strategy.Database} }},
		{"postgres", func(t *testing.T) Config {
			return Config{Strategy: strategy.Database, PostgresURL: testenv.PostgresURL(t)}
		}},
		{"redis by URL", func(t *testing.T) Config { return Config{Strategy: strategy.Cache, RedisURL: testenv.RedisURL(t)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg(t)
			cfg.Replicas = 1
			c := startCluster(t, cfg)
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			skus := firstSKUs(t, c.URL(), 3)
			if code := shop(t, client, c.URL(), skus[0]); code/100 != 2 {
				t.Fatalf("add before the outage: status %d", code)
			}
			if err := c.StopStore(context.Background()); err != nil {
				t.Fatal(err)
			}
			if c.Store().Up {
				t.Fatal("store reported up after StopStore")
			}
			if code := shop(t, client, c.URL(), skus[1]); code/100 == 2 {
				t.Fatalf("add with the store down: status %d, want a failure", code)
			}
			if err := c.StartStore(context.Background()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "writes to work again", func() bool { return shop(t, client, c.URL(), skus[2])/100 == 2 })
			resp, err := client.Get(c.URL() + "/api/cart")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var cart struct {
				Items []struct {
					SKU string `json:"sku"`
				} `json:"items"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&cart); err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, it := range cart.Items {
				have[it.SKU] = true
			}
			if !have[skus[0]] || !have[skus[2]] {
				t.Errorf("cart after the outage has %v, want %s and %s", have, skus[0], skus[2])
			}
		})
	}
}
