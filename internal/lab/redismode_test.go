package lab

import (
	"os/exec"
	"strconv"
	"testing"

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

// TestRedisModeConfig: bad or contradictory Redis modes are refused, and
// the link scenarios are not run on a clustered store.
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
	if got := (Config{Strategy: strategy.Cache, Scenario: SlowStore, RedisMode: cluster.RedisCluster}).redisModeSkip(); got == "" {
		t.Error("slowstore on a Redis Cluster not skipped")
	}
	if got := (Config{Strategy: strategy.Cache, Scenario: Storefail, RedisMode: cluster.RedisSentinel}).redisModeSkip(); got != "" {
		t.Errorf("storefail on sentinel skipped: %s", got)
	}
}
