package lab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/machine"
	"github.com/statelab/statelab/internal/strategy"
	"github.com/statelab/statelab/internal/testenv"
)

// gameE2EConfig is a short game run on a real cluster of game servers:
// 3 replicas, 4 rooms of 3 players.
func gameE2EConfig(t *testing.T, st game.Strategy, sc Scenario) Config {
	return Config{
		Service: ServiceGame, Strategy: strategy.Strategy(st), Scenario: sc,
		Replicas: 3, Rate: 120, Duration: 3 * time.Second, Timeout: 2 * time.Second,
		Game:   GameParams{Rooms: 4, Players: 3},
		Binary: testenv.StatelabBinary(t), Dir: t.TempDir(), RedisURL: testenv.RedisURL(t),
	}
}

// runGameE2E makes one game run and checks what every run must show: the
// faults were injected, nothing crashed, inputs were acknowledged.
func runGameE2E(t *testing.T, st game.Strategy, sc Scenario) *GameResult {
	t.Helper()
	cfg := gameE2EConfig(t, st, sc) // builds the binary: not on the run's clock
	ctx, cancel := context.WithTimeout(context.Background(), machine.Scaled(60*time.Second, 4))
	defer cancel()
	run, err := RunOne(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, g := run.Result, run.Result.GameResult
	if g == nil || r.Service != ServiceGame {
		t.Fatalf("not a game result: %+v", r)
	}
	t.Logf("%s × %s: %s; faults %+v; notes %q", st, sc, gameLine(run, run.Wall), run.Faults, run.Note())
	if len(run.Crashes) > 0 {
		t.Fatalf("crashes: %v", run.Crashes)
	}
	if sc != Steady {
		if len(run.Faults) != 2 || strings.Contains(run.Faults[0].What, "failed") || strings.Contains(run.Faults[1].What, "failed") {
			t.Fatalf("faults %+v, want both done", run.Faults)
		}
		if g.ResumeMS == nil {
			t.Errorf("no resume time after %s", run.Faults[0].What)
		}
	}
	if g.InputsAcked == 0 || r.Requests == 0 || g.Rooms != 4 || g.Players != 12 {
		t.Fatalf("no play measured: %+v %+v", r, g)
	}
	return g
}

// TestGameFailoverEndToEnd kills a room's owner under load and checks what
// each strategy promises, from what the players saw: the memory room is
// lost (the new owner starts it afresh); a checkpointed room rolls back at
// most one interval plus the write in flight; a replicated room loses no
// acknowledged input; the stateless server loses nothing; no fenced room ever
// has two owners acknowledging at once.
func TestGameFailoverEndToEnd(t *testing.T) {
	interval := int(DefaultGameParams().Checkpoint / DefaultGameParams().Tick)
	t.Run("memory", func(t *testing.T) {
		g := runGameE2E(t, game.StrategyMemory, Failover)
		if g.InputsLost == 0 || g.TicksRolledBackMax == 0 {
			t.Errorf("memory: %d inputs lost, %d ticks rolled back at most: the dead owner's room should be gone", g.InputsLost, g.TicksRolledBackMax)
		}
	})
	t.Run("checkpoint", func(t *testing.T) {
		g := runGameE2E(t, game.StrategyCheckpoint, Failover)
		if g.DoubleActivations != 0 {
			t.Errorf("checkpoint: %d double activations", g.DoubleActivations)
		}
		if g.TicksRolledBackMax > 2*interval {
			t.Errorf("checkpoint: rolled back %d ticks, more than one interval (%d ticks) plus the write in flight", g.TicksRolledBackMax, interval)
		}
	})
	t.Run("replicated", func(t *testing.T) {
		// The backup takes over from its copy, or the killed owner,
		// restarted before the backup took over, resumes from the
		// backup's copy: nothing acknowledged is lost either way.
		g := runGameE2E(t, game.StrategyReplicated, Failover)
		if g.DoubleActivations != 0 || g.InputsLost != 0 {
			t.Errorf("replicated: %d inputs lost, %d double activations; want none", g.InputsLost, g.DoubleActivations)
		}
		if g.TicksRolledBackMax > 2*interval {
			t.Errorf("replicated: rolled back %d ticks, more than the checkpoint fallback's bound (%d ticks)", g.TicksRolledBackMax, 2*interval)
		}
		if g.ReplicatedBytesPerS == 0 {
			t.Errorf("replicated: no bytes replicated")
		}
	})
	t.Run("external", func(t *testing.T) {
		g := runGameE2E(t, game.StrategyExternal, Failover)
		if g.InputsLost != 0 || g.TicksRolledBack != 0 || g.DoubleActivations != 0 {
			t.Errorf("external: %d inputs lost, %d ticks rolled back, %d double activations; want none", g.InputsLost, g.TicksRolledBack, g.DoubleActivations)
		}
		// A read and a write per input; the counters are sampled around
		// the run, so an input in flight at either end can move it a little.
		if g.StoreOpsPerInput < 1.95 {
			t.Errorf("external: %.3f store operations per input, want at least a read and a write", g.StoreOpsPerInput)
		}
	})
}

// TestGamePauseEndToEnd SIGSTOPs a checkpointing room owner past its lease:
// another replica takes its rooms over at a newer epoch, and the old
// owner, SIGCONTed, must not acknowledge anything for them (fencing).
func TestGamePauseEndToEnd(t *testing.T) {
	g := runGameE2E(t, game.StrategyCheckpoint, Pause)
	if g.DoubleActivations != 0 {
		t.Errorf("pause: %d double activations: the paused owner acted after another took over", g.DoubleActivations)
	}
	if g.Activations <= g.Rooms {
		t.Errorf("pause: %d activations of %d rooms: no room changed owner while its owner was paused", g.Activations, g.Rooms)
	}
}
