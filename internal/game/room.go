package game

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// MaxPending is how many inputs a room queues for its next tick; more are
// refused with ErrBusy.
const MaxPending = 4096

// Snapshot is a room's state as clients see it.
type Snapshot struct {
	Room     string   `json:"room"`
	Tick     uint64   `json:"tick"`
	Owner    string   `json:"owner"`
	Epoch    uint64   `json:"epoch"`
	Strategy Strategy `json:"strategy"`
	Players  []Player `json:"players"`
	Coins    []Point  `json:"coins"`
}

// Ack acknowledges one input: the tick that applied it (or, for a
// duplicate, the tick at which it was recognized as already applied) and
// the player's state after it.
type Ack struct {
	Room      string `json:"room"`
	Player    string `json:"player"`
	Seq       uint64 `json:"seq"`
	Tick      uint64 `json:"tick"`
	Epoch     uint64 `json:"epoch"`
	Owner     string `json:"owner"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Applied   uint64 `json:"applied"`
	Score     int    `json:"score"`
}

// outcome is the answer to one submitted input.
type outcome struct {
	ack Ack
	err error
}

// pending is an input waiting for the next tick.
type pending struct {
	in    Input
	reply chan outcome
}

// room is one room this replica owns: a tick loop applying queued inputs;
// for a keeper with a store, the server's persistLoop renews its lease and
// writes its checkpoints.
type room struct {
	id    string
	srv   *Server
	ready chan struct{} // closed when activation ended; err says how
	err   error
	done  chan struct{} // closed when the room stopped
	quit  chan struct{} // closed to ask the loops to stop
	wg    sync.WaitGroup

	mu      sync.Mutex
	state   *State
	saved   *State // last state written to the store
	lease   lease
	pending []pending
	subs    map[chan Snapshot]struct{}
	stopped error // why the room stopped, once it has

	lastInput time.Time // when an input last arrived (idle passivation)

	// writeMu orders the room's store writes: the server's persistLoop
	// holds it across a periodic write, stop across the final one.
	writeMu        sync.Mutex
	lastCheckpoint time.Time // when r.saved was taken (guarded by mu)

	// Replicated strategy, touched by the tick goroutine only.
	backup   string // the backup that has the room's copy ("" : none yet)
	replTick uint64 // the tick of the copy the backup has
}

// activate becomes the room's owner through the keeper and starts the
// loops; on failure it records the error and removes the room.
func (r *room) activate() {
	defer close(r.ready)
	ctx, cancel := context.WithTimeout(context.Background(), r.srv.storeTimeout)
	defer cancel()
	l, st, resumed, err := r.srv.keeper.activate(ctx, r.id)
	if err != nil {
		r.err = err
		close(r.done)
		r.srv.forget(r)
		return
	}
	r.state, r.saved, r.lease, r.replTick = st, st.Clone(), l, st.Tick
	r.lastInput, r.lastCheckpoint = time.Now(), time.Now()
	origin := "new"
	if resumed {
		origin = "resumed"
	}
	r.srv.metrics.activations.WithLabelValues(origin).Inc()
	r.srv.log.Info("game: room activated", "room", r.id, "epoch", l.epoch, "tick", st.Tick, "origin", origin)
	r.wg.Add(1)
	go r.tickLoop()
}

// enqueue queues in for the next tick and returns where its outcome will
// be sent.
func (r *room) enqueue(in Input) (<-chan outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped != nil {
		return nil, r.stopped
	}
	if len(r.pending) >= MaxPending {
		return nil, ErrBusy
	}
	reply := make(chan outcome, 1)
	r.pending = append(r.pending, pending{in, reply})
	r.lastInput = time.Now()
	return reply, nil
}

// wait returns the outcome sent on reply, or an error when the room stops
// or ctx ends first.
func (r *room) wait(ctx context.Context, reply <-chan outcome) (Ack, error) {
	select {
	case o := <-reply:
		return o.ack, o.err
	case <-ctx.Done():
		return Ack{}, ctx.Err()
	}
}

// tickLoop runs the room's ticks until the room stops.
func (r *room) tickLoop() {
	defer r.wg.Done()
	// Every room ticks on a multiple of the tick, so that the ticks of all
	// rooms fall together and the runtime serves them in one pass of its
	// timers, instead of waking the process once per room.
	align := time.NewTimer(time.Until(time.Now().Truncate(r.srv.tick).Add(r.srv.tick)))
	select {
	case <-r.quit:
		align.Stop()
		return
	case <-align.C:
	}
	t := time.NewTicker(r.srv.tick)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case due := <-t.C:
			lag := time.Since(due)
			r.srv.metrics.tickLag.Observe(lag.Seconds())
			if r.srv.observeLag != nil {
				r.srv.observeLag(lag)
			}
			r.srv.metrics.ticks.Inc()
			r.step()
			if r.idle() {
				go r.shutdown(ErrRoomMoved, "idle")
				return
			}
		}
	}
}

// idle reports whether the room has had no input and no WebSocket for
// Config.IdleTimeout and its state is kept in a store, so that it can be
// passivated (written, released and dropped from memory) and resumed on
// the next request. Rooms of the memory strategy are never passivated.
func (r *room) idle() bool {
	if r.srv.idleTimeout <= 0 {
		return false
	}
	if every, _ := r.srv.keeper.interval(); every == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs) == 0 && len(r.pending) == 0 && time.Since(r.lastInput) > r.srv.idleTimeout
}

// step runs one tick: it applies the queued inputs, answers them and
// sends the new snapshot to the subscribers. While the lease is not proven
// valid it applies nothing and refuses the inputs.
func (r *room) step() {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	if time.Now().After(r.lease.validUntil) {
		r.mu.Unlock()
		for _, p := range batch {
			p.reply <- outcome{err: ErrLeaseLost}
		}
		r.srv.metrics.inputs.WithLabelValues("unavailable").Add(float64(len(batch)))
		return
	}
	inputs := make([]Input, len(batch))
	for i, p := range batch {
		inputs[i] = p.in
	}
	if r.srv.replicas != nil && len(batch) > 0 {
		epoch := r.lease.epoch
		r.mu.Unlock()
		r.stepReplicated(batch, inputs, epoch)
		return
	}
	results := r.state.Step(inputs)
	r.finishLocked(batch, results)
}

// finishLocked answers the batch with results, sends the snapshot to the
// subscribers, and unlocks r.mu.
func (r *room) finishLocked(batch []pending, results []Result) {
	acks := make([]outcome, len(batch))
	for i, res := range results {
		acks[i] = r.outcomeLocked(res)
	}
	if len(r.subs) > 0 && len(batch) > 0 {
		snap := r.snapshotLocked()
		for c := range r.subs {
			select {
			case c <- snap:
			default: // a slow subscriber misses a snapshot, not the room
			}
		}
	}
	r.mu.Unlock()
	for i, p := range batch {
		p.reply <- acks[i]
	}
}

// stepReplicated is step for the replicated strategy: the tick is applied
// to a copy of the state, sent to the backup, and becomes the room's state
// (and its inputs acknowledged) only once the backup has it. Only the tick
// goroutine writes r.state, so it reads it here without the lock.
func (r *room) stepReplicated(batch []pending, inputs []Input, epoch uint64) {
	next := r.state.Clone()
	results := next.Step(inputs)
	if err := r.replicate(epoch, r.replTick, next, inputs); err != nil {
		r.mu.Lock()
		r.state.Tick++
		r.mu.Unlock()
		r.srv.log.Warn("game: replication failed; inputs refused", "room", r.id, "err", err)
		r.srv.metrics.inputs.WithLabelValues("unavailable").Add(float64(len(batch)))
		for _, p := range batch {
			p.reply <- outcome{err: err}
		}
		return
	}
	r.mu.Lock()
	r.state, r.replTick = next, next.Tick
	r.finishLocked(batch, results)
}

// outcomeLocked turns a rules result into the answer to its input.
func (r *room) outcomeLocked(res Result) outcome {
	switch {
	case res.Err != nil:
		r.srv.metrics.inputs.WithLabelValues("refused").Inc()
		return outcome{err: res.Err}
	case res.Duplicate:
		r.srv.metrics.inputs.WithLabelValues("duplicate").Inc()
	default:
		r.srv.metrics.inputs.WithLabelValues("applied").Inc()
	}
	p := r.state.Player(res.Input.Player)
	return outcome{ack: Ack{
		Room: r.id, Player: p.ID, Seq: res.Input.Seq, Tick: res.Tick, Epoch: r.lease.epoch,
		Owner: r.srv.id, Duplicate: res.Duplicate, Applied: p.Applied, Score: p.Score,
	}}
}

// snapshot returns the room's current snapshot. Like inputs, it is
// refused while the owner cannot prove its lease: a stale owner must not
// show clients a state a newer owner may have moved past.
func (r *room) snapshot() (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped != nil:
		return Snapshot{}, r.stopped
	case time.Now().After(r.lease.validUntil):
		return Snapshot{}, ErrLeaseLost
	}
	return r.snapshotLocked(), nil
}

func (r *room) snapshotLocked() Snapshot {
	return snapshotOf(r.state, r.srv.id, r.lease.epoch, r.srv.strategy)
}

// snapshotOf builds the snapshot of st.
func snapshotOf(st *State, owner string, epoch uint64, strategy Strategy) Snapshot {
	players := slices.Clone(st.Players)
	if players == nil {
		players = []Player{}
	}
	return Snapshot{Room: st.Room, Tick: st.Tick, Owner: owner, Epoch: epoch, Strategy: strategy,
		Players: players, Coins: slices.Clone(st.Coins)}
}

// subscribe returns a channel receiving the room's snapshot after every
// tick that applied inputs, and a function to unsubscribe. The channel is
// closed when the room stops.
func (r *room) subscribe() (<-chan Snapshot, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped != nil {
		return nil, nil, r.stopped
	}
	c := make(chan Snapshot, 8)
	r.subs[c] = struct{}{}
	return c, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.subs[c]; ok {
			delete(r.subs, c)
			close(c)
		}
	}, nil
}

// stop ends the room's ownership for reason: it stops the loops, refuses
// what is queued, closes the subscriptions and, when release is true,
// writes the final state and releases the lease so the next owner can
// start at once. It returns when the room is gone from the server. Only
// the first call stops the room and counts it under label in
// room_stops_total; later ones (a second fenced write, a second
// rebalance) wait for it.
func (r *room) stop(reason error, release bool, label string) {
	r.mu.Lock()
	if r.stopped != nil {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.stopped = reason
	r.mu.Unlock()
	r.srv.metrics.stops.WithLabelValues(label).Inc()
	if errors.Is(reason, ErrFenced) {
		r.srv.log.Warn("game: fenced: dropping the room", "room", r.id, "err", reason)
	}
	close(r.quit)
	r.wg.Wait()
	r.writeMu.Lock() // a periodic write in flight finishes first
	defer r.writeMu.Unlock()
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	for c := range r.subs {
		close(c)
	}
	r.subs = nil
	l, st := r.lease, r.state.Clone()
	r.mu.Unlock()
	for _, p := range batch {
		p.reply <- outcome{err: reason}
	}
	if release && time.Now().Before(l.validUntil) {
		ctx, cancel := context.WithTimeout(context.Background(), r.srv.storeTimeout)
		if err := r.srv.keeper.save(ctx, r.id, &l, st, true); err != nil {
			r.srv.log.Warn("game: final checkpoint failed", "room", r.id, "err", err)
		}
		cancel()
	}
	r.srv.forget(r)
	close(r.done)
}
