package lab

import (
	"fmt"
	"strings"

	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/strategy"
)

// gameKey names a game run in the claims' index: the game's strategy
// names share words with the cart's (replicated), so they get a prefix.
func gameKey(st game.Strategy, sc Scenario) runKey {
	return runKey{strategy.Strategy("game " + string(st)), sc}
}

// game returns the result of the game's strategy st through scenario
// sc, or nil.
func (ix runIndex) game(st game.Strategy, sc Scenario) *RunResult {
	if r, ok := ix[gameKey(st, sc)]; ok {
		return &r.Result
	}
	return nil
}

// keyOf is the index key of a run's result.
func keyOf(r RunResult) runKey {
	if r.Service == ServiceGame {
		return gameKey(game.Strategy(r.Strategy), Scenario(r.Scenario))
	}
	return runKey{strategy.Strategy(r.Strategy), Scenario(r.Scenario)}
}

// The thresholds of the game server's claim.
const (
	// gameCheckpointWindow: a checkpoint failover keeps the loss within the
	// interval when the ticks rolled back span at most two intervals — one
	// since the last stored checkpoint, plus the one being written when the
	// owner died (docs/game.md).
	gameCheckpointWindow = 2.0
	// gameStoreOpsFactor: the stateless game server costs store load when
	// it makes at least twice the store operations per input of the
	// checkpointing one (a read and a compare-and-swap per input, against
	// one write per room per lease renewal: far apart, so twice is a low
	// bar that noise cannot clear).
	gameStoreOpsFactor = 2.0
	// gameLatencyMargin: and it costs latency when its median input
	// latency is more than 10% over the checkpointing server's.
	gameLatencyMargin = 1.10
)

// gameClaim is claim 11, the game server's.
var gameClaim = claim{
	"A game server's state is lost with its server unless it is checkpointed or replicated; checkpointing bounds the loss to the interval; making it stateless costs latency and store load.",
	[]runKey{gameKey(game.StrategyMemory, Failover), gameKey(game.StrategyCheckpoint, Failover), gameKey(game.StrategyExternal, Failover)},
	judgeGame,
}

// judgeGame: killing a room's owner loses the memory room, a bounded
// window of the checkpointed one and nothing of the replicated or
// stateless one; fencing keeps one owner per room; the stateless server
// pays in store operations (and latency) per input.
func judgeGame(ix runIndex) (Verdict, string) {
	m, c, e := ix.game(game.StrategyMemory, Failover), ix.game(game.StrategyCheckpoint, Failover), ix.game(game.StrategyExternal, Failover)
	window := float64(c.TicksRolledBackMax) * c.TickMS
	ev := fmt.Sprintf("killing a room's owner: in memory %d of %d acknowledged inputs were lost; with a checkpoint every %.0f ms %d were lost and the room rolled back at most %d ticks (%.0f ms)",
		m.InputsLost, m.InputsAcked, c.CheckpointMS, c.InputsLost, c.TicksRolledBackMax, window)
	failed := []string{}
	if m.InputsLost == 0 {
		failed = append(failed, "the memory room survived its owner")
	}
	if window > gameCheckpointWindow*c.CheckpointMS {
		failed = append(failed, "the checkpoint loss exceeded the interval")
	}
	if r := ix.game(game.StrategyReplicated, Failover); r != nil {
		ev += fmt.Sprintf("; replicated lost %d", r.InputsLost)
		if r.InputsLost > 0 {
			failed = append(failed, "replicated lost acknowledged inputs")
		}
	}
	ev += fmt.Sprintf("; stateless (external) lost %d", e.InputsLost)
	if e.InputsLost > 0 {
		failed = append(failed, "the stateless server lost acknowledged inputs")
	}
	double, where := fencedDoubleActivations(ix)
	ev += "; " + where
	if double > 0 {
		failed = append(failed, "a room had two owners at once")
	}
	cs, es := gameCost(ix, c, e)
	ev += fmt.Sprintf("; the stateless server made %.2f store operations per input (checkpointing: %.2f%s), median input latency %.1f ms (%.1f ms)",
		es.StoreOpsPerInput, cs.StoreOpsPerInput, ratioText(es.StoreOpsPerInput, cs.StoreOpsPerInput), es.LatencyMS.P50, cs.LatencyMS.P50)
	if es.StoreOpsPerInput < gameStoreOpsFactor*cs.StoreOpsPerInput {
		failed = append(failed, "being stateless cost no store load")
	}
	switch {
	case len(failed) > 0:
		return DoesNotHold, ev + " (" + strings.Join(failed, "; ") + ")"
	case es.LatencyMS.P50 <= gameLatencyMargin*cs.LatencyMS.P50:
		return HoldsWithCost, ev + " (the store load shows, the latency does not: an owned room acknowledges an input after its next tick, a stateless one after its own transaction)"
	}
	return Holds, ev
}

// gameCost returns the runs the stateless cost is compared on: steady
// runs of checkpoint and external when both were made, else their
// failover runs.
func gameCost(ix runIndex, c, e *RunResult) (checkpoint, external *RunResult) {
	cs, es := ix.game(game.StrategyCheckpoint, Steady), ix.game(game.StrategyExternal, Steady)
	if cs != nil && es != nil {
		return cs, es
	}
	return c, e
}

// fencedDoubleActivations sums the double activations of the game runs
// of the fenced strategies (all but memory) and says where they were
// counted.
func fencedDoubleActivations(ix runIndex) (int, string) {
	n, runs := 0, []string{}
	for _, st := range game.StrategyNames() {
		if st == string(game.StrategyMemory) {
			continue
		}
		for _, sc := range GameScenarios() {
			if r := ix.game(game.Strategy(st), sc); r != nil {
				n += r.DoubleActivations
				runs = append(runs, st+" × "+string(sc))
			}
		}
	}
	return n, fmt.Sprintf("%d double activations (two owners acknowledging inputs of one room at once) in %s", n, strings.Join(runs, ", "))
}

// ratioText says how many times less than a b is, as ", N× less";
// empty when b is 0.
func ratioText(a, b float64) string {
	if b <= 0 {
		return ""
	}
	return fmt.Sprintf(", %.0f× less", a/b)
}
