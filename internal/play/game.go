package play

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/game"
)

// The game view: a second cluster, of `statelab game` servers behind the
// hash-on-room balancer, with a few rooms the playground watches, bots
// moving in them, and "you" playing in the first one. Kill or pause a
// room's owner and the view shows the room move to another replica at a
// higher epoch (resumed from its checkpoint), or start over (memory).

// GameRooms are the rooms the game view watches; "you" play in the first.
var GameRooms = []string{"lobby", "arena"}

// gameBots are the simulated players of every watched room.
var gameBots = []string{"bot1", "bot2"}

// You is the player ID of the person in the game view.
const gameYou = "you"

// GameCluster is a running game cluster the game view drives; NewGameStarter
// adapts a real one.
type GameCluster interface {
	// BalancerURL returns the base URL of the balancer's traffic port.
	BalancerURL() string
	// Replicas returns every replica, in id order.
	Replicas() []cluster.Replica
	// Kill, Pause, Resume and Restart act on replica id as in Cluster.
	Kill(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Restart(ctx context.Context, id string) error
	// Close stops every process of the cluster.
	Close() error
}

// GameStartFunc starts a game cluster of replicas servers for strategy.
type GameStartFunc func(ctx context.Context, strategy game.Strategy, replicas int) (GameCluster, error)

// Game timing of the playground's clusters: a 1 s checkpoint and a 2 s
// lease, so that a failover shows within a few seconds.
const (
	playGameCheckpoint = time.Second
	playGameLease      = 2 * time.Second
)

// NewGameStarter returns a GameStartFunc that starts real game clusters
// with package cluster (cluster.Config.Game): base is used as is, except
// for Game and Replicas.
func NewGameStarter(base cluster.Config) GameStartFunc {
	return func(ctx context.Context, st game.Strategy, replicas int) (GameCluster, error) {
		cfg := base
		cfg.Replicas = replicas
		cfg.Game = &cluster.GameOptions{Strategy: st, Checkpoint: playGameCheckpoint, Lease: playGameLease}
		c, err := cluster.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if err := c.WaitMembers(ctx, replicas); err != nil {
			return nil, errors.Join(err, c.Close())
		}
		return gameCluster{c}, nil
	}
}

// gameCluster adapts a *cluster.Cluster to GameCluster.
type gameCluster struct{ *cluster.Cluster }

// BalancerURL returns the balancer's traffic URL.
func (g gameCluster) BalancerURL() string { return g.URL() }

// GameState is the game view as the dashboard shows it (State.Game).
type GameState struct {
	// Strategy is the game cluster's strategy ("" before one started).
	Strategy game.Strategy `json:"strategy"`
	// Strategies lists the game strategies.
	Strategies []string `json:"strategies"`
	// Phase is "off", "starting", "running" or "failed".
	Phase string `json:"phase"`
	// Error says why the phase is "failed".
	Error string `json:"error,omitempty"`
	// Replicas lists the game servers and their process states.
	Replicas []GameReplica `json:"replicas"`
	// Rooms are the watched rooms, in GameRooms order.
	Rooms []GameRoom `json:"rooms"`
}

// GameReplica is one game server.
type GameReplica struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// GameRoom is one watched room: its last snapshot, or why there is none.
type GameRoom struct {
	// Room is the room's ID.
	Room string `json:"room"`
	// Snapshot is the room as the balancer last served it (nil: it did
	// not answer).
	Snapshot *game.Snapshot `json:"snapshot"`
	// Error is the last answer that was not a snapshot (a 503 while the
	// room moves).
	Error string `json:"error,omitempty"`
}

// gameView is the playground's game cluster and what it watches.
type gameView struct {
	s      *Server
	start  GameStartFunc
	client *http.Client

	opMu sync.Mutex // one control at a time

	mu       sync.Mutex
	cluster  GameCluster
	strategy game.Strategy
	phase    string
	errText  string
	rooms    map[string]GameRoom
	players  map[string]*gamePlayer // by room + "/" + player
	stop     context.CancelFunc
	done     chan struct{}
}

func newGameView(s *Server, start GameStartFunc) *gameView {
	return &gameView{s: s, start: start, phase: "off", rooms: map[string]GameRoom{}, players: map[string]*gamePlayer{},
		client: &http.Client{Timeout: 3 * time.Second}}
}

// state returns the view's GameState.
func (g *gameView) state() *GameState {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &GameState{Strategy: g.strategy, Strategies: game.StrategyNames(), Phase: g.phase, Error: g.errText,
		Replicas: []GameReplica{}, Rooms: []GameRoom{}}
	if g.cluster != nil {
		for _, r := range g.cluster.Replicas() {
			st.Replicas = append(st.Replicas, GameReplica{ID: r.ID, State: string(r.State)})
		}
		for _, id := range GameRooms {
			st.Rooms = append(st.Rooms, g.rooms[id])
		}
	}
	return st
}

// setStrategy closes the running game cluster, if any, and starts one for
// name.
func (g *gameView) setStrategy(name string) error {
	if _, ok := game.Lookup(name); !ok {
		return fmt.Errorf("%w: game strategy %q (want one of %v)", errBadGameStrategy, name, game.StrategyNames())
	}
	if !g.opMu.TryLock() {
		return ErrBusy
	}
	defer g.opMu.Unlock()
	g.closeCluster()
	g.mu.Lock()
	g.strategy, g.phase, g.errText = game.Strategy(name), "starting", ""
	g.mu.Unlock()
	g.s.publishState()
	g.s.events.add(EventAction, fmt.Sprintf("starting a game cluster (%s, %d replicas)", name, g.s.cfg.Replicas))
	ctx, cancel := context.WithTimeout(g.s.ctx, g.s.cfg.ActionTimeout)
	defer cancel()
	c, err := g.start(ctx, game.Strategy(name), g.s.cfg.Replicas)
	g.mu.Lock()
	if err != nil {
		g.phase, g.errText = "failed", err.Error()
		g.mu.Unlock()
		g.s.events.add(EventError, "the game cluster did not start: "+err.Error())
		g.s.publishState()
		return err
	}
	loopCtx, stop := context.WithCancel(g.s.ctx)
	g.cluster, g.phase, g.stop, g.done = c, "running", stop, make(chan struct{})
	g.rooms, g.players = map[string]GameRoom{}, map[string]*gamePlayer{}
	g.mu.Unlock()
	g.s.events.add(EventInfo, fmt.Sprintf("game cluster ready: rooms %v %s", GameRooms, gameWhere(game.Strategy(name))))
	go g.loop(loopCtx, c, g.done)
	g.s.publishState()
	return nil
}

// errBadGameStrategy is wrapped by the error for an unknown game strategy.
var errBadGameStrategy = errors.New("play: unknown game strategy")

// gameWhere says in plain words where a strategy keeps a room.
func gameWhere(st game.Strategy) string {
	info, _ := game.Lookup(string(st))
	return "— " + info.Promise
}

// closeCluster stops the loop and the running game cluster, if any.
func (g *gameView) closeCluster() error {
	g.mu.Lock()
	c, stop, done := g.cluster, g.stop, g.done
	g.cluster, g.stop, g.done, g.phase = nil, nil, nil, "off"
	g.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if c == nil {
		return nil
	}
	return c.Close()
}

// replicaAction kills, pauses, resumes or restarts game replica id.
func (g *gameView) replicaAction(act, id string) error {
	if !g.opMu.TryLock() {
		return ErrBusy
	}
	defer g.opMu.Unlock()
	g.mu.Lock()
	c := g.cluster
	g.mu.Unlock()
	if c == nil {
		return ErrNoCluster
	}
	ctx, cancel := context.WithTimeout(g.s.ctx, g.s.cfg.ActionTimeout)
	defer cancel()
	acts := map[string]func(context.Context, string) error{"kill": c.Kill, "pause": c.Pause, "resume": c.Resume, "restart": c.Restart}
	f, ok := acts[act]
	if !ok {
		return fmt.Errorf("%w: %q", errBadAction, act)
	}
	if err := f(ctx, id); err != nil {
		return err
	}
	g.s.events.add(EventAction, fmt.Sprintf("game server %s: %s", id, act))
	g.s.publishState()
	return nil
}

// errBadAction is wrapped by the error for an unknown replica action.
var errBadAction = errors.New("play: unknown action")

// move sends one move of "you" in the first watched room.
func (g *gameView) move(ctx context.Context, mv string) (game.Ack, error) {
	g.mu.Lock()
	c := g.cluster
	g.mu.Unlock()
	if c == nil {
		return game.Ack{}, ErrNoCluster
	}
	return g.player(GameRooms[0], gameYou).send(ctx, g.client, c.BalancerURL(), mv)
}

// player returns the gamePlayer of id in room, made on first use.
func (g *gameView) player(room, id string) *gamePlayer {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := room + "/" + id
	p := g.players[key]
	if p == nil {
		p = &gamePlayer{room: room, id: id}
		g.players[key] = p
	}
	return p
}

// loop polls the watched rooms and moves the bots until ctx ends.
func (g *gameView) loop(ctx context.Context, c GameCluster, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(g.s.cfg.PollInterval)
	defer t.Stop()
	moves := []string{"up", "right", "down", "left"}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, room := range GameRooms {
			for i, bot := range gameBots {
				_, _ = g.player(room, bot).send(ctx, g.client, c.BalancerURL(), moves[(n+i)%len(moves)])
			}
			g.observe(room, fetchRoom(ctx, g.client, c.BalancerURL(), room))
		}
		g.s.publishState()
	}
}

// observe records room's latest poll and logs what changed: a new owner,
// a new epoch, a room that started over.
func (g *gameView) observe(room string, now GameRoom) {
	g.mu.Lock()
	prev, seen := g.rooms[room]
	if now.Snapshot == nil && prev.Snapshot != nil {
		now.Snapshot = prev.Snapshot // keep showing the last known state
	}
	g.rooms[room] = now
	g.mu.Unlock()
	if !seen || prev.Snapshot == nil || now.Error != "" {
		return
	}
	if text, kind := roomChange(*prev.Snapshot, *now.Snapshot); text != "" {
		g.s.events.add(kind, text)
	}
}

// roomChange describes in plain words how room a became b, "" when it
// only moved on.
func roomChange(a, b game.Snapshot) (string, EventKind) {
	if a.Owner == b.Owner && a.Epoch == b.Epoch && b.Tick >= a.Tick {
		return "", ""
	}
	switch {
	case b.Tick < a.Tick && b.Epoch <= a.Epoch:
		// No new epoch (memory has no lease: every owner is at epoch 1)
		// and the ticks went back: a fresh room.
		players := "players"
		if len(a.Players) == 1 {
			players = "player"
		}
		return fmt.Sprintf("room %s started over on %s at tick %d: its %d %s and %d ticks lived only in %s's memory",
			b.Room, orUnknown(b.Owner), b.Tick, len(a.Players), players, a.Tick, orUnknown(a.Owner)), EventLoss
	case b.Tick < a.Tick:
		return fmt.Sprintf("room %s moved from %s to %s (epoch %d → %d) and resumed from its checkpoint at tick %d: %d ticks rolled back",
			b.Room, orUnknown(a.Owner), orUnknown(b.Owner), a.Epoch, b.Epoch, b.Tick, a.Tick-b.Tick), EventLoss
	default:
		return fmt.Sprintf("room %s moved from %s to %s (epoch %d → %d) at tick %d: nothing rolled back",
			b.Room, orUnknown(a.Owner), orUnknown(b.Owner), a.Epoch, b.Epoch, b.Tick), EventSafe
	}
}

// fetchRoom reads room's snapshot through the balancer.
func fetchRoom(ctx context.Context, client *http.Client, base, room string) GameRoom {
	out := GameRoom{Room: room}
	var snap game.Snapshot
	if err := gameCall(ctx, client, http.MethodGet, base+"/rooms/"+room, nil, &snap); err != nil {
		out.Error = err.Error()
		return out
	}
	out.Snapshot = &snap
	return out
}

// gamePlayer is one player the playground plays: it numbers its inputs
// and, when the room lost some of them (a failover), resumes from what
// the room applied.
type gamePlayer struct {
	room, id string

	mu  sync.Mutex
	seq uint64 // the last input the room acknowledged
}

// send sends move as the player's next input through the balancer at base.
func (p *gamePlayer) send(ctx context.Context, client *http.Client, base, mv string) (game.Ack, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := game.Input{Player: p.id, Seq: p.seq + 1, Move: mv}
	var ack game.Ack
	err := gameCall(ctx, client, http.MethodPost, base+"/rooms/"+p.room+"/inputs", in, &ack)
	var ce *gameCallError
	if errors.As(err, &ce) && ce.status == http.StatusConflict {
		// The room does not have the inputs the player had sent (a
		// failover lost them, or a new room): go on from what it has.
		snap := fetchRoom(ctx, client, base, p.room).Snapshot
		if snap == nil {
			return ack, err
		}
		p.seq = 0
		for _, pl := range snap.Players {
			if pl.ID == p.id {
				p.seq = pl.Applied
			}
		}
		in.Seq = p.seq + 1
		err = gameCall(ctx, client, http.MethodPost, base+"/rooms/"+p.room+"/inputs", in, &ack)
	}
	if err == nil {
		p.seq = ack.Applied
	}
	return ack, err
}

// gameCallError is an answer of the game servers that is not 2xx.
type gameCallError struct {
	status int
	body   string
}

func (e *gameCallError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// gameCall sends a JSON request (body nil: none) and decodes the answer
// into out.
func gameCall(ctx context.Context, client *http.Client, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &gameCallError{status: resp.StatusCode, body: string(bytes.TrimSpace(data))}
	}
	return json.Unmarshal(data, out)
}

// routeGame adds the game view's routes to mux.
func (g *gameView) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /play/api/game", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Strategy string `json:"strategy"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		if err := g.setStrategy(body.Strategy); err != nil {
			writeGameError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, g.state())
	})
	mux.HandleFunc("DELETE /play/api/game", func(w http.ResponseWriter, r *http.Request) {
		if !g.opMu.TryLock() {
			writeGameError(w, ErrBusy)
			return
		}
		defer g.opMu.Unlock()
		_ = g.closeCluster()
		g.s.publishState()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /play/api/game/replicas/{id}/{act}", func(w http.ResponseWriter, r *http.Request) {
		if err := g.replicaAction(r.PathValue("act"), r.PathValue("id")); err != nil {
			writeGameError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /play/api/game/move", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Move string `json:"move"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		ack, err := g.move(r.Context(), body.Move)
		if err != nil {
			writeGameError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ack)
	})
}

// writeGameError answers a game control's error: the playground's own as
// the cart controls do, the game servers' answers with their status.
func writeGameError(w http.ResponseWriter, err error) {
	var ce *gameCallError
	switch {
	case errors.Is(err, errBadGameStrategy), errors.Is(err, errBadAction):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.As(err, &ce) && ce.status < 500:
		writeError(w, ce.status, "game_refused", ce.body)
	case errors.As(err, &ce):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "game_unavailable", ce.body)
	default:
		writeControlError(w, err)
	}
}
