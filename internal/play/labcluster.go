package play

import (
	"context"
	"errors"
	"fmt"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/lab"
	"github.com/statelab/statelab/internal/strategy"
)

// NewClusterStarter returns a StartFunc that starts real clusters with
// package cluster: base is used as is, except that Strategy and Replicas
// come from each call. base.Binary must name the statelab binary.
func NewClusterStarter(base cluster.Config) StartFunc {
	return func(ctx context.Context, st strategy.Strategy, replicas int) (Cluster, error) {
		cfg := base
		cfg.Strategy, cfg.Replicas = st, replicas
		c, err := cluster.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return &labCluster{c: c}, nil
	}
}

// labCluster adapts a *cluster.Cluster to Cluster.
type labCluster struct {
	c *cluster.Cluster

	seen int // the last cluster event already turned into a notice
}

var (
	_ Cluster = (*labCluster)(nil)
	_ noticer = (*labCluster)(nil)
)

func (l *labCluster) Strategy() strategy.Strategy { return l.c.Strategy() }
func (l *labCluster) BalancerURL() string         { return l.c.URL() }
func (l *labCluster) AdminURL() string            { return l.c.AdminURL() }

func (l *labCluster) Replicas() []ReplicaProcess {
	reps := l.c.Replicas()
	out := make([]ReplicaProcess, 0, len(reps))
	for _, r := range reps {
		p := ReplicaProcess{ID: r.ID, URL: r.URL, State: ProcessRunning}
		switch r.State {
		case cluster.StateDown:
			p.State = ProcessDown
		case cluster.StatePaused:
			p.State = ProcessPaused
		}
		out = append(out, p)
	}
	return out
}

func (l *labCluster) Store() StoreProcess {
	s := l.c.Store()
	return StoreProcess{Kind: s.Kind, Addr: s.Detail, External: s.External, Up: s.Up}
}

func (l *labCluster) Kill(_ context.Context, id string) error   { return mapErr(l.c.Kill(id)) }
func (l *labCluster) Pause(_ context.Context, id string) error  { return mapErr(l.c.Pause(id)) }
func (l *labCluster) Resume(_ context.Context, id string) error { return mapErr(l.c.Resume(id)) }
func (l *labCluster) Restart(ctx context.Context, id string) error {
	return mapErr(l.c.Restart(ctx, id))
}
func (l *labCluster) Remove(ctx context.Context, id string) error {
	return mapErr(l.c.Remove(ctx, id))
}
func (l *labCluster) StopStore(ctx context.Context) error  { return mapErr(l.c.StopStore(ctx)) }
func (l *labCluster) StartStore(ctx context.Context) error { return mapErr(l.c.StartStore(ctx)) }
func (l *labCluster) Close() error                         { return l.c.Close() }

func (l *labCluster) Add(ctx context.Context) (string, error) {
	r, err := l.c.Add(ctx)
	if err != nil {
		return "", mapErr(err)
	}
	return r.ID, nil
}

// Notices returns the crashes (children that exited on their own) since
// the last call.
func (l *labCluster) Notices() []string {
	var out []string
	for _, e := range l.c.Events(l.seen) {
		l.seen = e.Seq
		if e.Kind == cluster.EventCrash {
			out = append(out, e.Message)
		}
	}
	return out
}

// mapErr turns the cluster's sentinels into the playground's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrUnknownReplica):
		return fmt.Errorf("%w: %w", ErrUnknownReplica, err)
	case errors.Is(err, cluster.ErrNoStore):
		return fmt.Errorf("%w: %w", ErrNoStore, err)
	}
	return err
}

// NewLabShoppers returns a ShoppersFunc that runs package lab's shopper
// workload in the background (lab.StartBackground): the same script as a
// lab run, its rate in requests per second.
func NewLabShoppers() ShoppersFunc {
	return func(ctx context.Context, balancerURL string, rate float64) (Shoppers, error) {
		return lab.StartBackground(ctx, balancerURL, rate)
	}
}
