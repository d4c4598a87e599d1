package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/cluster"
)

// Scenario is one of SPEC's scenarios: what happens to the cluster during a
// run.
type Scenario string

// The scenarios of SPEC.
const (
	// Steady is a fixed arrival rate with no faults.
	Steady Scenario = "steady"
	// Failover SIGKILLs one replica at 30% of the run and restarts it at 65%.
	Failover Scenario = "failover"
	// Scaleout starts with half the replicas and adds the rest at 40%.
	Scaleout Scenario = "scaleout"
	// Rolling restarts every replica in turn, gracefully, between 20% and 80%.
	Rolling Scenario = "rolling"
	// Tabs gives every shopper several tabs sharing one session that update
	// the same cart line concurrently.
	Tabs Scenario = "tabs"
	// Storefail stops the external store at 35% and starts it at 65%.
	Storefail Scenario = "storefail"
)

// Scenarios returns every scenario in SPEC's order.
func Scenarios() []Scenario {
	return []Scenario{Steady, Failover, Scaleout, Rolling, Tabs, Storefail}
}

// ParseScenario returns the scenario named s, or an error wrapping
// ErrUnknownScenario.
func ParseScenario(s string) (Scenario, error) {
	for _, sc := range Scenarios() {
		if string(sc) == strings.TrimSpace(s) {
			return sc, nil
		}
	}
	return "", fmt.Errorf("%w %q (want one of steady, failover, scaleout, rolling, tabs, storefail)", ErrUnknownScenario, s)
}

// Describe says in one sentence what the scenario does.
func (s Scenario) Describe() string {
	switch s {
	case Steady:
		return "fixed arrival rate, no faults"
	case Failover:
		return "replica r2 is SIGKILLed at 30% of the run and restarted at 65%"
	case Scaleout:
		return "starts with half the replicas; the rest join through the balancer's admin API at 40%"
	case Rolling:
		return "every replica is restarted gracefully in turn between 20% and 80%"
	case Tabs:
		return "each shopper has several tabs sharing one session, incrementing the same cart line concurrently"
	case Storefail:
		return "the external store is stopped at 35% of the run and started again at 65%"
	}
	return ""
}

// initialReplicas is how many replicas the cluster starts with.
func (s Scenario) initialReplicas(n int) int {
	if s == Scaleout {
		return max(1, n/2)
	}
	return n
}

// faultStep is one scheduled action on the cluster.
type faultStep struct {
	at   float64 // fraction of the run
	what string
	do   func(ctx context.Context, c *cluster.Cluster) error
}

// plan returns the fault schedule of the scenario for a cluster that will
// end with n replicas.
func (s Scenario) plan(n int) []faultStep {
	switch s {
	case Failover:
		victim := "r2"
		if n < 2 {
			victim = "r1"
		}
		return []faultStep{
			{0.30, "kill " + victim, func(ctx context.Context, c *cluster.Cluster) error { return c.Kill(ctx, victim) }},
			{0.65, "restart " + victim, func(ctx context.Context, c *cluster.Cluster) error { return c.Restart(ctx, victim) }},
		}
	case Scaleout:
		var steps []faultStep
		for i := s.initialReplicas(n); i < n; i++ {
			steps = append(steps, faultStep{0.40, fmt.Sprintf("add r%d", i+1), func(ctx context.Context, c *cluster.Cluster) error {
				_, err := c.Add(ctx)
				return err
			}})
		}
		return steps
	case Rolling:
		var steps []faultStep
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("r%d", i+1)
			at := 0.20
			if n > 1 {
				at += 0.60 * float64(i) / float64(n-1)
			}
			steps = append(steps, faultStep{at, "restart " + id, func(ctx context.Context, c *cluster.Cluster) error { return c.Restart(ctx, id) }})
		}
		return steps
	case Storefail:
		return []faultStep{
			{0.35, "store down", func(ctx context.Context, c *cluster.Cluster) error { return c.StopStore(ctx) }},
			{0.65, "store up", func(ctx context.Context, c *cluster.Cluster) error { return c.StartStore(ctx) }},
		}
	}
	return nil
}

// injectFaults runs plan against c on the workload's clock and returns the
// faults as they happened. It stops early when ctx ends. An action that
// fails is reported as a fault whose description carries the error, and
// in errs.
func injectFaults(ctx context.Context, c *cluster.Cluster, w *workload, plan []faultStep) (faults []Fault, errs []error) {
	for _, st := range plan {
		at := w.rec.from + int64(st.at*float64(w.duration-time.Duration(w.rec.from)))
		if !w.sleepUntil(ctx, at) {
			return faults, errs
		}
		start := w.now()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := st.do(actx, c)
		cancel()
		f := Fault{At: start, End: w.now(), What: st.what}
		if err != nil {
			f.What += " (failed: " + err.Error() + ")"
			errs = append(errs, fmt.Errorf("%s: %w", st.what, err))
		}
		faults = append(faults, f)
	}
	return faults, errs
}
