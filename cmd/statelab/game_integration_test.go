package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/testenv"
)

// This file is the game server's end-to-end lesson: three `statelab game`
// processes behind a `statelab lb` hashing on the room, players driving one
// room over HTTP and over a WebSocket through the balancer, the room's
// owner SIGKILLed (or SIGSTOPped past its lease) under that load, and a
// check of what the strategy promised against what the players saw.

// Timing of the test clusters: fast ticks and short leases keep the tests
// short; the checkpoint interval is 15 ticks.
const (
	e2eTick       = 20 * time.Millisecond
	e2eCheckpoint = 300 * time.Millisecond
	e2eLease      = time.Second
)

var (
	gameServing = regexp.MustCompile(`msg="game: serving".* addr=(\S+)`)
	gameCluster = regexp.MustCompile(`msg="game: serving".* cluster_addr=(\S+)`)
)

// gameCluster is three game replicas and a balancer in front.
type gameTestCluster struct {
	lb       string            // http://host:port of the balancer
	replicas map[string]*proc  // by --id
	addrs    map[string]string // HTTP address by --id
}

// startGameCluster starts n replicas of strategy (with store flags) and a
// hash-on-room balancer, and waits until every replica sees all members
// and the balancer answers.
func startGameCluster(t *testing.T, strategy string, n int, store ...string) *gameTestCluster {
	t.Helper()
	bin := testenv.StatelabBinary(t)
	c := &gameTestCluster{replicas: map[string]*proc{}, addrs: map[string]string{}}
	var peers, backends []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-g%d", strategy, i)
		args := []string{"game", "--listen", "127.0.0.1:0", "--id", id, "--strategy", strategy,
			"--tick", e2eTick.String(), "--checkpoint", e2eCheckpoint.String(), "--lease", e2eLease.String(),
			"--cluster-listen", "127.0.0.1:0", "--secret", "game e2e secret, shared"}
		args = append(args, store...)
		if len(peers) > 0 {
			args = append(args, "--peers", strings.Join(peers, ","))
		}
		p := startProc(t, id, bin, args...)
		c.addrs[id] = p.waitLog(t, gameServing)[1]
		peers = append(peers, p.waitLog(t, gameCluster)[1])
		c.replicas[id] = p
		backends = append(backends, id+"=http://"+c.addrs[id])
	}
	for id, addr := range c.addrs {
		poll(t, id+" to see every member", 20*time.Second, func() bool {
			code, _, body := shopperRequest(http.DefaultClient, "GET", "http://"+addr+"/readyz", "")
			return code == 200 && strings.Contains(string(body), fmt.Sprintf(`"members":%d`, n))
		})
	}
	lbPort := testenv.FreePort(t)
	args := []string{"lb", "--listen", fmt.Sprintf("127.0.0.1:%d", lbPort), "--admin", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"--policy", "hash", "--hash-key", "path:/rooms/", "--health-path", "/readyz", "--health-interval", "100ms"}
	for _, b := range backends {
		args = append(args, "--backend", b)
	}
	startProc(t, strategy+"-lb", bin, args...)
	c.lb = fmt.Sprintf("http://127.0.0.1:%d", lbPort)
	poll(t, "the balancer to serve", 20*time.Second, func() bool {
		code, _, _ := shopperRequest(http.DefaultClient, "GET", c.lb+"/healthz", "")
		return code == 200
	})
	return c
}

// snapshot reads room's snapshot through the balancer (status 0 on a
// transport error).
func (c *gameTestCluster) snapshot(room string) (int, game.Snapshot) {
	code, _, body := shopperRequest(http.DefaultClient, "GET", c.lb+"/rooms/"+room, "")
	var s game.Snapshot
	if code == 200 {
		json.Unmarshal(body, &s)
	}
	return code, s
}

// ackOrder numbers the acknowledgements every player of a test receives,
// in the order they arrive.
var ackOrder atomic.Int64

// seenAck is one acknowledgement a player received.
type seenAck struct {
	game.Ack
	order int64
	at    time.Time // when it arrived (for the log only; nothing asserts on it)
}

// testPlayer drives one player of a room through the balancer and keeps
// what it saw: every ack, and the acknowledged inputs the room lost (found
// when the room asks for a sequence number below the next one).
type testPlayer struct {
	id, room string
	ws       bool

	mu       sync.Mutex
	acks     []seenAck
	next     uint64 // sequence number of the next input
	maxAcked uint64 // highest acknowledged and not known lost
	lost     uint64 // acknowledged inputs the room no longer had
	resyncs  int
	events   []string // resyncs that lost inputs, for the test log
}

var moves = []string{"up", "right", "down", "left", "stay"}

func (p *testPlayer) input() game.Input {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == 0 {
		p.next = 1
	}
	return game.Input{Player: p.id, Seq: p.next, Move: moves[p.next%uint64(len(moves))]}
}

func (p *testPlayer) acked(a game.Ack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acks = append(p.acks, seenAck{a, ackOrder.Add(1), time.Now()})
	if a.Seq == p.next {
		p.next++
	}
	p.maxAcked = max(p.maxAcked, a.Seq)
}

// resync continues from what the room has applied for the player,
// counting the acknowledged inputs beyond it as lost.
func (p *testPlayer) resync(applied uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if applied < p.maxAcked {
		p.events = append(p.events, fmt.Sprintf("%s: acked %d, room had %d (after %d acks)", p.id, p.maxAcked, applied, len(p.acks)))
		p.lost += p.maxAcked - applied
		p.maxAcked = applied
	}
	p.next = applied + 1
	p.resyncs++
}

func (p *testPlayer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acks)
}

func appliedOf(s game.Snapshot, player string) uint64 {
	for _, pl := range s.Players {
		if pl.ID == player {
			return pl.Applied
		}
	}
	return 0
}

// drive runs the player until ctx ends.
func (p *testPlayer) drive(ctx context.Context, c *gameTestCluster) {
	if p.ws {
		p.driveWS(ctx, c)
		return
	}
	client := &http.Client{Timeout: 3 * time.Second}
	for ctx.Err() == nil {
		in := p.input()
		body, _ := json.Marshal(in)
		code, _, resp := shopperRequest(client, "POST", c.lb+"/rooms/"+p.room+"/inputs", string(body))
		switch {
		case code == 200:
			var a game.Ack
			if json.Unmarshal(resp, &a) == nil {
				p.acked(a)
			}
		case code == 409 && strings.Contains(string(resp), "seq_gap"):
			if code, s := c.snapshot(p.room); code == 200 {
				p.resync(appliedOf(s, p.id))
			}
		default: // 503, transport error: the same input again shortly
			sleepCtx(ctx, 20*time.Millisecond)
		}
	}
}

// driveWS is drive over a WebSocket through the balancer: one input at a
// time; a closed socket is reopened and the player resumes from the
// snapshot it receives first.
func (p *testPlayer) driveWS(ctx context.Context, c *gameTestCluster) {
	url := "ws" + strings.TrimPrefix(c.lb, "http") + "/rooms/" + p.room + "/ws"
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, _, err := websocket.Dial(dctx, url, nil)
		cancel()
		if err != nil {
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		p.session(ctx, conn)
		conn.CloseNow()
	}
}

// session plays on one WebSocket until it breaks.
func (p *testPlayer) session(ctx context.Context, conn *websocket.Conn) {
	read := func() (game.Message, error) {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var m game.Message
		err := wsjson.Read(rctx, conn, &m)
		return m, err
	}
	m, err := read()
	if err != nil || m.Type != "snapshot" {
		return
	}
	if applied := appliedOf(*m.Snapshot, p.id); applied != p.input().Seq-1 {
		p.resync(applied)
	}
	for ctx.Err() == nil {
		in := p.input()
		if err := wsjson.Write(ctx, conn, in); err != nil {
			return
		}
		for {
			m, err := read()
			if err != nil {
				return
			}
			if m.Type == "ack" && m.Ack.Seq == in.Seq {
				p.acked(*m.Ack)
				break
			}
			if m.Type == "error" && m.Seq == in.Seq {
				if m.Error.Code == "seq_gap" {
					return // reconnect and resync from the snapshot
				}
				sleepCtx(ctx, 20*time.Millisecond)
				break
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// gameRun is one failover run: players on one room, the owner broken.
type gameRun struct {
	c         *gameTestCluster
	room      string
	players   []*testPlayer
	victim    string // the owner that was broken
	oldEpoch  uint64
	brokeAt   time.Time
	stopDrive func()
}

// startPlayers starts three players (the last over a WebSocket) on a
// fresh room and waits until each has some acknowledged inputs.
func startPlayers(t *testing.T, c *gameTestCluster) *gameRun {
	t.Helper()
	r := &gameRun{c: c, room: "room-" + strings.ToLower(rand.Text()[:8])}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r.stopDrive = func() { cancel(); wg.Wait() }
	t.Cleanup(r.stopDrive)
	for i := range 3 {
		p := &testPlayer{id: fmt.Sprintf("p%d", i), room: r.room, ws: i == 2}
		r.players = append(r.players, p)
		wg.Go(func() { p.drive(ctx, c) })
	}
	// Several checkpoint intervals before anything breaks.
	r.waitAcks(t, 60)
	return r
}

// waitAcks waits until every player has n more acknowledgements.
func (r *gameRun) waitAcks(t *testing.T, n int) {
	t.Helper()
	base := make([]int, len(r.players))
	for i, p := range r.players {
		base[i] = p.count()
	}
	poll(t, fmt.Sprintf("every player to get %d more acks", n), 30*time.Second, func() bool {
		for i, p := range r.players {
			if p.count() < base[i]+n {
				return false
			}
		}
		return true
	})
}

// owner returns the room's owner and epoch as the room reports them.
func (r *gameRun) owner(t *testing.T) (string, uint64) {
	t.Helper()
	var s game.Snapshot
	poll(t, "the room's snapshot", 20*time.Second, func() bool {
		code, snap := r.c.snapshot(r.room)
		s = snap
		return code == 200
	})
	return s.Owner, s.Epoch
}

// waitNewOwner waits until the players are acknowledged by another owner.
func (r *gameRun) waitNewOwner(t *testing.T) {
	t.Helper()
	poll(t, "a new owner to acknowledge inputs", 30*time.Second, func() bool {
		for _, p := range r.players {
			p.mu.Lock()
			n := len(p.acks)
			ok := n > 0 && p.acks[n-1].Owner != r.victim
			p.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	r.waitAcks(t, 10)
}

// victimAcks summarizes the acks the victim sent the player: the highest
// tick, and the highest sequence number acknowledged at or before tick.
func (r *gameRun) victimAcks(p *testPlayer, atOrBefore uint64) (lastTick, maxSeq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.acks {
		if a.Owner != r.victim || a.Epoch != r.oldEpoch {
			continue
		}
		lastTick = max(lastTick, a.Tick)
		if a.Tick <= atOrBefore {
			maxSeq = max(maxSeq, a.Seq)
		}
	}
	return lastTick, maxSeq
}

// resumedApplied is how many of p's inputs the room held when the next
// owner took it over: the first input that owner applied for p (not a
// duplicate) is the one after them.
func (r *gameRun) resumedApplied(p *testPlayer) (uint64, seenAck, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.acks {
		if a.Epoch > r.oldEpoch && !a.Duplicate {
			return a.Seq - 1, a, true
		}
	}
	return 0, seenAck{}, false
}

// resumeTick finds the tick the room resumed from at epoch in the replicas'
// logs ("game: room activated … epoch=E tick=T").
func (r *gameRun) resumeTick(t *testing.T, epoch uint64) uint64 {
	t.Helper()
	re := regexp.MustCompile(`msg="game: room activated" replica=\S+ room=` + r.room + fmt.Sprintf(` epoch=%d tick=(\d+)`, epoch))
	for _, p := range r.c.replicas {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			var tick uint64
			fmt.Sscan(m[1], &tick)
			return tick
		}
	}
	t.Fatalf("no replica logged activating %s at epoch %d", r.room, epoch)
	return 0
}

func (r *gameRun) killOwner(t *testing.T) {
	t.Helper()
	r.victim, r.oldEpoch = r.owner(t)
	p := r.c.replicas[r.victim]
	if p == nil {
		t.Fatalf("room owner %q is no replica", r.victim)
	}
	r.brokeAt = time.Now()
	p.kill()
	t.Logf("killed %s, owner of %s at epoch %d", r.victim, r.room, r.oldEpoch)
}

// totals sums the players' acks and lost inputs; lost inputs are logged,
// and how long the room took to acknowledge inputs again after its owner
// broke.
func (r *gameRun) totals(t *testing.T) (acked, lost uint64) {
	t.Helper()
	if !r.brokeAt.IsZero() {
		var resumed time.Time
		for _, p := range r.players {
			p.mu.Lock()
			for _, a := range p.acks {
				if a.at.After(r.brokeAt) && a.Owner != r.victim && (resumed.IsZero() || a.at.Before(resumed)) {
					resumed = a.at
				}
			}
			p.mu.Unlock()
		}
		if !resumed.IsZero() {
			t.Logf("the room acknowledged inputs again %v after its owner broke", resumed.Sub(r.brokeAt).Round(time.Millisecond))
		}
	}
	for _, p := range r.players {
		p.mu.Lock()
		acked += uint64(len(p.acks))
		lost += p.lost
		for _, e := range p.events {
			t.Log("lost: " + e)
		}
		p.mu.Unlock()
	}
	return acked, lost
}

func TestGameMemoryLosesTheRoom(t *testing.T) {
	t.Parallel()
	c := startGameCluster(t, "memory", 3)
	r := startPlayers(t, c)
	r.killOwner(t)
	ackedBefore := map[string]uint64{}
	for _, p := range r.players {
		_, ackedBefore[p.id] = r.victimAcks(p, ^uint64(0))
	}
	r.waitNewOwner(t)
	r.stopDrive()
	for _, p := range r.players {
		// The new owner started the room afresh: every input the victim
		// acknowledged is gone.
		if p.lost < ackedBefore[p.id] {
			t.Errorf("player %s: %d acknowledged inputs lost, want all %d the dead owner acknowledged", p.id, p.lost, ackedBefore[p.id])
		}
	}
	acked, lost := r.totals(t)
	t.Logf("memory: %d acks, %d acknowledged inputs lost with %s", acked, lost, r.victim)
}

func TestGameCheckpointResumesFromLastCheckpoint(t *testing.T) {
	t.Parallel()
	c := startGameCluster(t, "checkpoint", 3, "--store", "redis", "--redis", testenv.RedisURL(t))
	r := startPlayers(t, c)
	r.killOwner(t)
	r.waitNewOwner(t)
	r.stopDrive()
	checkCheckpointLoss(t, r)
}

// checkCheckpointLoss checks a checkpoint failover: the next owner runs
// at the next epoch, from a checkpoint (at tick T0) that holds every input
// acknowledged at or before T0; the acknowledged inputs lost are those of
// the ticks after T0, and those span at most one checkpoint interval plus
// the checkpoint write that was in flight when the owner stopped.
func checkCheckpointLoss(t *testing.T, r *gameRun) {
	t.Helper()
	checkOneOwnerAtATime(t, r)
	interval := uint64(e2eCheckpoint / e2eTick)
	t0 := r.resumeTick(t, r.oldEpoch+1)
	var lastTick uint64
	for _, p := range r.players {
		resumed, first, ok := r.resumedApplied(p)
		if !ok {
			t.Fatalf("player %s got no ack from a new owner", p.id)
		}
		if first.Epoch != r.oldEpoch+1 {
			t.Errorf("player %s: first new ack at epoch %d, want %d", p.id, first.Epoch, r.oldEpoch+1)
		}
		lt, ackedByT0 := r.victimAcks(p, t0)
		lastTick = max(lastTick, lt)
		if resumed < ackedByT0 {
			t.Errorf("player %s: the checkpoint of tick %d holds %d inputs, but seq %d was acknowledged at or before that tick", p.id, t0, resumed, ackedByT0)
		}
	}
	acked, lost := r.totals(t)
	window := int64(lastTick) - int64(t0)
	t.Logf("%d acks, %d acknowledged inputs lost; old owner acknowledged up to tick %d, checkpoint at tick %d: %d ticks lost (interval %d ticks)",
		acked, lost, lastTick, t0, max(window, 0), interval)
	// The checkpoint is a copy taken every interval and stored a moment
	// later: at most one interval of ticks since the last stored copy,
	// plus the one being written when the owner stopped.
	if window > int64(2*interval) {
		t.Errorf("%d ticks acknowledged after the checkpoint: more than one interval (%d ticks) plus the write in flight", window, interval)
	}
}

// checkOneOwnerAtATime checks that no player received an ack from an
// older epoch after one from a newer epoch: two owners acknowledging
// inputs of one room in overlapping time (double activation) would show
// up as exactly that.
func checkOneOwnerAtATime(t *testing.T, r *gameRun) {
	t.Helper()
	type epochSpan struct{ first, last int64 }
	spans := map[uint64]*epochSpan{}
	for _, p := range r.players {
		p.mu.Lock()
		var epoch uint64
		for _, a := range p.acks {
			if a.Epoch < epoch {
				t.Errorf("player %s: ack at epoch %d after one at epoch %d", p.id, a.Epoch, epoch)
			}
			epoch = max(epoch, a.Epoch)
			sp := spans[a.Epoch]
			if sp == nil {
				sp = &epochSpan{a.order, a.order}
				spans[a.Epoch] = sp
			}
			sp.first, sp.last = min(sp.first, a.order), max(sp.last, a.order)
		}
		p.mu.Unlock()
	}
	for e, sp := range spans {
		for e2, sp2 := range spans {
			if e < e2 && sp.last > sp2.first {
				t.Errorf("epochs %d and %d both acknowledged inputs in overlapping time (double activation)", e, e2)
			}
		}
	}
}

// TestGameCheckpointGracefulStopLosesNothing: an owner stopped with
// SIGTERM leaves the cluster, writes a final checkpoint and releases its
// lease: the next owner resumes at once with every acknowledged input.
func TestGameCheckpointGracefulStopLosesNothing(t *testing.T) {
	t.Parallel()
	// A checkpoint interval longer than the test: only the final one
	// can carry the inputs across.
	c := startGameCluster(t, "checkpoint", 3, "--store", "redis", "--redis", testenv.RedisURL(t), "--checkpoint", "1h")
	r := startPlayers(t, c)
	r.victim, r.oldEpoch = r.owner(t)
	p := c.replicas[r.victim]
	r.brokeAt = time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM", r.victim)
	}
	if !strings.Contains(p.log.String(), "game: stopped") {
		t.Fatalf("%s did not stop cleanly:\n%s", r.victim, p.log.String())
	}
	r.waitNewOwner(t)
	r.stopDrive()
	checkOneOwnerAtATime(t, r)
	acked, lost := r.totals(t)
	for _, pl := range r.players {
		if pl.lost != 0 {
			t.Errorf("player %s: %d acknowledged inputs lost across a graceful stop", pl.id, pl.lost)
		}
	}
	t.Logf("graceful stop of %s: %d acks, %d lost", r.victim, acked, lost)
}

func TestGameExternalLosesNothing(t *testing.T) {
	t.Parallel()
	c := startGameCluster(t, "external", 3, "--store", "redis", "--redis", testenv.RedisURL(t))
	r := startPlayers(t, c)
	// No owner: kill the replica serving the room through the balancer.
	code, by, _ := shopperRequest(http.DefaultClient, "GET", c.lb+"/rooms/"+r.room, "")
	if code != 200 || c.replicas[by] == nil {
		t.Fatalf("GET room: %d served by %q", code, by)
	}
	r.victim = by
	c.replicas[by].kill()
	r.waitAcks(t, 20)
	r.stopDrive()
	code, final := c.snapshot(r.room)
	if code != 200 {
		t.Fatalf("final snapshot: %d", code)
	}
	for _, p := range r.players {
		if p.lost != 0 {
			t.Errorf("player %s: %d acknowledged inputs lost (%d resyncs)", p.id, p.lost, p.resyncs)
		}
		if got := appliedOf(final, p.id); got < p.maxAcked {
			t.Errorf("player %s: room applied %d, player had %d acknowledged", p.id, got, p.maxAcked)
		}
	}
	acked, lost := r.totals(t)
	t.Logf("external: %d acks, %d lost; killed %s", acked, lost, by)
}

func TestGameReplicatedLosesNothing(t *testing.T) {
	t.Parallel()
	// No checkpoint during the test (the store only renews the lease):
	// what the backup resumes with can only come from its copy.
	c := startGameCluster(t, "replicated", 3, "--store", "redis", "--redis", testenv.RedisURL(t), "--checkpoint", "1h")
	r := startPlayers(t, c)
	r.killOwner(t)
	r.waitNewOwner(t)
	r.stopDrive()
	checkOneOwnerAtATime(t, r)
	t0 := r.resumeTick(t, r.oldEpoch+1)
	acked, lost := r.totals(t)
	for _, p := range r.players {
		if p.lost != 0 {
			t.Errorf("player %s: %d acknowledged inputs lost", p.id, p.lost)
		}
		resumed, _, ok := r.resumedApplied(p)
		if _, maxSeq := r.victimAcks(p, ^uint64(0)); !ok || resumed < maxSeq {
			t.Errorf("player %s: the backup resumed with %d inputs, the dead owner had acknowledged %d", p.id, resumed, maxSeq)
		}
	}
	t.Logf("replicated: %d acks, %d lost; the backup resumed at tick %d, epoch %d", acked, lost, t0, r.oldEpoch+1)
}

// TestGameCheckpointPausedOwnerIsFenced SIGSTOPs the room's owner past its
// lease: another replica takes the room at a higher epoch; when the old
// owner resumes, its write is refused and it acknowledges nothing more
// under its old epoch.
func TestGameCheckpointPausedOwnerIsFenced(t *testing.T) {
	t.Parallel()
	c := startGameCluster(t, "checkpoint", 3, "--store", "redis", "--redis", testenv.RedisURL(t))
	r := startPlayers(t, c)
	r.victim, r.oldEpoch = r.owner(t)
	victim := c.replicas[r.victim]
	r.brokeAt = time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Logf("paused %s, owner of %s at epoch %d", r.victim, r.room, r.oldEpoch)
	r.waitNewOwner(t)
	resumeAt := ackOrder.Load()
	if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	metrics := "http://" + c.addrs[r.victim] + "/metrics"
	poll(t, "the resumed owner to be fenced", 20*time.Second, func() bool {
		_, _, body := shopperRequest(http.DefaultClient, "GET", metrics, "")
		return strings.Contains(string(body), `statelab_game_room_stops_total{reason="fenced"} 1`)
	})
	r.waitAcks(t, 10)
	r.stopDrive()
	for _, p := range r.players {
		p.mu.Lock()
		for _, a := range p.acks {
			if a.Epoch == r.oldEpoch && a.order > resumeAt {
				t.Errorf("player %s: the fenced owner acknowledged seq %d after it resumed", p.id, a.Seq)
			}
		}
		p.mu.Unlock()
	}
	checkCheckpointLoss(t, r)
}
