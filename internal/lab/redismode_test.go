package lab

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// TestClusteredStorefail runs cache × storefail on a Redis Cluster (six
// redis-server processes) and on a Sentinel set that the lab starts: a
// master is killed, its replica is promoted (failover_ms measured), the
// killed node comes back, and the run's loss is what the checker finds.
func TestClusteredStorefail(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	for _, tc := range []struct {
		mode string
		wait int
	}{{cluster.RedisCluster, 0}, {cluster.RedisSentinel, 1}} {
		t.Run(tc.mode+"/wait="+strconv.Itoa(tc.wait), func(t *testing.T) {
			cfg := e2eConfig(t, strategy.Cache)
			cfg.Scenario, cfg.RedisMode, cfg.RedisWait = Storefail, tc.mode, tc.wait
			run := runFaultScenario(t, cfg, whatStoreDown)
			r := run.Result
			if r.RedisMode != tc.mode || r.RedisWait != tc.wait {
				t.Errorf("redis_mode %q, redis_wait %d; want %q, %d", r.RedisMode, r.RedisWait, tc.mode, tc.wait)
			}
			if r.FailoverMS == nil || *r.FailoverMS <= 0 {
				t.Fatalf("failover_ms %v: the killed master's replica was not promoted", r.FailoverMS)
			}
			t.Logf("%s, wait %d: failover %d ms, %d of %d acknowledged items lost, error rate %.3f", tc.mode, tc.wait, *r.FailoverMS, r.ItemsLost, r.ItemsAcked, r.ErrorRate)
		})
	}
}

// TestRedisModeConfig: bad or contradictory Redis modes are refused.
func TestRedisModeConfig(t *testing.T) {
	for _, cfg := range []Config{
		{RedisMode: "ring"},
		{RedisMode: cluster.RedisCluster, RedisURL: "redis://x"},
		{RedisWait: 1},
		{RedisMode: cluster.RedisSentinel, RedisWait: -1},
	} {
		if err := cfg.validateRedisMode(); err == nil {
			t.Errorf("%+v passed validation", cfg)
		}
	}
}

// TestClusteredLinkScenarios runs slowstore, flaky and isolate on a Redis
// Cluster and on a Sentinel set that the lab starts: every redis-server
// then announces a fault proxy of the lab's as its address, so the
// replicas' cluster or sentinel client, which follows the addresses the
// servers announce, goes through the proxies. The checker finds no
// acknowledged item lost; the proxies demonstrably carried the traffic
// (slowstore's delay shows in the p99, flaky reset connections, isolate
// reset r2's). isolate needs hosts (root) and is skipped, saying why,
// without them.
func TestClusteredLinkScenarios(t *testing.T) {
	_, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	for _, mode := range []string{cluster.RedisCluster, cluster.RedisSentinel} {
		for _, sc := range []Scenario{SlowStore, Flaky, Isolate} {
			t.Run(mode+"/"+string(sc), func(t *testing.T) {
				if sc == Isolate {
					needHosts(t)
				}
				cfg := e2eConfig(t, strategy.Cache)
				cfg.Scenario, cfg.RedisMode = sc, mode
				first := map[Scenario]string{SlowStore: "store link +150ms", Flaky: "store link resets 50%", Isolate: "cut r2 off from the store"}[sc]
				cfg.StoreDelay, cfg.StoreResets = 150*time.Millisecond, 0.5
				run := runFaultScenario(t, cfg, first)
				r := run.Result
				if r.RedisMode != mode {
					t.Errorf("redis_mode %q, want %q", r.RedisMode, mode)
				}
				if r.ItemsLost != 0 || r.CartsLost != 0 {
					t.Errorf("%d acknowledged items lost in %d carts", r.ItemsLost, r.CartsLost)
				}
				switch sc {
				case SlowStore:
					checkSlowWindow(t, run, 150)
				case Flaky:
					if r.StoreConnsReset == 0 {
						t.Error("the store link reset no connection: the replicas did not go through the proxies")
					}
				}
			})
		}
	}
}
