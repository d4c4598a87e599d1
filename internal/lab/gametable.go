package lab

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// splitGameRuns separates the cart's runs from the game's.
func splitGameRuns(runs []*Run) (cart, games []*Run) {
	for _, r := range runs {
		if r.Result.Service == ServiceGame {
			games = append(games, r)
		} else {
			cart = append(cart, r)
		}
	}
	return cart, games
}

// writeGameTable writes the table of the game's runs (nothing when there
// are none), after a blank line when another table came first.
func writeGameTable(out io.Writer, runs []*Run, gap bool) error {
	if len(runs) == 0 {
		return nil
	}
	if gap {
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "game server:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tscenario\tinputs/s\tp50 ms\tp99 ms\terrors\tinputs lost\tticks rolled back (max)\tdouble activations\tresume\tstore ops/input\t")
	var notes []string
	for _, r := range runs {
		res := r.Result
		g := res.GameResult
		if r.Skipped != "" || g == nil {
			notes = append(notes, fmt.Sprintf("[%d] game %s × %s: %s", len(notes)+1, res.Strategy, res.Scenario, r.Skipped))
			fmt.Fprintf(tw, "%s\t%s\tnot run [%d]\t-\t-\t-\t-\t-\t-\t-\t-\t\n", res.Strategy, res.Scenario, len(notes))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.1f\t%s\t%d/%d\t%d (%d)\t%d\t%s\t%.2f\t%s\n",
			res.Strategy, res.Scenario, res.AchievedRPS, res.LatencyMS.P50, res.LatencyMS.P99, pct(res.ErrorRate),
			g.InputsLost, g.InputsAcked, g.TicksRolledBack, g.TicksRolledBackMax, g.DoubleActivations, msText(g.ResumeMS), g.StoreOpsPerInput, saturatedText(res))
	}
	return flushNotes(out, tw, notes)
}
