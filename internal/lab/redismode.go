package lab

import (
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
)

// clustered reports whether cfg's cache runs on a Redis Cluster or a
// Sentinel set the lab starts.
func (cfg Config) clustered() bool {
	return cfg.Strategy == strategy.Cache && cluster.MultiServerRedis(cfg.RedisMode)
}

// validateRedisMode checks the Redis topology knobs.
func (cfg Config) validateRedisMode() error {
	switch {
	case cfg.RedisMode != "" && cfg.RedisMode != cluster.RedisSingle && cfg.RedisMode != cluster.RedisCluster && cfg.RedisMode != cluster.RedisSentinel:
		return fmt.Errorf("%w: Redis mode %q: want single, cluster or sentinel", ErrBadConfig, cfg.RedisMode)
	case cfg.RedisURL != "" && cluster.MultiServerRedis(cfg.RedisMode):
		return fmt.Errorf("%w: --redis-mode %s starts its own Redis servers; it does not combine with --redis URL", ErrBadConfig, cfg.RedisMode)
	case cfg.RedisWait < 0:
		return fmt.Errorf("%w: --redis-wait must not be negative", ErrBadConfig)
	case cfg.RedisWait > 0 && !cluster.MultiServerRedis(cfg.RedisMode):
		return fmt.Errorf("%w: --redis-wait needs Redis replicas: use it with --redis-mode cluster or sentinel", ErrBadConfig)
	}
	return nil
}

// summarizeRedisMode records the cache's Redis topology and, after a
// storefail on a clustered store, how long the failover took.
func (cfg Config) summarizeRedisMode(r *RunResult, rec *recording) {
	if cfg.Strategy != strategy.Cache {
		return
	}
	r.RedisMode = cluster.RedisSingle
	if cfg.RedisMode != "" {
		r.RedisMode = cfg.RedisMode
	}
	r.RedisWait = cfg.RedisWait
	if rec.failover > 0 {
		ms := rec.failover.Milliseconds()
		r.FailoverMS = &ms
	}
}

// storeFailover is what the cluster measured of the store's failover, or
// -1.
func storeFailover(c *cluster.Cluster) time.Duration {
	if d, ok := c.StoreFailover(); ok {
		return d
	}
	return -1
}

// redisOutageText says what the cache's storefail run did to Redis: one
// server down for part of the run, or a clustered master killed and
// replaced.
func redisOutageText(sf *RunResult) string {
	if sf.RedisMode != cluster.RedisCluster && sf.RedisMode != cluster.RedisSentinel {
		return fmt.Sprintf("with Redis down for %s of the run", share(Storefail.storeOutage()))
	}
	failover := "no replica was promoted"
	if sf.FailoverMS != nil {
		failover = fmt.Sprintf("its replica promoted after %d ms", *sf.FailoverMS)
	}
	return fmt.Sprintf("with a master of the Redis %s killed (%s; --redis-wait %d)", sf.RedisMode, failover, sf.RedisWait)
}
