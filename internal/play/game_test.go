package play

import (
	"strings"
	"testing"

	"github.com/statelab/statelab/internal/game"
)

// TestRoomChange checks the log's words for what became of a room between
// two polls.
func TestRoomChange(t *testing.T) {
	snap := func(owner string, epoch, tick uint64) game.Snapshot {
		return game.Snapshot{Room: "lobby", Owner: owner, Epoch: epoch, Tick: tick, Players: []game.Player{{ID: "you"}}}
	}
	tests := []struct {
		name     string
		a, b     game.Snapshot
		kind     EventKind
		contains string
	}{
		{"ticking on", snap("r1", 1, 10), snap("r1", 1, 20), "", ""},
		{"checkpoint resume", snap("r3", 1, 31), snap("r1", 2, 27), EventLoss, "room lobby moved from r3 to r1 (epoch 1 → 2) and resumed from its checkpoint at tick 27: 4 ticks rolled back"},
		{"replicated takeover", snap("r3", 1, 31), snap("r1", 2, 35), EventSafe, "room lobby moved from r3 to r1 (epoch 1 → 2) at tick 35: nothing rolled back"},
		{"memory restart", snap("r3", 1, 43), snap("r1", 1, 4), EventLoss, "room lobby started over on r1 at tick 4: its 1 player and 43 ticks lived only in r3's memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, kind := roomChange(tt.a, tt.b)
			if kind != tt.kind || !strings.Contains(text, tt.contains) || (tt.contains == "") != (text == "") {
				t.Errorf("roomChange = %q (%s), want %q (%s)", text, kind, tt.contains, tt.kind)
			}
		})
	}
}
