package lab

import (
	"fmt"
	"strings"
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
	// N is the claim's number in SPEC's list (1..10).
	N int
	// Text is the claim as SPEC states it.
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

// claimTexts are SPEC's ten statements.
var claimTexts = [10]string{
	"Stateful services need session persistence (same client, same server).",
	"Stateful services are harder to scale horizontally.",
	"Stateful services are more vulnerable to server failure: state on a dead server is lost.",
	"Sticky sessions limit fault tolerance.",
	"Session replication works but adds overhead.",
	"A distributed cache (Redis) is a good place for session state.",
	"A database is also a good, scalable place for session state.",
	"Stateless services: any server handles any request; scaling out is just adding servers.",
	"Stateless services are more fault-tolerant.",
	"Each request of a stateless service carries all it needs (client-held state).",
}

// runIndex finds runs by strategy and scenario.
type runIndex map[string]*Run

func indexRuns(runs []*Run) runIndex {
	ix := runIndex{}
	for _, r := range runs {
		if r.Skipped == "" {
			ix[r.Result.Strategy+"/"+r.Result.Scenario] = r
		}
	}
	return ix
}

func (ix runIndex) get(strategy, scenario string) *RunResult {
	if r, ok := ix[strategy+"/"+scenario]; ok {
		return &r.Result
	}
	return nil
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

func lostText(r *RunResult) string {
	return fmt.Sprintf("%s %s: %d of %d acknowledged items lost in %d of %d carts, %d stale reads",
		r.Strategy, r.Scenario, r.ItemsLost, r.ItemsAcked, r.CartsLost, r.Carts, r.StaleReads)
}

// EvaluateClaims takes each of SPEC's ten statements and judges it on the
// runs. A claim whose runs are missing is "not measured", and says which.
func EvaluateClaims(runs []*Run) []ClaimResult {
	ix := indexRuns(runs)
	out := make([]ClaimResult, 10)
	for i := range out {
		out[i] = ClaimResult{N: i + 1, Text: claimTexts[i], Verdict: NotMeasured}
	}
	missing := func(i int, need ...string) bool {
		var miss []string
		for _, n := range need {
			if _, ok := ix[n]; !ok {
				miss = append(miss, strings.ReplaceAll(n, "/", " × "))
			}
		}
		if len(miss) > 0 {
			out[i].Evidence = "needs the runs " + strings.Join(miss, ", ")
			return true
		}
		return false
	}

	// 1. Session persistence.
	if !missing(0, "naive/steady", "sticky/steady") {
		n, s := ix.get("naive", "steady"), ix.get("sticky", "steady")
		out[0].Evidence = fmt.Sprintf("without affinity (%s); with sticky sessions (%s)", lostText(n), lostText(s))
		switch {
		case n.StaleReads+n.ItemsLost > 0 && s.StaleReads+s.ItemsLost == 0:
			out[0].Verdict = Holds
		case n.StaleReads+n.ItemsLost > 0:
			out[0].Verdict = HoldsWithCost
			out[0].Evidence += "; affinity alone was not enough either"
		default:
			out[0].Verdict = DoesNotHold
		}
	}

	// 2. Harder to scale.
	if !missing(1, "sticky/scaleout", "client/scaleout") {
		s, c := ix.get("sticky", "scaleout"), ix.get("client", "scaleout")
		out[1].Evidence = fmt.Sprintf("after scaling out from %d to %d replicas, sticky's busiest replica took %.2f× the mean load and the stateless client strategy's %.2f×; error rates %s vs %s, p99 %.1f vs %.1f ms",
			s.Replicas/2, s.Replicas, s.Imbalance, c.Imbalance, pct(s.ErrorRate), pct(c.ErrorRate), s.LatencyMS.P99, c.LatencyMS.P99)
		switch {
		case s.Imbalance > c.Imbalance*1.1 || s.ErrorRate > c.ErrorRate+0.01:
			out[1].Verdict = Holds
		default:
			out[1].Verdict = DoesNotHold
			out[1].Evidence += " (sessions here are short, so sticky load rebalances as shoppers come and go)"
		}
	}

	// 3. Vulnerable to server failure.
	if !missing(2, "sticky/failover") {
		s := ix.get("sticky", "failover")
		var others []string
		othersLost := 0
		for _, st := range []string{"cache", "database", "client"} {
			if r := ix.get(st, "failover"); r != nil {
				others = append(others, fmt.Sprintf("%s %d", st, r.ItemsLost))
				othersLost += r.ItemsLost
			}
		}
		out[2].Evidence = lostText(s)
		if len(others) > 0 {
			out[2].Evidence += "; items lost by the strategies that keep state outside the replica, on the same fault: " + strings.Join(others, ", ")
		}
		switch {
		case s.ItemsLost > 0 && othersLost == 0:
			out[2].Verdict = Holds
		case s.ItemsLost > 0:
			out[2].Verdict = HoldsWithCost
			out[2].Evidence += " (the stateless strategies lost some too)"
		default:
			out[2].Verdict = DoesNotHold
		}
	}

	// 4. Sticky sessions limit fault tolerance.
	if !missing(3, "sticky/failover") {
		s := ix.get("sticky", "failover")
		frac := 0.0
		if s.Carts > 0 {
			frac = float64(s.CartsLost) / float64(s.Carts)
		}
		out[3].Evidence = fmt.Sprintf("killing 1 of %d replicas under sticky sessions damaged %d of %d carts (%s); the balancer moved their owners to a live replica, where their carts did not exist",
			s.Replicas, s.CartsLost, s.Carts, pct(frac))
		if r := ix.get("replicated", "failover"); r != nil {
			out[3].Evidence += fmt.Sprintf("; sticky sessions plus replication lost %d items", r.ItemsLost)
		}
		if s.CartsLost > 0 {
			out[3].Verdict = Holds
		} else {
			out[3].Verdict = DoesNotHold
		}
	}

	// 5. Replication works but adds overhead.
	if !missing(4, "replicated/failover", "replicated/steady", "sticky/steady") {
		f, rs, ss := ix.get("replicated", "failover"), ix.get("replicated", "steady"), ix.get("sticky", "steady")
		out[4].Evidence = fmt.Sprintf("%s; steady latency p50 %.2f ms / p99 %.2f ms with replication vs %.2f / %.2f ms for sticky memory alone; error rate %s vs %s",
			lostText(f), rs.LatencyMS.P50, rs.LatencyMS.P99, ss.LatencyMS.P50, ss.LatencyMS.P99, pct(rs.ErrorRate), pct(ss.ErrorRate))
		costly := rs.LatencyMS.P50 > ss.LatencyMS.P50*1.05 || rs.LatencyMS.P99 > ss.LatencyMS.P99*1.10 || rs.ErrorRate > ss.ErrorRate+0.005
		// Replication also costs during a failure: writes whose backup is
		// gone fail (503) until membership notices, where sticky memory just
		// drops the carts.
		if sf := ix.get("sticky", "failover"); sf != nil {
			out[4].Evidence += fmt.Sprintf("; failover error rate %s with replication vs %s for sticky memory", pct(f.ErrorRate), pct(sf.ErrorRate))
			costly = costly || f.ErrorRate > sf.ErrorRate+0.005
		}
		switch {
		case f.ItemsLost > 0:
			out[4].Verdict = DoesNotHold
		case costly:
			out[4].Verdict = HoldsWithCost
		default:
			out[4].Verdict = Holds
			out[4].Evidence += " (no overhead measurable at this load)"
		}
	}

	// 6. Redis.
	if !missing(5, "cache/failover") {
		f := ix.get("cache", "failover")
		out[5].Evidence = lostText(f)
		verdict := Holds
		if f.ItemsLost > 0 {
			verdict = DoesNotHold
		}
		if sf := ix.get("cache", "storefail"); sf != nil {
			out[5].Evidence += fmt.Sprintf("; with Redis down for 30%% of the run the error rate was %s, p99 %.0f ms, and %d items were lost — Redis is a dependency every request needs", pct(sf.ErrorRate), sf.LatencyMS.P99, sf.ItemsLost)
			if verdict == Holds && outageHurts(sf, ix.get("cache", "steady")) {
				verdict = HoldsWithCost
			}
		}
		out[5].Verdict = verdict
	}

	// 7. Database.
	if !missing(6, "database/failover", "database/steady") {
		f, st := ix.get("database", "failover"), ix.get("database", "steady")
		out[6].Evidence = fmt.Sprintf("%s; steady p50 %.2f ms, p99 %.2f ms", lostText(f), st.LatencyMS.P50, st.LatencyMS.P99)
		verdict := Holds
		if f.ItemsLost > 0 {
			verdict = DoesNotHold
		}
		if c := ix.get("cache", "steady"); c != nil {
			out[6].Evidence += fmt.Sprintf(" (cache: %.2f / %.2f ms)", c.LatencyMS.P50, c.LatencyMS.P99)
			if verdict == Holds && st.LatencyMS.P99 > c.LatencyMS.P99*1.1 {
				verdict = HoldsWithCost
			}
		}
		if so := ix.get("database", "scaleout"); so != nil {
			out[6].Evidence += fmt.Sprintf("; scale-out %d→%d replicas: %.0f of %.0f req/s offered served, imbalance %.2f", so.Replicas/2, so.Replicas, so.AchievedRPS, so.OfferedRPS, so.Imbalance)
		}
		if sf := ix.get("database", "storefail"); sf != nil {
			out[6].Evidence += fmt.Sprintf("; with the database unavailable for 30%% of the run the error rate was %s, p99 %.0f ms, and %d items were lost", pct(sf.ErrorRate), sf.LatencyMS.P99, sf.ItemsLost)
			if verdict == Holds && outageHurts(sf, st) {
				verdict = HoldsWithCost
			}
		}
		out[6].Verdict = verdict
	}

	// 8. Stateless: any server, scale by adding servers.
	if !missing(7, "client/steady", "client/scaleout") {
		st, so := ix.get("client", "steady"), ix.get("client", "scaleout")
		out[7].Evidence = fmt.Sprintf("round robin without affinity: %s; after adding %d replicas through the admin API the busiest replica took %.2f× the mean load, error rate %s",
			lostText(st), so.Replicas-so.Replicas/2, so.Imbalance, pct(so.ErrorRate))
		switch {
		case st.StaleReads+st.ItemsLost == 0 && so.Imbalance <= 1.25:
			out[7].Verdict = Holds
		default:
			out[7].Verdict = DoesNotHold
		}
	}

	// 9. Stateless more fault-tolerant.
	if !missing(8, "client/failover", "sticky/failover") {
		c, s := ix.get("client", "failover"), ix.get("sticky", "failover")
		out[8].Evidence = fmt.Sprintf("same fault: %s; %s", lostText(c), lostText(s))
		if c.RecoveryMS != nil && s.RecoveryMS != nil {
			out[8].Evidence += fmt.Sprintf("; error-rate recovery %d ms vs %d ms", *c.RecoveryMS, *s.RecoveryMS)
		}
		switch {
		case c.ItemsLost == 0 && s.ItemsLost > 0:
			out[8].Verdict = Holds
		case c.ItemsLost < s.ItemsLost:
			out[8].Verdict = HoldsWithCost
		default:
			out[8].Verdict = DoesNotHold
		}
	}

	// 10. Client-held state.
	if !missing(9, "client/steady") {
		c := ix.run("client", "steady")
		out[9].Evidence = fmt.Sprintf("each request carried a %.0f-byte cookie on average", c.CookieBytes)
		if s := ix.run("sticky", "steady"); s != nil {
			out[9].Evidence += fmt.Sprintf(" (a server-side session id: %.0f bytes)", s.CookieBytes)
		}
		out[9].Verdict = Holds
		if t := ix.get("client", "tabs"); t != nil {
			out[9].Evidence += fmt.Sprintf("; with several tabs sharing the cart %d acknowledged updates were lost (the last response's cookie wins)", t.LostUpdates)
			if t.LostUpdates > 0 {
				out[9].Verdict = HoldsWithCost
			}
		}
	}
	return out
}

// outageHurts reports whether a store outage showed to clients: errors, or
// a p99 latency over twice the steady run's.
func outageHurts(outage, steady *RunResult) bool {
	if outage.ErrorRate > 0 {
		return true
	}
	return steady != nil && outage.LatencyMS.P99 > 2*steady.LatencyMS.P99
}

func (ix runIndex) run(strategy, scenario string) *Run { return ix[strategy+"/"+scenario] }
