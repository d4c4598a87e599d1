package redisstore_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/storetest"
)

// TestConformanceCluster runs the suite through a redis.ClusterClient against
// a private one-node Redis Cluster (cluster mode on, all 16384 slots on the
// node), so the cluster code paths are exercised: slot routing, per-node
// script loading, and Count scanning every master.
func TestConformanceCluster(t *testing.T) {
	addr := startClusterNode(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{addr},
		DialTimeout:           redisstore.DefaultDialTimeout,
		ReadTimeout:           redisstore.DefaultReadTimeout,
		WriteTimeout:          redisstore.DefaultWriteTimeout,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	storetest.Run(t, func(t *testing.T) session.Store {
		return redisstore.New(c, redisstore.Options{Prefix: "statelab-test:" + storetest.NewKey(t)[:16] + ":"})
	})
}

// startClusterNode starts redis-server from PATH in cluster mode on a free
// loopback port (its cluster bus takes port+10000), assigns it every slot and
// waits for the cluster to be ok. The server is killed at cleanup.
func startClusterNode(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	testenv.Need(t, err == nil, "redis-server is not on PATH")
	port := freePortPair(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
		"--cluster-config-file", dir+"/nodes.conf", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	assigned := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if !assigned {
			err = c.ClusterAddSlotsRange(ctx, 0, 16383).Err()
			assigned = err == nil
		}
		if assigned {
			var info string
			info, err = c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				cancel()
				return addr
			}
		}
		cancel()
		select {
		case <-exited:
			t.Fatalf("redis-server exited (last error: %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster node on %s not ready: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePortPair returns a loopback port p such that p and p+10000 (the
// cluster bus) were both free a moment ago.
func freePortPair(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			ln.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		ln.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("found no free port pair for a cluster node")
	return 0
}
