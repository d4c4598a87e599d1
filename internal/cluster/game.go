package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/game"
	"github.com/statelab/statelab/internal/stores"
	"github.com/statelab/statelab/internal/strategy"
)

// GameOptions make a cluster of game servers (`statelab game`) instead of
// cart replicas: every replica gossips membership with the others
// (--cluster-listen, --peers), and the balancer hashes on the room
// (--policy hash --hash-key path:/rooms/). Kill, Pause, Resume, Restart and
// Add work as for the cart.
type GameOptions struct {
	// Strategy is the game's --strategy: memory, checkpoint, replicated or
	// external.
	Strategy game.Strategy
	// Tick, Checkpoint and Lease are the replicas' --tick, --checkpoint and
	// --lease; zero passes no flag (the game's defaults).
	Tick, Checkpoint, Lease time.Duration
}

// gameHashKey is what the balancer hashes a game request on: the room in
// the path.
const gameHashKey = "path:/rooms/"

// gameSpec is the strategy row of a game cluster: the store its strategy
// needs (Redis, or SQLite when Redis is neither given nor installed) and
// the hash policy.
func gameSpec(cfg Config) (strategy.Spec, error) {
	info, ok := game.Lookup(string(cfg.Game.Strategy))
	if !ok {
		return strategy.Spec{}, fmt.Errorf("%w: game strategy %q (want one of %v)", ErrBadConfig, cfg.Game.Strategy, game.StrategyNames())
	}
	spec := strategy.Spec{Strategy: strategy.Strategy(cfg.Game.Strategy), Store: stores.Memory, Policy: balancer.PolicyHash,
		Where: "in the room owner's memory"}
	if info.NeedsStore {
		spec.Store, spec.Where, spec.Source = stores.Redis, "in Redis", "Redis"
		if _, err := exec.LookPath("redis-server"); err != nil && cfg.RedisURL == "" {
			spec.Store, spec.Where, spec.Source = stores.SQLite, "in the database", "the database"
		}
	}
	return spec, nil
}

// gameArgs is the command line of game replica r: its HTTP and cluster
// addresses, the running replicas as peers, and the store's flags (but
// not the cart's --redis-prefix: rooms carry their own names).
func (c *Cluster) gameArgs(r *replica) []string {
	g := c.cfg.Game
	args := []string{"game",
		"--listen", "127.0.0.1:" + strconv.Itoa(r.port),
		"--id", r.id,
		"--strategy", string(g.Strategy),
		"--cluster-listen", r.clusterAddr,
	}
	if c.spec.Store.External() {
		args = append(args, "--store", string(c.store.info.Kind))
		for i := 0; i < len(c.store.appArgs); i++ {
			if c.store.appArgs[i] == "--redis-prefix" {
				i++
				continue
			}
			args = append(args, c.store.appArgs[i])
		}
	}
	for flag, d := range map[string]time.Duration{"--tick": g.Tick, "--checkpoint": g.Checkpoint, "--lease": g.Lease} {
		if d > 0 {
			args = append(args, flag, d.String())
		}
	}
	if peers := c.peersOf(r); peers != "" {
		args = append(args, "--peers", peers)
	}
	return args
}

// gameBalancerArgs are the balancer flags a game cluster adds.
func (c *Cluster) gameBalancerArgs() []string {
	if c.cfg.Game == nil {
		return nil
	}
	return []string{"--hash-key", gameHashKey}
}

// WaitMembers waits (within the ready timeout) until every running replica
// of a game cluster counts n members in its /readyz: until then, two
// replicas may both believe they own a room.
func (c *Cluster) WaitMembers(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, c.readyTimeout())
	defer cancel()
	for _, r := range c.Replicas() {
		if r.State != StateUp {
			continue
		}
		for {
			if members(ctx, c.client, r.URL) == n {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("cluster: replica %s does not see %d members: %w", r.ID, n, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// members returns the member count a game replica's /readyz reports, -1
// when it does not answer 200.
func members(ctx context.Context, client *http.Client, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return -1
	}
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var body struct {
		Members int `json:"members"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body) != nil {
		return -1
	}
	return body.Members
}
