package main

import (
	"flag"
	"log/slog"
	"runtime"
	"time"

	"github.com/statelab/statelab/balancer"
)

// lbFlagGroups are statelab lb's flag groups beside its basic flags.
type lbFlagGroups struct {
	pools   poolFlags
	tls     tlsFlags
	traffic trafficFlags
	engine  string
}

// register adds every group's flags to fs.
func (g *lbFlagGroups) register(fs *flag.FlagSet) {
	g.pools.register(fs)
	g.tls.register(fs)
	g.traffic.register(fs)
	fs.StringVar(&g.engine, "engine", defaultEngine(), "what serves plain HTTP: epoll (Linux: an event loop; TLS, the access log, --deny-path and --backend-maxconn keep fasthttp) or fasthttp")
}

// apply sets every group's flags on cfg, or returns the first usage error.
func (g *lbFlagGroups) apply(cfg *balancer.Config, log *slog.Logger) error {
	if err := g.pools.apply(cfg); err != nil {
		return err
	}
	if err := g.tls.apply(cfg, log); err != nil {
		return err
	}
	cfg.Engine = g.engine
	return g.traffic.apply(cfg)
}

// defaultEngine is --engine's default: the epoll engine where there is
// epoll, fasthttp elsewhere.
func defaultEngine() string {
	if runtime.GOOS == "linux" {
		return balancer.EngineEpoll
	}
	return balancer.EngineFastHTTP
}

// trafficFlags are statelab lb's traffic-management flags: retry budget,
// per-backend connection limit and queue, slow start, outlier detection.
type trafficFlags struct {
	retryBudget    float64
	retryBudgetMin int
	backendMaxConn int
	queueTimeout   time.Duration
	slowStart      time.Duration
	ejectOn        string
	ejectLatency   time.Duration
	maxEjected     float64
}

// register adds the traffic-management flags to fs.
func (f *trafficFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&f.retryBudget, "retry-budget", 0.2, "share of the requests in flight that may be retrying at once (0: no budget, --max-tries alone)")
	fs.IntVar(&f.retryBudgetMin, "retry-budget-min", 3, "requests that may be retrying at once whatever --retry-budget says")
	fs.IntVar(&f.backendMaxConn, "backend-maxconn", 0, "requests in flight per backend at most; more wait in a queue (0: no limit)")
	fs.DurationVar(&f.queueTimeout, "queue-timeout", 5*time.Second, "longest wait in the --backend-maxconn queue before 503 + Retry-After")
	fs.DurationVar(&f.slowStart, "slow-start", 0, "ramp a backend that was added or came back up from 10% to 100% of its weight over this window (0: off)")
	fs.StringVar(&f.ejectOn, "eject-on", balancer.Eject5xx, "responses that count towards passive ejection with connection errors: 5xx (every 5xx) or gateway (502, 503, 504 only)")
	fs.DurationVar(&f.ejectLatency, "eject-latency", 0, "an answer slower than this counts towards passive ejection like an error (0: latency not judged)")
	fs.Float64Var(&f.maxEjected, "max-ejected-share", 0.5, "largest share of a pool's backends ejected at once (one always may be); 1: no cap")
}

// apply checks the flags and sets them on cfg, or returns a usage error
// naming the bad flag.
func (f *trafficFlags) apply(cfg *balancer.Config) error {
	switch {
	case f.retryBudget < 0 || f.retryBudget > 1:
		return usageErrorf("lb", "invalid --retry-budget %v: must be between 0 and 1", f.retryBudget)
	case f.retryBudgetMin < 0:
		return usageErrorf("lb", "invalid --retry-budget-min %d: must not be negative", f.retryBudgetMin)
	case f.backendMaxConn < 0:
		return usageErrorf("lb", "invalid --backend-maxconn %d: must not be negative", f.backendMaxConn)
	case f.queueTimeout <= 0:
		return usageErrorf("lb", "invalid --queue-timeout %v: must be positive", f.queueTimeout)
	case f.slowStart < 0:
		return usageErrorf("lb", "invalid --slow-start %v: must not be negative", f.slowStart)
	case f.ejectOn != balancer.Eject5xx && f.ejectOn != balancer.EjectGateway:
		return usageErrorf("lb", "invalid --eject-on %q: want 5xx or gateway", f.ejectOn)
	case f.ejectLatency < 0:
		return usageErrorf("lb", "invalid --eject-latency %v: must not be negative", f.ejectLatency)
	case f.maxEjected <= 0 || f.maxEjected > 1:
		return usageErrorf("lb", "invalid --max-ejected-share %v: must be above 0 and at most 1", f.maxEjected)
	}
	cfg.BackendMaxConn = f.backendMaxConn
	cfg.QueueTimeout = f.queueTimeout
	cfg.SlowStart = f.slowStart
	cfg.EjectOn = f.ejectOn
	cfg.EjectLatency = f.ejectLatency
	cfg.MaxEjectedShare = f.maxEjected
	// The flags' 0 means "none"; the balancer's 0 means "the default".
	cfg.RetryBudget, cfg.RetryBudgetMin = f.retryBudget, f.retryBudgetMin
	if f.retryBudget == 0 {
		cfg.RetryBudget = -1
	}
	if f.retryBudgetMin == 0 {
		cfg.RetryBudgetMin = -1
	}
	return nil
}
