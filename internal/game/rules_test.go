package game

import (
	"errors"
	"reflect"
	"testing"
)

func TestValidateID(t *testing.T) {
	long := make([]byte, MaxIDLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"r1", true}, {"Room_2-b", true}, {string(long[:MaxIDLen]), true},
		{"", false}, {string(long), false}, {"a b", false}, {"a/b", false}, {"é", false},
	} {
		err := ValidateID(tc.id)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadID)) {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestNewStateIsDeterministic(t *testing.T) {
	a, b := NewState("room-1"), NewState("room-1")
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two NewState of one room differ:\n%+v\n%+v", a, b)
	}
	if len(a.Coins) != Coins {
		t.Fatalf("coins = %d, want %d", len(a.Coins), Coins)
	}
	if reflect.DeepEqual(a.Coins, NewState("room-2").Coins) {
		t.Errorf("rooms 1 and 2 have the same coins; the seed ignores the room")
	}
}

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prior   []Input // applied one per tick before the step
		inputs  []Input
		wantErr []error // per input; nil = applied
		dup     []bool
		applied map[string]uint64
	}{
		{
			name:    "first inputs of two players",
			inputs:  []Input{{"a", 1, "up"}, {"b", 1, "left"}},
			wantErr: []error{nil, nil}, dup: []bool{false, false},
			applied: map[string]uint64{"a": 1, "b": 1},
		},
		{
			name:    "out of order within a tick is sorted",
			inputs:  []Input{{"a", 2, "up"}, {"a", 1, "down"}},
			wantErr: []error{nil, nil}, dup: []bool{false, false},
			applied: map[string]uint64{"a": 2},
		},
		{
			name:    "gap refused",
			prior:   []Input{{"a", 1, "up"}},
			inputs:  []Input{{"a", 3, "up"}},
			wantErr: []error{ErrSeqGap}, dup: []bool{false},
			applied: map[string]uint64{"a": 1},
		},
		{
			name:    "duplicate not applied twice",
			prior:   []Input{{"a", 1, "up"}, {"a", 2, "up"}},
			inputs:  []Input{{"a", 2, "down"}, {"a", 3, "stay"}},
			wantErr: []error{nil, nil}, dup: []bool{true, false},
			applied: map[string]uint64{"a": 3},
		},
		{
			name:    "bad move and bad player refused",
			inputs:  []Input{{"a", 1, "jump"}, {"a b", 1, "up"}, {"c", 0, "up"}},
			wantErr: []error{ErrBadMove, ErrBadID, ErrSeqGap}, dup: []bool{false, false, false},
			applied: map[string]uint64{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState("r")
			for _, in := range tc.prior {
				if r := s.Step([]Input{in}); r[0].Err != nil {
					t.Fatalf("prior %v: %v", in, r[0].Err)
				}
			}
			before := s.Tick
			res := s.Step(tc.inputs)
			if s.Tick != before+1 {
				t.Fatalf("tick %d after step from %d", s.Tick, before)
			}
			for i, r := range res {
				if r.Input != tc.inputs[i] {
					t.Errorf("result %d is for %v, want %v", i, r.Input, tc.inputs[i])
				}
				if !errors.Is(r.Err, tc.wantErr[i]) || (tc.wantErr[i] == nil && r.Err != nil) {
					t.Errorf("input %v: err %v, want %v", tc.inputs[i], r.Err, tc.wantErr[i])
				}
				if r.Duplicate != tc.dup[i] {
					t.Errorf("input %v: duplicate %v, want %v", tc.inputs[i], r.Duplicate, tc.dup[i])
				}
				if r.Tick != s.Tick {
					t.Errorf("input %v: tick %d, want %d", tc.inputs[i], r.Tick, s.Tick)
				}
			}
			if len(s.Players) != len(tc.applied) {
				t.Errorf("players %+v, want %v", s.Players, tc.applied)
			}
			for id, n := range tc.applied {
				if p := s.Player(id); p == nil || p.Applied != n {
					t.Errorf("player %s: %+v, want applied %d", id, p, n)
				}
			}
		})
	}
}

func TestMovesStayInsideAndCollectCoins(t *testing.T) {
	s := NewState("arena")
	seq := uint64(0)
	// Sweep the whole arena row by row: every coin is met, so the score
	// must grow, and the player never leaves the grid.
	step := func(move string) {
		seq++
		if r := s.Step([]Input{{"p", seq, move}}); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
		p := s.Player("p")
		if p.X < 0 || p.X >= Width || p.Y < 0 || p.Y >= Height {
			t.Fatalf("player left the arena: %+v", p)
		}
	}
	for range Height {
		step("up")
	}
	for range Width {
		step("left")
	}
	for row := range Height {
		dir := "right"
		if row%2 == 1 {
			dir = "left"
		}
		for range Width - 1 {
			step(dir)
		}
		step("down")
	}
	p := s.Player("p")
	if p.Score == 0 {
		t.Fatalf("swept the arena and collected nothing: %+v", p)
	}
	if len(s.Coins) != Coins {
		t.Fatalf("coins = %d, want %d", len(s.Coins), Coins)
	}
	if p.Applied != seq {
		t.Fatalf("applied %d, want %d", p.Applied, seq)
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	moves := []string{"up", "right", "right", "down", "left", "stay", "down", "right"}
	run := func() *State {
		s := NewState("replay")
		for i := range 200 {
			var ins []Input
			for _, pl := range []string{"x", "y", "z"} {
				ins = append(ins, Input{pl, uint64(i + 1), moves[(i*7+len(pl)+int(pl[0]))%len(moves)]})
			}
			s.Step(ins)
		}
		return s
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two replays differ")
	}
	c := a.Clone()
	c.Players[0].Score++
	c.Coins[0].X++
	if reflect.DeepEqual(a, c) {
		t.Fatalf("Clone shares memory with the original")
	}
}

func TestRoomFull(t *testing.T) {
	s := NewState("full")
	var ins []Input
	for i := range MaxPlayers + 1 {
		ins = append(ins, Input{string(rune('A'+i)) + "p", 1, "stay"})
	}
	res := s.Step(ins)
	if !errors.Is(res[MaxPlayers].Err, ErrRoomFull) {
		t.Fatalf("player %d: %v, want ErrRoomFull", MaxPlayers+1, res[MaxPlayers].Err)
	}
	if len(s.Players) != MaxPlayers {
		t.Fatalf("players = %d", len(s.Players))
	}
}
