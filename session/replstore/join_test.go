package replstore

import (
	"net"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/testenv"
)

// TestJoinThroughHostName joins through a DNS name rather than an address:
// memberlist's Join looks the name up and contacts every address it resolves
// to (the way a Kubernetes headless Service lists every pod), succeeding if
// any answers. "localhost" may resolve to ::1 as well, where nobody listens.
func TestJoinThroughHostName(t *testing.T) {
	a := startNode(t, testConfig(t, "a"))
	_, port, err := net.SplitHostPort(a.ClusterAddr())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "b")
	cfg.Peers = []string{"localhost:" + port}
	b := startNode(t, cfg)
	waitMembers(t, []*Store{a, b}, 2)
}

// TestJoinKeepsTryingAfterReachingOnlyItself covers replicas that start
// together and find their peers through DNS: the first one's lookup may
// return only its own address (or its own and peers not yet listening).
// Joining itself succeeds, but it is not a cluster: the replica must keep
// trying its peers until another member is known, or the replicas that
// started together stay split for good.
func TestJoinKeepsTryingAfterReachingOnlyItself(t *testing.T) {
	pa, pb := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := testConfig(t, "a")
	cfg.BindAddr = pa
	cfg.Peers = []string{pa, pb} // itself, and b before b runs
	cfg.JoinRetry = 100 * time.Millisecond
	a := startNode(t, cfg)

	cfg = testConfig(t, "b")
	cfg.BindAddr = pb // no Peers: only a's retries can join them
	b := startNode(t, cfg)
	waitMembers(t, []*Store{a, b}, 2)
}
