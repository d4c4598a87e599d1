package lab

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/statelab/statelab/internal/game"
)

// gameMoves are the moves a player cycles through (by sequence number, so
// that a resent input is the same input).
var gameMoves = []string{"up", "right", "down", "left", "stay"}

// gameClock is a game run's clock and what its players recorded.
type gameClock struct {
	origin time.Time
	from   int64 // the end of the warm-up: earlier inputs are not timed
	end    int64 // when players stop sending (the end of the measured part)
	rec    *recorder

	mu     sync.Mutex
	events []GameEvent
}

// now returns the run clock: nanoseconds since the origin, monotonic.
func (g *gameClock) now() int64 { return int64(time.Since(g.origin)) }

// sleepUntil sleeps until run-clock time t; false when ctx ended first.
func (g *gameClock) sleepUntil(ctx context.Context, t int64) bool {
	return sleepUntilTime(ctx, g.origin.Add(time.Duration(t)))
}

// event records one message a player received.
func (g *gameClock) event(e GameEvent) {
	g.mu.Lock()
	g.events = append(g.events, e)
	g.mu.Unlock()
}

// history returns every recorded event.
func (g *gameClock) history() []GameEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GameEvent(nil), g.events...)
}

// gamePlayer is one simulated player: it is due to send an input every
// period from offset on (open loop: the schedule does not wait for the
// server), with at most one input in flight, so an input due while the
// previous one waits goes out as soon as that one is acknowledged, and its
// latency counts from when it was due.
type gamePlayer struct {
	id, room string
	url      string // the room's WebSocket URL through the balancer
	index    int    // the recorder shard
	period   time.Duration
	offset   int64
	timeout  time.Duration
	clock    *gameClock

	next uint64 // sequence number of the next input to send
	// retried is set when the input in flight was refused, timed out or
	// lost its connection at least once: its sample counts as an error.
	retried bool
}

// errResync means the player must reconnect and resume from the room's
// snapshot (its sequence number is not the one the room expects).
var errResync = errors.New("lab: resync")

// play runs the player until the end of the run or ctx.
func (p *gamePlayer) play(ctx context.Context) {
	due := p.offset
	for ctx.Err() == nil && due < p.clock.end {
		dctx, cancel := context.WithTimeout(ctx, p.timeout)
		conn, _, err := websocket.Dial(dctx, p.url, nil)
		cancel()
		if err != nil {
			p.retried = p.retried || p.clock.now() >= due
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		conn.SetReadLimit(1 << 20)
		due = p.session(ctx, conn, due)
		conn.CloseNow()
	}
}

// session plays on one connection until it breaks or the run ends, and
// returns when the next input is due.
func (p *gamePlayer) session(ctx context.Context, conn *websocket.Conn, due int64) int64 {
	m, err := p.read(ctx, conn)
	if err != nil || m.Type != "snapshot" || m.Snapshot == nil {
		return due
	}
	p.snapshot(m.Snapshot)
	for ctx.Err() == nil && due < p.clock.end {
		if !p.clock.sleepUntil(ctx, due) {
			return due
		}
		in := game.Input{Player: p.id, Seq: p.next, Move: gameMoves[p.next%uint64(len(gameMoves))]}
		if err := wsjson.Write(ctx, conn, in); err != nil {
			return due
		}
		ack, err := p.await(ctx, conn, in.Seq)
		switch {
		case err == nil:
			now := p.clock.now()
			p.clock.rec.record(p.index, sample{at: due, lat: now - due, err: p.retried, servedBy: ack.Owner}, 0)
			p.next = max(p.next, ack.Seq+1)
			due += int64(p.period)
			p.retried = false
			continue
		case errors.Is(err, errUnavailable):
			p.retried = true
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		p.retried = true
		return due
	}
	return due
}

// errUnavailable is an input refused for now (503): send it again.
var errUnavailable = errors.New("lab: input refused for now")

// await reads messages until the answer to input seq: its ack, or an
// error (errUnavailable, errResync), recording every ack and snapshot.
func (p *gamePlayer) await(ctx context.Context, conn *websocket.Conn, seq uint64) (*game.Ack, error) {
	for {
		m, err := p.read(ctx, conn)
		if err != nil {
			return nil, err
		}
		switch {
		case m.Type == "snapshot" && m.Snapshot != nil:
			p.snapshot(m.Snapshot)
		case m.Type == "ack" && m.Ack != nil:
			a := m.Ack
			p.clock.event(GameEvent{At: p.clock.now(), Room: p.room, Player: p.id, Ack: true, Seq: a.Seq,
				Tick: a.Tick, Epoch: a.Epoch, Owner: a.Owner, Applied: a.Applied})
			if a.Seq == seq {
				return a, nil
			}
		case m.Type == "error" && m.Seq == seq:
			if m.Error != nil && m.Error.Code == "seq_gap" {
				return nil, errResync
			}
			return nil, errUnavailable
		}
	}
}

// read reads one message within the player's timeout.
func (p *gamePlayer) read(ctx context.Context, conn *websocket.Conn) (game.Message, error) {
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var m game.Message
	err := wsjson.Read(rctx, conn, &m)
	return m, err
}

// snapshot records a snapshot and continues from what the room applied
// for the player.
func (p *gamePlayer) snapshot(s *game.Snapshot) {
	var applied uint64
	for _, pl := range s.Players {
		if pl.ID == p.id {
			applied = pl.Applied
		}
	}
	p.clock.event(GameEvent{At: p.clock.now(), Room: p.room, Player: p.id, Tick: s.Tick, Epoch: s.Epoch,
		Owner: s.Owner, Applied: applied})
	p.next = applied + 1
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
