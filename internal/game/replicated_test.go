package game

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestReplicatedTakeover: the owner copies every acknowledged tick to the
// backup; when the owner vanishes (no graceful hand-over, no final
// checkpoint) the backup takes the room at the next epoch from its copy,
// with every acknowledged input.
func TestReplicatedTakeover(t *testing.T) {
	const n = 30
	x := newReplicatedPair(t, 300*time.Millisecond, n)
	sa, ha, hb, pb, members, room := x.sa, x.ha, x.hb, x.pb, x.members, x.room
	if got := counterValue(t, sa, "statelab_game_replication_messages_total", "ok"); got < n {
		t.Fatalf("%v ticks replicated, want at least %d", got, n)
	}
	// The backup refuses copies without the cluster's key.
	res, err := http.Post(hb.URL+replicationPath, "application/json", strings.NewReader(`{"messages":[{"room":"`+room+`","epoch":9,"tick":1,"full":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("copy without the key: %d", res.StatusCode)
	}
	// a vanishes: its HTTP server is gone and it writes nothing more.
	ha.Close()
	sa.Close() // (its lease release is a write on a stale-after-expiry record; b must not need it)
	pb.set(members[1:])
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, ack, eb := post(t, hb.URL, room, Input{"p", n + 1, "right"})
		if code == 200 {
			if ack.Owner != "b" || ack.Epoch < 2 {
				t.Fatalf("after takeover: %+v", ack)
			}
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("takeover: %d %+v", code, eb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	snap := getSnapshot(t, hb.URL, room)
	if p := snap.Players[0]; p.Applied != n+1 {
		t.Fatalf("resumed room applied %d inputs, want %d", p.Applied, n+1)
	}
}

func TestReplicatedNeedsSecret(t *testing.T) {
	_, err := NewServer(Config{ID: "a", Strategy: StrategyReplicated, Store: newMemstore(t)})
	if err == nil || !strings.Contains(fmt.Sprint(err), "Secret") {
		t.Fatalf("replicated without a secret: %v", err)
	}
}

// TestReplicatedRestartBeforeTakeover: the owner's process dies (no
// hand-over, no final checkpoint, its lease left in the store under its
// name) and is restarted with the same ID before its backup has noticed;
// placement gives it the room back and its own lease at once. It must
// resume from the backup's copy, which has every acknowledged input, not
// from the store's older checkpoint.
func TestReplicatedRestartBeforeTakeover(t *testing.T) {
	const n = 25
	x := newReplicatedPair(t, 2*time.Second, n)
	sa, ha, pb, members, room := x.sa, x.ha, x.pb, x.members, x.room
	// a's process is killed: its API is gone and it writes nothing more.
	ha.Close()
	sa.stopPersisting()
	t.Cleanup(sa.Close) // (its lease has run out by then: nothing to release)
	// A new process with the same ID comes back on a new address before b
	// saw a go (b's membership never changes).
	pa2 := &staticPlacement{self: "a"}
	sa2, err := NewServer(x.cfg("a", pa2))
	if err != nil {
		t.Fatal(err)
	}
	ha2 := httptest.NewServer(sa2)
	t.Cleanup(func() { ha2.Close(); sa2.Close() })
	members[0].HTTP = strings.TrimPrefix(ha2.URL, "http://")
	pa2.set(members)
	pb.set(members)
	code, ack, eb := post(t, ha2.URL, room, Input{"p", n + 1, "right"})
	if code != 200 {
		t.Fatalf("first input to the restarted owner: %d %+v (the room lost acknowledged inputs)", code, eb)
	}
	if ack.Owner != "a" || ack.Epoch != 2 || ack.Applied != n+1 {
		t.Fatalf("restarted owner: %+v, want owner a, epoch 2, %d inputs applied", ack, n+1)
	}
}

// replicatedPair is a replicated owner "a" and backup "b" on one store,
// each behind its own HTTP server, a room a owns, and n inputs of player
// p acknowledged by a. A checkpoint interval far beyond the test: the
// store keeps the room's first state, so whatever a later owner resumes
// with beyond it comes from a copy.
type replicatedPair struct {
	cfg     func(id string, p Placement) Config
	sa, sb  *Server
	ha, hb  *httptest.Server
	pa, pb  *staticPlacement
	members []Member
	room    string
}

func newReplicatedPair(t *testing.T, lease time.Duration, n uint64) *replicatedPair {
	t.Helper()
	st := newMemstore(t)
	x := &replicatedPair{pa: &staticPlacement{self: "a"}, pb: &staticPlacement{self: "b"}}
	x.cfg = func(id string, p Placement) Config {
		return Config{ID: id, Strategy: StrategyReplicated, Store: st, Placement: p, Secret: "replication test secret",
			Tick: 5 * time.Millisecond, Lease: lease, Checkpoint: time.Hour, Logger: discardLogger()}
	}
	var err error
	if x.sa, err = NewServer(x.cfg("a", x.pa)); err != nil {
		t.Fatal(err)
	}
	if x.sb, err = NewServer(x.cfg("b", x.pb)); err != nil {
		t.Fatal(err)
	}
	x.ha, x.hb = httptest.NewServer(x.sa), httptest.NewServer(x.sb)
	t.Cleanup(func() { x.ha.Close(); x.hb.Close(); x.sb.Close() })
	x.members = []Member{{"a", strings.TrimPrefix(x.ha.URL, "http://")}, {"b", strings.TrimPrefix(x.hb.URL, "http://")}}
	x.pa.set(x.members)
	x.pb.set(x.members)
	x.room = otherRoom(x.members, "a")
	for seq := uint64(1); seq <= n; seq++ {
		if code, _, eb := post(t, x.ha.URL, x.room, Input{"p", seq, "right"}); code != 200 {
			t.Fatalf("seq %d: %d %+v", seq, code, eb)
		}
	}
	return x
}
