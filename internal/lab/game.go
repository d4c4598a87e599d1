package lab

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/strategy"
)

// Service is what a run drives: the cart (statelab app) or the game server
// (statelab game).
type Service string

// The services of the lab.
const (
	// ServiceCart is the shopping cart: shoppers over HTTP.
	ServiceCart Service = "cart"
	// ServiceGame is the game server: players over WebSocket.
	ServiceGame Service = "game"
)

// ParseService returns the service named s; empty is the cart.
func ParseService(s string) (Service, error) {
	switch Service(strings.TrimSpace(s)) {
	case ServiceCart, "":
		return ServiceCart, nil
	case ServiceGame:
		return ServiceGame, nil
	}
	return "", fmt.Errorf("%w: service %q (want cart or game)", ErrBadConfig, s)
}

// Pause is the game scenario that SIGSTOPs a room's owner for longer than
// its lease, then SIGCONTs it: another replica takes the room over at a
// newer epoch, and the old owner must not act on it when it comes back.
const Pause Scenario = "pause"

// GameScenarios returns the scenarios of the game service.
func GameScenarios() []Scenario { return []Scenario{Steady, Failover, Scaleout, Pause} }

// ParseGameScenario returns the game scenario named s, or an error
// wrapping ErrUnknownScenario.
func ParseGameScenario(s string) (Scenario, error) {
	names := make([]string, 0, 4)
	for _, sc := range GameScenarios() {
		if string(sc) == strings.TrimSpace(s) {
			return sc, nil
		}
		names = append(names, string(sc))
	}
	return "", fmt.Errorf("%w %q for the game (want one of %s)", ErrUnknownScenario, s, strings.Join(names, ", "))
}

// GameParams shape a game run; zero values take the defaults of
// DefaultGameParams.
type GameParams struct {
	// Rooms is how many rooms are played; Players how many players each
	// room has. Config.Rate is the inputs per second of all of them.
	Rooms, Players int
	// Tick, Checkpoint and Lease are the game replicas' --tick,
	// --checkpoint and --lease.
	Tick, Checkpoint, Lease time.Duration
	// Duration, when not zero, is the measured part of a game run instead
	// of Config.Duration (runs with a fault last at least
	// gameMinDuration either way).
	Duration time.Duration
}

// DemoGameParams are the game runs' parameters in `statelab demo`: the
// defaults, with 10 s runs in the full demo (the quick one keeps the
// shortest runs that hold a failover).
func DemoGameParams(quick bool) GameParams {
	p := DefaultGameParams()
	if !quick {
		p.Duration = 10 * time.Second
	}
	return p
}

// DefaultGameParams are the game runs' parameters: 8 rooms of 4 players,
// 20 ticks a second, a checkpoint every 500 ms and a 1 s lease (short, so
// that a room changes owner within a run of a few seconds).
func DefaultGameParams() GameParams {
	return GameParams{Rooms: 8, Players: 4, Tick: 50 * time.Millisecond, Checkpoint: 500 * time.Millisecond, Lease: time.Second}
}

func (p GameParams) withDefaults() GameParams {
	d := DefaultGameParams()
	p.Rooms = cmp.Or(p.Rooms, d.Rooms)
	p.Players = cmp.Or(p.Players, d.Players)
	p.Tick = cmp.Or(p.Tick, d.Tick)
	p.Checkpoint = cmp.Or(p.Checkpoint, d.Checkpoint)
	p.Lease = cmp.Or(p.Lease, d.Lease)
	return p
}

// GameResult holds the fields of a game run in results.json (nil in a cart
// run; docs/lab.md describes them).
type GameResult struct {
	Rooms               int     `json:"rooms"`
	Players             int     `json:"players"`
	InputsAcked         int     `json:"inputs_acked"`
	InputsLost          int     `json:"inputs_lost"`
	TicksRolledBack     int     `json:"ticks_rolled_back"`
	TicksRolledBackMax  int     `json:"ticks_rolled_back_max"`
	DoubleActivations   int     `json:"double_activations"`
	Activations         int     `json:"activations"`
	ResumeMS            *int64  `json:"resume_ms"`
	StoreOpsPerInput    float64 `json:"store_ops_per_input"`
	ReplicatedBytesPerS float64 `json:"replicated_bytes_per_s"`
	TickMS              float64 `json:"tick_ms"`
	CheckpointMS        float64 `json:"checkpoint_ms"`
	LeaseMS             float64 `json:"lease_ms"`
}

// gameMinDuration is the shortest measured part of a game run with a
// fault: long enough for a room to change owner (failure detection, then
// the lease) and play on.
const gameMinDuration = 8 * time.Second

// gameWarmUp is how long players play before the measured part starts
// (rooms are activated, connections opened).
const gameWarmUp = time.Second

// gameFaultAt is when, as a fraction of the measured part, the fault of
// failover and pause happens; failover restarts the victim at
// failoverRestartAt, pause resumes it gamePauseLeases leases later.
const (
	gameFaultAt     = 0.30
	gamePauseLeases = 4
)

// validateGame reports the first invalid field of a game run.
func (c Config) validateGame() error {
	if _, ok := game.Lookup(string(c.Strategy)); !ok {
		return fmt.Errorf("%w: game strategy %q (want one of %s)", ErrBadConfig, c.Strategy, strings.Join(game.StrategyNames(), ", "))
	}
	if _, err := ParseGameScenario(string(c.Scenario)); err != nil {
		return err
	}
	g := c.Game
	switch {
	case g.Rooms < 1 || g.Rooms > 1000 || g.Players < 1 || g.Players > game.MaxPlayers:
		return fmt.Errorf("%w: rooms must be 1..1000 and players 1..%d", ErrBadConfig, game.MaxPlayers)
	case c.Replicas < 2 && c.Scenario != Steady:
		return fmt.Errorf("%w: %s needs at least 2 replicas", ErrBadConfig, c.Scenario)
	case c.Rate <= 0 || c.Duration < 500*time.Millisecond || c.Timeout <= 0:
		return fmt.Errorf("%w: rate, duration (at least 500ms) and timeout must be positive", ErrBadConfig)
	case c.Binary == "":
		return fmt.Errorf("%w: the statelab binary is required", ErrBadConfig)
	}
	return nil
}

// measured is how long the measured part of a game run lasts.
func (c Config) measured() time.Duration {
	d := c.Duration
	if c.Game.Duration > 0 {
		d = c.Game.Duration
	}
	if c.Scenario == Failover || c.Scenario == Pause {
		return max(d, gameMinDuration)
	}
	return d
}

// runGame is RunOne for the game service: start a game cluster, drive the
// players through the scenario, check what they saw.
func runGame(ctx context.Context, cfg Config) (*Run, error) {
	cfg = cfg.withDefaults()
	cfg.Game = cfg.Game.withDefaults()
	if err := cfg.validateGame(); err != nil {
		return nil, err
	}
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Config{
		Game:     &cluster.GameOptions{Strategy: game.Strategy(cfg.Strategy), Tick: cfg.Game.Tick, Checkpoint: cfg.Game.Checkpoint, Lease: cfg.Game.Lease},
		Replicas: cfg.Scenario.initialReplicas(cfg.Replicas),
		Binary:   cfg.Binary, RedisURL: cfg.RedisURL, Dir: cfg.Dir, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := c.WaitMembers(ctx, len(c.Replicas())); err != nil {
		return nil, errors.Join(err, started{c}.Close())
	}
	rec, driveErr := driveGame(ctx, cfg, c)
	run := summarizeGame(cfg, rec)
	return finishRun(ctx, run, started{c}, began, driveErr), ctx.Err()
}

// gameRecording is what a game run's drive phase recorded.
type gameRecording struct {
	store    string
	clock    *gameClock
	faults   []Fault
	replicas []string
	cpuBusy  float64
	// storeOps and replBytes sum the replicas' counters.
	storeOps, replBytes float64
}

// driveGame plays the rooms through the scenario and reads every room once
// more at the end.
func driveGame(ctx context.Context, cfg Config, c *cluster.Cluster) (*gameRecording, error) {
	g := cfg.Game
	n := g.Rooms * g.Players
	d := cfg.measured()
	clock := &gameClock{rec: newRecorder(n), from: int64(gameWarmUp), end: int64(gameWarmUp + d)}
	clock.rec.from = clock.from
	rec := &gameRecording{store: string(c.Store().Kind), clock: clock, cpuBusy: -1}
	run := "lab" + strings.ToLower(rand.Text()[:6])
	rooms := make([]string, g.Rooms)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("%s-%d", run, i)
	}
	period := time.Duration(float64(n) / cfg.Rate * 1e9)
	cfg.progress("%s × %s (game): %d replicas, store %s; %d rooms × %d players, %.0f inputs/s for %v",
		cfg.Strategy, cfg.Scenario, len(c.Replicas()), rec.store, g.Rooms, g.Players, cfg.Rate, d)
	var players []*gamePlayer
	for i := range n {
		room := rooms[i%g.Rooms]
		players = append(players, &gamePlayer{id: fmt.Sprintf("p%d", i/g.Rooms), room: room, index: i, period: period,
			offset: int64(period) * int64(i) / int64(n), timeout: cfg.Timeout, clock: clock,
			url: "ws" + strings.TrimPrefix(c.URL(), "http") + "/rooms/" + room + "/ws", next: 1})
	}
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var cpuErr error
	var cpuN int
	var faultErrs []error
	scr := newGameScraper(c)
	clock.origin = time.Now()
	wg.Go(func() { rec.cpuBusy, cpuN, cpuErr = sampleCPU(bg, 250*time.Millisecond) })
	wg.Go(func() { scr.run(bg) })
	wg.Go(func() { rec.faults, faultErrs = injectGameFaults(ctx, cfg, c, clock, rooms[0]) })
	var pw sync.WaitGroup
	for _, p := range players {
		pw.Go(func() { p.play(ctx) })
	}
	pw.Wait()
	stop()
	wg.Wait()
	if cpuErr != nil || cpuN == 0 {
		rec.cpuBusy = -1
	}
	settle(ctx, started{c})
	cfg.progress("%s × %s (game): final read of every room", cfg.Strategy, cfg.Scenario)
	finalReads(ctx, c, clock, rooms, cfg.Timeout)
	rec.storeOps, rec.replBytes = scr.totals(ctx)
	for _, r := range c.Replicas() {
		rec.replicas = append(rec.replicas, r.ID)
	}
	return rec, errors.Join(faultErrs...)
}

// summarizeGame computes the run's numbers from what driveGame recorded.
func summarizeGame(cfg Config, rec *gameRecording) *Run {
	g, d := cfg.Game, cfg.measured()
	run := &Run{CPUBusy: rec.cpuBusy}
	r := &run.Result
	*r = RunResult{Service: ServiceGame, Strategy: string(cfg.Strategy), Scenario: string(cfg.Scenario), Store: rec.store,
		Policy: "hash", Replicas: cfg.Replicas, DurationS: d.Seconds(), OfferedRPS: cfg.Rate,
		CPUSaturated: rec.cpuBusy >= saturatedBusy}
	hist, samples, _ := rec.clock.rec.merged()
	r.Requests = int64(len(samples))
	for _, s := range samples {
		if s.err {
			r.Errors++
		}
	}
	if r.Requests > 0 {
		r.ErrorRate = round(float64(r.Errors)/float64(r.Requests), 5)
	}
	r.AchievedRPS = round(float64(r.Requests)/d.Seconds(), 1)
	ms := func(q float64) float64 { return round(float64(hist.ValueAtQuantile(q))/1000, 2) }
	r.LatencyMS = Latency{P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(99.9), Max: round(float64(hist.Max())/1000, 2)}

	events := rec.clock.history()
	chk := CheckGame(events)
	gr := &GameResult{Rooms: g.Rooms, Players: g.Rooms * g.Players, InputsAcked: chk.InputsAcked, InputsLost: chk.InputsLost,
		TicksRolledBack: chk.TicksRolledBack, TicksRolledBackMax: chk.TicksRolledBackMax,
		DoubleActivations: chk.DoubleActivations, Activations: chk.Activations,
		TickMS: msOf(g.Tick), CheckpointMS: msOf(g.Checkpoint), LeaseMS: msOf(g.Lease)}
	if chk.InputsAcked > 0 {
		gr.StoreOpsPerInput = round(rec.storeOps/float64(chk.InputsAcked), 3)
	}
	gr.ReplicatedBytesPerS = round(rec.replBytes/(d+gameWarmUp).Seconds(), 0)
	if len(rec.faults) > 0 && (cfg.Scenario == Failover || cfg.Scenario == Pause) {
		if ns := resumeNS(events, rec.faults[0].At); ns >= 0 {
			v := ns / 1e6
			gr.ResumeMS = &v
		}
	}
	r.GameResult = gr
	for _, f := range rec.faults {
		run.Faults = append(run.Faults, Fault{At: f.At - rec.clock.from, End: f.End - rec.clock.from, What: f.What})
	}
	summarizeBalance(run, &recording{samples: samples, end: int64(d), replicas: rec.replicas}, d)
	return run
}

// msOf is d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

// GamePairs returns the game runs of `statelab demo`: memory, checkpoint
// and external through failover, and checkpoint through pause (the quick
// demo's four, about 40 s); the full demo adds replicated through
// failover, steady for checkpoint and external (the cost of being
// stateless) and pause for replicated and external.
func GamePairs(quick bool) []Pair {
	var out []Pair
	add := func(s game.Strategy, sc Scenario) {
		out = append(out, Pair{Service: ServiceGame, Strategy: strategy.Strategy(s), Scenario: sc})
	}
	for _, info := range game.Strategies {
		s := info.Name
		if !quick && (s == game.StrategyCheckpoint || s == game.StrategyExternal) {
			add(s, Steady)
		}
		if !quick || s != game.StrategyReplicated {
			add(s, Failover)
		}
		if s == game.StrategyCheckpoint || (!quick && info.NeedsStore) {
			add(s, Pause)
		}
	}
	return out
}

// gameOrder adds the game's strategies and scenarios to SortRuns' orders
// (strategy and scenario indexes by name) where the cart's lack them.
func gameOrder(strategies, scenarios map[string]int) {
	for i, s := range game.StrategyNames() {
		if _, ok := strategies[s]; !ok {
			strategies[s] = i
		}
	}
	for i, s := range GameScenarios() {
		if _, ok := scenarios[string(s)]; !ok {
			scenarios[string(s)] = len(Scenarios()) + i
		}
	}
}

// gameLine is the progress line of a finished game run.
func gameLine(run *Run, took time.Duration) string {
	r, g := run.Result, run.Result.GameResult
	return fmt.Sprintf("game %s × %s: %.0f inputs/s, p99 %.1f ms, inputs lost %d/%d, ticks rolled back %d, double activations %d, resume %s (%v)",
		r.Strategy, r.Scenario, r.AchievedRPS, r.LatencyMS.P99, g.InputsLost, g.InputsAcked, g.TicksRolledBack, g.DoubleActivations, msText(g.ResumeMS), took.Round(100*time.Millisecond))
}

// ValidateGame reports the first invalid field of a game run's
// configuration (after defaults), wrapping ErrBadConfig.
func (c Config) ValidateGame() error {
	c = c.withDefaults()
	c.Game = c.Game.withDefaults()
	return c.validateGame()
}

// GameParamsText describes a game run's parameters for the report.
func GameParamsText(c Config) string {
	c = c.withDefaults()
	g := c.Game.withDefaults()
	d := c.Duration
	if g.Duration > 0 {
		d = g.Duration
	}
	return fmt.Sprintf("Game runs: %d game replicas, %d rooms × %d players on WebSockets, %.0f inputs/s for %v (at least %v with a fault, after a %v warm-up), tick %v, checkpoint %v, lease %v.",
		c.Replicas, g.Rooms, g.Players, c.Rate, d, gameMinDuration, gameWarmUp, g.Tick, g.Checkpoint, g.Lease)
}
