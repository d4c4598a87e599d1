package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/cluster"
)

// Deployment is what a run drives and injects its faults into: a cluster
// the lab started itself (package cluster) or a target someone else runs
// (Config.Target). The lab reaches it through its balancer's URL, as users
// do, and through these controls.
type Deployment interface {
	// URL is the balancer's base URL, where shoppers send their requests.
	URL() string
	// Store is the kind of store the replicas keep sessions in, as the
	// results record it.
	Store() string
	// ReplicaIDs are the ids of the replicas serving now, as they sign
	// their responses (X-Served-By); nil when none can be found.
	ReplicaIDs(ctx context.Context) []string
	// Backends lists the balancer's backends through its admin API.
	Backends(ctx context.Context) ([]balancer.BackendStatus, error)
	// Can says whether the deployment can do action a; when not, why
	// says why (for "not run" and for the fault's note).
	Can(a Action) (ok bool, why string)
	// Do performs action a on replica id ("" for the actions on the store,
	// the new replica's id for ActAdd).
	Do(ctx context.Context, a Action, id string) error
	// Crashes lists the replicas and stores that exited on their own.
	Crashes() []string
	// Close ends the deployment: it stops what the lab started, and leaves
	// a target as the lab found it (a stopped store started again, a
	// paused replica resumed).
	Close() error
}

// Action is something a scenario does to a deployment.
type Action string

// The actions of the scenarios.
const (
	// ActKill kills a replica outright (SIGKILL, a pod deleted with no
	// grace).
	ActKill Action = "kill"
	// ActPause freezes a replica; ActResume continues it.
	ActPause  Action = "pause"
	ActResume Action = "resume"
	// ActRestart restarts a replica (gracefully if it runs).
	ActRestart Action = "restart"
	// ActAdd adds a replica to the balancer (scale out).
	ActAdd Action = "add"
	// ActStoreStop and ActStoreStart stop and start the external store.
	ActStoreStop  Action = "store-stop"
	ActStoreStart Action = "store-start"
)

// errCannot is wrapped by Do for an action the deployment cannot do.
var errCannot = errors.New("lab: the deployment cannot do this")

// started is a cluster the lab started: every action is a process signal
// or a control of package cluster.
type started struct{ c *cluster.Cluster }

// URL implements Deployment.
func (s started) URL() string { return s.c.URL() }

// Store implements Deployment.
func (s started) Store() string { return string(s.c.Store().Kind) }

// ReplicaIDs implements Deployment.
func (s started) ReplicaIDs(context.Context) []string {
	var ids []string
	for _, r := range s.c.Replicas() {
		ids = append(ids, r.ID)
	}
	return ids
}

// Backends implements Deployment.
func (s started) Backends(ctx context.Context) ([]balancer.BackendStatus, error) {
	return s.c.Backends(ctx)
}

// Can implements Deployment: a started cluster can do every action.
func (s started) Can(Action) (bool, string) { return true, "" }

// Do implements Deployment.
func (s started) Do(ctx context.Context, a Action, id string) error {
	switch a {
	case ActKill:
		return s.c.Kill(ctx, id)
	case ActPause:
		return s.c.Pause(ctx, id)
	case ActResume:
		return s.c.Resume(ctx, id)
	case ActRestart:
		return s.c.Restart(ctx, id)
	case ActAdd:
		_, err := s.c.Add(ctx)
		return err
	case ActStoreStop:
		return s.c.StopStore(ctx)
	case ActStoreStart:
		return s.c.StartStore(ctx)
	}
	return errCannot
}

// Crashes implements Deployment.
func (s started) Crashes() []string {
	var out []string
	for _, e := range s.c.Crashes() {
		out = append(out, e.Message)
	}
	return out
}

// Close implements Deployment: it stops the cluster. Crashes are reported
// by the run itself; any other cleanup error is returned.
func (s started) Close() error {
	if err := s.c.Close(); err != nil && !errors.Is(err, cluster.ErrCrashed) {
		return err
	}
	return nil
}

// clusterOf returns the cluster behind d when the lab started it, for a
// scenario step that needs a control only a started cluster has.
func clusterOf(d Deployment) (*cluster.Cluster, bool) {
	s, ok := d.(started)
	return s.c, ok
}

// run performs the step on d.
func (st faultStep) run(ctx context.Context, d Deployment) error {
	if ok, why := st.can(d); !ok {
		return fmt.Errorf("%w: %s", errCannot, why)
	}
	if st.do != nil {
		c, _ := clusterOf(d)
		return st.do(ctx, c)
	}
	return d.Do(ctx, st.action, st.id)
}

// can says whether d can take the step, and why not.
func (st faultStep) can(d Deployment) (bool, string) {
	if st.do != nil {
		if _, ok := clusterOf(d); !ok {
			return false, "its faults (" + st.what + ") need a cluster the lab started itself"
		}
		return true, ""
	}
	return d.Can(st.action)
}

// unsupported returns why d cannot run plan: the first step it cannot take
// that is not optional; "" when it can run it.
func unsupported(d Deployment, plan []faultStep) string {
	for _, st := range plan {
		if ok, why := st.can(d); !ok && !st.optional {
			return why
		}
	}
	return ""
}

// leftOut returns the note of a step d cannot take, "" when it can.
func leftOut(d Deployment, st faultStep) string {
	if ok, why := st.can(d); !ok {
		return st.what + " not done: " + why
	}
	return ""
}
