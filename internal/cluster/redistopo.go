package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis topologies the cluster can start for the cache strategy
// (Config.RedisMode).
const (
	// RedisSingle is one redis-server (the default).
	RedisSingle = "single"
	// RedisCluster is a Redis Cluster of three masters, each with a
	// replica: six redis-server processes.
	RedisCluster = "cluster"
	// RedisSentinel is a primary, a replica and three sentinels.
	RedisSentinel = "sentinel"
)

// MultiServerRedis reports whether mode (a Config.RedisMode) is a topology
// of several redis-servers the cluster starts: RedisCluster or RedisSentinel.
func MultiServerRedis(mode string) bool {
	return mode == RedisCluster || mode == RedisSentinel
}

// sentinelMaster is the name the sentinels monitor the primary under.
const sentinelMaster = "statelab"

// redisTopology is a Redis Cluster or a Sentinel set the cluster started.
// Stopping it kills a master (SIGKILL, as a crash would) and waits for the
// topology to promote its replica; starting it brings the killed node
// back, as a replica.
type redisTopology struct {
	c         *Cluster
	mode      string
	bin       string
	nodes     []*topoNode // cluster: masters, then their replicas in order; sentinel: primary, replica
	sentinels []*topoNode
	// bind is where every process listens: loopback, and the bridge's
	// address when the replicas run as hosts (Config.Hosts).
	bind []string
	// links are the fault proxies in front of the redis-servers, one
	// each, when the replicas' store link is proxied (Config.StoreLink or
	// Config.Hosts); the servers announce them as their addresses.
	links linkSet

	mu       sync.Mutex
	victim   *topoNode
	failover time.Duration // from the kill to the promotion, or -1 when it did not happen
}

// topoNode is one redis-server (or sentinel) process of a topology.
type topoNode struct {
	name string
	port int
	pub  string // the address the replicas use: n.addr(), or its fault proxy's
	args []string

	mu   sync.Mutex
	proc *process
}

func (n *topoNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func (n *topoNode) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, DialTimeout: time.Second})
}

// startRedisTopology starts the topology of c's RedisMode and returns it
// with the flags that point the replicas at it.
func startRedisTopology(ctx context.Context, c *Cluster) (*redisTopology, []string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil, ErrNoRedis
	}
	t := &redisTopology{c: c, mode: c.cfg.RedisMode, bin: bin, failover: -1, bind: []string{"127.0.0.1"}}
	if c.net != nil {
		t.bind = append(t.bind, c.net.Gateway().String())
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var args []string
	if t.mode == RedisCluster {
		err = t.startCluster(ctx)
		var addrs []string
		for _, n := range t.nodes {
			addrs = append(addrs, n.pub)
		}
		args = []string{"--redis-cluster", strings.Join(addrs, ",")}
	} else {
		err = t.startSentinel(ctx)
		var addrs []string
		for _, n := range t.sentinels {
			addrs = append(addrs, n.pub)
		}
		args = []string{"--redis-sentinel", sentinelMaster + "@" + strings.Join(addrs, ",")}
	}
	if err != nil {
		t.close()
		return nil, nil, err
	}
	return t, args, nil
}

// newNode allocates a node; cluster nodes also need their port + 10000
// (the cluster bus) free.
func (t *redisTopology) newNode(name string, bus bool) (*topoNode, error) {
	for range 50 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if bus {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
			if err != nil {
				continue
			}
			l.Close()
		}
		n := &topoNode{name: name, port: port}
		n.pub = net.JoinHostPort(t.bind[len(t.bind)-1], strconv.Itoa(port))
		return n, nil
	}
	return nil, errors.New("cluster: no free port pair for a Redis Cluster node")
}

// expose puts a fault proxy in front of redis-server n, when the
// replicas' store link is proxied, and returns the host and port n
// announces to its clients (and the other servers): the proxy's, or its
// own.
func (t *redisTopology) expose(n *topoNode) (string, string, error) {
	if t.c.cfg.StoreLink || t.c.net != nil {
		p, err := t.c.newLinkProxy(n.addr())
		if err != nil {
			return "", "", err
		}
		t.links = append(t.links, p)
		n.pub = p.addr
	}
	host, port, err := net.SplitHostPort(n.pub)
	return host, port, err
}

// launch starts node n and waits until it answers PING.
func (t *redisTopology) launch(ctx context.Context, n *topoNode) error {
	p, err := startProcess(n.name, t.bin, n.args, nil, filepath.Join(t.c.dir, n.name+".log"), func(p *process, expected bool, err error) {
		if !expected {
			t.c.event(EventCrash, "", fmt.Sprintf("%s crashed: %s; last log lines: %s", n.name, exitDescription(err), p.tail(600)))
		}
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return waitUntil(ctx, n.name+" to answer PING", func() bool {
		_, err := redisCommand(ctx, n.port, "PING")
		return err == nil
	})
}

// waitUntil polls cond every 50ms until it holds or ctx ends.
func waitUntil(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// serverArgs are the flags of every redis-server of a topology: no
// persistence, loopback, quick resync.
func (t *redisTopology) serverArgs(n *topoNode) []string {
	return append(append([]string{"--port", strconv.Itoa(n.port), "--bind"}, t.bind...), "--dir", t.c.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
		"--repl-diskless-sync-delay", "0", "--dbfilename", n.name+".rdb")
}

// startCluster starts six cluster-mode servers, gives three masters a
// third of the slots each and each a replica, and waits until the cluster
// is ok and every replica is in sync.
func (t *redisTopology) startCluster(ctx context.Context) error {
	for i := range 6 {
		n, err := t.newNode(fmt.Sprintf("redis-%d", i+1), true)
		if err != nil {
			return err
		}
		host, port, err := t.expose(n)
		if err != nil {
			return err
		}
		// The node announces its proxy, so that the replicas' cluster
		// client (which follows the addresses the nodes announce) goes
		// through it; the cluster bus stays direct.
		n.args = append(t.serverArgs(n), "--cluster-announce-ip", host, "--cluster-announce-port", port,
			"--cluster-announce-bus-port", strconv.Itoa(n.port+10000), "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(t.c.dir, n.name+"-nodes.conf"),
			"--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0")
		t.nodes = append(t.nodes, n)
		if err := t.launch(ctx, n); err != nil {
			return err
		}
	}
	first := t.nodes[0].client()
	defer first.Close()
	for _, n := range t.nodes[1:] {
		if err := first.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(n.port)).Err(); err != nil {
			return fmt.Errorf("cluster: CLUSTER MEET %s: %w", n.addr(), err)
		}
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, r := range ranges {
		m := t.nodes[i].client()
		err := m.ClusterAddSlotsRange(ctx, r[0], r[1]).Err()
		m.Close()
		if err != nil {
			return fmt.Errorf("cluster: CLUSTER ADDSLOTSRANGE: %w", err)
		}
	}
	for i := range 3 {
		if err := t.replicate(ctx, t.nodes[3+i], t.nodes[i]); err != nil {
			return err
		}
	}
	for _, n := range t.nodes {
		cl := n.client()
		err := waitUntil(ctx, n.name+" to report cluster_state:ok", func() bool {
			info, err := cl.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		cl.Close()
		if err != nil {
			return err
		}
	}
	return t.waitSynced(ctx, t.nodes[:3])
}

// replicate makes r a replica of master m (retrying until r has learnt of
// m through the cluster bus).
func (t *redisTopology) replicate(ctx context.Context, r, m *topoNode) error {
	mc, rc := m.client(), r.client()
	defer mc.Close()
	defer rc.Close()
	id, err := mc.ClusterMyID(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster: CLUSTER MYID: %w", err)
	}
	return waitUntil(ctx, r.name+" to replicate "+m.name, func() bool {
		return rc.ClusterReplicate(ctx, id).Err() == nil
	})
}

// waitSynced waits until each master has a replica online and in sync.
func (t *redisTopology) waitSynced(ctx context.Context, masters []*topoNode) error {
	for _, m := range masters {
		c := m.client()
		err := waitUntil(ctx, m.name+" to have a replica in sync", func() bool {
			n, err := c.Wait(ctx, 1, 100*time.Millisecond).Result()
			return err == nil && n >= 1
		})
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// startSentinel starts a primary, its replica and three sentinels, and
// waits until every sentinel knows the replica and the other sentinels.
func (t *redisTopology) startSentinel(ctx context.Context) error {
	for i, name := range []string{"redis-primary", "redis-replica"} {
		n, err := t.newNode(name, false)
		if err != nil {
			return err
		}
		host, port, err := t.expose(n)
		if err != nil {
			return err
		}
		// Each server announces its proxy, so that the sentinels name it
		// to the replicas as the master once it is promoted.
		n.args = append(t.serverArgs(n), "--replica-announce-ip", host, "--replica-announce-port", port)
		if i == 1 {
			ph, pp, _ := net.SplitHostPort(t.nodes[0].pub)
			n.args = append(n.args, "--replicaof", ph, pp)
		}
		t.nodes = append(t.nodes, n)
		if err := t.launch(ctx, n); err != nil {
			return err
		}
	}
	if err := t.waitSynced(ctx, t.nodes[:1]); err != nil {
		return err
	}
	for i := range 3 {
		n, err := t.newNode(fmt.Sprintf("sentinel-%d", i+1), false)
		if err != nil {
			return err
		}
		conf := filepath.Join(t.c.dir, n.name+".conf")
		ph, pp, _ := net.SplitHostPort(t.nodes[0].pub)
		text := fmt.Sprintf("port %d\nbind %s\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %[4]s 1000\nsentinel failover-timeout %[4]s 2000\n",
			n.port, strings.Join(t.bind, " "), t.c.dir, sentinelMaster, ph, pp)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return fmt.Errorf("cluster: sentinel config: %w", err)
		}
		n.args = []string{conf, "--sentinel"}
		t.sentinels = append(t.sentinels, n)
		if err := t.launch(ctx, n); err != nil {
			return err
		}
	}
	for _, s := range t.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
		err := waitUntil(ctx, s.name+" to know the replica and the other sentinels", func() bool {
			m, err := sc.Master(ctx, sentinelMaster).Result()
			return err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2"
		})
		sc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// isMaster reports whether node n answers and is a master.
func isMaster(ctx context.Context, n *topoNode) bool {
	c := n.client()
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && strings.Contains(info, "role:master")
}

// stop kills the master of the first third of the slots (cluster) or the
// primary (sentinel) and waits, up to 20 seconds, until its replica is
// promoted; it says how long that took.
func (t *redisTopology) stop(ctx context.Context) (string, error) {
	var victim *topoNode
	for _, n := range t.nodes {
		if isMaster(ctx, n) {
			victim = n
			break
		}
	}
	if victim == nil {
		return "", errors.New("cluster: no Redis master to kill")
	}
	victim.mu.Lock()
	p := victim.proc
	victim.mu.Unlock()
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
	p.kill()
	killed := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := waitUntil(wctx, "a replica to take over from "+victim.name, func() bool { return t.promoted(wctx, victim) })
	t.mu.Lock()
	t.victim = victim
	if err == nil {
		t.failover = time.Since(killed)
	}
	failover := t.failover
	t.mu.Unlock()
	if err != nil {
		return fmt.Sprintf("Redis master %s (%s) killed (SIGKILL); no replica took over within 20 s", victim.name, victim.addr()), nil
	}
	return fmt.Sprintf("Redis master %s (%s) killed (SIGKILL); a replica took over after %d ms", victim.name, victim.addr(), failover.Milliseconds()), nil
}

// promoted reports whether the topology has replaced the killed master:
// the sentinels name another master, or (cluster) three live masters serve
// and a live node reports the cluster ok.
func (t *redisTopology) promoted(ctx context.Context, victim *topoNode) bool {
	if t.mode == RedisSentinel {
		m := t.sentinelMaster(ctx)
		return m != "" && m != victim.pub
	}
	masters, ok := 0, false
	for _, n := range t.nodes {
		if n == victim || !isMaster(ctx, n) {
			continue
		}
		masters++
		c := n.client()
		info, err := c.ClusterInfo(ctx).Result()
		c.Close()
		ok = ok || (err == nil && strings.Contains(info, "cluster_state:ok"))
	}
	return masters == 3 && ok
}

// start brings the killed master back; it rejoins as a replica (the
// cluster's nodes file or the sentinels' REPLICAOF make it one).
func (t *redisTopology) start(ctx context.Context) (string, error) {
	t.mu.Lock()
	victim := t.victim
	t.victim = nil
	t.mu.Unlock()
	if victim == nil {
		return "no Redis node was down", nil
	}
	args := victim.args
	if t.mode == RedisSentinel {
		// As an operator would (or the sentinels' rewritten config file):
		// the old primary comes back as a replica of the new one, so that
		// it never accepts writes that its demotion would then drop.
		if m := t.sentinelMaster(ctx); m != "" {
			host, port, _ := net.SplitHostPort(m)
			victim.args = append(append([]string{}, args...), "--replicaof", host, port)
		}
	}
	err := t.launch(ctx, victim)
	victim.args = args
	if err != nil {
		return "", err
	}
	return victim.name + " started again; it rejoins as a replica", nil
}

// sentinelMaster returns the master's address as the first sentinel that
// answers names it, or "".
func (t *redisTopology) sentinelMaster(ctx context.Context) string {
	for _, s := range t.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
		a, err := sc.GetMasterAddrByName(ctx, sentinelMaster).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1])
		}
	}
	return ""
}

// close kills every node of the topology and closes its proxies.
func (t *redisTopology) close() error {
	for _, n := range append(append([]*topoNode{}, t.sentinels...), t.nodes...) {
		killCurrent(&n.mu, &n.proc)
	}
	t.links.close()
	return nil
}

// StoreFailover returns how long the last StopStore of a Redis Cluster or
// Sentinel set took from killing the master to the promotion of its
// replica; false when there was none (another store, no stop yet, or no
// promotion).
func (c *Cluster) StoreFailover() (time.Duration, bool) {
	c.mu.Lock()
	st := c.store
	c.mu.Unlock()
	if st == nil {
		return 0, false
	}
	t, ok := st.fault.(*redisTopology)
	if !ok {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failover, t.failover >= 0
}

// redisWaitArgs is the replicas' --redis-wait, when Config.RedisWait asks
// for one.
func (c *Cluster) redisWaitArgs() []string {
	if c.cfg.RedisWait <= 0 {
		return nil
	}
	return []string{"--redis-wait", strconv.Itoa(c.cfg.RedisWait)}
}

// validateRedisMode checks RedisMode and RedisWait.
func (c Config) validateRedisMode() error {
	switch {
	case c.RedisMode != "" && c.RedisMode != RedisSingle && c.RedisMode != RedisCluster && c.RedisMode != RedisSentinel:
		return fmt.Errorf("%w: Redis mode %q: want single, cluster or sentinel", ErrBadConfig, c.RedisMode)
	case c.RedisURL != "" && MultiServerRedis(c.RedisMode):
		return fmt.Errorf("%w: Redis mode %s starts its own servers; it does not combine with a Redis URL", ErrBadConfig, c.RedisMode)
	case c.RedisWait < 0:
		return fmt.Errorf("%w: RedisWait must not be negative", ErrBadConfig)
	}
	return nil
}
