package play

import (
	"context"
	"errors"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
)

// Errors the playground returns and its controls map to HTTP statuses.
// Besides these, a control naming a replica the cluster does not have fails
// with cluster.ErrUnknownReplica, a store control on a strategy without an
// external store with cluster.ErrNoStore, and an unknown strategy with
// strategy.ErrUnknown: the playground shares the cluster's vocabulary.
var (
	// ErrBusy is returned when a control arrives while another one (such as
	// rebuilding the cluster) is still running.
	ErrBusy = errors.New("play: another action is still running")

	// ErrNoCluster is returned when a control arrives while no cluster is
	// running (before the first one started, or after one failed to start).
	ErrNoCluster = errors.New("play: no cluster is running")

	// ErrNoShoppers is returned when background shoppers are asked for but
	// the server was built without a ShoppersFunc.
	ErrNoShoppers = errors.New("play: background shoppers are not available")
)

// Cluster is the running cluster the playground drives: a balancer, its
// replicas and a store. It is the playground's own small view of a
// *cluster.Cluster, in the cluster's value types: NewClusterStarter adapts
// a real one, tests use a fake. Every method is safe for concurrent use.
type Cluster interface {
	// Strategy returns the strategy the cluster was started for.
	Strategy() strategy.Strategy
	// BalancerURL returns the base URL of the balancer's traffic port.
	BalancerURL() string
	// AdminURL returns the base URL of the balancer's admin API.
	AdminURL() string
	// Replicas returns every replica the cluster has, in id order.
	Replicas() []cluster.Replica
	// Store describes the cluster's store.
	Store() cluster.StoreInfo

	// Kill sends SIGKILL to replica id.
	Kill(ctx context.Context, id string) error
	// Pause sends SIGSTOP to replica id.
	Pause(ctx context.Context, id string) error
	// Resume sends SIGCONT to a paused replica id.
	Resume(ctx context.Context, id string) error
	// Restart starts replica id again (after a graceful stop if it is
	// running) and waits until it is ready.
	Restart(ctx context.Context, id string) error
	// Add starts a new replica, registers it with the balancer and returns
	// its id.
	Add(ctx context.Context) (string, error)
	// Remove drains replica id in the balancer, then stops it.
	Remove(ctx context.Context, id string) error
	// StopStore makes the external store unreachable; cluster.ErrNoStore
	// when there is none.
	StopStore(ctx context.Context) error
	// StartStore makes the external store reachable again;
	// cluster.ErrNoStore when there is none.
	StartStore(ctx context.Context) error

	// Close stops every process of the cluster and removes its files.
	Close() error
}

// StartFunc starts a cluster of replicas replicas for strategy. The
// playground calls it at start-up and again each time the strategy changes,
// after closing the previous cluster.
type StartFunc func(ctx context.Context, st strategy.Strategy, replicas int) (Cluster, error)

// Shoppers is a running background workload of simulated shoppers.
type Shoppers interface {
	// SetRate changes the shoppers' total rate, in requests per second.
	SetRate(perSecond float64)
	// Close stops the shoppers and waits for them.
	Close() error
}

// ShoppersFunc starts background shoppers sending rate requests per second
// to the balancer at balancerURL. They stop when ctx is cancelled or
// Close is called.
type ShoppersFunc func(ctx context.Context, balancerURL string, rate float64) (Shoppers, error)

// noticer is implemented by clusters that report things nobody asked for,
// such as a child process that crashed; the playground logs each notice.
type noticer interface {
	// Notices returns what happened since the last call, in plain words.
	// It is called from one goroutine at a time.
	Notices() []string
}
