package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// takePort listens on port, as another program that took it between the
// cluster's pick and its child's bind would, until the test ends.
func takePort(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// TestReplicaThatLostItsPortStartsOnAnother: a new replica whose port was
// taken before it could bind it is started again on a new port, and its
// failed first start is not reported as a crash (Close would fail).
func TestReplicaThatLostItsPortStartsOnAnother(t *testing.T) {
	c := startCluster(t, Config{Strategy: strategy.Naive, Replicas: 1})
	r, err := c.newReplica()
	if err != nil {
		t.Fatal(err)
	}
	taken := r.port
	takePort(t, taken)
	if err := c.launch(r); err != nil {
		t.Fatal(err)
	}
	if err := c.waitReadyMoving(context.Background(), r, func() error { return c.launch(r) }); err != nil {
		t.Fatalf("replica on a taken port: %v", err)
	}
	if r.port == taken {
		t.Fatalf("replica still on port %d, which was taken", taken)
	}
	if code, by := get(t, &http.Client{}, r.url()+"/healthz"); code != http.StatusOK || by != r.id {
		t.Fatalf("GET /healthz on the new port: %d from %q", code, by)
	}
}

// TestBalancerThatLostItsPortStartsOnAnother: the balancer whose admin port
// was taken before it could bind it is started again on new ports and
// serves.
func TestBalancerThatLostItsPortStartsOnAnother(t *testing.T) {
	c := startCluster(t, Config{Strategy: strategy.Naive, Replicas: 1})
	c.lb.stop(5 * time.Second)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	takePort(t, port)
	taken := "http://127.0.0.1:" + strconv.Itoa(port)
	c.adminURL = taken
	var reps []*replica
	for _, id := range c.order {
		reps = append(reps, c.replicas[id])
	}
	if err := c.startBalancer(context.Background(), reps); err != nil {
		t.Fatalf("balancer with a taken admin port: %v", err)
	}
	if c.adminURL == taken {
		t.Fatal("the balancer's admin address did not move")
	}
	if code, by := get(t, &http.Client{}, c.URL()+"/api/cart"); code != http.StatusOK || by != "r1" {
		t.Fatalf("GET /api/cart through the restarted balancer: %d from %q", code, by)
	}
}

// readyzChecks returns how many /readyz requests the replica at url
// answered (its metrics): the balancer's health checks.
func readyzChecks(url string) int {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, `statelab_app_requests_total{code="200",route="readyz"} `) {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// TestKilledAndRestartedReplicaRampsUp kills a replica the balancer has
// checked and starts it again well within Fall × HealthInterval, so the
// balancer never marks it down: it still sees the restart (a new
// X-Statelab-Instance, or a refused connection) and ramps the replica up
// under its slow start.
func TestKilledAndRestartedReplicaRampsUp(t *testing.T) {
	c := startCluster(t, Config{Strategy: strategy.Naive, Replicas: 2, SlowStart: time.Hour, HealthInterval: 2 * time.Second})
	ctx := context.Background()
	r1, _ := c.Replica("r1")
	// The balancer must have seen the first process's identity.
	testenv.Eventually(t, 30*time.Second, "a health check of r1", func() bool { return readyzChecks(r1.URL) >= 1 })
	if err := c.Kill(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	var last []string
	testenv.Eventually(t, 30*time.Second, "the balancer to notice r1's restart", func() bool {
		bs, err := c.Backends(ctx)
		if err != nil {
			return false
		}
		last = last[:0]
		for _, b := range bs {
			last = append(last, b.ID+" restarts="+strconv.FormatUint(b.Restarts, 10)+" weight="+strconv.FormatFloat(b.EffectiveWeight, 'f', 2, 64))
			if b.ID == "r1" && b.Restarts >= 1 && b.Healthy && b.EffectiveWeight < 0.5 {
				return true
			}
		}
		return false
	})
	t.Logf("backends: %v", last)
}
