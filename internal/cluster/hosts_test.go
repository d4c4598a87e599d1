package cluster

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/netns"
	"github.com/statelab/statelab/internal/strategy"
)

// netnsNames lists the network namespaces of this machine.
func netnsNames(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestHostsCluster starts a cache cluster whose replicas are hosts of their
// own: a network left by a dead cluster process is removed first; the
// replicas listen on bridge addresses and are ready; Isolate makes one
// replica unready (it cannot reach Redis) while the other stays ready, and
// HealIsolation brings it back; Close removes every namespace. Needs root.
func TestHostsCluster(t *testing.T) {
	if err := HostsAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("skipping: redis-server is not on PATH")
	}
	ctx := context.Background()
	// A process that has exited: its pid names the "killed" run's network.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	old := networkPrefix + strconv.FormatInt(int64(dead.Process.Pid), 36)
	left, err := netns.New(ctx, old, netip.MustParsePrefix("10.215.251.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := left.AddHost(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { left.Close() })

	c := startCluster(t, Config{Strategy: strategy.Cache, Replicas: 2, Hosts: true})
	if strings.Contains(netnsNames(t), "stl-"+old+"-") {
		t.Errorf("the network of the dead run %s is still there", old)
	}
	self := "stl-" + networkPrefix + strconv.FormatInt(int64(os.Getpid()), 36) + "-r"
	if !strings.Contains(netnsNames(t), self) || !c.Hosts() {
		t.Fatalf("no namespace %s* for the replicas: %s", self, netnsNames(t))
	}
	client := &http.Client{Timeout: time.Second}
	ready := func(id string) bool {
		r, _ := c.Replica(id)
		code, _ := get(t, client, r.URL+"/readyz")
		return code == http.StatusOK
	}
	for _, r := range c.Replicas() {
		if !strings.HasPrefix(r.URL, "http://10.215.") || !ready(r.ID) {
			t.Fatalf("replica %s at %s: want a ready replica on the bridge", r.ID, r.URL)
		}
	}
	if err := c.Isolate(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "r2 to be unready, cut off from Redis", func() bool { return !ready("r2") })
	if !ready("r1") {
		t.Error("r1 unready while only r2 was cut off from the store")
	}
	if err := c.HealIsolation(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "r2 to be ready again", func() bool { return ready("r2") })
	if err := c.Partition(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := c.HealPartition(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if names := netnsNames(t); strings.Contains(names, self) {
		t.Errorf("Close left namespaces: %s", names)
	}
}

// TestHostsRequired: Partition and Isolate refuse a cluster without hosts.
func TestHostsRequired(t *testing.T) {
	c := bareCluster(t, strategy.Replicated, Config{})
	c.replicas["r1"] = &replica{id: "r1"}
	for name, f := range map[string]func(context.Context, string) error{"Partition": c.Partition, "Isolate": c.Isolate} {
		if err := f(context.Background(), "r1"); err == nil || !strings.Contains(err.Error(), "without hosts") {
			t.Errorf("%s without hosts: %v", name, err)
		}
	}
}
