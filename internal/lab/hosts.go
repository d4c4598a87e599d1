package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/session/replstore"
)

// The host scenarios: every replica runs as a host of its own (a Linux
// network namespace, internal/netns), so that the links between replicas,
// and between a replica and the store, can be cut while the balancer still
// reaches every replica.
const (
	// Partition cuts one replica off from its peers (not from the
	// balancer, not from the store), then heals the cut.
	Partition Scenario = "partition"
	// Isolate cuts one replica off from the store while the balancer still
	// reaches it, then heals the cut.
	Isolate Scenario = "isolate"
)

// The host scenarios' schedule, as fractions of the measured run.
const hostCutAt, hostHealAt = 0.35, 0.65

// hostDescribe says what a host scenario does, or "" for another one.
func (s Scenario) hostDescribe() string {
	switch s {
	case Partition:
		return fmt.Sprintf("replica r2 (each replica a host of its own) is cut off from its peers, not from the balancer or the store, at %s of the run; the cut heals at %s",
			share(hostCutAt), share(hostHealAt))
	case Isolate:
		return fmt.Sprintf("replica r2 (each replica a host of its own) is cut off from the store while the balancer still reaches it, at %s of the run; the cut heals at %s",
			share(hostCutAt), share(hostHealAt))
	}
	return ""
}

// needsHosts reports whether cfg's scenario runs the replicas as hosts.
func (cfg Config) needsHosts() bool { return cfg.Scenario == Partition || cfg.Scenario == Isolate }

// hostPlan is the fault schedule of a host scenario, or nil for another
// scenario.
func (cfg Config) hostPlan() []faultStep {
	victim := "r2"
	if cfg.Replicas < 2 {
		victim = "r1"
	}
	switch cfg.Scenario {
	case Partition:
		return []faultStep{
			{at: hostCutAt, what: "cut " + victim + " off from its peers", do: func(ctx context.Context, c *cluster.Cluster) error { return c.Partition(ctx, victim) }},
			{at: hostHealAt, what: "heal " + victim + "'s peer links", do: func(ctx context.Context, c *cluster.Cluster) error { return c.HealPartition(ctx, victim) }},
		}
	case Isolate:
		return []faultStep{
			{at: hostCutAt, what: "cut " + victim + " off from the store", do: func(ctx context.Context, c *cluster.Cluster) error { return c.Isolate(ctx, victim) }},
			{at: hostHealAt, what: "heal " + victim + "'s store link", do: func(ctx context.Context, c *cluster.Cluster) error { return c.HealIsolation(ctx, victim) }},
		}
	}
	return nil
}

// hostSkip says why a host scenario cannot run for cfg here, or "" when
// it can (or cfg's scenario is not one).
func (cfg Config) hostSkip() string {
	if !cfg.needsHosts() {
		return ""
	}
	switch {
	case cfg.Scenario == Partition && cfg.Strategy != strategy.Replicated:
		return fmt.Sprintf("%s replicas do not talk to each other: there is no peer link to cut (partition is for replicated)", cfg.Strategy)
	case cfg.Scenario == Isolate && !cfg.Strategy.Spec().External():
		return fmt.Sprintf("%s keeps its carts in %s: there is no store to cut a replica off from", cfg.Strategy, where(cfg.Strategy))
	case cfg.Scenario == Isolate && cfg.Strategy == strategy.Database && cfg.PostgresURL == "":
		return "database runs on SQLite here, a file every replica opens: pass --postgres URL to cut a replica off from a database server"
	}
	if err := cluster.HostsAvailable(); err != nil {
		return "needs each replica to run as a host of its own: " + err.Error()
	}
	return ""
}

// quorumArg is the replicas' --repl-quorum for cfg, or "" for the app's
// default (a majority) or a strategy without replication.
func (cfg Config) quorumArg() string {
	if cfg.Strategy != strategy.Replicated {
		return ""
	}
	return cfg.ReplQuorum
}

// summarizeHosts records how the run placed the replicas and, for
// replicated, the write quorum they used.
func (cfg Config) summarizeHosts(r *RunResult) {
	r.Hosts = cfg.needsHosts()
	if cfg.Strategy == strategy.Replicated {
		r.ReplQuorum = "majority"
		if q := cfg.ReplQuorum; q != "" {
			r.ReplQuorum = q
		}
	}
}

// validateQuorum checks cfg's ReplQuorum.
func (cfg Config) validateQuorum() error {
	if cfg.ReplQuorum == "" {
		return nil
	}
	if _, err := replstore.ParseQuorum(cfg.ReplQuorum); err != nil {
		return fmt.Errorf("%w: replication quorum %q: want majority, one or a count of copies", ErrBadConfig, cfg.ReplQuorum)
	}
	return nil
}

// MinPartitionRun is the shortest partition run: its cut lasts 30% of the
// run, and must outlast the replicas' failure detection (memberlist
// declares a silent peer dead after one to two seconds) for the run to
// show anything but a blip. Shorter durations (demo --quick) are raised
// to it.
const MinPartitionRun = 10 * time.Second

// withHostDuration raises a partition run's duration to MinPartitionRun.
func (cfg Config) withHostDuration() Config {
	if cfg.Scenario == Partition && cfg.Duration < MinPartitionRun {
		cfg.Duration = MinPartitionRun
	}
	return cfg
}

// partitionClaimText is the claim the partition scenario tests.
const partitionClaimText = "Session replication survives a network partition only with a write quorum: the cut-off replica refuses writes (503) instead of accepting updates that vanish when the partition heals."

// partitionErrorMargin: refusing writes on the minority side is a cost
// when the partition run's error rate is more than half a percentage
// point, the margin replication's other judges use.
const partitionErrorMargin = 0.005

// judgePartition: under a write quorum, a partition loses no acknowledged
// item (refused writes are its cost); a run without a quorum measures what
// the quorum prevents and is not evidence for or against it.
func judgePartition(ix runIndex) (Verdict, string) {
	p := ix.get(strategy.Replicated, Partition)
	q := p.ReplQuorum
	if q == "" {
		q = "majority"
	}
	ev := fmt.Sprintf("replica r2 cut off from its %d peers for %s of the run, write quorum %s: %s; error rate %s, p99 %.0f ms",
		p.Replicas-1, share(hostHealAt-hostCutAt), q, lostText(p), pct(p.ErrorRate), p.LatencyMS.P99)
	switch {
	case q == "one":
		return NotMeasured, ev + " — this run had no quorum (--repl-quorum one): it shows what a quorum prevents, not what it costs"
	case p.ItemsLost > 0:
		return DoesNotHold, ev
	case p.ErrorRate > partitionErrorMargin:
		return HoldsWithCost, ev + " (the refused writes)"
	}
	return Holds, ev
}
