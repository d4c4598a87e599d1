package lab

import (
	"fmt"

	"github.com/statelab/statelab/internal/strategy"
)

// The claims of the microservice shape (docs/services.md). Each is judged
// on the surge or deploy run of whichever strategy made one (sticky first:
// the demo's), so that `lab --scenario surge` with any cart strategy
// measures them too.
var serviceClaims = []claim{
	{"Statelessness enables independent scaling of services (microservices).", nil, judgeIndependentScaling},
	{"… and independent deployment: a stateless service is deployed under traffic without errors.", nil, judgeIndependentDeploy},
	{"Stateless load balancing is simpler: any policy balances a stateless pool.", nil, judgeStatelessBalancing},
	{"Stateless services are easier to test and debug: a request replays identically.", nil, judgeServiceReplay},
}

// Thresholds of the services claims.
const (
	// scaleLinearity: a service scales independently when each replica
	// added brings at least 90% of the first replica's capacity under the
	// capacity model (a 2-core machine shared by the whole cluster costs
	// a few percent).
	scaleLinearity = 0.90
	// maxDeployErrors: a stateless deploy must cost no request at all.
	maxDeployErrors = 0
	// statelessImbalance: a stateless pool is balanced when its busiest
	// replica serves at most 10% over the mean under full load.
	statelessImbalance = 1.10
	// replayIdentical: every replayed stateless request answers exactly as
	// it did the first time.
	replayIdentical = 1.0
)

// services returns the Services of scenario sc's run, sticky's first,
// else the first strategy's that made one, with its strategy; nil when
// there is none.
func (ix runIndex) services(sc Scenario) (*ServicesResult, *RunResult) {
	for _, st := range append([]strategy.Strategy{strategy.Sticky}, strategy.All()...) {
		if r := ix.get(st, sc); r != nil && r.Services != nil {
			return r.Services, r
		}
	}
	return nil, nil
}

// notMeasured is the answer of a services claim whose run is missing.
func notMeasured(sc Scenario) (Verdict, string) {
	return NotMeasured, fmt.Sprintf("needs a %s run (any strategy, e.g. sticky × %s)", sc, sc)
}

// judgeIndependentScaling: pricing's capacity grows about linearly with
// its replicas while the carts are untouched; the monolith has to add
// whole carts for the same quotes.
func judgeIndependentScaling(ix runIndex) (Verdict, string) {
	s, r := ix.services(Surge)
	if s == nil {
		return notMeasured(Surge)
	}
	ev := fmt.Sprintf("%s × surge: pricing scaled %d→%d replicas through the admin API; quote capacity %.0f → %.0f req/s (each added replica brought %.0f%% of the first's); the %d carts untouched (%d→%d, %d restarts); during the ×%.0f surge quotes p99 %.0f ms with %d errors of %d, cart calls p99 %.0f ms with %d errors; added %d processes, %.1f MB, %.2f s CPU",
		r.Strategy, s.ReplicasBefore, s.ReplicasAfter, s.CapacityBeforeRPS, s.CapacityAfterRPS, s.Linearity*100,
		s.CartReplicasBefore, s.CartReplicasBefore, s.CartReplicasAfter, s.CartRestarts, s.SurgeFactor,
		s.QuoteLatencyMS.P99, s.QuoteErrors, s.Quotes, s.CartP99MS, s.CartErrors, s.ProcessesAdded, s.RSSAddedMB, s.CPUAddedS)
	if m := s.Monolith; m != nil {
		ev += fmt.Sprintf("; the monolith had to add whole carts (%d→%d, %.1f MB, %.2f s CPU): quotes p99 %.0f ms with %d errors, cart calls p99 %.0f ms with %d errors, carts' imbalance after %.2f under %s",
			m.ReplicasBefore, m.ReplicasAfter, m.RSSAddedMB, m.CPUAddedS, m.QuoteLatencyMS.P99, m.QuoteErrors, m.CartP99MS, m.CartErrors, m.CartImbalance, r.Policy)
		if m.ReplicasForCapacity > 0 {
			ev += fmt.Sprintf("; at %.0f quotes/s per cart replica, the monolith needs %d cart replicas for pricing's %.0f quotes/s",
				m.CapacityBeforeRPS/float64(m.ReplicasBefore), m.ReplicasForCapacity, s.CapacityAfterRPS)
		}
	}
	untouched := s.CartReplicasAfter == s.CartReplicasBefore && s.CartRestarts == 0
	if s.Linearity >= scaleLinearity && untouched {
		return Holds, ev
	}
	return DoesNotHold, ev
}

// judgeIndependentDeploy: rolling pricing under traffic fails nothing and
// loses no cart; rolling the sticky carts themselves is measured beside it.
func judgeIndependentDeploy(ix runIndex) (Verdict, string) {
	s, r := ix.services(Deploy)
	if s == nil {
		return notMeasured(Deploy)
	}
	ev := fmt.Sprintf("%s × deploy: %d pricing replicas deployed one at a time under traffic: %d of %d shopper requests and %d of %d quotes failed, %d of %d items lost, carts untouched (%d restarts)",
		r.Strategy, s.ReplicasBefore, r.Errors, r.Requests, s.QuoteErrors, s.Quotes, r.ItemsLost, r.ItemsAcked, s.CartRestarts)
	if ro := ix.get(strategy.Sticky, Rolling); ro != nil {
		ev += fmt.Sprintf("; rolling the sticky carts themselves: %s, error rate %s", lostText(ro), pct(ro.ErrorRate))
	}
	if r.Errors+s.QuoteErrors <= maxDeployErrors && r.ItemsLost == 0 && s.CartRestarts == 0 {
		return Holds, ev
	}
	return DoesNotHold, ev
}

// judgeStatelessBalancing: every policy the stateless pools ran keeps them
// even; a sticky cart pool, beside them, may not be.
func judgeStatelessBalancing(ix runIndex) (Verdict, string) {
	var pools []*ServicesResult
	for _, sc := range []Scenario{Surge, Deploy} {
		if s, _ := ix.services(sc); s != nil {
			pools = append(pools, s)
		}
	}
	if len(pools) == 0 {
		return notMeasured(Surge)
	}
	ev, even := "stateless pricing pool under full load:", true
	for _, s := range pools {
		ev += fmt.Sprintf(" %s over %d replicas, busiest %.2f× the mean;", s.PoolPolicy, s.ReplicasAfter, s.PoolImbalance)
		even = even && s.PoolImbalance > 0 && s.PoolImbalance <= statelessImbalance
	}
	if s, r := ix.services(Surge); s != nil && s.Monolith != nil {
		ev += fmt.Sprintf(" the %s cart pool after the monolith scaled out: %.2f×", r.Policy, s.Monolith.CartImbalance)
	}
	if so := ix.get(strategy.Sticky, Scaleout); so != nil {
		ev += fmt.Sprintf("; sticky carts after a scale-out: %.2f×", so.Imbalance)
	}
	if even {
		return Holds, ev
	}
	return DoesNotHold, ev
}

// judgeServiceReplay: recorded quotes replayed on a fresh pricing replica answer
// identically; recorded cart reads on a fresh cart replica need the
// session state the request does not carry.
func judgeServiceReplay(ix runIndex) (Verdict, string) {
	s, r := ix.services(Deploy)
	if s == nil || s.Replay == nil {
		return notMeasured(Deploy)
	}
	p := s.Replay
	ev := fmt.Sprintf("%d of %d recorded quotes replayed on a fresh pricing replica answered identically", p.PricingIdentical, p.PricingRequests)
	if p.CartRequests > 0 {
		ev += fmt.Sprintf("; %d of %d recorded reads of non-empty carts (%s: the session lives in %s) replayed on a fresh cart replica answered identically (%s)",
			p.CartIdentical, p.CartRequests, r.Strategy, r.Store, pct(float64(p.CartIdentical)/float64(p.CartRequests)))
	}
	if p.PricingRequests > 0 && float64(p.PricingIdentical) >= replayIdentical*float64(p.PricingRequests) {
		return Holds, ev
	}
	return DoesNotHold, ev
}
