package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/strategy"
)

// gameRunOf is a game run with plausible numbers: the memory room loses
// what its owner acknowledged, the others lose nothing, nobody
// double-activates, and the stateless server makes 2.5 store operations
// per input and answers a little faster than the checkpointing one.
func gameRunOf(st game.Strategy, sc Scenario, mod func(r *RunResult)) *Run {
	r := fakeRun(string(st), string(sc), nil)
	r.Result.Service = ServiceGame
	g := &GameResult{Rooms: 8, Players: 32, InputsAcked: 1000, TickMS: 50, CheckpointMS: 500, LeaseMS: 1000, StoreOpsPerInput: 0.1}
	r.Result.LatencyMS.P50 = 30
	switch st {
	case game.StrategyMemory:
		g.InputsLost, g.TicksRolledBack, g.TicksRolledBackMax, g.StoreOpsPerInput = 120, 200, 200, 0
	case game.StrategyCheckpoint:
		g.InputsLost, g.TicksRolledBack, g.TicksRolledBackMax = 20, 8, 8
	case game.StrategyExternal:
		g.StoreOpsPerInput = 2.5
		r.Result.LatencyMS.P50 = 3
	}
	r.Result.GameResult = g
	if mod != nil {
		mod(&r.Result)
	}
	return r
}

// gameClaimRows are TestClaimBoundaries' rows of the game server's claim.
func gameClaimRows() []struct {
	name string
	runs []*Run
	want Verdict
	says string
} {
	type row = struct {
		name string
		runs []*Run
		want Verdict
		says string
	}
	runs := func(mods map[game.Strategy]func(*RunResult), extra ...*Run) []*Run {
		out := extra
		for _, st := range []game.Strategy{game.StrategyMemory, game.StrategyCheckpoint, game.StrategyExternal} {
			out = append(out, gameRunOf(st, Failover, mods[st]))
		}
		return out
	}
	cp, ext := game.StrategyCheckpoint, game.StrategyExternal
	// The checkpoint window: 500 ms × gameCheckpointWindow = 20 ticks of 50 ms.
	window := int(gameCheckpointWindow * 500 / 50)
	return []row{
		{"store load, no latency cost", runs(nil), HoldsWithCost, "the latency does not"},
		{"latency at the margin", runs(map[game.Strategy]func(*RunResult){ext: func(r *RunResult) { r.LatencyMS.P50 = 30 * gameLatencyMargin }}), HoldsWithCost, ""},
		{"latency over the margin", runs(map[game.Strategy]func(*RunResult){ext: func(r *RunResult) { r.LatencyMS.P50 = 30 * gameLatencyMargin * 1.001 }}), Holds, "2.50 store operations per input (checkpointing: 0.10, 25× less)"},
		{"memory loses nothing", runs(map[game.Strategy]func(*RunResult){game.StrategyMemory: func(r *RunResult) { r.InputsLost = 0 }}), DoesNotHold, "memory room survived"},
		{"checkpoint window at the bound", runs(map[game.Strategy]func(*RunResult){cp: func(r *RunResult) { r.TicksRolledBackMax = window }}), HoldsWithCost, "rolled back at most 20 ticks (1000 ms)"},
		{"checkpoint window over the bound", runs(map[game.Strategy]func(*RunResult){cp: func(r *RunResult) { r.TicksRolledBackMax = window + 1 }}), DoesNotHold, "exceeded the interval"},
		{"stateless loses an input", runs(map[game.Strategy]func(*RunResult){ext: func(r *RunResult) { r.InputsLost = 1 }}), DoesNotHold, "stateless server lost"},
		{"replicated loses an input", runs(nil, gameRunOf(game.StrategyReplicated, Failover, func(r *RunResult) { r.InputsLost = 1 })), DoesNotHold, "replicated lost 1"},
		{"a double activation under fencing", runs(nil, gameRunOf(cp, Pause, func(r *RunResult) { r.DoubleActivations = 1 })), DoesNotHold, "two owners at once"},
		{"memory double activations do not count", runs(nil, gameRunOf(game.StrategyMemory, Pause, func(r *RunResult) { r.DoubleActivations = 1 })), HoldsWithCost, "0 double activations"},
		{"store ops at the factor", runs(map[game.Strategy]func(*RunResult){ext: func(r *RunResult) { r.StoreOpsPerInput = 0.1 * gameStoreOpsFactor }}), HoldsWithCost, ""},
		{"store ops under the factor", runs(map[game.Strategy]func(*RunResult){ext: func(r *RunResult) { r.StoreOpsPerInput = 0.1*gameStoreOpsFactor - 0.001 }}), DoesNotHold, "no store load"},
		{"steady runs compared when made", runs(nil, gameRunOf(cp, Steady, nil), gameRunOf(ext, Steady, func(r *RunResult) { r.StoreOpsPerInput = 0.15 })), DoesNotHold, "no store load"},
		{"the cart's replicated run is not the game's", runs(nil, runOf("replicated", Failover, func(r *RunResult) { r.ItemsLost = 3 })), HoldsWithCost, ""},
		{"missing", runs(nil)[:2], NotMeasured, "game external × failover"},
	}
}

// TestGameReportAndTable: game runs get their own table on the terminal
// and their own section in the report, apart from the cart's.
func TestGameReportAndTable(t *testing.T) {
	runs := []*Run{
		runOf(strategy.Sticky, Failover, nil),
		gameRunOf(game.StrategyCheckpoint, Pause, func(r *RunResult) { r.DoubleActivations = 2 }),
		{Skipped: "no redis", Result: RunResult{Service: ServiceGame, Strategy: "external", Scenario: "failover"}},
	}
	var b strings.Builder
	if err := WriteTable(&b, runs); err != nil {
		t.Fatal(err)
	}
	cartPart, gamePart, ok := strings.Cut(b.String(), "game server:")
	if !ok || strings.Contains(cartPart, "checkpoint") || !strings.Contains(gamePart, "checkpoint     pause") ||
		!strings.Contains(gamePart, "external  failover  not run [1]") || !strings.Contains(gamePart, "20/1000") {
		t.Errorf("table:\n%s", b.String())
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := WriteReport(path, ReportInfo{}, runs, EvaluateClaims(runs)); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>The game server</h2>", `id="game-checkpoint-pause"`, `<td class="bad">2</td>`, "for 4 leases, then SIGCONTed", "no redis", "11. A game server&#39;s state"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestGameParamsText(t *testing.T) {
	got := GameParamsText(Config{Service: ServiceGame, Replicas: 3, Rate: 120, Duration: 3 * time.Second})
	want := "Game runs: 3 game replicas, 8 rooms × 4 players on WebSockets, 120 inputs/s for 3s (at least 8s with a fault, after a 1s warm-up), tick 50ms, checkpoint 500ms, lease 1s."
	if got != want {
		t.Errorf("GameParamsText:\n got %s\nwant %s", got, want)
	}
}
