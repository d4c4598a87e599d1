package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/redisstore"
	"github.com/statelab/statelab/session/storetest"
)

// sentinelMaster is the name the test sentinels monitor the primary under.
const sentinelMaster = "statelab"

// sentinelSet is a primary, its replica and three sentinels, all
// redis-server processes a test started.
type sentinelSet struct {
	nodes     []*redisProc // the primary first, then the replica
	sentinels []*redisProc
}

// spec returns the MASTER@ADDR,... spec of the set.
func (ss *sentinelSet) spec() string {
	s := sentinelMaster + "@"
	for i, p := range ss.sentinels {
		if i > 0 {
			s += ","
		}
		s += p.addr
	}
	return s
}

// master returns the node the sentinels name as the master.
func (ss *sentinelSet) master(t *testing.T) *redisProc {
	t.Helper()
	addr := ss.masterAddr()
	for _, n := range ss.nodes {
		if n.addr == addr {
			return n
		}
	}
	t.Fatalf("sentinels name %q as the master, not one of the test's nodes", addr)
	return nil
}

// masterAddr asks the first sentinel that answers for the master's address.
func (ss *sentinelSet) masterAddr() string {
	for _, p := range ss.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.addr, MaxRetries: -1, DialTimeout: time.Second})
		hp, err := sc.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1])
		}
	}
	return ""
}

// startSentinelSet starts a primary, a replica of it and three sentinels
// (redis-server --sentinel) monitoring it with a one-second down-after
// time, on free ports, and waits until the replica is in sync and every
// sentinel knows the replica and the other two sentinels.
func startSentinelSet(t *testing.T) *sentinelSet {
	t.Helper()
	ss := &sentinelSet{}
	primary := startRedisProc(t, testenv.FreePort(t), t.TempDir())
	pport := primary.addr[len("127.0.0.1:"):]
	replica := startRedisProc(t, testenv.FreePort(t), t.TempDir(), "--replicaof", "127.0.0.1", pport)
	ss.nodes = []*redisProc{primary, replica}
	waitReplicaSynced(t, primary)
	for range 3 {
		port := testenv.FreePort(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %s 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 2000\n", port, dir, sentinelMaster, pport)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &redisProc{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), bin: redisServerBin(t), args: []string{conf, "--sentinel"}}
		p.start()
		t.Cleanup(p.kill)
		p.waitPing()
		ss.sentinels = append(ss.sentinels, p)
	}
	for _, p := range ss.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
		waitFor(t, 20*time.Second, "sentinel "+p.addr+" to know the replica and the other sentinels", func() (bool, error) {
			m, err := sc.Master(context.Background(), sentinelMaster).Result()
			return err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2", err
		})
		sc.Close()
	}
	return ss
}

// TestRedisSentinel runs the conformance suite through a Sentinel failover
// client on a real primary, replica and three sentinels, without and with
// WAIT 1, then kills the master under writes and measures what the
// failover loses, without and with WAIT.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	ss := startSentinelSet(t)
	open := topologyStores("OpenSentinel("+ss.spec()+")", func(ctx context.Context, opts redisstore.Options) (*redisstore.Store, error) {
		return redisstore.OpenSentinel(ctx, ss.spec(), opts)
	})
	runConformanceWaits(t, open)
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprintf("failover/wait=%d", wait), func(t *testing.T) {
			s := open(t, failoverPrefix+strconv.Itoa(wait)+":", wait)
			doomed := ss.master(t)
			keys := make([]string, 8000)
			for i := range keys {
				keys[i] = storetest.NewKey(t)
			}
			res := killUnderWrites(t, s, keys, doomed, func() bool {
				a := ss.masterAddr()
				return a != "" && a != doomed.addr
			}, func() {
				// Bring the old master back as a replica of the new one,
				// as an operator (or the sentinels, a little later) would.
				doomed.restart()
				m := ss.master(t)
				host, port, _ := net.SplitHostPort(m.addr)
				if err := doomed.client().ReplicaOf(context.Background(), host, port).Err(); err != nil {
					t.Fatalf("REPLICAOF on the restarted node: %v", err)
				}
				waitReplicaSynced(t, m)
			})
			res.report(t, "redis sentinel", wait)
		})
	}
}

// TestParseSentinel checks the MASTER@ADDR,... spec.
func TestParseSentinel(t *testing.T) {
	tests := []struct {
		spec    string
		master  string
		addrs   int
		wantErr bool
	}{
		{"mymaster@127.0.0.1:26379", "mymaster", 1, false},
		{"m@a:1,b:2,c:3", "m", 3, false},
		{"mymaster", "", 0, true},
		{"@127.0.0.1:26379", "", 0, true},
		{"m@", "", 0, true},
		{"m@nohostport", "", 0, true},
		{"m@a:1,,b:2", "", 0, true},
	}
	for _, tt := range tests {
		master, addrs, err := redisstore.ParseSentinel(tt.spec)
		if (err != nil) != tt.wantErr || master != tt.master || len(addrs) != tt.addrs {
			t.Errorf("ParseSentinel(%q) = %q, %v, %v; want %q, %d addresses, error %v", tt.spec, master, addrs, err, tt.master, tt.addrs, tt.wantErr)
		}
	}
}

// TestOpenUnreachable checks that OpenCluster and OpenSentinel report a
// cluster or sentinel set that does not answer as unavailable, and a bad
// spec as a plain error.
func TestOpenUnreachable(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	tests := []struct {
		name        string
		open        func(ctx context.Context) (*redisstore.Store, error)
		unavailable bool
	}{
		{"cluster", func(ctx context.Context) (*redisstore.Store, error) {
			return redisstore.OpenCluster(ctx, []string{dead}, redisstore.Options{})
		}, true},
		{"cluster without addresses", func(ctx context.Context) (*redisstore.Store, error) {
			return redisstore.OpenCluster(ctx, nil, redisstore.Options{})
		}, false},
		{"sentinel", func(ctx context.Context) (*redisstore.Store, error) {
			return redisstore.OpenSentinel(ctx, "m@"+dead, redisstore.Options{})
		}, true},
		{"bad sentinel spec", func(ctx context.Context) (*redisstore.Store, error) {
			return redisstore.OpenSentinel(ctx, dead, redisstore.Options{})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// go-redis keeps asking unreachable sentinels until the
			// deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s, err := tt.open(ctx)
			if err == nil {
				s.Close()
				t.Fatal("open succeeded")
			}
			if got := errors.Is(err, session.ErrUnavailable); got != tt.unavailable {
				t.Fatalf("err = %v; ErrUnavailable %v, want %v", err, got, tt.unavailable)
			}
		})
	}
}
