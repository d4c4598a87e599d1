package game

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/memstore"
	"github.com/statelab/statelab/session/storetest"
)

// testServer starts a Server for cfg (fast ticks, short lease) behind an
// httptest server and stops both when the test ends.
func testServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "g1"
	}
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Millisecond
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

func newMemstore(t *testing.T) session.Store {
	t.Helper()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	return st
}

// post sends one input and decodes the answer into an Ack or an error body.
func post(t *testing.T, base, room string, in Input) (int, Ack, httpapi.ErrorBody) {
	t.Helper()
	body, _ := json.Marshal(in)
	res, err := http.Post(base+"/rooms/"+room+"/inputs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var ack Ack
	var eb httpapi.ErrorBody
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &ack); err != nil {
			t.Fatalf("ack %s: %v", raw, err)
		}
	} else if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("error body %s is not {\"error\":{code,message}}", raw)
	}
	return res.StatusCode, ack, eb
}

func getSnapshot(t *testing.T, base, room string) Snapshot {
	t.Helper()
	res, err := http.Get(base + "/rooms/" + room)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET room: %d %s", res.StatusCode, b)
	}
	var s Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAPI(t *testing.T) {
	for _, strategy := range []Strategy{StrategyMemory, StrategyCheckpoint, StrategyExternal} {
		t.Run(string(strategy), func(t *testing.T) {
			_, hs := testServer(t, Config{Strategy: strategy, Store: newMemstore(t)})
			var last uint64
			for seq := uint64(1); seq <= 3; seq++ {
				code, ack, eb := post(t, hs.URL, "r1", Input{"p1", seq, "left"})
				if code != http.StatusOK {
					t.Fatalf("input %d: %d %+v", seq, code, eb)
				}
				if ack.Tick <= last || ack.Applied != seq || ack.Seq != seq {
					t.Fatalf("ack %+v after tick %d", ack, last)
				}
				last = ack.Tick
			}
			if code, ack, _ := post(t, hs.URL, "r1", Input{"p1", 2, "left"}); code != http.StatusOK || !ack.Duplicate || ack.Applied != 3 {
				t.Fatalf("duplicate: %d %+v", code, ack)
			}
			snap := getSnapshot(t, hs.URL, "r1")
			if snap.Room != "r1" || snap.Tick < last || len(snap.Players) != 1 || snap.Players[0].Applied != 3 || snap.Strategy != strategy {
				t.Fatalf("snapshot %+v", snap)
			}
			for _, tc := range []struct {
				room  string
				body  string
				code  int
				ecode string
			}{
				{"r1", `{"player":"p1","seq":9,"move":"up"}`, 409, "seq_gap"},
				{"r1", `{"player":"p1","seq":4,"move":"fly"}`, 400, "bad_move"},
				{"r1", `{"player":"p 1","seq":1,"move":"up"}`, 400, "bad_id"},
				{"r1", `{"player":"p1","seq":4,"move":"up","x":1}`, 400, "bad_json"},
				{"r1", ``, 400, "bad_json"},
				{"r1", `{"player":"p1","seq":4,"move":"up"}{}`, 400, "bad_json"},
				{"r1", `{"player":"p1","seq":4,"move":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`, 413, "body_too_large"},
				{"bad.room", `{"player":"p1","seq":1,"move":"up"}`, 400, "bad_id"},
			} {
				res, err := http.Post(hs.URL+"/rooms/"+tc.room+"/inputs", "application/json", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				var eb httpapi.ErrorBody
				json.NewDecoder(res.Body).Decode(&eb)
				res.Body.Close()
				if res.StatusCode != tc.code || eb.Error.Code != tc.ecode || res.Header.Get("X-Served-By") != "g1" {
					t.Errorf("%s: %d %+v (served by %q), want %d %s", tc.body[:min(len(tc.body), 40)], res.StatusCode, eb, res.Header.Get("X-Served-By"), tc.code, tc.ecode)
				}
			}
			// A cross-site HTML form cannot send JSON: other types are 415.
			res, err := http.Post(hs.URL+"/rooms/r1/inputs", "text/plain", strings.NewReader(`{"player":"p1","seq":4,"move":"up"}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("text/plain input: %d, want 415", res.StatusCode)
			}
			for path, code := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404, "/rooms/r1/x": 404} {
				res, err := http.Get(hs.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != code || res.Header.Get("X-Served-By") != "g1" {
					t.Errorf("GET %s: %d served by %q, want %d", path, res.StatusCode, res.Header.Get("X-Served-By"), code)
				}
				if health := path == "/healthz" || path == "/readyz"; health && res.Header.Get(httpapi.InstanceHeader) != httpapi.Instance() {
					t.Errorf("GET %s: %s %q, want the process's %q", path, httpapi.InstanceHeader, res.Header.Get(httpapi.InstanceHeader), httpapi.Instance())
				}
			}
		})
	}
}

// TestCheckpointHandover: a gracefully stopped owner writes its final
// state and releases the lease, so the next owner resumes at once with
// every acknowledged input, at a higher epoch.
func TestCheckpointHandover(t *testing.T) {
	st := newMemstore(t)
	a, ha := testServer(t, Config{ID: "a", Strategy: StrategyCheckpoint, Store: st, Checkpoint: time.Hour})
	for seq := uint64(1); seq <= 5; seq++ {
		if code, _, eb := post(t, ha.URL, "r", Input{"p", seq, "down"}); code != 200 {
			t.Fatalf("%d %+v", code, eb)
		}
	}
	// While a holds the lease, b may not take the room.
	_, hb := testServer(t, Config{ID: "b", Strategy: StrategyCheckpoint, Store: st})
	if code, _, eb := post(t, hb.URL, "r", Input{"p", 6, "down"}); code != 503 || eb.Error.Code != "room_moving" {
		t.Fatalf("second owner while leased: %d %+v", code, eb)
	}
	a.Close()
	snap := getSnapshot(t, hb.URL, "r")
	if snap.Owner != "b" || snap.Epoch != 2 || snap.Players[0].Applied != 5 {
		t.Fatalf("after handover: %+v", snap)
	}
	if code, ack, eb := post(t, hb.URL, "r", Input{"p", 6, "down"}); code != 200 || ack.Epoch != 2 {
		t.Fatalf("%d %+v %+v", code, ack, eb)
	}
}

// TestFencing: an owner whose lease lapsed and was taken over by a newer
// epoch has its next write refused and drops the room; it acknowledges
// nothing once its lease lapsed.
func TestFencing(t *testing.T) {
	st := newMemstore(t)
	lease := 200 * time.Millisecond
	// Checkpoint interval longer than the lease: renewals come every
	// lease/3. Make renewals impossible by closing a's store view: a wraps
	// the store and can be switched off, like a paused process.
	gate := storetest.NewFlaky(st)
	a, ha := testServer(t, Config{ID: "a", Strategy: StrategyCheckpoint, Store: gate, Lease: lease, Checkpoint: time.Hour})
	if code, _, eb := post(t, ha.URL, "r", Input{"p", 1, "up"}); code != 200 {
		t.Fatalf("%d %+v", code, eb)
	}
	gate.Down.Store(true)
	// a's lease lapses: it must stop acknowledging.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, eb := post(t, ha.URL, "r", Input{"p", 2, "up"})
		if code == 503 {
			break
		}
		if code != 200 && code != 409 {
			t.Fatalf("%d %+v", code, eb)
		}
		if time.Now().After(deadline) {
			t.Fatal("owner kept acknowledging past its lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// b takes over (the lease expired in the store) at epoch 2.
	_, hb := testServer(t, Config{ID: "b", Strategy: StrategyCheckpoint, Store: st, Lease: lease})
	var snap Snapshot
	for {
		res, err := http.Get(hb.URL + "/rooms/r")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(res.Body).Decode(&snap)
		res.Body.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never took over: %d", res.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if snap.Epoch != 2 || snap.Owner != "b" {
		t.Fatalf("b's snapshot %+v", snap)
	}
	// a comes back: its renewal is refused (fenced) and it drops the room.
	gate.Down.Store(false)
	for a.roomCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("fenced owner kept the room")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := counterValue(t, a, "statelab_game_room_stops_total", "fenced"); n != 1 {
		t.Errorf("stops{fenced} = %v, want 1", n)
	}
	rec, _, err := (&recordStore{store: st, timeout: time.Second, metrics: a.metrics}).get(context.Background(), "r")
	if err != nil || rec.Epoch != 2 || rec.Owner != "b" {
		t.Fatalf("store record after fencing: %+v %v", rec, err)
	}
}

func counterValue(t *testing.T, s *Server, name, label string) float64 {
	t.Helper()
	mfs, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestExternalConcurrent: two replicas on one store, many players at once:
// every acknowledged input is in the final state (CAS retries, no lost
// update).
func TestExternalConcurrent(t *testing.T) {
	st := newMemstore(t)
	_, h1 := testServer(t, Config{ID: "x1", Strategy: StrategyExternal, Store: st, StoreTimeout: 10 * time.Second})
	_, h2 := testServer(t, Config{ID: "x2", Strategy: StrategyExternal, Store: st, StoreTimeout: 10 * time.Second})
	const players, inputs = 6, 10
	var wg sync.WaitGroup
	for p := range players {
		base := []string{h1.URL, h2.URL}[p%2]
		wg.Go(func() {
			for seq := uint64(1); seq <= inputs; seq++ {
				if code, _, eb := post(t, base, "shared", Input{fmt.Sprintf("p%d", p), seq, "right"}); code != 200 {
					t.Errorf("p%d seq %d: %d %+v", p, seq, code, eb)
					return
				}
			}
		})
	}
	wg.Wait()
	snap := getSnapshot(t, h1.URL, "shared")
	if len(snap.Players) != players || snap.Tick != players*inputs {
		t.Fatalf("snapshot %+v, want %d players and tick %d", snap, players, players*inputs)
	}
	for _, p := range snap.Players {
		if p.Applied != inputs {
			t.Errorf("player %s applied %d, want %d", p.ID, p.Applied, inputs)
		}
	}
}

// TestStoreDown: with the store down a new room answers 503 with
// Retry-After, not a hang or a 500.
func TestStoreDown(t *testing.T) {
	for _, strategy := range []Strategy{StrategyCheckpoint, StrategyExternal} {
		t.Run(string(strategy), func(t *testing.T) {
			gate := storetest.NewFlaky(newMemstore(t))
			gate.Down.Store(true)
			_, hs := testServer(t, Config{Strategy: strategy, Store: gate})
			res, err := http.Post(hs.URL+"/rooms/r/inputs", "application/json", strings.NewReader(`{"player":"p","seq":1,"move":"up"}`))
			if err != nil {
				t.Fatal(err)
			}
			var eb httpapi.ErrorBody
			json.NewDecoder(res.Body).Decode(&eb)
			res.Body.Close()
			if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || eb.Error.Code != "store_unavailable" {
				t.Fatalf("%d %q %+v", res.StatusCode, res.Header.Get("Retry-After"), eb)
			}
		})
	}
}

// TestForwarding: a replica that does not own a room forwards the request
// (and the WebSocket) to the owner.
func TestForwarding(t *testing.T) {
	// Two servers whose placements list both members; addresses are only
	// known once the httptest servers exist, so the placement is filled in
	// afterwards.
	pa, pb := &staticPlacement{self: "a"}, &staticPlacement{self: "b"}
	sa, err := NewServer(Config{ID: "a", Strategy: StrategyMemory, Placement: pa, Tick: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := NewServer(Config{ID: "b", Strategy: StrategyMemory, Placement: pb, Tick: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ha, hb := httptest.NewServer(sa), httptest.NewServer(sb)
	t.Cleanup(func() { ha.Close(); hb.Close(); sa.Close(); sb.Close() })
	members := []Member{{"a", strings.TrimPrefix(ha.URL, "http://")}, {"b", strings.TrimPrefix(hb.URL, "http://")}}
	pa.set(members)
	pb.set(members)
	// Find a room b owns, then talk to a.
	room := ""
	for i := 0; room == ""; i++ {
		if r := fmt.Sprintf("room%d", i); Owners(r, members)[0].Name == "b" {
			room = r
		}
	}
	code, ack, eb := post(t, ha.URL, room, Input{"p", 1, "up"})
	if code != 200 || ack.Owner != "b" {
		t.Fatalf("via a: %d %+v %+v", code, ack, eb)
	}
	res, err := http.Get(ha.URL + "/rooms/" + room)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Values("X-Served-By"); len(got) != 1 || got[0] != "b" || res.Header.Get(forwardedHeader) != "a" {
		t.Fatalf("forwarded GET: X-Served-By %v, forwarded by %q", got, res.Header.Get(forwardedHeader))
	}
	// A request already forwarded is not forwarded again.
	req, _ := http.NewRequest("GET", hb.URL+"/rooms/"+otherRoom(members, "a"), nil)
	req.Header.Set(forwardedHeader, "x")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Fatalf("double forward: %d", res.StatusCode)
	}
	// WebSocket through the non-owner.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ha.URL, "http")+"/rooms/"+room+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	acks := 0
	var m Message
	if err := wsjson.Read(ctx, c, &m); err != nil || m.Type != "snapshot" || m.Snapshot.Owner != "b" {
		t.Fatalf("first message %+v %v", m, err)
	}
	for seq := uint64(2); seq <= 4; seq++ {
		if err := wsjson.Write(ctx, c, Input{"p", seq, "down"}); err != nil {
			t.Fatal(err)
		}
	}
	wsjson.Write(ctx, c, Input{"p", 9, "down"})
	errs := 0
	for acks < 3 || errs < 1 {
		var m Message
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("read: %v (acks %d)", err, acks)
		}
		switch m.Type {
		case "ack":
			acks++
			if m.Ack.Seq != uint64(acks+1) {
				t.Fatalf("ack out of order: %+v", m.Ack)
			}
		case "error":
			errs++
			if m.Error.Code != "seq_gap" || m.Seq != 9 {
				t.Fatalf("error %+v", m)
			}
		}
	}
	// A membership change that moves the room away closes the socket
	// with 1012 so the client reconnects.
	pb.set(members[:1])
	for {
		var m Message
		err := wsjson.Read(ctx, c, &m)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
				t.Fatalf("socket ended with %v, want close status 1012", err)
			}
			break
		}
	}
}

func otherRoom(members []Member, owner string) string {
	for i := 0; ; i++ {
		if r := fmt.Sprintf("room%d", i); Owners(r, members)[0].Name == owner {
			return r
		}
	}
}

// staticPlacement is a placement a test sets by hand.
type staticPlacement struct {
	self    string
	mu      sync.Mutex
	members []Member
	hooks   []func()
}

func (p *staticPlacement) set(ms []Member) {
	p.mu.Lock()
	p.members = ms
	hooks := p.hooks
	p.mu.Unlock()
	for _, h := range hooks {
		h()
	}
}

func (p *staticPlacement) Members() []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.members) == 0 {
		return []Member{{Name: p.self}}
	}
	return p.members
}

func (p *staticPlacement) Self() Member { return Member{Name: p.self} }

func (p *staticPlacement) OnChange(f func()) {
	p.mu.Lock()
	p.hooks = append(p.hooks, f)
	p.mu.Unlock()
}

// TestIdlePassivation: an idle checkpoint room is written, released and
// dropped from memory; the next request resumes it from the store with
// every input, at the next epoch.
func TestIdlePassivation(t *testing.T) {
	st := newMemstore(t)
	s, hs := testServer(t, Config{Strategy: StrategyCheckpoint, Store: st, IdleTimeout: 50 * time.Millisecond, Checkpoint: time.Hour})
	for seq := uint64(1); seq <= 3; seq++ {
		if code, _, eb := post(t, hs.URL, "idle", Input{"p", seq, "up"}); code != 200 {
			t.Fatalf("%d %+v", code, eb)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.roomCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle room never passivated")
		}
		time.Sleep(10 * time.Millisecond)
	}
	snap := getSnapshot(t, hs.URL, "idle")
	if snap.Epoch != 2 || snap.Players[0].Applied != 3 {
		t.Fatalf("resumed room: %+v", snap)
	}
	if n := counterValue(t, s, "statelab_game_room_stops_total", "idle"); n != 1 {
		t.Fatalf("stops{idle} = %v", n)
	}
	// Memory rooms are never passivated: they would be lost.
	m, hm := testServer(t, Config{Strategy: StrategyMemory, IdleTimeout: time.Millisecond})
	post(t, hm.URL, "keep", Input{"p", 1, "up"})
	time.Sleep(50 * time.Millisecond) // long past the idle timeout; nothing to poll for
	if m.roomCount() != 1 {
		t.Fatal("a memory room was passivated")
	}
}

// joinerPlacement is a static placement that has not joined yet.
type joinerPlacement struct {
	staticPlacement
	ok atomic.Bool
}

func (p *joinerPlacement) Joined() bool { return p.ok.Load() }

// TestNotJoinedTakesNoRoom: until its placement has joined the cluster a
// replica is not ready and activates no room (it would believe it owns
// them all).
func TestNotJoinedTakesNoRoom(t *testing.T) {
	p := &joinerPlacement{staticPlacement: staticPlacement{self: "g1"}}
	_, hs := testServer(t, Config{Strategy: StrategyMemory, Placement: p})
	for _, path := range []string{"/readyz", "/rooms/r"} {
		res, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var eb httpapi.ErrorBody
		json.NewDecoder(res.Body).Decode(&eb)
		res.Body.Close()
		if res.StatusCode != 503 || eb.Error.Code != "not_joined" {
			t.Errorf("GET %s before joining: %d %+v", path, res.StatusCode, eb)
		}
	}
	p.ok.Store(true)
	if snap := getSnapshot(t, hs.URL, "r"); snap.Owner != "g1" {
		t.Fatalf("after joining: %+v", snap)
	}
}

// TestFencedTwiceCountsOnce: two periodic writes of one room refused as
// fenced (the second sent before the first's stop ran) stop the room once
// and count one fenced stop.
func TestFencedTwiceCountsOnce(t *testing.T) {
	a, ha := testServer(t, Config{ID: "a", Strategy: StrategyCheckpoint, Store: newMemstore(t), Lease: time.Second, Checkpoint: time.Hour})
	if code, _, eb := post(t, ha.URL, "r", Input{"p", 1, "up"}); code != 200 {
		t.Fatalf("%d %+v", code, eb)
	}
	a.mu.Lock()
	r := a.rooms["r"]
	a.mu.Unlock()
	fenced := fmt.Errorf("test: %w", ErrFenced)
	r.afterSave(saveReq{}, false, fenced)
	r.afterSave(saveReq{}, false, fenced)
	<-r.done
	if n := counterValue(t, a, "statelab_game_room_stops_total", "fenced"); n != 1 {
		t.Errorf("stops{fenced} = %v after two fenced writes of one room, want 1", n)
	}
}
