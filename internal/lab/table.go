package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/statelab/statelab/internal/cluster"
)

// WriteTable writes the strategy × scenario table of runs to out: the
// cart's runs, then the game's in a table of their own.
func WriteTable(out io.Writer, runs []*Run) error {
	cart, games := splitGameRuns(runs)
	if len(cart) > 0 || len(games) == 0 {
		if err := writeCartTable(out, cart); err != nil {
			return err
		}
		if err := writeServicesTable(out, cart); err != nil {
			return err
		}
	}
	return writeGameTable(out, games, len(cart) > 0)
}

// writeCartTable writes the table of the cart's runs.
func writeCartTable(out io.Writer, runs []*Run) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tscenario\treq/s\tp99 ms\terrors\titems lost\tstale reads\tlost updates\tlinearizable\timbalance\trecovery\tfailover\t")
	var notes []string
	for _, r := range runs {
		res := r.Result
		if r.Skipped != "" {
			// The reason goes under the table, so that a long message does
			// not stretch a column.
			notes = append(notes, fmt.Sprintf("[%d] %s × %s: %s", len(notes)+1, res.Strategy, res.Scenario, r.Skipped))
			word := "skipped"
			if strings.HasPrefix(r.Skipped, "failed") {
				word = "failed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s [%d]\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", res.Strategy, res.Scenario, word, len(notes))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%s\t%d/%d\t%d\t%s\t%s\t%.2f\t%s\t%s\t%s\n",
			res.Strategy, res.Scenario, res.AchievedRPS, res.LatencyMS.P99,
			pct(res.ErrorRate), res.ItemsLost, res.ItemsAcked, res.StaleReads,
			lostUpdatesText(res), linText(res.Linearizable), res.Imbalance, msText(res.RecoveryMS), failoverText(res), saturatedText(res))
	}
	return flushNotes(out, tw, notes)
}

// msText is a duration in milliseconds, "-" when not measured.
func msText(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return fmt.Sprintf("%d ms", *ms)
}

// failoverText is how long a clustered Redis took to promote a replica
// after storefail killed its master (failover_ms): "none" when no replica
// was promoted, "-" in a run where no master was killed.
func failoverText(r RunResult) string {
	switch {
	case r.FailoverMS != nil:
		return msText(r.FailoverMS)
	case r.Scenario == string(Storefail) && cluster.MultiServerRedis(r.RedisMode):
		return "none"
	}
	return "-"
}

// saturatedText flags a run whose machine was the bottleneck.
func saturatedText(r RunResult) string {
	if r.CPUSaturated {
		return " (cpu saturated)"
	}
	return ""
}

// flushNotes flushes a table, then writes its notes under it.
func flushNotes(out io.Writer, tw *tabwriter.Writer, notes []string) error {
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(out, n); err != nil {
			return err
		}
	}
	return nil
}

func lostUpdatesText(r RunResult) string {
	if r.Scenario != string(Tabs) {
		return "-"
	}
	return fmt.Sprint(r.LostUpdates)
}

func linText(b *bool) string {
	switch {
	case b == nil:
		return "timeout"
	case *b:
		return "yes"
	}
	return "no"
}

// WriteClaims writes the claims with their verdicts, one paragraph each.
func WriteClaims(out io.Writer, claims []ClaimResult) {
	for _, c := range claims {
		fmt.Fprintf(out, "%2d. %s\n    → %s: %s\n", c.N, c.Text, strings.ToUpper(string(c.Verdict)), c.Evidence)
	}
}
