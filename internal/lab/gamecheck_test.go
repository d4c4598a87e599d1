package lab

import "testing"

// ack and snap build hand-made game histories: at ms, player, seq or
// applied, tick, epoch, owner (room "r").
func ack(at int64, player string, seq, tick, epoch uint64, owner string) GameEvent {
	return GameEvent{At: at * 1e6, Room: "r", Player: player, Ack: true, Seq: seq, Tick: tick, Epoch: epoch, Owner: owner, Applied: seq}
}

func snap(at int64, player string, applied, tick, epoch uint64, owner string) GameEvent {
	return GameEvent{At: at * 1e6, Room: "r", Player: player, Tick: tick, Epoch: epoch, Owner: owner, Applied: applied}
}

func TestCheckGame(t *testing.T) {
	tests := []struct {
		name string
		evs  []GameEvent
		want GameCheck
	}{
		{"clean handover", []GameEvent{
			ack(1, "a", 1, 1, 1, "g1"), ack(2, "b", 1, 1, 1, "g1"), ack(3, "a", 2, 2, 1, "g1"),
			snap(10, "a", 2, 2, 2, "g2"), ack(11, "a", 3, 3, 2, "g2"), ack(12, "b", 2, 3, 2, "g2"),
		}, GameCheck{InputsAcked: 5, Activations: 2}},
		{"checkpoint rollback loses acknowledged inputs", []GameEvent{
			ack(1, "a", 1, 1, 1, "g1"), ack(2, "a", 2, 2, 1, "g1"), ack(3, "a", 3, 3, 1, "g1"), ack(4, "b", 1, 4, 1, "g1"),
			// the new owner resumed from the checkpoint of tick 1
			snap(10, "a", 1, 1, 2, "g2"), ack(11, "a", 2, 2, 2, "g2"), ack(12, "a", 3, 3, 2, "g2"),
			snap(20, "b", 0, 3, 2, "g2"), // the final read: b's input is gone
		}, GameCheck{InputsAcked: 4, InputsLost: 3, TicksRolledBack: 3, TicksRolledBackMax: 3, Activations: 2}},
		{"double activation: the old owner acknowledges after the new one began", []GameEvent{
			ack(1, "a", 1, 1, 1, "g1"),
			ack(10, "b", 1, 2, 2, "g2"),
			ack(11, "a", 2, 2, 1, "g1"), // stale owner still acting
			ack(12, "b", 2, 3, 2, "g2"),
		}, GameCheck{InputsAcked: 4, DoubleActivations: 1, Activations: 2}},
		{"memory: a restarted owner of the same name starts the room afresh", []GameEvent{
			ack(1, "a", 1, 100, 1, "g1"),
			ack(10, "a", 2, 160, 1, "g2"),
			snap(20, "a", 0, 3, 1, "g1"), // g1 restarted: tick 3 of a new room
			ack(21, "a", 1, 4, 1, "g1"),
		}, GameCheck{InputsAcked: 2, InputsLost: 2, TicksRolledBack: 157, TicksRolledBackMax: 157, Activations: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The checker must not depend on the order events are given in.
			rev := make([]GameEvent, len(tt.evs))
			for i, e := range tt.evs {
				rev[len(tt.evs)-1-i] = e
			}
			if got := CheckGame(rev); got != tt.want {
				t.Errorf("CheckGame = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResumeNS(t *testing.T) {
	evs := []GameEvent{
		ack(1, "a", 1, 1, 1, "g1"),
		ack(12, "a", 2, 2, 1, "g1"),   // on its way when g1 was killed at 10 ms
		ack(2050, "a", 3, 3, 2, "g2"), // the new owner, 2 s later
		{At: 20e6, Room: "other", Player: "x", Ack: true, Seq: 1},
		{At: 40e6, Room: "other", Player: "x", Ack: true, Seq: 2},
	}
	seq := uint64(4)
	for at := int64(2070); at < 3000; at += 20 {
		evs = append(evs, ack(at, "a", seq, seq, 2, "g2"))
		seq++
	}
	evs = append(evs, ack(4000, "a", seq, seq, 2, "g2")) // a later silence, not the fault's
	if got := resumeNS(evs, 10e6); got != 2040e6 {
		t.Errorf("resume = %d ns, want 2040 ms (the slowest room's silence after the fault)", got)
	}
	if got := resumeNS(evs, 5000e6); got != -1 {
		t.Errorf("resume after the last ack = %d, want -1", got)
	}
}
