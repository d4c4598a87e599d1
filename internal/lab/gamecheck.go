package lab

import (
	"math"
	"slices"
	"sort"
	"time"
)

// GameEvent is one message a game player received: an acknowledgement of
// one of its inputs, or a snapshot of its room. The checker reads nothing
// else: what the players saw is the history.
type GameEvent struct {
	// At is when the player received it, nanoseconds on the run clock (one
	// monotonic clock for every player of the run).
	At int64
	// Room and Player say whose it is.
	Room, Player string
	// Ack is true for an acknowledgement, false for a snapshot.
	Ack bool
	// Seq is the acknowledged input's sequence number (acks only).
	Seq uint64
	// Tick, Epoch and Owner are the room's, as the message carries them.
	Tick, Epoch uint64
	Owner       string
	// Applied is how many of the player's inputs the room had applied.
	Applied uint64
}

// GameCheck is what the checker found in a game history.
type GameCheck struct {
	// InputsAcked counts distinct inputs (player, sequence number) that
	// were acknowledged.
	InputsAcked int
	// InputsLost counts acknowledged inputs the room later did not have: a
	// player's applied count seen below the highest sequence number it had
	// acknowledged (each lost input counted once, even when resent and
	// acknowledged again).
	InputsLost int
	// TicksRolledBack sums, over every change of owner (activation) of
	// every room, how many ticks the new activation started behind the
	// furthest tick seen before it; TicksRolledBackMax is the largest.
	TicksRolledBack, TicksRolledBackMax int
	// DoubleActivations counts pairs of activations of one room that both
	// acknowledged inputs in overlapping time: one activation's last
	// acknowledgement arrived after the next one's first.
	DoubleActivations int
	// Activations counts the activations seen, every room together.
	Activations int
}

// resetTicks is how far below an activation's furthest tick a message of
// the same owner and epoch must be to count as a new activation: the
// memory strategy restarts a room at epoch 1 and tick 0 on every owner
// (and on a restarted process of the same name), and messages of one
// activation reach different players only a few ticks out of order.
const resetTicks = 50

// activation is one owner's tenure of a room, as the messages show it.
type activation struct {
	owner              string
	epoch              uint64
	firstTick, maxTick uint64
	// firstAck and lastAck are when its first and last acknowledgements
	// arrived; acked is false when it acknowledged nothing.
	firstAck, lastAck int64
	acked             bool
}

// CheckGame checks a game history. events may come in any order; they are
// read in the order they arrived (At), which for one player is the order
// of its connection.
func CheckGame(events []GameEvent) GameCheck {
	evs := append([]GameEvent(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	var out GameCheck
	byRoom := map[string][]GameEvent{}
	for _, e := range evs {
		byRoom[e.Room] = append(byRoom[e.Room], e)
	}
	rooms := make([]string, 0, len(byRoom))
	for r := range byRoom {
		rooms = append(rooms, r)
	}
	sort.Strings(rooms)
	for _, r := range rooms {
		checkRoom(byRoom[r], &out)
	}
	return out
}

// checkRoom adds one room's findings to out.
func checkRoom(evs []GameEvent, out *GameCheck) {
	type pkey struct {
		player string
		seq    uint64
	}
	acked := map[pkey]bool{}
	high := map[string]uint64{} // highest acknowledged, not known lost, per player
	for _, e := range evs {
		if e.Ack {
			acked[pkey{e.Player, e.Seq}] = true
		}
		if h := high[e.Player]; e.Applied < h {
			out.InputsLost += int(h - e.Applied)
			high[e.Player] = e.Applied
		}
		if e.Ack {
			high[e.Player] = max(high[e.Player], e.Seq)
		}
	}
	out.InputsAcked += len(acked)
	acts := activations(evs, out)
	out.Activations += len(acts)
	for i, a := range acts {
		for _, b := range acts[i+1:] {
			if a.acked && b.acked && a.lastAck > b.firstAck {
				out.DoubleActivations++
			}
		}
	}
}

// activations splits a room's events into activations, in the order they
// first appeared, and adds the ticks each new one rolled back to out.
func activations(evs []GameEvent, out *GameCheck) []*activation {
	var acts []*activation
	current := map[[2]any]*activation{} // the latest activation of (owner, epoch)
	var furthest uint64                 // the furthest tick seen so far
	for _, e := range evs {
		k := [2]any{e.Owner, e.Epoch}
		a := current[k]
		if a == nil || e.Tick+resetTicks < a.maxTick {
			a = &activation{owner: e.Owner, epoch: e.Epoch, firstTick: e.Tick, maxTick: e.Tick}
			current[k] = a
			if len(acts) > 0 && e.Tick < furthest {
				back := int(furthest - e.Tick)
				out.TicksRolledBack += back
				out.TicksRolledBackMax = max(out.TicksRolledBackMax, back)
			}
			acts = append(acts, a)
		}
		a.maxTick = max(a.maxTick, e.Tick)
		furthest = max(furthest, e.Tick)
		if e.Ack {
			if !a.acked {
				a.firstAck, a.acked = e.At, true
			}
			a.lastAck = e.At
		}
	}
	return acts
}

// resumeWindow is how soon after a fault a room's silence must begin to
// count as caused by it: acknowledgements already on their way when the
// owner was killed or paused still arrive a few milliseconds after.
const resumeWindow = int64(time.Second)

// resumeNS is how long after at the rooms answered again: for each room,
// the longest silence between two acknowledgements that begins before
// at+resumeWindow and ends after at, measured from at to its end; the
// slowest room's. -1 when no room acknowledged anything after at.
func resumeNS(events []GameEvent, at int64) int64 {
	acks := map[string][]int64{}
	for _, e := range events {
		if e.Ack {
			acks[e.Room] = append(acks[e.Room], e.At)
		}
	}
	worst := int64(-1)
	for _, ts := range acks {
		slices.Sort(ts)
		resume, gap := int64(-1), int64(-1)
		for i, t := range ts {
			prev := int64(math.MinInt64 / 2)
			if i > 0 {
				prev = ts[i-1]
			}
			if t > at && prev < at+resumeWindow && t-prev > gap {
				resume, gap = t-at, t-prev
			}
		}
		worst = max(worst, resume)
	}
	return worst
}
