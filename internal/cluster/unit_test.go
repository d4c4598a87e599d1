package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// bareCluster is a Cluster with no process, for the parts that start none.
func bareCluster(t *testing.T, st strategy.Strategy, cfg Config) *Cluster {
	t.Helper()
	cfg.Strategy = st
	return &Cluster{cfg: cfg, spec: st.Spec(), dir: t.TempDir(), secret: "s3cret-s3cret-s3cret",
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), replicas: map[string]*replica{}}
}

func TestEventLog(t *testing.T) {
	c := bareCluster(t, strategy.Naive, Config{})
	c.event(EventStarted, "", "up")
	c.event(EventCrash, "r1", "r1 crashed")
	c.event(EventKill, "r2", "r2 killed")
	if got := c.Events(0); len(got) != 3 || got[0].Seq != 1 || got[2].Seq != 3 || got[1].Kind != EventCrash {
		t.Fatalf("Events(0) = %+v", got)
	}
	if got := c.Events(2); len(got) != 1 || got[0].Message != "r2 killed" {
		t.Errorf("Events(2) = %+v, want the kill only", got)
	}
	if got := c.Crashes(); len(got) != 1 || got[0].Replica != "r1" {
		t.Errorf("Crashes() = %+v", got)
	}
	for i := range maxEvents + 5 {
		c.event(EventAdd, "", fmt.Sprint(i))
	}
	got := c.Events(0)
	if len(got) != maxEvents || got[len(got)-1].Seq != maxEvents+8 || c.events.last() != maxEvents+8 {
		t.Errorf("after %d events: %d kept, last seq %d", maxEvents+8, len(got), got[len(got)-1].Seq)
	}
}

func TestAppArgs(t *testing.T) {
	c := bareCluster(t, strategy.Replicated, Config{Work: 20 * time.Millisecond, MaxInflight: 2})
	c.store = &storeRuntime{info: StoreInfo{Kind: stores.Replicated}, appArgs: []string{"--x", "y"}}
	r1 := &replica{id: "r1", port: 4001, clusterAddr: "127.0.0.1:5001"}
	r2 := &replica{id: "r2", port: 4002, clusterAddr: "127.0.0.1:5002"}
	c.replicas["r1"], c.replicas["r2"], c.order = r1, r2, []string{"r1", "r2"}
	args := strings.Join(c.appArgs(r2), " ")
	want := "app --listen 127.0.0.1:4002 --id r2 --store replicated --x y --work 20ms --max-inflight 2 --cluster-listen 127.0.0.1:5002"
	if args != want {
		t.Errorf("args of r2 with no live peer:\n got %s\nwant %s", args, want)
	}
	c.cfg.Work, c.cfg.MaxInflight = 0, 0
	c.store.appArgs = nil
	r2.clusterAddr = ""
	if args := strings.Join(c.appArgs(r2), " "); strings.Contains(args, "--work") || strings.Contains(args, "--cluster-listen") {
		t.Errorf("zero Work and MaxInflight and no cluster address pass no flags: %s", args)
	}
}

func TestStartStoreChoosesKind(t *testing.T) {
	tests := []struct {
		st       strategy.Strategy
		cfg      Config
		kind     stores.Kind
		external bool
		args     string
	}{
		{strategy.Naive, Config{}, stores.Memory, false, ""},
		{strategy.Replicated, Config{}, stores.Replicated, false, ""},
		{strategy.Client, Config{}, stores.Cookie, false, ""},
		{strategy.Database, Config{}, stores.SQLite, true, "--sqlite "},
	}
	for _, tt := range tests {
		c := bareCluster(t, tt.st, tt.cfg)
		s, err := startStore(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", tt.st, err)
		}
		info := s.info
		if info.Kind != tt.kind || info.External != tt.external || !info.Up || !strings.HasPrefix(strings.Join(s.appArgs, " "), tt.args) {
			t.Errorf("%s: %+v args %v", tt.st, info, s.appArgs)
		}
		if err := s.close(); err != nil {
			t.Errorf("%s: close: %v", tt.st, err)
		}
	}
	for _, cfg := range []Config{
		{RedisURL: "not a url"},
		{PostgresURL: "mysql://x/y"},
	} {
		st := strategy.Cache
		if cfg.PostgresURL != "" {
			st = strategy.Database
		}
		if _, err := startStore(context.Background(), bareCluster(t, st, cfg)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s with %+v: %v, want ErrBadConfig", st, cfg, err)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	u, _ := url.Parse("redis://example:7000/0")
	if got := hostPort(u, "6379"); got != "example:7000" {
		t.Errorf("hostPort with a port = %s", got)
	}
	u, _ = url.Parse("redis://example/0")
	if got := hostPort(u, "6379"); got != "example:6379" {
		t.Errorf("hostPort without a port = %s", got)
	}
	if !sameURL("http://a:1/", "http://a:1") || sameURL("http://a:1", "http://a:2") {
		t.Error("sameURL")
	}
	if got := exitDescription(nil); got != "exited with status 0" {
		t.Errorf("exitDescription(nil) = %q", got)
	}
	err := exec.Command("sh", "-c", "exit 3").Run()
	if got := exitDescription(err); got != "exited with status 3" {
		t.Errorf("exitDescription(exit 3) = %q", got)
	}
	err = exec.Command("sh", "-c", "kill -9 $$").Run()
	if got := exitDescription(err); got != "killed by killed" {
		t.Errorf("exitDescription(SIGKILL) = %q", got)
	}
	if h := randomHex(6); len(h) != 12 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("randomHex(6) = %q", h)
	}
}
