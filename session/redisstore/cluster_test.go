package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/storetest"
)

// startClusterProc starts one redis-server in cluster mode, with a short
// node timeout so that a failover takes about two seconds, on a free port
// pair.
func startClusterProc(t *testing.T) *redisProc {
	t.Helper()
	dir := t.TempDir()
	return startRedisProc(t, freePortPair(t), dir, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
		"--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0")
}

// redisCluster is a 3-master / 3-replica Redis Cluster of redis-server
// processes a test started.
type redisCluster struct {
	masters, replicas []*redisProc // replicas[i] replicates masters[i]
}

// addrs returns every node's address.
func (rc *redisCluster) addrs() []string {
	var out []string
	for _, n := range append(append([]*redisProc{}, rc.masters...), rc.replicas...) {
		out = append(out, n.addr)
	}
	return out
}

// proc returns the node listening on addr.
func (rc *redisCluster) proc(t *testing.T, addr string) *redisProc {
	t.Helper()
	for _, n := range append(append([]*redisProc{}, rc.masters...), rc.replicas...) {
		if n.addr == addr {
			return n
		}
	}
	t.Fatalf("no cluster node on %s", addr)
	return nil
}

// startRedisCluster starts six redis-server processes in cluster mode on
// free ports, joins them (CLUSTER MEET), gives each of three masters a third
// of the slots and a replica (CLUSTER REPLICATE), and waits until the
// cluster is ok and every replica is in sync. Everything is killed at
// cleanup.
func startRedisCluster(t *testing.T) *redisCluster {
	t.Helper()
	rc := &redisCluster{}
	for range 3 {
		rc.masters = append(rc.masters, startClusterProc(t))
	}
	for range 3 {
		rc.replicas = append(rc.replicas, startClusterProc(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := rc.masters[0].client()
	for _, n := range rc.addrs()[1:] {
		host, port, _ := net.SplitHostPort(n)
		if err := first.ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("CLUSTER MEET %s: %v", n, err)
		}
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, m := range rc.masters {
		if err := m.client().ClusterAddSlotsRange(ctx, ranges[i][0], ranges[i][1]).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", m.addr, err)
		}
	}
	for i, r := range rc.replicas {
		id, err := rc.masters[i].client().ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatalf("CLUSTER MYID: %v", err)
		}
		rcl := r.client()
		waitFor(t, 15*time.Second, r.addr+" to learn its master", func() (bool, error) {
			err := rcl.ClusterReplicate(ctx, id).Err()
			return err == nil, err
		})
	}
	waitClusterOK(t, append(append([]*redisProc{}, rc.masters...), rc.replicas...))
	for _, m := range rc.masters {
		waitReplicaSynced(t, m)
	}
	return rc
}

// waitClusterOK polls until every node reports cluster_state:ok.
func waitClusterOK(t testing.TB, nodes []*redisProc) {
	t.Helper()
	for _, n := range nodes {
		c := n.client()
		waitFor(t, 20*time.Second, n.addr+" to report cluster_state:ok", func() (bool, error) {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok"), err
		})
	}
}

// waitReplicaSynced polls until the master at m has a replica online and
// caught up with its replication offset.
func waitReplicaSynced(t testing.TB, m *redisProc) {
	t.Helper()
	c := m.client()
	waitFor(t, 20*time.Second, m.addr+" to have a replica in sync", func() (bool, error) {
		ctx := context.Background()
		slave, err := infoField(ctx, c, "replication", "slave0")
		if err != nil || !strings.Contains(slave, "state=online") {
			return false, err
		}
		n, err := c.Wait(ctx, 1, 100*time.Millisecond).Result()
		return n >= 1, err
	})
}

// TestRedisCluster runs the conformance suite on a real 3-master /
// 3-replica Redis Cluster, once without and once with WAIT 1, then kills
// masters under writes and measures what the failover loses, without and
// with WAIT.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	rc := startRedisCluster(t)
	open := topologyStores("OpenCluster", func(ctx context.Context, opts redisstore.Options) (*redisstore.Store, error) {
		return redisstore.OpenCluster(ctx, rc.addrs()[:2], opts)
	})
	runConformanceWaits(t, open)
	for i, wait := range []int{0, 1} {
		t.Run(fmt.Sprintf("failover/wait=%d", wait), func(t *testing.T) {
			s := open(t, failoverPrefix, wait)
			// Each run kills another master, so that both start with
			// every master replicated.
			doomed := rc.masters[i]
			replica := rc.replicas[i]
			keys := keysOn(t, rc, doomed.addr, 8000)
			res := killUnderWrites(t, s, keys, doomed, func() bool {
				role, _ := infoField(context.Background(), replica.client(), "replication", "role")
				return role == "master"
			}, doomed.restart)
			res.report(t, "redis cluster", wait)
		})
	}
}

// keysOn returns n fresh session keys whose slots the master at addr serves.
func keysOn(t *testing.T, rc *redisCluster, addr string, n int) []string {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.addrs()})
	defer cc.Close()
	ctx := context.Background()
	var keys []string
	for len(keys) < n {
		k := storetest.NewKey(t)
		m, err := cc.MasterForKey(ctx, failoverPrefix+k)
		if err != nil {
			t.Fatalf("MasterForKey: %v", err)
		}
		if m.Options().Addr == addr {
			keys = append(keys, k)
		}
	}
	return keys
}

// freePortPair returns a loopback port p such that p and p+10000 (the
// cluster bus) were both free a moment ago; p comes from testenv.FreePort,
// outside the ephemeral range other tests' connections draw from.
func freePortPair(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		port := testenv.FreePort(t)
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("found no free port pair for a cluster node")
	return 0
}
