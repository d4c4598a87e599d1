package lab

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// needHosts skips a test when replicas cannot run as hosts of their own
// here (not root, no ip command).
func needHosts(t *testing.T) {
	t.Helper()
	if err := cluster.HostsAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// TestPartitionEndToEnd cuts a replicated replica off from its peers, each
// replica a host of its own. With the default majority quorum the checker
// finds no acknowledged item lost; with no quorum (one), the run is made
// and whatever it lost is what the checker says.
func TestPartitionEndToEnd(t *testing.T) {
	needHosts(t)
	for _, q := range []string{"", "one"} {
		t.Run("quorum="+q, func(t *testing.T) {
			cfg := e2eConfig(t, strategy.Replicated)
			cfg.Scenario, cfg.ReplQuorum = Partition, q
			run := runFaultScenario(t, cfg, "cut r2 off from its peers")
			r := run.Result
			if !r.Hosts || (q == "" && r.ReplQuorum != "majority") || (q == "one" && r.ReplQuorum != "one") {
				t.Errorf("hosts %v, repl_quorum %q; want true and the quorum asked for", r.Hosts, r.ReplQuorum)
			}
			if q == "" && (r.ItemsLost != 0 || r.CartsLost != 0) {
				t.Errorf("with a majority quorum, %d acknowledged items lost in %d carts; the cut-off replica must refuse writes instead", r.ItemsLost, r.CartsLost)
			}
		})
	}
}

// TestIsolateEndToEnd cuts a cache replica off from Redis while the
// balancer still reaches it: its /readyz fails, the balancer stops sending
// it requests, and no acknowledged item is lost.
func TestIsolateEndToEnd(t *testing.T) {
	needHosts(t)
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH (the cache run starts its own)")
	cfg := e2eConfig(t, strategy.Cache)
	cfg.Scenario = Isolate
	run := runFaultScenario(t, cfg, "cut r2 off from the store")
	if r := run.Result; r.ItemsLost != 0 || r.CartsLost != 0 {
		t.Errorf("%d acknowledged items lost in %d carts with one replica cut off from Redis", r.ItemsLost, r.CartsLost)
	}
}

// TestIsolatePostgresEndToEnd cuts a database replica off from
// PostgreSQL (reached through the lab's store proxy on the hosts' bridge)
// while the balancer still reaches it: the replica's store connections are
// reset and new ones refused, and the checker finds no acknowledged item
// lost.
func TestIsolatePostgresEndToEnd(t *testing.T) {
	needHosts(t)
	cfg := e2eConfig(t, strategy.Database)
	cfg.Scenario, cfg.PostgresURL = Isolate, testenv.PostgresURL(t)
	run := runFaultScenario(t, cfg, "cut r2 off from the store")
	r := run.Result
	if !r.Hosts || r.Store != "postgres" {
		t.Errorf("hosts %v, store %q; want each replica a host of its own, on PostgreSQL", r.Hosts, r.Store)
	}
	if r.StoreConnsReset == 0 {
		t.Error("no store connection of r2 was refused: the cut did not reach the replica's PostgreSQL link")
	}
	if r.ItemsLost != 0 || r.CartsLost != 0 {
		t.Errorf("%d acknowledged items lost in %d carts with one replica cut off from PostgreSQL", r.ItemsLost, r.CartsLost)
	}
}

// TestHostScenarioSkips: the host scenarios say why they do not run for a
// strategy they do not apply to.
func TestHostScenarioSkips(t *testing.T) {
	for _, tc := range []struct {
		st   strategy.Strategy
		sc   Scenario
		want string
	}{
		{strategy.Sticky, Partition, "no peer link to cut"},
		{strategy.Client, Isolate, "no store to cut"},
		{strategy.Database, Isolate, "--postgres URL"},
	} {
		cfg := Config{Strategy: tc.st, Scenario: tc.sc}
		if got := cfg.hostSkip(); !strings.Contains(got, tc.want) {
			t.Errorf("%s × %s: skip %q, want %q", tc.st, tc.sc, got, tc.want)
		}
	}
	if got := (Config{Strategy: strategy.Replicated, Scenario: Steady}).hostSkip(); got != "" {
		t.Errorf("steady skipped: %q", got)
	}
	if err := (Config{ReplQuorum: "most"}).validateQuorum(); err == nil {
		t.Error("quorum \"most\" passed validation")
	}
}
