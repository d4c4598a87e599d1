package replstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/statelab/statelab/session"
)

// TestQuorumFor checks the write-quorum arithmetic: N copies of a key out
// of the members this replica knows (dead and cut-off ones included), W of
// them, and which owner sets can reach W. The cases with dead members are
// the ones an arithmetic over the live members gets wrong: a replica that
// sees only itself of three must not find N = 1 and accept alone.
func TestQuorumFor(t *testing.T) {
	tests := []struct {
		name             string
		quorum, backups  int
		known, liveOwner int
		want             writeQuorum
		reachable        bool
	}{
		{"majority, one backup, all alive", QuorumMajority, 1, 3, 2, writeQuorum{2, 2}, true},
		{"majority, one backup, cut off alone", QuorumMajority, 1, 3, 1, writeQuorum{2, 2}, false},
		{"majority, single replica cluster", QuorumMajority, 1, 1, 1, writeQuorum{1, 1}, true},
		{"majority, two-replica cluster, one dead", QuorumMajority, 1, 2, 1, writeQuorum{2, 2}, false},
		{"majority, every member a copy, one of three dead", QuorumMajority, -1, 3, 2, writeQuorum{3, 2}, true},
		{"majority, every member a copy, two of three dead", QuorumMajority, -1, 3, 1, writeQuorum{3, 2}, false},
		{"majority, every member a copy, two of five dead", QuorumMajority, -1, 5, 3, writeQuorum{5, 3}, true},
		{"majority, every member a copy, three of five dead", QuorumMajority, -1, 5, 2, writeQuorum{5, 3}, false},
		{"majority, two backups, one of three dead", QuorumMajority, 2, 3, 2, writeQuorum{3, 2}, true},
		{"majority, two backups, two-member cluster", QuorumMajority, 2, 2, 2, writeQuorum{2, 2}, true},
		{"one, cut off alone", QuorumOne, 1, 3, 1, writeQuorum{2, 1}, true},
		{"one, every member a copy, alone of five", QuorumOne, -1, 5, 1, writeQuorum{5, 1}, true},
		{"two of three copies, one dead", 2, 2, 5, 2, writeQuorum{3, 2}, true},
		{"three of three copies, one dead", 3, 2, 5, 2, writeQuorum{3, 3}, false},
		{"three copies asked, cluster of two", 3, 2, 2, 2, writeQuorum{2, 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quorumFor(tt.quorum, tt.backups, tt.known)
			if got != tt.want {
				t.Fatalf("quorumFor(%s, backups %d, known %d) = N %d, W %d; want N %d, W %d",
					QuorumString(tt.quorum), tt.backups, tt.known, got.copies, got.need, tt.want.copies, tt.want.need)
			}
			err := got.reachable(tt.liveOwner)
			if (err == nil) != tt.reachable {
				t.Fatalf("reachable(%d live owners) = %v, want reachable %v", tt.liveOwner, err, tt.reachable)
			}
			if err != nil && (!errors.Is(err, ErrNoQuorum) || !errors.Is(err, session.ErrUnavailable)) {
				t.Fatalf("reachable error %v does not wrap ErrNoQuorum and session.ErrUnavailable", err)
			}
		})
	}
}

// versionAt returns the version of s's copy of key, 0 when it holds none.
func versionAt(s *Store, key string) uint64 {
	e, _ := s.tab.get(key)
	return e.Rec.Version
}

// copiesOf counts the replicas of nodes whose copy of key is at version v.
func copiesOf(nodes []*Store, key string, v uint64) int {
	n := 0
	for _, s := range nodes {
		if versionAt(s, key) == v {
			n++
		}
	}
	return n
}

// TestWriteQuorumCopies writes, as the key's primary, while one of the key's
// other owners is dead or cut off and failure detection has not noticed it
// (the membership still counts it alive), and checks that a write is
// acknowledged exactly when W copies have it: an acknowledged write is on
// at least W replicas the moment it is acknowledged, and a refused one
// wraps ErrNoQuorum and session.ErrUnavailable and leaves the primary's copy
// at the version it had.
//
// The first case is the one a membership count acknowledges wrongly: with
// Async under the majority quorum, a primary cut off from the cluster that
// still lists every member alive acknowledged writes held by itself alone,
// which the majority side overwrites after the heal. The third is the one
// it refused wrongly: two of three copies are a majority.
func TestWriteQuorumCopies(t *testing.T) {
	tests := []struct {
		name    string
		quorum  int
		backups int
		async   bool
		kill    bool // kill the other owner(s) instead of cutting the primary off
		wantAck bool
		want    int // copies an acknowledged write must be on
	}{
		{"majority, async, primary cut off", QuorumMajority, 1, true, false, false, 0},
		{"one, async, primary cut off (no quorum)", QuorumOne, 1, true, false, true, 1},
		{"majority, two backups, one dead", QuorumMajority, 2, false, true, true, 2},
		{"three of three copies, one dead", 3, 2, false, true, false, 0},
		{"majority, one backup, primary cut off", QuorumMajority, 1, false, false, false, 0},
		{"one, one backup, primary cut off (best effort)", QuorumOne, 1, false, false, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faults := newFaultNet()
			nodes := startCluster(t, 3, func(c *Config) {
				c.faults = faults
				c.Quorum, c.Backups, c.Async = tt.quorum, tt.backups, tt.async
				c.RPCTimeout = 300 * time.Millisecond
				// Keep every member in every view for the whole test:
				// this is the window before failure detection.
				c.ProbeInterval = time.Minute
			})
			n0, n1, n2 := nodes[0], nodes[1], nodes[2]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			key := keyOwnedBy(t, n0, "n0")
			rec := session.Record{Data: []byte("v1"), IdleExpiry: time.Now().Add(time.Hour)}
			v1, err := n0.Put(ctx, key, rec)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			poll(t, 10*time.Second, "the create to reach every copy", func() bool {
				return copiesOf(nodes, key, v1) == tt.backups+1
			})
			live := nodes
			if tt.kill {
				n2.kill()
				live = []*Store{n0, n1}
			} else {
				faults.partition(n0, n1)
				faults.partition(n0, n2)
			}
			rec.Data, rec.Version = []byte("v2"), v1
			v2, err := n0.Put(ctx, key, rec)
			if !tt.wantAck {
				if err == nil || !errors.Is(err, ErrNoQuorum) || !errors.Is(err, session.ErrUnavailable) {
					t.Fatalf("Put = %d, %v; want an error wrapping ErrNoQuorum and ErrUnavailable", v2, err)
				}
				if got := versionAt(n0, key); got != v1 {
					t.Fatalf("the primary's copy is at version %d after a refused write, want %d (unchanged)", got, v1)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v, want it acknowledged", err)
			}
			if got := copiesOf(live, key, v2); got < tt.want {
				t.Fatalf("acknowledged write is on %d copies, want at least %d", got, tt.want)
			}
		})
	}
}

// TestQuorumAboveClusterSize checks that a replica whose cluster has fewer
// members than the quorum's copies refuses writes and is not ready, instead
// of acknowledging on fewer copies than asked: a first replica started
// alone under Quorum 2, until a second joins.
func TestQuorumAboveClusterSize(t *testing.T) {
	nodes := startCluster(t, 1, func(c *Config) { c.Quorum = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := keyOwnedBy(t, nodes[0], "n0")
	rec := session.Record{Data: []byte("v1"), IdleExpiry: time.Now().Add(time.Hour)}
	if _, err := nodes[0].Put(ctx, key, rec); !errors.Is(err, ErrNoQuorum) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Put on a cluster of one under Quorum 2 = %v, want ErrNoQuorum and ErrUnavailable", err)
	}
	if err := nodes[0].Ping(ctx); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Ping on a cluster of one under Quorum 2 = %v, want ErrNoQuorum (not ready)", err)
	}
	if _, ok := nodes[0].tab.get(key); ok {
		t.Fatalf("the refused write left a copy")
	}
	cfg := testConfig(t, "n1")
	cfg.Quorum, cfg.Peers = 2, []string{nodes[0].ClusterAddr()}
	nodes = append(nodes, startNode(t, cfg))
	waitMembers(t, nodes, 2)
	v, err := nodes[0].Put(ctx, key, rec)
	if err != nil {
		t.Fatalf("Put once a second replica joined: %v", err)
	}
	if got := copiesOf(nodes, key, v); got != 2 {
		t.Fatalf("acknowledged write is on %d copies, want 2", got)
	}
	if err := nodes[0].Ping(ctx); err != nil {
		t.Fatalf("Ping with two members under Quorum 2 = %v, want nil", err)
	}
}
