package game

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/statelab/statelab/session/replstore"
)

// Member is a live game replica as placement sees it.
type Member struct {
	// Name is the replica's ID (--id).
	Name string `json:"name"`
	// HTTP is the host:port its game API listens on.
	HTTP string `json:"http"`
}

// Placement tells which live replica owns a room. Every replica computes
// the same answer from the same member list (rendezvous hashing); during a
// membership change two replicas can briefly disagree, which is why an
// owner also holds a lease in the store (see docs/game.md).
type Placement interface {
	// Members returns the live members, sorted by name, this replica
	// included.
	Members() []Member
	// Self is this replica.
	Self() Member
	// OnChange registers f to be called (without locks held) after every
	// membership change.
	OnChange(f func())
}

// Owners returns the live members ranked for room, best first: rendezvous
// (highest random weight) hashing, so a member joining or leaving moves
// only the rooms it wins or owned, and the survivors keep their order. The
// first is the room's owner, the second its backup.
func Owners(room string, members []Member) []Member {
	out := slices.Clone(members)
	slices.SortFunc(out, func(a, b Member) int {
		sa, sb := score(a.Name, room), score(b.Name, room)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// score is the rendezvous weight of (member, room); the same in every
// process.
func score(member, room string) uint64 { return seed(member + "\x00" + room) }

// SinglePlacement is the placement of a replica alone: it owns every room.
type SinglePlacement struct{ Member Member }

// Members implements Placement.
func (p SinglePlacement) Members() []Member { return []Member{p.Member} }

// Self implements Placement.
func (p SinglePlacement) Self() Member { return p.Member }

// OnChange implements Placement; membership never changes.
func (p SinglePlacement) OnChange(func()) {}

// ClusterConfig configures a ClusterPlacement.
type ClusterConfig struct {
	// Self is this replica: its name must be unique in the cluster.
	Self Member
	// BindAddr is the host:port this replica gossips on (TCP and UDP);
	// port 0 picks a free one (see ClusterPlacement.Addr).
	BindAddr string
	// Peers are other replicas' gossip addresses to join through. None
	// answering is not an error: joining is retried in the background.
	Peers []string
	// Secret, if not empty, encrypts gossip; every replica needs the same.
	Secret string
	// Logger receives membership logs; nil means slog.Default().
	Logger *slog.Logger
}

// ClusterPlacement tracks the live game replicas with memberlist (SWIM
// gossip), tuned to declare a dead member dead in one to two seconds on a
// LAN.
type ClusterPlacement struct {
	self  Member
	ml    *memberlist.Memberlist
	log   *slog.Logger
	stop  chan struct{}
	dirty chan struct{} // a membership event happened (buffer 1)
	wg    sync.WaitGroup

	joined atomic.Bool // true once a join succeeded, or when there was no one to join

	updateMu sync.Mutex // one update at a time: an older view never replaces a newer one

	mu       sync.RWMutex
	members  []Member
	onChange []func()
}

// Joiner is implemented by placements that must join a cluster before
// their answers can be trusted; until Joined, a replica takes no room and
// is not ready (a replica that has not met its peers would believe it
// owns every room).
type Joiner interface {
	// Joined reports whether the replica has joined its cluster.
	Joined() bool
}

var _ Joiner = (*ClusterPlacement)(nil)

// Joined implements Joiner: true once a join through the peers succeeded
// (at once when there are no peers: this replica starts the cluster).
func (p *ClusterPlacement) Joined() bool { return p.joined.Load() }

// NewClusterPlacement starts gossiping and joins cfg.Peers (retrying in
// the background until one answers).
func NewClusterPlacement(cfg ClusterConfig) (*ClusterPlacement, error) {
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("game: cluster address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("game: cluster address %q: bad port", cfg.BindAddr)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &ClusterPlacement{self: cfg.Self, log: cfg.Logger, stop: make(chan struct{}), dirty: make(chan struct{}, 1), members: []Member{cfg.Self}}
	c := replstore.MemberlistConfig(cfg.Self.Name, host, port, 500*time.Millisecond)
	if cfg.Secret != "" {
		if c.SecretKey, err = hkdf.Key(sha256.New, []byte(cfg.Secret), nil, "statelab game gossip v1", 32); err != nil {
			return nil, fmt.Errorf("game: gossip key: %w", err)
		}
	}
	c.Delegate = (*delegate)(p)
	c.Events = (*delegate)(p)
	c.Logger = log.New(io.Discard, "", 0)
	if p.ml, err = memberlist.Create(c); err != nil {
		return nil, fmt.Errorf("game: start gossip: %w", err)
	}
	p.wg.Add(1)
	go p.updateLoop()
	p.joined.Store(len(cfg.Peers) == 0)
	if len(cfg.Peers) > 0 {
		p.wg.Add(1)
		go p.joinLoop(cfg.Peers)
	}
	return p, nil
}

// Addr is the gossip address peers join through.
func (p *ClusterPlacement) Addr() string {
	n := p.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// joinLoop joins through peers, retrying every second until it works.
func (p *ClusterPlacement) joinLoop(peers []string) {
	defer p.wg.Done()
	for {
		if _, err := p.ml.Join(peers); err == nil {
			// The member list must show the peers before the replica
			// takes rooms: an activation asks them for their copies.
			p.update()
			p.joined.Store(true)
			p.log.Info("game: joined cluster", "members", p.ml.NumMembers())
			return
		} else {
			p.log.Warn("game: join failed, retrying", "peers", peers, "err", err)
		}
		select {
		case <-p.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// Members implements Placement.
func (p *ClusterPlacement) Members() []Member {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.members
}

// Self implements Placement.
func (p *ClusterPlacement) Self() Member { return p.self }

// OnChange implements Placement.
func (p *ClusterPlacement) OnChange(f func()) {
	p.mu.Lock()
	p.onChange = append(p.onChange, f)
	p.mu.Unlock()
}

// Close leaves the cluster (telling the peers, so they move this replica's
// rooms at once) and stops gossiping.
func (p *ClusterPlacement) Close(ctx context.Context) error {
	close(p.stop)
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	err := p.ml.Leave(timeout)
	p.wg.Wait()
	return errors.Join(err, p.ml.Shutdown())
}

// updateLoop runs update after membership events, one at a time, so
// that an older view never replaces a newer one.
func (p *ClusterPlacement) updateLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.dirty:
			p.update()
		}
	}
}

// changed notes a membership event without blocking memberlist.
func (p *ClusterPlacement) changed() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// update rebuilds the member list from memberlist and calls the
// OnChange hooks.
func (p *ClusterPlacement) update() {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	var ms []Member
	for _, n := range p.ml.Members() {
		var m Member
		if err := json.Unmarshal(n.Meta, &m); err != nil || m.Name != n.Name || m.HTTP == "" {
			continue // not a game replica
		}
		ms = append(ms, m)
	}
	if !slices.ContainsFunc(ms, func(m Member) bool { return m.Name == p.self.Name }) {
		ms = append(ms, p.self)
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	p.mu.Lock()
	p.members = ms
	hooks := slices.Clone(p.onChange)
	p.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

// delegate is memberlist's view of a ClusterPlacement: its node metadata
// and membership events. Its methods must not block.
type delegate ClusterPlacement

func (d *delegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.self)
	if len(b) > limit {
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}
func (d *delegate) NotifyJoin(*memberlist.Node)                { (*ClusterPlacement)(d).changed() }
func (d *delegate) NotifyLeave(*memberlist.Node)               { (*ClusterPlacement)(d).changed() }
func (d *delegate) NotifyUpdate(*memberlist.Node)              { (*ClusterPlacement)(d).changed() }
