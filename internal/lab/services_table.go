package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/statelab/statelab/internal/strategy"
)

// ServicePairs returns the demo's runs of the microservice shape and of
// deploys: rolling for every strategy (quick: sticky only, whose loss the
// deployment claim cites), then surge and deploy for sticky carts (or the first strategy
// when sticky is not among them).
func ServicePairs(strategies []strategy.Strategy, quick bool) []Pair {
	if len(strategies) == 0 {
		return nil
	}
	var out []Pair
	carts := strategies[0]
	for _, s := range strategies {
		if s == strategy.Sticky {
			carts = s
		}
		if !quick || s == strategy.Sticky {
			out = append(out, Pair{Strategy: s, Scenario: Rolling})
		}
	}
	return append(out, Pair{Strategy: carts, Scenario: Surge}, Pair{Strategy: carts, Scenario: Deploy})
}

// servicesHeader are the columns of the services table, terminal and
// report alike.
var servicesHeader = []string{"run", "shape", "scaled", "quotes p99 ms", "quote errors", "cart p99 ms", "cart errors", "quote capacity req/s", "linearity", "pool imbalance", "added", "replay identical"}

// servicesRows are the services table's rows: for each surge or deploy
// run, the services shape and (surge) the monolith beside it.
func servicesRows(runs []*Run) [][]string {
	var rows [][]string
	for _, r := range runs {
		s := r.Result.Services
		if r.Skipped != "" || s == nil {
			continue
		}
		name := r.Result.Strategy + " × " + r.Result.Scenario
		rows = append(rows, servicesRow(name, s))
		if s.Monolith != nil {
			rows = append(rows, servicesRow(name, s.Monolith))
		}
	}
	return rows
}

func servicesRow(name string, s *ServicesResult) []string {
	scaled := fmt.Sprintf("%s %d→%d", s.ScaledPool, s.ReplicasBefore, s.ReplicasAfter)
	if s.ReplicasBefore == s.ReplicasAfter {
		scaled = fmt.Sprintf("%s ×%d rolled", s.ScaledPool, s.ReplicasAfter)
	}
	lin, added, replay := "-", "-", "-"
	if s.Linearity > 0 {
		lin = fmt.Sprintf("%.2f", s.Linearity)
	}
	if s.ProcessesAdded > 0 {
		added = fmt.Sprintf("%d proc, %.0f MB, %.1f s CPU", s.ProcessesAdded, s.RSSAddedMB, s.CPUAddedS)
	}
	if p := s.Replay; p != nil {
		replay = fmt.Sprintf("pricing %d/%d, cart %d/%d", p.PricingIdentical, p.PricingRequests, p.CartIdentical, p.CartRequests)
	}
	return []string{name, s.Shape, scaled,
		fmt.Sprintf("%.1f", s.QuoteLatencyMS.P99), fmt.Sprintf("%d/%d", s.QuoteErrors, s.Quotes),
		fmt.Sprintf("%.1f", s.CartP99MS), fmt.Sprintf("%d/%d", s.CartErrors, s.CartCalls),
		fmt.Sprintf("%.0f→%.0f", s.CapacityBeforeRPS, s.CapacityAfterRPS), lin,
		fmt.Sprintf("%.2f (%s)", s.PoolImbalance, s.PoolPolicy), added, replay}
}

// writeServicesTable writes the services table of runs to out, nothing
// when no run measured the services.
func writeServicesTable(out io.Writer, runs []*Run) error {
	rows := servicesRows(runs)
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(out, "\nThe services (surge: from the surge on; deploy: the whole run):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(servicesHeader, "\t")+"\t")
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}
