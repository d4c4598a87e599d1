package lab

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// slowStartShare is the balancer's --slow-start window in the failover and
// scaleout runs, as a share of the run: the restarted or added replica's
// share of new requests ramps from 10% to its full share over it, so it is
// not flattened while cold.
const slowStartShare = 0.10

// slowStart returns the balancer's --slow-start of the run: slowStartShare
// of the run in failover and scaleout, zero (off) in the others.
func (c Config) slowStart() time.Duration {
	if c.Scenario != Failover && c.Scenario != Scaleout {
		return 0
	}
	return time.Duration(float64(c.Duration) * slowStartShare)
}

// joiners returns the replicas that the run's faults restarted or added
// ("restart r2", "add r3"), in order.
func joiners(faults []Fault) []string {
	var ids []string
	for _, f := range faults {
		for _, verb := range []string{"restart ", "add "} {
			if id, ok := strings.CutPrefix(f.What, verb); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// rampShares returns, per timeline bucket, the share of its answered
// requests the given replicas served (0 for an empty bucket).
func rampShares(tl []Bucket, ids []string) []float64 {
	out := make([]float64, len(tl))
	for i, b := range tl {
		total, mine := 0, 0
		for id, n := range b.Served {
			total += n
			for _, j := range ids {
				if id == j {
					mine += n
				}
			}
		}
		if total > 0 {
			out[i] = float64(mine) / float64(total)
		}
	}
	return out
}

// rampChart draws the share of requests the restarted or added replicas
// served over time, which shows the balancer's slow start after they
// joined; empty for runs where none joined.
func rampChart(r *Run, marks []mark) template.HTML {
	ids := joiners(r.Faults)
	if len(ids) == 0 || len(r.Timeline) == 0 {
		return ""
	}
	width := 0.1
	if len(r.Timeline) > 1 {
		width = r.Timeline[1].Start - r.Timeline[0].Start
	}
	xs := make([]float64, len(r.Timeline))
	for i, b := range r.Timeline {
		xs[i] = b.Start + width/2
	}
	ys := rampShares(r.Timeline, ids)
	for i := range ys {
		ys[i] *= 100
	}
	title := fmt.Sprintf("%% of requests to %s (slow start %.0f%% of the run)", strings.Join(ids, ", "), slowStartShare*100)
	return lineChart(title, xs, ys, r.Result.DurationS, marks, "#0d9488")
}
