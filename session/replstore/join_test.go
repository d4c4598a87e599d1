package replstore

import (
	"net"
	"testing"
	"time"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

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
	pa, pb := freePort(t), freePort(t)
	cfg := testConfig(t, "a")
	cfg.BindAddr = "127.0.0.1:" + pa
	cfg.Peers = []string{"127.0.0.1:" + pa, "127.0.0.1:" + pb} // itself, and b before b runs
	cfg.JoinRetry = 100 * time.Millisecond
	a := startNode(t, cfg)

	cfg = testConfig(t, "b")
	cfg.BindAddr = "127.0.0.1:" + pb // no Peers: only a's retries can join them
	b := startNode(t, cfg)
	waitMembers(t, []*Store{a, b}, 2)
}
