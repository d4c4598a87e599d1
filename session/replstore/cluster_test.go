package replstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
	"github.com/statelab/statelab/session"
)

// testSecret is the key material every test cluster shares.
var testSecret = []byte("statelab replstore test secret")

// testLogger logs to stderr with STATELAB_TEST_VERBOSE=1, otherwise nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("STATELAB_TEST_VERBOSE") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig returns a loopback config on free ports for the replica name.
func testConfig(tb testing.TB, name string) Config {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Secret = testSecret
	cfg.Logger = testLogger()
	// Slower than the default so that a replica starved of CPU by a busy
	// test machine is not declared dead; the tests poll for detection.
	cfg.ProbeInterval = 500 * time.Millisecond
	return cfg
}

// startNode starts one replica with cfg and stops it (abruptly) at cleanup.
func startNode(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		tb.Fatalf("New(%s): %v", cfg.NodeName, err)
	}
	tb.Cleanup(s.kill)
	return s
}

// startCluster starts n replicas named n0..n(n-1), each joining through n0,
// with mod applied to every config, and waits until all see all.
func startCluster(tb testing.TB, n int, mod func(*Config)) []*Store {
	tb.Helper()
	var nodes []*Store
	for i := range n {
		cfg := testConfig(tb, fmt.Sprintf("n%d", i))
		if i > 0 {
			cfg.Peers = []string{nodes[0].ClusterAddr()}
		}
		if mod != nil {
			mod(&cfg)
		}
		nodes = append(nodes, startNode(tb, cfg))
	}
	waitMembers(tb, nodes, n)
	return nodes
}

// waitMembers polls until every store in nodes sees exactly want members.
func waitMembers(tb testing.TB, nodes []*Store, want int) {
	tb.Helper()
	poll(tb, 15*time.Second, fmt.Sprintf("every replica to see %d members", want), func() bool {
		for _, s := range nodes {
			if len(s.Members()) != want {
				return false
			}
		}
		return true
	})
}

// logDepartures reports at the end of t how many times a replica of nodes
// saw a member leave or die: on an overloaded machine, failure detection can
// wrongly declare a starved replica dead, and the store (which has no quorum)
// then runs split for a while. A failure with departures > 0 in a test that
// kills nobody points there.
func logDepartures(t *testing.T, nodes []*Store) {
	t.Helper()
	t.Cleanup(func() {
		var n int64
		for _, s := range nodes {
			n += s.members.departures.Load()
		}
		if n > 0 {
			t.Logf("replicas saw %d member departures during the test (none was stopped on purpose before cleanup)", n)
		}
	})
}

// poll calls cond until it is true, failing tb after within.
func poll(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	testenv.Eventually(tb, within, what, cond)
}

// roundRobin is a session.Store that sends each call to the next replica of
// a cluster, so every test step goes through a different member.
type roundRobin struct {
	nodes []*Store
	next  atomic.Uint64
}

var (
	_ session.Store   = (*roundRobin)(nil)
	_ session.Pinger  = (*roundRobin)(nil)
	_ session.Counter = (*roundRobin)(nil)
)

func (r *roundRobin) pick() *Store {
	return r.nodes[(r.next.Add(1)-1)%uint64(len(r.nodes))]
}

func (r *roundRobin) Get(ctx context.Context, key string) (session.Record, error) {
	return r.pick().Get(ctx, key)
}

func (r *roundRobin) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	return r.pick().Put(ctx, key, rec)
}

func (r *roundRobin) Touch(ctx context.Context, key string, idle time.Time) error {
	return r.pick().Touch(ctx, key, idle)
}

func (r *roundRobin) Delete(ctx context.Context, key string) error {
	return r.pick().Delete(ctx, key)
}

// Ping pings every replica.
func (r *roundRobin) Ping(ctx context.Context) error {
	var errs []error
	for _, s := range r.nodes {
		errs = append(errs, s.Ping(ctx))
	}
	return errors.Join(errs...)
}

// Count is the number of distinct live records the replicas hold copies
// of (Store.Count itself is per replica; TestKillPrimary checks it).
func (r *roundRobin) Count(ctx context.Context) (int, error) {
	keys := make(map[string]bool)
	now := time.Now()
	for _, s := range r.nodes {
		if _, err := s.Count(ctx); err != nil {
			return 0, err
		}
		for k, e := range s.tab.snapshot() {
			if e.live(now) {
				keys[k] = true
			}
		}
	}
	return len(keys), nil
}

// holders returns the names of the replicas holding a live copy of key.
func holders(nodes []*Store, key string) []string {
	var out []string
	now := time.Now()
	for _, s := range nodes {
		if e, ok := s.tab.get(key); ok && e.live(now) {
			out = append(out, s.name)
		}
	}
	return out
}

// ownerNames returns the names of key's owners as s sees the cluster.
func ownerNames(s *Store, key string) []string {
	var out []string
	for _, o := range owners(key, s.nodes(), s.cfg.Backups) {
		out = append(out, o.Name)
	}
	return out
}
