package play

import (
	"context"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/lab"
	"github.com/statelab/statelab/internal/strategy"
)

// SlowStart is the --slow-start of the playground's balancers (unless the
// base config of NewClusterStarter sets one): a restarted or added replica
// ramps up over it, and the page shows its effective weight meanwhile.
const SlowStart = 10 * time.Second

// NewClusterStarter returns a StartFunc that starts real clusters with
// package cluster: base is used as is, except that Strategy and Replicas
// come from each call and a zero SlowStart becomes SlowStart. base.Binary
// must name the statelab binary.
func NewClusterStarter(base cluster.Config) StartFunc {
	return func(ctx context.Context, st strategy.Strategy, replicas int) (Cluster, error) {
		cfg := base
		cfg.Strategy, cfg.Replicas = st, replicas
		if cfg.SlowStart == 0 {
			cfg.SlowStart = SlowStart
		}
		c, err := cluster.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return &labCluster{Cluster: c}, nil
	}
}

// labCluster adapts a *cluster.Cluster to Cluster: the cluster's methods
// as they are, but for the balancer's URL, Add's result and Notices.
type labCluster struct {
	*cluster.Cluster

	seen int // the last cluster event already turned into a notice
}

var (
	_ Cluster = (*labCluster)(nil)
	_ noticer = (*labCluster)(nil)
)

// BalancerURL returns the balancer's traffic URL.
func (l *labCluster) BalancerURL() string { return l.URL() }

// Add starts a replica and returns its id.
func (l *labCluster) Add(ctx context.Context) (string, error) {
	r, err := l.Cluster.Add(ctx)
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// Notices returns the crashes (children that exited on their own) since
// the last call.
func (l *labCluster) Notices() []string {
	var out []string
	for _, e := range l.Events(l.seen) {
		l.seen = e.Seq
		if e.Kind == cluster.EventCrash {
			out = append(out, e.Message)
		}
	}
	return out
}

// NewLabShoppers returns a ShoppersFunc that runs package lab's shopper
// workload in the background (lab.StartBackground): the same script as a
// lab run, its rate in requests per second.
func NewLabShoppers() ShoppersFunc {
	return func(ctx context.Context, balancerURL string, rate float64) (Shoppers, error) {
		return lab.StartBackground(ctx, balancerURL, rate)
	}
}
