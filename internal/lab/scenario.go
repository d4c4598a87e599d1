package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/statelab/statelab/internal/cluster"
)

// Scenario is one of the lab's scenarios (docs/lab.md): what happens to the
// cluster during a run.
type Scenario string

// The scenarios. When each fault happens is fixed by the schedule constants
// below; Describe and the claims' evidence read them from there.
const (
	// Steady is a fixed arrival rate with no faults.
	Steady Scenario = "steady"
	// Failover SIGKILLs one replica and restarts it later.
	Failover Scenario = "failover"
	// Scaleout starts with half the replicas and adds the rest.
	Scaleout Scenario = "scaleout"
	// Rolling restarts every replica in turn, gracefully.
	Rolling Scenario = "rolling"
	// Tabs gives every shopper several tabs sharing one session that update
	// the same cart line concurrently.
	Tabs Scenario = "tabs"
	// Storefail stops the external store and starts it again.
	Storefail Scenario = "storefail"
)

// The scenarios' schedules, as fractions of the measured run.
const (
	failoverKillAt, failoverRestartAt = 0.30, 0.65
	scaleoutAddAt                     = 0.40
	rollingFrom, rollingTo            = 0.20, 0.80
	storeDownAt, storeUpAt            = 0.35, 0.65
)

// What the store steps of a plan say; storeOutage finds them by it.
const (
	whatStoreDown = "store down"
	whatStoreUp   = "store up"
)

// Scenarios returns every scenario in the order of docs/lab.md.
func Scenarios() []Scenario {
	return []Scenario{Steady, Failover, Scaleout, Rolling, Tabs, Storefail, Partition, Isolate, SlowStore, Flaky, Surge, Deploy}
}

// ParseScenario returns the scenario named s, or an error wrapping
// ErrUnknownScenario.
func ParseScenario(s string) (Scenario, error) {
	for _, sc := range Scenarios() {
		if string(sc) == strings.TrimSpace(s) {
			return sc, nil
		}
	}
	names := make([]string, 0, len(Scenarios()))
	for _, sc := range Scenarios() {
		names = append(names, string(sc))
	}
	return "", fmt.Errorf("%w %q (want one of %s)", ErrUnknownScenario, s, strings.Join(names, ", "))
}

// Describe says in one sentence what the scenario does.
func (s Scenario) Describe() string {
	switch s {
	case Steady:
		return "fixed arrival rate, no faults"
	case Failover:
		return fmt.Sprintf("replica r2 is SIGKILLed at %s of the run and restarted at %s", share(failoverKillAt), share(failoverRestartAt))
	case Scaleout:
		return "starts with half the replicas; the rest join through the balancer's admin API at " + share(scaleoutAddAt)
	case Rolling:
		return fmt.Sprintf("every replica is restarted gracefully in turn between %s and %s", share(rollingFrom), share(rollingTo))
	case Tabs:
		return "each shopper has several tabs sharing one session, incrementing the same cart line concurrently"
	case Storefail:
		return fmt.Sprintf("the external store is stopped at %s of the run and started again at %s", share(storeDownAt), share(storeUpAt))
	case Surge:
		return fmt.Sprintf("quotes jump ×%d at %s of the run; at %s only pricing is scaled from 1 to %d replicas (then the same surge on the monolith, which scales the carts)", surgeFactor, share(surgeAt), share(surgeScaleAt), 1+surgeAdded)
	case Deploy:
		return fmt.Sprintf("the %d pricing replicas are deployed again one at a time (drain, SIGTERM, start, healthy) between %s and %s", deployPricing, share(deployFrom), share(deployTo))
	}
	if d := s.hostDescribe(); d != "" {
		return d
	}
	return s.linkDescribe()
}

// share formats a fraction of the run as a whole percentage: 0.35 → "35%".
func share(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// storeOutage returns the fraction of the run the scenario keeps the store
// down, from its plan: the time between each store-down step and the next
// store-up step (or the end of the run).
func (s Scenario) storeOutage() float64 {
	var total float64
	down := -1.0
	for _, st := range s.plan(1) {
		switch {
		case st.what == whatStoreDown && down < 0:
			down = st.at
		case st.what == whatStoreUp && down >= 0:
			total += st.at - down
			down = -1
		}
	}
	if down >= 0 {
		total += 1 - down
	}
	return total
}

// initialReplicas is how many replicas the cluster starts with.
func (s Scenario) initialReplicas(n int) int {
	if s == Scaleout {
		return max(1, n/2)
	}
	return n
}

// faultStep is one scheduled action on the deployment: an Action on a
// replica (or the store) that any deployment may be able to take, or do,
// a control only a cluster the lab started has.
type faultStep struct {
	at   float64 // fraction of the run
	what string
	// do, when set, is the step; only a cluster the lab started can take
	// it, so a target does not run its scenario.
	do func(ctx context.Context, c *cluster.Cluster) error
	// action on replica id ("" for the store; the new id for ActAdd),
	// when do is not set.
	action Action
	id     string
	// optional steps are left out (and noted) on a deployment that cannot
	// take them, instead of the scenario not being run.
	optional bool
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
			{at: failoverKillAt, what: "kill " + victim, action: ActKill, id: victim},
			{at: failoverRestartAt, what: "restart " + victim, action: ActRestart, id: victim, optional: true},
		}
	case Scaleout:
		var steps []faultStep
		for i := s.initialReplicas(n); i < n; i++ {
			id := fmt.Sprintf("r%d", i+1)
			steps = append(steps, faultStep{at: scaleoutAddAt, what: "add " + id, action: ActAdd, id: id})
		}
		return steps
	case Rolling:
		var steps []faultStep
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("r%d", i+1)
			at := rollingFrom
			if n > 1 {
				at += (rollingTo - rollingFrom) * float64(i) / float64(n-1)
			}
			steps = append(steps, faultStep{at: at, what: "restart " + id, action: ActRestart, id: id})
		}
		return steps
	case Surge, Deploy:
		return s.servicesPlan()
	case Storefail:
		return []faultStep{
			{at: storeDownAt, what: whatStoreDown, action: ActStoreStop},
			{at: storeUpAt, what: whatStoreUp, action: ActStoreStart},
		}
	}
	return nil
}

// injectFaults runs plan against c on the workload's clock and returns the
// faults as they happened. It stops early when ctx ends. An action that
// fails is reported as a fault whose description carries the error, and
// in errs.
func injectFaults(ctx context.Context, d Deployment, w *workload, plan []faultStep) (faults []Fault, errs []error) {
	for _, st := range plan {
		at := w.rec.from + int64(st.at*float64(w.duration-time.Duration(w.rec.from)))
		if !w.sleepUntil(ctx, at) {
			return faults, errs
		}
		start := w.now()
		if note := leftOut(d, st); note != "" {
			faults = append(faults, Fault{At: start, End: start, What: note})
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := st.run(actx, d)
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
