package replstore

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is a live member of the cluster as this replica sees it.
type Member struct {
	// Name is the member's Config.NodeName.
	Name string
	// Addr is its cluster (gossip) address, host:port.
	Addr string
	// RPCAddr is its replication RPC address, host:port.
	RPCAddr string
	// Self is true for the replica that answered Members.
	Self bool
}

// nodeMeta is what a replica advertises in its memberlist node metadata.
type nodeMeta struct {
	RPC string `json:"rpc"`
}

// membership tracks the live members from memberlist's events. It is
// memberlist's EventDelegate and Delegate; their methods must not block.
type membership struct {
	self    string
	meta    []byte
	changed func()

	// departures counts members that left or were declared dead.
	departures atomic.Int64

	// joined is set once another member has been seen alive.
	joined atomic.Bool

	// returned is when (unix ns) a member this replica knew came back
	// after it had been missing from the live members: a partition healed,
	// a paused or restarted replica answered again. 0: never.
	returned atomic.Int64

	mu      sync.RWMutex
	members map[string]Member
	nodes   []node // sorted by name, rebuilt on every change
	// known holds every member seen alive that has not left gracefully,
	// dead ones included, by name: their cluster addresses. A quorum is
	// counted against it, and its dead members are asked to rejoin.
	known map[string]string
}

func newMembership(self string, meta nodeMeta, changed func()) *membership {
	b, _ := json.Marshal(meta)
	return &membership{self: self, meta: b, changed: changed, members: make(map[string]Member), known: make(map[string]string)}
}

// NotifyJoin implements memberlist.EventDelegate.
func (m *membership) NotifyJoin(n *memberlist.Node) { m.upsert(n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (m *membership) NotifyUpdate(n *memberlist.Node) { m.upsert(n) }

// NotifyLeave implements memberlist.EventDelegate.
func (m *membership) NotifyLeave(n *memberlist.Node) {
	m.departures.Add(1)
	m.mu.Lock()
	delete(m.members, n.Name)
	if n.State == memberlist.StateLeft {
		// A graceful leave shrinks the cluster; a death does not.
		delete(m.known, n.Name)
	}
	m.rebuild()
	m.mu.Unlock()
	m.changed()
}

func (m *membership) upsert(n *memberlist.Node) {
	var meta nodeMeta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.RPC == "" {
		// A node without our metadata is not a replica of this store.
		return
	}
	m.mu.Lock()
	_, live := m.members[n.Name]
	if _, knew := m.known[n.Name]; knew && !live && n.Name != m.self {
		m.returned.Store(time.Now().UnixNano())
	}
	m.members[n.Name] = Member{Name: n.Name, Addr: n.Address(), RPCAddr: meta.RPC, Self: n.Name == m.self}
	m.known[n.Name] = n.Address()
	m.rebuild()
	m.mu.Unlock()
	if n.Name != m.self {
		m.joined.Store(true)
	}
	m.changed()
}

func (m *membership) rebuild() {
	nodes := make([]node, 0, len(m.members))
	for _, mb := range m.members {
		nodes = append(nodes, node{Name: mb.Name, RPCAddr: mb.RPCAddr})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	m.nodes = nodes
}

// live returns the live nodes, without this replica when excludeSelf.
func (m *membership) live(excludeSelf bool) []node {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !excludeSelf {
		return m.nodes
	}
	out := make([]node, 0, len(m.nodes))
	for _, n := range m.nodes {
		if n.Name != m.self {
			out = append(out, n)
		}
	}
	return out
}

// view returns the live nodes, without this replica when excludeSelf, and
// how many members are alive and known (alive or dead, not left), all from
// one state of the membership.
func (m *membership) view(excludeSelf bool) (nodes []node, alive, known int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	nodes = m.nodes
	if excludeSelf {
		nodes = make([]node, 0, len(m.nodes))
		for _, n := range m.nodes {
			if n.Name != m.self {
				nodes = append(nodes, n)
			}
		}
	}
	return nodes, len(m.nodes), len(m.known)
}

// missing returns the cluster addresses of known members that are not
// alive, sorted.
func (m *membership) missing() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for name, addr := range m.known {
		if _, ok := m.members[name]; !ok {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
}

// list returns the members sorted by name.
func (m *membership) list() []Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NodeMeta implements memberlist.Delegate.
func (m *membership) NodeMeta(limit int) []byte {
	if len(m.meta) > limit {
		return nil
	}
	return m.meta
}

// NotifyMsg implements memberlist.Delegate; the store sends no gossip
// messages.
func (m *membership) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (m *membership) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (m *membership) MergeRemoteState(buf []byte, join bool) {}

// memberlistConfig returns memberlist's configuration for cfg: the timing
// of MemberlistConfig, with the replica's delegate, keys and logger.
//
// Gossip is encrypted with gossipKeys[0]; messages encrypted with any of
// gossipKeys are accepted (a key rotation in progress).
func memberlistConfig(cfg Config, host string, port int, gossipKeys [][]byte, m *membership) *memberlist.Config {
	c := MemberlistConfig(cfg.NodeName, host, port, cfg.ProbeInterval)
	// NewKeyring fails only for a key that is not 16, 24 or 32 bytes; the
	// derived keys are 32.
	c.Keyring, _ = memberlist.NewKeyring(gossipKeys[1:], gossipKeys[0])
	c.Delegate = m
	c.Events = m
	c.Logger = slog.NewLogLogger(&memberlistLogHandler{h: cfg.Logger.Handler()}, slog.LevelDebug)
	return c
}

// MemberlistConfig returns the memberlist configuration a replica gossips
// with, before its delegate, keys and logger are set: memberlist's LAN
// profile tuned so that on a LAN or loopback a dead member (probed every
// probeInterval) is declared dead in about one to two seconds rather than
// five or more. Other services of statelab that gossip (the game server's
// room placement) start from it, so that they notice a death on the same
// timescale.
func MemberlistConfig(name, host string, port int, probeInterval time.Duration) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.BindAddr = host
	c.BindPort = port
	c.AdvertisePort = port
	c.ProbeInterval = probeInterval
	c.ProbeTimeout = probeInterval / 2
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 2
	c.IndirectChecks = 1
	c.GossipInterval = 50 * time.Millisecond
	c.GossipToTheDeadTime = 5 * time.Second
	c.PushPullInterval = 10 * time.Second
	c.TCPTimeout = time.Second
	// A replica restarted under the same name on another port may take its
	// name back at once.
	c.DeadNodeReclaimTime = time.Second
	return c
}

// memberlistLogHandler maps memberlist's "[LEVEL] memberlist: msg" lines to
// slog levels; memberlist's DEBUG chatter goes to Debug.
type memberlistLogHandler struct{ h slog.Handler }

func (l *memberlistLogHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return l.h.Enabled(ctx, slog.LevelDebug) || l.h.Enabled(ctx, slog.LevelWarn)
}

func (l *memberlistLogHandler) Handle(ctx context.Context, r slog.Record) error {
	msg := []byte(r.Message)
	level := slog.LevelInfo
	for _, p := range []struct {
		prefix string
		level  slog.Level
	}{{"[DEBUG] ", slog.LevelDebug}, {"[INFO] ", slog.LevelInfo}, {"[WARN] ", slog.LevelWarn}, {"[ERR] ", slog.LevelError}} {
		if bytes.HasPrefix(msg, []byte(p.prefix)) {
			level, msg = p.level, msg[len(p.prefix):]
			break
		}
	}
	if !l.h.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, string(msg), r.PC)
	return l.h.Handle(ctx, out)
}

func (l *memberlistLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &memberlistLogHandler{h: l.h.WithAttrs(as)}
}

func (l *memberlistLogHandler) WithGroup(name string) slog.Handler {
	return &memberlistLogHandler{h: l.h.WithGroup(name)}
}
