package replstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by New and by the Store's methods, besides the session
// package's sentinels.
var (
	// ErrInvalidConfig is wrapped by New when the Config is unusable: no
	// node name, a bad address, a missing secret.
	ErrInvalidConfig = errors.New("replstore: invalid config")

	// ErrClosed is returned (wrapped together with session.ErrUnavailable)
	// by every method of a Store after Close.
	ErrClosed = errors.New("replstore: store closed")

	// ErrInvalidKey is wrapped by the error a method returns for a key that
	// is empty, longer than 128 bytes, or has a byte outside [A-Za-z0-9_-].
	ErrInvalidKey = errors.New("replstore: invalid key")

	// ErrNoQuorum is wrapped (together with session.ErrUnavailable) by the
	// error of a write refused under Config.Quorum: fewer than W copies of
	// the key acknowledged it, or could, or this replica sees no more than
	// half of the members it knows, or has not joined its Peers yet. Ping's
	// error wraps it in the last two cases.
	ErrNoQuorum = errors.New("replstore: no quorum")
)

// Values of Config.Quorum with a name; any other positive value W is a
// count of copies.
const (
	// QuorumMajority (the default) acknowledges a write once a majority
	// of the key's copies, floor(N/2)+1, have it; see Config.Quorum.
	QuorumMajority = 0
	// QuorumOne acknowledges a write once the primary's own copy has it,
	// copying to the backups best effort: a replica cut off from its peers
	// serves writes alone, and they can be lost when the partition heals.
	QuorumOne = 1
)

// ParseQuorum parses a quorum as a command line gives it: "majority", "one",
// or a count of copies of at least 1 ("1" is "one").
func ParseQuorum(s string) (int, error) {
	switch s {
	case "majority", "":
		return QuorumMajority, nil
	case "one":
		return QuorumOne, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: quorum %q (want majority, one, or a count of copies >= 1)", ErrInvalidConfig, s)
	}
	return n, nil
}

// QuorumString is the inverse of ParseQuorum.
func QuorumString(q int) string {
	switch q {
	case QuorumMajority:
		return "majority"
	case QuorumOne:
		return "one"
	}
	return strconv.Itoa(q)
}

// Config configures one replica of a replicated store. Start from
// DefaultConfig and set NodeName, BindAddr, Peers and Secret.
type Config struct {
	// NodeName names this replica in the cluster; it must be unique among
	// the members. Empty is an error (DefaultConfig uses the host name).
	NodeName string

	// BindAddr is the host:port where this replica gossips with its peers
	// (memberlist, TCP and UDP). Port 0 picks a free port, which Members
	// reports. The RPC listener binds on the same host, on RPCAddr's port.
	BindAddr string

	// RPCAddr is the host:port of the replication RPC listener. Empty means
	// BindAddr's host with a port chosen by the kernel; the address is
	// advertised to peers in the memberlist node metadata.
	RPCAddr string

	// Peers lists cluster addresses (other replicas' BindAddr) to join
	// through. Empty starts a new cluster. When none answers, New succeeds
	// anyway and keeps retrying in the background every JoinRetry, so
	// replicas may start in any order.
	Peers []string

	// Backups is how many backups each session has besides its primary:
	// 0 means the default, 1; -1 means every other member (like Tomcat's
	// DeltaManager). With fewer live members, every member holds a copy.
	Backups int

	// Async, when true, acknowledges a write once the primary has applied
	// it and replicates to the backups in the background: faster, but a
	// write acknowledged just before the primary dies can be lost. The
	// default (false) acknowledges only after the backups have the write.
	// Async takes effect only with QuorumOne: a quorum of W > 1 copies
	// makes the primary wait for W-1 backups, which is what Async skips,
	// so under it writes are synchronous (New logs a warning).
	Async bool

	// Quorum is the write quorum W: how many of the N copies of a key
	// must hold a write, the primary's own copy included, before it is
	// acknowledged. N is the key's configured copies, Backups+1 (every
	// member with Backups -1), capped by the number of members this
	// replica knows: every member it has seen alive that has not left
	// gracefully, the dead and the cut-off ones included, so that N does
	// not shrink on the side of a partition that lost members.
	//
	// QuorumMajority (0, the default) means W = floor(N/2)+1; QuorumOne
	// means W = 1, the behaviour without a quorum (the primary applies the
	// write and copies it to the backups best effort); a larger value is W
	// itself, and New rejects one above Backups+1. A write that cannot
	// reach W copies fails with an error wrapping ErrNoQuorum and
	// session.ErrUnavailable, and the primary's copy keeps the version it
	// had (see docs/replication.md for what a backup that applied it
	// keeps).
	//
	// Placement follows the live members (so that the side of a partition
	// that keeps a majority keeps every key writable), so counting copies
	// alone would let a minority side with W members of its own accept
	// writes. Under every quorum but QuorumOne a replica therefore also
	// refuses writes while it sees no more than half of the members it
	// knows alive, and, given Peers, until it has joined them; Ping then
	// fails too (the app's /readyz is 503).
	Quorum int

	// Secret is the key material the cluster shares; replicas given
	// different secrets cannot talk. The gossip encryption key and the RPC
	// authentication key are derived from it with HKDF-SHA-256. Required.
	Secret []byte

	// OldSecrets are previous Secrets still accepted during a key
	// rotation: gossip encrypted and RPC challenges proved with a key
	// derived from one of them are accepted, while this replica encrypts
	// and proves with Secret's. See docs/replication.md for the rolling
	// procedure.
	OldSecrets [][]byte

	// Logger receives the store's and memberlist's logs. Nil means
	// slog.Default().
	Logger *slog.Logger

	// Registerer, if not nil, gets the store's Prometheus metrics
	// (replication latency, re-replicated records, forwarded requests,
	// members).
	Registerer prometheus.Registerer

	// RPCTimeout bounds every RPC to a peer, whatever the caller's context
	// allows. Zero means 2 s.
	RPCTimeout time.Duration

	// ProbeInterval is memberlist's failure-detection probe interval. Zero
	// means 200 ms, which with the other tuned settings detects a dead
	// member on loopback in about one to two seconds.
	ProbeInterval time.Duration

	// JoinRetry is the pause between attempts to join Peers when none
	// answered. Zero means 1 s.
	JoinRetry time.Duration

	// TidyInterval is how often a replica pushes records it no longer owns
	// to their owners and drops them, and sweeps expired records and old
	// tombstones. Zero means 5 s.
	TidyInterval time.Duration

	// TombstoneTTL is how long a deleted key is remembered, so that a stale
	// copy pushed by a peer cannot bring it back. Zero means 2 minutes.
	TombstoneTTL time.Duration

	// LeaveTimeout bounds Close's handover and its leave broadcast. Zero
	// means 5 s.
	LeaveTimeout time.Duration

	// faults, set only by tests, drops the traffic between replicas a
	// test has cut apart.
	faults *faultNet
}

// DefaultConfig returns a Config with every default filled in: the host name
// as NodeName, BindAddr 127.0.0.1:7946, one backup, synchronous replication,
// and the timing described on each field. Secret and Peers are left empty.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	return Config{
		NodeName:      host,
		BindAddr:      "127.0.0.1:7946",
		Backups:       1,
		RPCTimeout:    2 * time.Second,
		ProbeInterval: 200 * time.Millisecond,
		JoinRetry:     time.Second,
		TidyInterval:  5 * time.Second,
		TombstoneTTL:  2 * time.Minute,
		LeaveTimeout:  5 * time.Second,
	}
}

// withDefaults returns cfg with zero durations and counts replaced by their
// defaults, and an error wrapping ErrInvalidConfig if it is unusable.
func (cfg Config) withDefaults() (Config, error) {
	def := DefaultConfig()
	if cfg.NodeName == "" {
		return cfg, fmt.Errorf("%w: NodeName is empty", ErrInvalidConfig)
	}
	if len(cfg.NodeName) > 128 {
		return cfg, fmt.Errorf("%w: NodeName longer than 128 bytes", ErrInvalidConfig)
	}
	if len(cfg.Secret) == 0 {
		return cfg, fmt.Errorf("%w: Secret is empty (replicas must share key material)", ErrInvalidConfig)
	}
	if slices.ContainsFunc(cfg.OldSecrets, func(s []byte) bool { return len(s) == 0 }) {
		return cfg, fmt.Errorf("%w: an OldSecret is empty", ErrInvalidConfig)
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = def.BindAddr
	}
	if _, _, err := splitHostPort(cfg.BindAddr); err != nil {
		return cfg, fmt.Errorf("%w: BindAddr %q: %v", ErrInvalidConfig, cfg.BindAddr, err)
	}
	if cfg.RPCAddr != "" {
		if _, _, err := splitHostPort(cfg.RPCAddr); err != nil {
			return cfg, fmt.Errorf("%w: RPCAddr %q: %v", ErrInvalidConfig, cfg.RPCAddr, err)
		}
	}
	for _, p := range cfg.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return cfg, fmt.Errorf("%w: peer %q: %v", ErrInvalidConfig, p, err)
		}
	}
	switch {
	case cfg.Backups == 0:
		cfg.Backups = def.Backups
	case cfg.Backups < -1:
		return cfg, fmt.Errorf("%w: Backups %d (want -1 for all, or >= 0)", ErrInvalidConfig, cfg.Backups)
	}
	if cfg.Quorum < 0 {
		return cfg, fmt.Errorf("%w: Quorum %d (want 0 for a majority, 1 for none, or a count of copies)", ErrInvalidConfig, cfg.Quorum)
	}
	if cfg.Backups >= 0 && cfg.Quorum > cfg.Backups+1 {
		return cfg, fmt.Errorf("%w: Quorum %d copies, but a key has only %d (Backups %d + its primary)", ErrInvalidConfig, cfg.Quorum, cfg.Backups+1, cfg.Backups)
	}
	durations := []struct {
		p   *time.Duration
		def time.Duration
	}{
		{&cfg.RPCTimeout, def.RPCTimeout},
		{&cfg.ProbeInterval, def.ProbeInterval},
		{&cfg.JoinRetry, def.JoinRetry},
		{&cfg.TidyInterval, def.TidyInterval},
		{&cfg.TombstoneTTL, def.TombstoneTTL},
		{&cfg.LeaveTimeout, def.LeaveTimeout},
	}
	for _, d := range durations {
		if *d.p < 0 {
			return cfg, fmt.Errorf("%w: negative duration %v", ErrInvalidConfig, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// splitHostPort splits a host:port with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}
