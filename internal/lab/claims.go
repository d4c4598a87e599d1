package lab

import (
	"fmt"
	"strings"

	"github.com/statelab/statelab/internal/strategy"
)

// Verdict is how a claim of the lesson fared against the measurements.
type Verdict string

// The verdicts.
const (
	Holds         Verdict = "holds"
	HoldsWithCost Verdict = "holds with a cost"
	DoesNotHold   Verdict = "does not hold"
	NotMeasured   Verdict = "not measured"
)

// ClaimResult is a claim with its verdict and evidence.
type ClaimResult struct {
	// N is the claim's number: its row in the claims table, from 1.
	N int
	// Text is the claim as the lesson states it.
	Text string
	// Verdict is holds, holds with a cost, does not hold or not measured.
	Verdict Verdict
	// Evidence gives the numbers behind the verdict.
	Evidence string
}

// JSON returns the claim as results.json records it: holds is true for
// "holds" and "holds with a cost", false for "does not hold", null when not
// measured; the evidence starts with the verdict.
func (c ClaimResult) JSON() Claim {
	out := Claim{Claim: c.Text, Evidence: string(c.Verdict) + ": " + c.Evidence}
	switch c.Verdict {
	case Holds, HoldsWithCost:
		t := true
		out.Holds = &t
	case DoesNotHold:
		f := false
		out.Holds = &f
	}
	return out
}

// claim is one row of the claims table: a statement of the lesson, the runs
// it is judged on and its judge.
type claim struct {
	// text is the statement as the lesson makes it.
	text string
	// needs are the runs without which the claim is not measured.
	needs []runKey
	// judge returns the verdict and the evidence. It is called only when
	// every run of needs is there; it may read other runs when present.
	judge func(ix runIndex) (Verdict, string)
}

// runKey names one run of a suite: a strategy through a scenario.
type runKey struct {
	strategy strategy.Strategy
	scenario Scenario
}

func (k runKey) String() string { return string(k.strategy) + " × " + string(k.scenario) }

// runIndex finds runs by strategy and scenario; skipped runs are left out.
type runIndex map[runKey]*Run

func indexRuns(runs []*Run) runIndex {
	ix := runIndex{}
	for _, r := range runs {
		if r.Skipped == "" {
			ix[keyOf(r.Result)] = r
		}
	}
	return ix
}

// get returns the result of strategy st through scenario sc, or nil.
func (ix runIndex) get(st strategy.Strategy, sc Scenario) *RunResult {
	if r, ok := ix[runKey{st, sc}]; ok {
		return &r.Result
	}
	return nil
}

// run returns the run of strategy st through scenario sc, or nil.
func (ix runIndex) run(st strategy.Strategy, sc Scenario) *Run { return ix[runKey{st, sc}] }

// missing lists the runs of needs that ix does not have.
func (ix runIndex) missing(needs []runKey) []string {
	var out []string
	for _, k := range needs {
		if _, ok := ix[k]; !ok {
			out = append(out, k.String())
		}
	}
	return out
}

// claims is the table: the statements of the lesson, in its order.
// Another claim (a game server's, a microservice's) is another row.
var claims = []claim{
	{"Stateful services need session persistence (same client, same server).",
		[]runKey{{strategy.Naive, Steady}, {strategy.Sticky, Steady}}, judgePersistence},
	{"Stateful services are harder to scale horizontally.",
		[]runKey{{strategy.Sticky, Scaleout}, {strategy.Client, Scaleout}}, judgeScaling},
	{"Stateful services are more vulnerable to server failure: state on a dead server is lost.",
		[]runKey{{strategy.Sticky, Failover}}, judgeServerFailure},
	{"Sticky sessions limit fault tolerance.",
		[]runKey{{strategy.Sticky, Failover}}, judgeStickyFaultTolerance},
	{"Session replication works but adds overhead.",
		[]runKey{{strategy.Replicated, Failover}, {strategy.Replicated, Steady}, {strategy.Sticky, Steady}}, judgeReplication},
	{"A distributed cache (Redis) is a good place for session state.",
		[]runKey{{strategy.Cache, Failover}}, judgeCache},
	{"A database is also a good, scalable place for session state.",
		[]runKey{{strategy.Database, Failover}, {strategy.Database, Steady}}, judgeDatabase},
	{"Stateless services: any server handles any request; scaling out is just adding servers.",
		[]runKey{{strategy.Client, Steady}, {strategy.Client, Scaleout}}, judgeStatelessScaling},
	{"Stateless services are more fault-tolerant.",
		[]runKey{{strategy.Client, Failover}, {strategy.Sticky, Failover}}, judgeStatelessFaultTolerance},
	{"Each request of a stateless service carries all it needs (client-held state).",
		[]runKey{{strategy.Client, Steady}}, judgeClientState},
	gameClaim,
	{replayClaimText, []runKey{{strategy.Client, Steady}}, judgeReplay},
	{partitionClaimText, []runKey{{strategy.Replicated, Partition}}, judgePartition},
}

// The rows of the microservice shape (claims_services.go) follow the
// lesson's.
func init() { claims = append(claims, serviceClaims...) }

// EvaluateClaims judges every claim of the table on the runs. A claim whose
// runs are missing is "not measured", and says which.
func EvaluateClaims(runs []*Run) []ClaimResult {
	ix := indexRuns(runs)
	out := make([]ClaimResult, len(claims))
	for i, c := range claims {
		out[i] = ClaimResult{N: i + 1, Text: c.text, Verdict: NotMeasured}
		if miss := ix.missing(c.needs); len(miss) > 0 {
			out[i].Evidence = "needs the runs " + strings.Join(miss, ", ")
			continue
		}
		out[i].Verdict, out[i].Evidence = c.judge(ix)
	}
	return out
}

// Thresholds of the judges. Each is a margin a measurement must clear
// before it counts as a difference, so that the noise of short runs on a
// shared machine does not decide a verdict.
const (
	// scaleImbalanceMargin: sticky's load imbalance after a scale-out must
	// exceed the stateless strategy's by more than 10% to count as harder
	// to scale; 3-second runs move the imbalance by a few percent from run
	// to run on their own.
	scaleImbalanceMargin = 1.10
	// scaleErrorMargin: or its error rate must be more than one
	// percentage point higher, more than the handful of timeouts a loaded
	// machine adds to any run.
	scaleErrorMargin = 0.01

	// replP50Margin, replP99Margin: replication costs latency when its
	// median is more than 5% over sticky memory's, or its p99 more than
	// 10% (tails are noisier than medians, so they get twice the margin).
	replP50Margin = 1.05
	replP99Margin = 1.10
	// replErrorMargin: or when its error rate is more than half a
	// percentage point higher, steady or during a failover.
	replErrorMargin = 0.005

	// dbP99Margin: the database costs latency when its steady p99 is more
	// than 10% over the cache's.
	dbP99Margin = 1.10

	// evenImbalance: after a scale-out, a stateless cluster is "just more
	// servers" when its busiest replica takes at most 25% over the mean
	// load; the replicas that join late start from nothing, so a perfectly
	// even 1.00 is not to be expected in a short run.
	evenImbalance = 1.25

	// outageP99Factor: a store outage shows to clients when it causes
	// errors, or a p99 over twice the steady run's (requests waiting on a
	// store that does not answer).
	outageP99Factor = 2.0
)

func pct(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

func lostText(r *RunResult) string {
	return fmt.Sprintf("%s %s: %d of %d acknowledged items lost in %d of %d carts, %d stale reads",
		r.Strategy, r.Scenario, r.ItemsLost, r.ItemsAcked, r.CartsLost, r.Carts, r.StaleReads)
}

// judgePersistence: without affinity carts break; with it they do not.
func judgePersistence(ix runIndex) (Verdict, string) {
	n, s := ix.get(strategy.Naive, Steady), ix.get(strategy.Sticky, Steady)
	ev := fmt.Sprintf("without affinity (%s); with sticky sessions (%s)", lostText(n), lostText(s))
	switch {
	case n.StaleReads+n.ItemsLost > 0 && s.StaleReads+s.ItemsLost == 0:
		return Holds, ev
	case n.StaleReads+n.ItemsLost > 0:
		return HoldsWithCost, ev + "; affinity alone was not enough either"
	}
	return DoesNotHold, ev
}

// judgeScaling: after a scale-out, sticky load stays uneven (or errs) where
// stateless load spreads.
func judgeScaling(ix runIndex) (Verdict, string) {
	s, c := ix.get(strategy.Sticky, Scaleout), ix.get(strategy.Client, Scaleout)
	ev := fmt.Sprintf("after scaling out from %d to %d replicas, sticky's busiest replica took %.2f× the mean load and the stateless client strategy's %.2f×; error rates %s vs %s, p99 %.1f vs %.1f ms",
		s.Replicas/2, s.Replicas, s.Imbalance, c.Imbalance, pct(s.ErrorRate), pct(c.ErrorRate), s.LatencyMS.P99, c.LatencyMS.P99)
	if s.Imbalance > c.Imbalance*scaleImbalanceMargin || s.ErrorRate > c.ErrorRate+scaleErrorMargin {
		return Holds, ev
	}
	return DoesNotHold, ev + " (sessions here are short, so sticky load rebalances as shoppers come and go)"
}

// judgeServerFailure: killing a replica loses the carts only it held, where
// the strategies that keep state outside the replica lose none.
func judgeServerFailure(ix runIndex) (Verdict, string) {
	s := ix.get(strategy.Sticky, Failover)
	var others []string
	othersLost := 0
	for _, st := range []strategy.Strategy{strategy.Cache, strategy.Database, strategy.Client} {
		if r := ix.get(st, Failover); r != nil {
			others = append(others, fmt.Sprintf("%s %d", st, r.ItemsLost))
			othersLost += r.ItemsLost
		}
	}
	ev := lostText(s)
	if len(others) > 0 {
		ev += "; items lost by the strategies that keep state outside the replica, on the same fault: " + strings.Join(others, ", ")
	}
	switch {
	case s.ItemsLost > 0 && othersLost == 0:
		return Holds, ev
	case s.ItemsLost > 0:
		return HoldsWithCost, ev + " (the stateless strategies lost some too)"
	}
	return DoesNotHold, ev
}

// judgeStickyFaultTolerance: a dead sticky replica's owners land where
// their carts do not exist.
func judgeStickyFaultTolerance(ix runIndex) (Verdict, string) {
	s := ix.get(strategy.Sticky, Failover)
	frac := 0.0
	if s.Carts > 0 {
		frac = float64(s.CartsLost) / float64(s.Carts)
	}
	ev := fmt.Sprintf("killing 1 of %d replicas under sticky sessions damaged %d of %d carts (%s); the balancer moved their owners to a live replica, where their carts did not exist",
		s.Replicas, s.CartsLost, s.Carts, pct(frac))
	if r := ix.get(strategy.Replicated, Failover); r != nil {
		ev += fmt.Sprintf("; sticky sessions plus replication lost %d items", r.ItemsLost)
	}
	if s.CartsLost > 0 {
		return Holds, ev
	}
	return DoesNotHold, ev
}

// judgeReplication: replication keeps every item through a failover, at a
// cost in latency or errors over sticky memory alone.
func judgeReplication(ix runIndex) (Verdict, string) {
	f, rs, ss := ix.get(strategy.Replicated, Failover), ix.get(strategy.Replicated, Steady), ix.get(strategy.Sticky, Steady)
	ev := fmt.Sprintf("%s; steady latency p50 %.2f ms / p99 %.2f ms with replication vs %.2f / %.2f ms for sticky memory alone; error rate %s vs %s",
		lostText(f), rs.LatencyMS.P50, rs.LatencyMS.P99, ss.LatencyMS.P50, ss.LatencyMS.P99, pct(rs.ErrorRate), pct(ss.ErrorRate))
	costly := rs.LatencyMS.P50 > ss.LatencyMS.P50*replP50Margin || rs.LatencyMS.P99 > ss.LatencyMS.P99*replP99Margin ||
		rs.ErrorRate > ss.ErrorRate+replErrorMargin
	// Replication also costs during a failure: writes whose backup is gone
	// fail (503) until membership notices, where sticky memory just drops
	// the carts.
	if sf := ix.get(strategy.Sticky, Failover); sf != nil {
		ev += fmt.Sprintf("; failover error rate %s with replication vs %s for sticky memory", pct(f.ErrorRate), pct(sf.ErrorRate))
		costly = costly || f.ErrorRate > sf.ErrorRate+replErrorMargin
	}
	switch {
	case f.ItemsLost > 0:
		return DoesNotHold, ev
	case costly:
		return HoldsWithCost, ev
	}
	return Holds, ev + " (no overhead measurable at this load)"
}

// judgeCache: Redis keeps carts through a replica failure; its own outage
// is a cost every request pays.
func judgeCache(ix runIndex) (Verdict, string) {
	f := ix.get(strategy.Cache, Failover)
	ev := lostText(f)
	verdict := Holds
	if f.ItemsLost > 0 {
		verdict = DoesNotHold
	}
	if sf := ix.get(strategy.Cache, Storefail); sf != nil {
		ev += fmt.Sprintf("; %s the error rate was %s, p99 %.0f ms, and %d items were lost — Redis is a dependency every request needs",
			redisOutageText(sf), pct(sf.ErrorRate), sf.LatencyMS.P99, sf.ItemsLost)
		if verdict == Holds && outageHurts(sf, ix.get(strategy.Cache, Steady)) {
			verdict = HoldsWithCost
		}
	}
	return withLink(ix, strategy.Cache, verdict, ev)
}

// judgeDatabase: the database keeps carts through a replica failure; it
// may cost latency over the cache, and its outage shows to clients.
func judgeDatabase(ix runIndex) (Verdict, string) {
	f, st := ix.get(strategy.Database, Failover), ix.get(strategy.Database, Steady)
	ev := fmt.Sprintf("%s; steady p50 %.2f ms, p99 %.2f ms", lostText(f), st.LatencyMS.P50, st.LatencyMS.P99)
	verdict := Holds
	if f.ItemsLost > 0 {
		verdict = DoesNotHold
	}
	if c := ix.get(strategy.Cache, Steady); c != nil {
		ev += fmt.Sprintf(" (cache: %.2f / %.2f ms)", c.LatencyMS.P50, c.LatencyMS.P99)
		if verdict == Holds && st.LatencyMS.P99 > c.LatencyMS.P99*dbP99Margin {
			verdict = HoldsWithCost
		}
	}
	if so := ix.get(strategy.Database, Scaleout); so != nil {
		ev += fmt.Sprintf("; scale-out %d→%d replicas: %.0f of %.0f req/s offered served, imbalance %.2f", so.Replicas/2, so.Replicas, so.AchievedRPS, so.OfferedRPS, so.Imbalance)
	}
	if sf := ix.get(strategy.Database, Storefail); sf != nil {
		ev += fmt.Sprintf("; with the database unavailable for %s of the run the error rate was %s, p99 %.0f ms, and %d items were lost",
			share(Storefail.storeOutage()), pct(sf.ErrorRate), sf.LatencyMS.P99, sf.ItemsLost)
		if verdict == Holds && outageHurts(sf, st) {
			verdict = HoldsWithCost
		}
	}
	return withLink(ix, strategy.Database, verdict, ev)
}

// judgeStatelessScaling: round robin without affinity loses nothing, and
// added replicas take an even share.
func judgeStatelessScaling(ix runIndex) (Verdict, string) {
	st, so := ix.get(strategy.Client, Steady), ix.get(strategy.Client, Scaleout)
	ev := fmt.Sprintf("round robin without affinity: %s; after adding %d replicas through the admin API the busiest replica took %.2f× the mean load, error rate %s",
		lostText(st), so.Replicas-so.Replicas/2, so.Imbalance, pct(so.ErrorRate))
	if st.StaleReads+st.ItemsLost == 0 && so.Imbalance <= evenImbalance {
		return Holds, ev
	}
	return DoesNotHold, ev
}

// judgeStatelessFaultTolerance: on the same fault, client-held state loses
// less than sticky memory.
func judgeStatelessFaultTolerance(ix runIndex) (Verdict, string) {
	c, s := ix.get(strategy.Client, Failover), ix.get(strategy.Sticky, Failover)
	ev := fmt.Sprintf("same fault: %s; %s", lostText(c), lostText(s))
	if c.RecoveryMS != nil && s.RecoveryMS != nil {
		ev += fmt.Sprintf("; error-rate recovery %d ms vs %d ms", *c.RecoveryMS, *s.RecoveryMS)
	}
	switch {
	case c.ItemsLost == 0 && s.ItemsLost > 0:
		return Holds, ev
	case c.ItemsLost < s.ItemsLost:
		return HoldsWithCost, ev
	}
	return DoesNotHold, ev
}

// judgeClientState: every request carries the cart; tabs sharing it lose
// updates (the last response's cookie wins).
func judgeClientState(ix runIndex) (Verdict, string) {
	c := ix.run(strategy.Client, Steady)
	ev := fmt.Sprintf("each request carried a %.0f-byte cookie on average", c.CookieBytes)
	if s := ix.run(strategy.Sticky, Steady); s != nil {
		ev += fmt.Sprintf(" (a server-side session id: %.0f bytes)", s.CookieBytes)
	}
	verdict := Holds
	if t := ix.get(strategy.Client, Tabs); t != nil {
		ev += fmt.Sprintf("; with several tabs sharing the cart %d acknowledged updates were lost (the last response's cookie wins)", t.LostUpdates)
		if t.LostUpdates > 0 {
			verdict = HoldsWithCost
		}
	}
	return verdict, ev
}

// outageHurts reports whether a store outage showed to clients: errors, or
// a p99 latency over outageP99Factor times the steady run's.
func outageHurts(outage, steady *RunResult) bool {
	if outage.ErrorRate > 0 {
		return true
	}
	return steady != nil && outage.LatencyMS.P99 > outageP99Factor*steady.LatencyMS.P99
}
