package replstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/storetest"
)

// TestConformance runs the shared store suite on one cluster of three
// replicas (one backup per session), each call going to the next replica.
func TestConformance(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	logDepartures(t, nodes)
	rr := &roundRobin{nodes: nodes}
	storetest.Run(t, func(t *testing.T) session.Store { return rr })
}

// TestConformanceAllBackups runs the suite with every replica holding every
// session (Backups -1).
func TestConformanceAllBackups(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.Backups = -1 })
	logDepartures(t, nodes)
	rr := &roundRobin{nodes: nodes}
	storetest.Run(t, func(t *testing.T) session.Store { return rr })
}

// TestUnavailable checks that a stopped replica fails every call with
// session.ErrUnavailable at once.
func TestUnavailable(t *testing.T) {
	storetest.RunUnavailable(t, func(t *testing.T) session.Store {
		s := startNode(t, testConfig(t, "dead"))
		s.kill()
		return s
	})
}

// TestUnreachablePrimary checks that a write forwarded to a primary that
// died (before failure detection notices) fails with ErrUnavailable, not a
// hang or a wrong answer.
func TestUnreachablePrimary(t *testing.T) {
	nodes := startCluster(t, 2, func(c *Config) {
		// Keep the dead member in the view for the whole test.
		c.ProbeInterval = time.Minute
	})
	key := keyOwnedBy(t, nodes[0], "n1")
	nodes[1].kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := nodes[0].Put(ctx, key, session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)})
	if !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Put through a dead primary: err = %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Put returned only after its context was done")
	}
}

// keyOwnedBy returns a fresh key whose primary, as s sees it, is primary.
func keyOwnedBy(t testing.TB, s *Store, primary string) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		k := storetest.NewKey(t)
		if ownerNames(s, k)[0] == primary {
			return k
		}
	}
	t.Fatalf("no key with primary %s in 10000 tries", primary)
	return ""
}

// ackedWrites records, per key, the last data a Put acknowledged.
type ackedWrites struct {
	mu   sync.Mutex
	last map[string]string
}

func (a *ackedWrites) ack(key, data string) {
	a.mu.Lock()
	a.last[key] = data
	a.mu.Unlock()
}

// writeStream creates and updates keys through the given replicas until stop
// is closed or n writes were acknowledged, retrying writes that failed with
// ErrUnavailable (a member just died). It reports acknowledged writes to acks
// and returns the first unexpected error.
func writeStream(ctx context.Context, through []*Store, keys []string, acks *ackedWrites, progress chan<- int, stop <-chan struct{}) error {
	versions := make(map[string]uint64)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		key := keys[i%len(keys)]
		data := fmt.Sprintf("%s=%d", key[:8], i)
		s := through[i%len(through)]
		for {
			v, err := s.Put(ctx, key, session.Record{Data: []byte(data), Version: versions[key], IdleExpiry: time.Now().Add(time.Hour)})
			if err == nil {
				versions[key] = v
				acks.ack(key, data)
				break
			}
			if errors.Is(err, session.ErrConflict) {
				// A write that failed as unavailable may still have been
				// applied: read the current version and try again.
				rec, gerr := s.Get(ctx, key)
				if gerr == nil {
					versions[key] = rec.Version
					continue
				}
				err = gerr
			}
			if !errors.Is(err, session.ErrUnavailable) {
				return fmt.Errorf("put %s via %s: %w", key, s.name, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(10 * time.Millisecond) // back off while failure detection runs
		}
		select {
		case progress <- i + 1:
		default:
		}
	}
}

// TestKillPrimary kills a replica abruptly in the middle of a stream of
// writes made through the other two, then reads every key back: each holds
// its last acknowledged value, and every key again has two live copies.
func TestKillPrimary(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	victim, survivors := nodes[0], nodes[1:]
	var keys []string
	for range 20 {
		keys = append(keys, keyOwnedBy(t, victim, "n0"))
	}
	for range 20 {
		keys = append(keys, storetest.NewKey(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acks := &ackedWrites{last: make(map[string]string)}
	progress := make(chan int, 1)
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- writeStream(ctx, survivors, keys, acks, progress, stop) }()

	waitProgress := func(n int) {
		t.Helper()
		for {
			select {
			case got := <-progress:
				if got >= n {
					return
				}
			case err := <-errc:
				t.Fatalf("writer stopped: %v", err)
			case <-ctx.Done():
				t.Fatalf("writer made no progress to %d writes", n)
			}
		}
	}
	waitProgress(200)
	victim.kill()
	waitMembers(t, survivors, 2)
	// Keep writing after the failure has been detected.
	var after int
	select {
	case after = <-progress:
	case err := <-errc:
		t.Fatalf("writer stopped: %v", err)
	}
	waitProgress(after + 200)
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}

	for key, want := range acks.last {
		for _, s := range survivors {
			rec, err := s.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get %s via %s after the kill: %v", key, s.name, err)
			}
			if string(rec.Data) != want {
				t.Fatalf("Get %s via %s = %q, want the last acknowledged %q", key, s.name, rec.Data, want)
			}
		}
	}
	poll(t, 15*time.Second, "every key to have two live copies again", func() bool {
		for key := range acks.last {
			if len(holders(survivors, key)) != 2 {
				return false
			}
		}
		return true
	})
}

// TestJoinRereplicates checks that when a replica joins, the records it now
// owns are copied to it, and records are held exactly by their owners.
func TestJoinRereplicates(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for i := range 150 {
		k := storetest.NewKey(t)
		keys = append(keys, k)
		if _, err := nodes[i%2].Put(ctx, k, session.Record{Data: []byte(k), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	cfg := testConfig(t, "n2")
	cfg.Peers = []string{nodes[1].ClusterAddr()}
	nodes = append(nodes, startNode(t, cfg))
	waitMembers(t, nodes, 3)

	owned := 0
	poll(t, 15*time.Second, "records to be held by exactly their owners", func() bool {
		owned = 0
		for _, k := range keys {
			want := ownerNames(nodes[2], k)
			got := holders(nodes, k)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				return false
			}
			if slices.Contains(want, "n2") {
				owned++
			}
		}
		return true
	})
	if owned == 0 {
		t.Fatalf("the new replica owns none of %d keys; the test proves nothing", len(keys))
	}
	// The newcomer serves the records it received.
	for _, k := range keys {
		rec, err := nodes[2].Get(ctx, k)
		if err != nil || string(rec.Data) != k {
			t.Fatalf("Get %s via the new replica = %q, %v", k, rec.Data, err)
		}
	}
}

// TestCloseHandsOver checks that a replica closed gracefully has handed
// every record to its new owners by the time Close returns, so that each
// record again has two copies on the remaining replicas.
func TestCloseHandsOver(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for range 40 {
		keys = append(keys, keyOwnedBy(t, nodes[0], "n0"))
	}
	for _, k := range keys {
		if _, err := nodes[1].Put(ctx, k, session.Record{Data: []byte(k), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if err := nodes[0].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rest := nodes[1:]
	for _, k := range keys {
		if got := holders(rest, k); len(got) != 2 {
			t.Fatalf("right after Close, key %s is held by %v, want both remaining replicas", k, got)
		}
	}
	waitMembers(t, rest, 2)
	for _, k := range keys {
		rec, err := rest[0].Get(ctx, k)
		if err != nil || string(rec.Data) != k {
			t.Fatalf("Get %s after handover = %q, %v", k, rec.Data, err)
		}
	}
	if _, err := nodes[0].Get(ctx, keys[0]); !errors.Is(err, ErrClosed) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Get on a closed replica: err = %v, want ErrClosed and ErrUnavailable", err)
	}
	if err := nodes[0].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestAsync checks that with Async (and QuorumOne, without which it has no
// effect) a write is readable at once through any replica and reaches the
// backup in the background.
func TestAsync(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.Async, c.Quorum = true, QuorumOne })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for i := range 30 {
		k := storetest.NewKey(t)
		keys = append(keys, k)
		if _, err := nodes[i%3].Put(ctx, k, session.Record{Data: []byte(k), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
		for _, s := range nodes {
			rec, err := s.Get(ctx, k)
			if err != nil || string(rec.Data) != k {
				t.Fatalf("Get %s via %s right after an async Put = %q, %v", k, s.name, rec.Data, err)
			}
		}
	}
	poll(t, 10*time.Second, "async writes to reach the backups", func() bool {
		for _, k := range keys {
			if len(holders(nodes, k)) != 2 {
				return false
			}
		}
		return true
	})
}

// TestWrongSecret checks that a replica with another secret cannot join,
// and that the RPC refuses requests not signed with the cluster's key.
func TestWrongSecret(t *testing.T) {
	nodes := startCluster(t, 1, nil)
	cfg := testConfig(t, "intruder")
	cfg.Secret = []byte("another secret")
	cfg.Peers = []string{nodes[0].ClusterAddr()}
	cfg.JoinRetry = time.Hour
	intruder := startNode(t, cfg)
	if got := len(intruder.Members()); got != 1 {
		t.Fatalf("intruder sees %d members, want only itself", got)
	}
	if got := len(nodes[0].Members()); got != 1 {
		t.Fatalf("cluster sees %d members after an intruder tried to join, want 1", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := intruder.rpcGet(ctx, nodes[0].rpcAddr, "k")
	if !errors.Is(err, errUnauthenticated) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("RPC with the wrong secret: err = %v, want errUnauthenticated and ErrUnavailable", err)
	}

	// A client that answers the challenge wrongly is disconnected.
	conn, err := net.DialTimeout("tcp", nodes[0].rpcAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append([]byte(handshakeMagic), make([]byte, nonceSize)...)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, nonceSize+sha256.Size)); err != nil {
		t.Fatalf("reading the server's challenge: %v", err)
	}
	if _, err := conn.Write(make([]byte, sha256.Size)); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("server sent %d bytes to a client that failed the challenge, want the connection closed", n)
	}
}

// TestConfigErrors checks that unusable configs are refused with
// ErrInvalidConfig.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no name", func(c *Config) { c.NodeName = "" }},
		{"no secret", func(c *Config) { c.Secret = nil }},
		{"bad bind addr", func(c *Config) { c.BindAddr = "nowhere" }},
		{"bad port", func(c *Config) { c.BindAddr = "127.0.0.1:http2x" }},
		{"bad rpc addr", func(c *Config) { c.RPCAddr = "::::" }},
		{"bad peer", func(c *Config) { c.Peers = []string{"no-port"} }},
		{"bad backups", func(c *Config) { c.Backups = -2 }},
		{"negative timeout", func(c *Config) { c.RPCTimeout = -time.Second }},
		{"negative quorum", func(c *Config) { c.Quorum = -1 }},
		{"quorum above the copies", func(c *Config) { c.Backups, c.Quorum = 1, 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "bad")
			tt.mod(&cfg)
			s, err := New(context.Background(), cfg)
			if err == nil {
				s.kill()
				t.Fatalf("New accepted the config")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestJoinLater checks that a replica whose peers are not up yet keeps
// trying and joins once one starts.
func TestJoinLater(t *testing.T) {
	first := testConfig(t, "early")
	first.JoinRetry = 50 * time.Millisecond
	// A peer address that nothing listens on yet: reserve a free port by
	// starting and stopping a replica on it.
	placeholder := startNode(t, testConfig(t, "placeholder"))
	addr := placeholder.ClusterAddr()
	placeholder.kill()
	first.Peers = []string{addr}
	early := startNode(t, first)
	if got := len(early.Members()); got != 1 {
		t.Fatalf("early replica sees %d members before its peer exists", got)
	}
	// Not joined yet: not ready, and (majority quorum) refuses writes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := early.Ping(ctx); !errors.Is(err, ErrNoQuorum) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Ping before joining = %v, want ErrNoQuorum and ErrUnavailable", err)
	}
	key := storetest.NewKey(t)
	rec := session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)}
	if _, err := early.Put(ctx, key, rec); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Put before joining = %v, want ErrNoQuorum", err)
	}
	late := testConfig(t, "late")
	late.BindAddr = addr
	lateNode := startNode(t, late)
	if err := lateNode.Ping(ctx); err != nil {
		t.Fatalf("Ping of the first replica of a new cluster = %v, want nil", err)
	}
	waitMembers(t, []*Store{early, lateNode}, 2)
	if err := early.Ping(ctx); err != nil {
		t.Fatalf("Ping after joining = %v, want nil", err)
	}
	if _, err := early.Put(ctx, key, rec); err != nil {
		t.Fatalf("Put after joining: %v", err)
	}
}

// TestNotJoinedQuorumOne checks that without a quorum a replica that has not
// joined its peers still accepts writes, as before quorums existed, but is
// not ready.
func TestNotJoinedQuorumOne(t *testing.T) {
	placeholder := startNode(t, testConfig(t, "placeholder"))
	addr := placeholder.ClusterAddr()
	placeholder.kill()
	cfg := testConfig(t, "alone")
	cfg.Peers = []string{addr}
	cfg.Quorum = QuorumOne
	s := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Ping(ctx); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Ping before joining = %v, want ErrUnavailable", err)
	}
	if _, err := s.Put(ctx, storetest.NewKey(t), session.Record{Data: []byte("x"), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("Put before joining with QuorumOne: %v", err)
	}
}

// TestRestartSameName checks the lab's failover scenario: a replica killed
// and restarted under the same name and address rejoins, and the records it
// owns are copied back to it.
func TestRestartSameName(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for i := range 60 {
		k := storetest.NewKey(t)
		keys = append(keys, k)
		if _, err := nodes[i%3].Put(ctx, k, session.Record{Data: []byte(k), IdleExpiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	addr := nodes[0].ClusterAddr()
	nodes[0].kill()
	waitMembers(t, nodes[1:], 2)

	cfg := testConfig(t, "n0")
	cfg.BindAddr = addr
	cfg.Peers = []string{nodes[1].ClusterAddr()}
	nodes[0] = startNode(t, cfg)
	waitMembers(t, nodes, 3)
	poll(t, 15*time.Second, "records to be held by exactly their owners again", func() bool {
		for _, k := range keys {
			want := ownerNames(nodes[0], k)
			slices.Sort(want)
			if !slices.Equal(holders(nodes, k), want) {
				return false
			}
		}
		return true
	})
	for _, k := range keys {
		rec, err := nodes[0].Get(ctx, k)
		if err != nil || string(rec.Data) != k {
			t.Fatalf("Get %s via the restarted replica = %q, %v", k, rec.Data, err)
		}
	}
}

// TestBindHostName checks that a host name in BindAddr is resolved (memberlist
// needs an IP) and advertised as an address peers can use.
func TestBindHostName(t *testing.T) {
	cfg := testConfig(t, "named")
	cfg.BindAddr = "localhost:0"
	s := startNode(t, cfg)
	host, _, err := net.SplitHostPort(s.ClusterAddr())
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("ClusterAddr = %q (%v), want a loopback IP", s.ClusterAddr(), err)
	}
	peer := testConfig(t, "peer")
	peer.Peers = []string{s.ClusterAddr()}
	waitMembers(t, []*Store{s, startNode(t, peer)}, 2)
}
