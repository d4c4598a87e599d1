package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/game"
)

// gameStep is one scheduled action of a game scenario on the room's owner
// (the victim) or the cluster.
type gameStep struct {
	at   int64 // run-clock time
	verb string
	do   func(ctx context.Context, c *cluster.Cluster, victim string) error
}

// gamePauseMax bounds how much longer than its gamePauseLeases a paused
// owner stays stopped while no other replica has taken its room over.
const gamePauseMax = 10 * time.Second

// awaitNewOwner waits (at most max) until an owner other than victim
// acknowledged an input of room.
func awaitNewOwner(ctx context.Context, clock *gameClock, room, victim string, max time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	for ctx.Err() == nil {
		if o := latestOwner(clock.history(), room); o != "" && o != victim {
			return
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}

// gamePlan is the schedule of a game scenario played on room (the first).
func gamePlan(cfg Config, clock *gameClock, room string) []gameStep {
	d := clock.end - clock.from
	at := func(f float64) int64 { return clock.from + int64(f*float64(d)) }
	switch cfg.Scenario {
	case Failover:
		return []gameStep{
			{at(gameFaultAt), "kill", func(ctx context.Context, c *cluster.Cluster, v string) error { return c.Kill(ctx, v) }},
			{at(failoverRestartAt), "restart", func(ctx context.Context, c *cluster.Cluster, v string) error { return c.Restart(ctx, v) }},
		}
	case Pause:
		return []gameStep{
			{at(gameFaultAt), "pause", func(ctx context.Context, c *cluster.Cluster, v string) error { return c.Pause(ctx, v) }},
			{at(gameFaultAt) + int64(gamePauseLeases*cfg.Game.Lease), "resume", func(ctx context.Context, c *cluster.Cluster, v string) error {
				awaitNewOwner(ctx, clock, room, v, gamePauseMax)
				return c.Resume(ctx, v)
			}},
		}
	case Scaleout:
		var steps []gameStep
		for i := cfg.Scenario.initialReplicas(cfg.Replicas); i < cfg.Replicas; i++ {
			steps = append(steps, gameStep{at(scaleoutAddAt), "add a replica", func(ctx context.Context, c *cluster.Cluster, _ string) error {
				_, err := c.Add(ctx)
				return err
			}})
		}
		return steps
	}
	return nil
}

// injectGameFaults runs the scenario's plan. The victim is the owner of
// room when the first step is due (the replica that acknowledged its
// latest input), or r2 when the room has no owner (external).
func injectGameFaults(ctx context.Context, cfg Config, c *cluster.Cluster, clock *gameClock, room string) (faults []Fault, errs []error) {
	victim := ""
	for _, st := range gamePlan(cfg, clock, room) {
		if !clock.sleepUntil(ctx, st.at) {
			return faults, errs
		}
		if victim == "" {
			victim = ownerOf(clock.history(), room)
		}
		start := clock.now()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := st.do(actx, c, victim)
		cancel()
		what := st.verb
		if st.verb != "add a replica" {
			what += " " + victim + " (owner of room " + room + ")"
		}
		f := Fault{At: start, End: clock.now(), What: what}
		if err != nil {
			f.What += " (failed: " + err.Error() + ")"
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		faults = append(faults, f)
	}
	return faults, errs
}

// ownerOf returns the owner of room in its latest acknowledgement, or r2
// when none named an owner.
func ownerOf(events []GameEvent, room string) string {
	if o := latestOwner(events, room); o != "" {
		return o
	}
	return "r2"
}

// latestOwner returns the owner of room in its latest acknowledgement
// that names one, or "".
func latestOwner(events []GameEvent, room string) string {
	owner, at := "", int64(-1)
	for _, e := range events {
		if e.Room == room && e.Ack && e.At > at && e.Owner != "" {
			owner, at = e.Owner, e.At
		}
	}
	return owner
}

// finalReads reads every room once more through the balancer (retrying
// within timeout×5) and records its players' applied counts as the last
// word of the history.
func finalReads(ctx context.Context, c *cluster.Cluster, clock *gameClock, rooms []string, timeout time.Duration) {
	client := &http.Client{Timeout: timeout}
	for _, room := range rooms {
		deadline := time.Now().Add(5 * timeout)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			s, err := getRoom(ctx, client, c.URL(), room)
			if err == nil {
				now := clock.now()
				for _, p := range s.Players {
					clock.event(GameEvent{At: now, Room: room, Player: p.ID, Tick: s.Tick, Epoch: s.Epoch, Owner: s.Owner, Applied: p.Applied})
				}
				break
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
}

// getRoom reads a room's snapshot.
func getRoom(ctx context.Context, client *http.Client, base, room string) (*game.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/rooms/"+room, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET room %s: %s", room, resp.Status)
	}
	var s game.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// gameScraper reads the replicas' store-operation and replication
// counters every half second, keeping each process's last reading, so that
// a killed replica's work until shortly before its death still counts.
type gameScraper struct {
	c      *cluster.Cluster
	client *http.Client

	mu   sync.Mutex
	last map[string][2]float64 // by replica id and pid
}

func newGameScraper(c *cluster.Cluster) *gameScraper {
	return &gameScraper{c: c, client: &http.Client{Timeout: time.Second}, last: map[string][2]float64{}}
}

// run scrapes until ctx ends.
func (s *gameScraper) run(ctx context.Context) {
	for ctx.Err() == nil {
		s.scrape(ctx)
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

// scrape reads every running replica once.
func (s *gameScraper) scrape(ctx context.Context) {
	for _, r := range s.c.Replicas() {
		if r.PID == 0 || r.State != cluster.StateUp {
			continue
		}
		ops, bytes, err := gameCounters(ctx, s.client, r.URL)
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.last[r.ID+"/"+strconv.Itoa(r.PID)] = [2]float64{ops, bytes}
		s.mu.Unlock()
	}
}

// totals scrapes once more and returns the sums of the last readings.
func (s *gameScraper) totals(ctx context.Context) (ops, bytes float64) {
	s.scrape(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.last {
		ops += v[0]
		bytes += v[1]
	}
	return ops, bytes
}

// gameCounters reads a game replica's /metrics: its store operations and
// the bytes it replicated.
func gameCounters(ctx context.Context, client *http.Client, base string) (ops, bytes float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, "statelab_game_store_ops_total"):
			dst = &ops
		case strings.HasPrefix(line, "statelab_game_replicated_bytes_total"):
			dst = &bytes
		default:
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			*dst += v
		}
	}
	return ops, bytes, sc.Err()
}
