package replstore

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/keylock"
	"github.com/statelab/statelab/session/internal/storekey"
)

// Store is one replica of a replicated session store. It implements
// session.Store, session.Pinger and session.Counter. Create it with New and
// stop it with Close; it is safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	name    string
	rpcKey  []byte
	tab     *table
	locks   *keylock.Map // serialise a primary's writes to one key (check, replicate, apply)
	members *membership
	client  *rpcClient
	metrics *metrics
	reg     prometheus.Registerer

	ml      *memberlist.Memberlist
	rpcSrv  *rpcServer
	rpcAddr string

	// leaving is set by Close: this replica no longer owns any key and
	// forwards everything while it hands its records over.
	leaving atomic.Bool
	closed  atomic.Bool

	changed chan struct{} // a membership change asks for a rebalance
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stop    sync.Once

	queuesMu sync.Mutex
	queues   map[string]chan mergeItem // async replication, by backup name
}

var (
	_ session.Store   = (*Store)(nil)
	_ session.Pinger  = (*Store)(nil)
	_ session.Counter = (*Store)(nil)
)

// deriveKeys derives the gossip encryption keys and the RPC authentication
// keys from cfg.Secret and cfg.OldSecrets with HKDF-SHA-256: the first of
// each is the Secret's, which encrypts and proves; the others are only
// accepted.
func deriveKeys(cfg Config) (gossip, rpc [][]byte, err error) {
	for _, secret := range append([][]byte{cfg.Secret}, cfg.OldSecrets...) {
		g, err := hkdf.Key(sha256.New, secret, nil, "statelab replstore gossip v1", 32)
		if err != nil {
			return nil, nil, fmt.Errorf("replstore: derive gossip key: %w", err)
		}
		r, err := hkdf.Key(sha256.New, secret, nil, "statelab replstore rpc v1", 32)
		if err != nil {
			return nil, nil, fmt.Errorf("replstore: derive rpc key: %w", err)
		}
		gossip, rpc = append(gossip, g), append(rpc, r)
	}
	return gossip, rpc, nil
}

// New starts a replica: it listens for RPC, starts memberlist on
// cfg.BindAddr and joins the cluster through cfg.Peers. When no peer answers
// it still returns the running replica and keeps trying to join in the
// background. ctx bounds only the first join attempt.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	gossipKeys, rpcKeys, err := deriveKeys(cfg)
	if err != nil {
		return nil, err
	}
	host, port, _ := splitHostPort(cfg.BindAddr)
	if host, err = resolveHost(ctx, host); err != nil {
		return nil, fmt.Errorf("%w: BindAddr %q: %w", ErrInvalidConfig, cfg.BindAddr, err)
	}
	rpcListen := net.JoinHostPort(host, "0")
	if cfg.RPCAddr != "" {
		rpcListen = cfg.RPCAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", rpcListen)
	if err != nil {
		return nil, fmt.Errorf("replstore: listen for RPC on %s: %w", rpcListen, err)
	}

	bg, cancel := context.WithCancel(context.Background())
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.NodeName),
		name:    cfg.NodeName,
		rpcKey:  rpcKeys[0],
		tab:     newTable(),
		locks:   keylock.New(),
		client:  newRPCClient(rpcKeys, cfg.RPCTimeout, cfg.NodeName, cfg.faults),
		reg:     cfg.Registerer,
		changed: make(chan struct{}, 1),
		ctx:     bg,
		cancel:  cancel,
		queues:  make(map[string]chan mergeItem),
	}
	s.rpcAddr = ln.Addr().String()
	if h, p, _ := net.SplitHostPort(s.rpcAddr); net.ParseIP(h) == nil || net.ParseIP(h).IsUnspecified() {
		// Wildcard bind: advertise an address peers can reach.
		ip, err := advertiseIP(host)
		if err != nil {
			cancel()
			ln.Close()
			return nil, fmt.Errorf("replstore: pick an address to advertise: %w", err)
		}
		s.rpcAddr = net.JoinHostPort(ip, p)
	}
	s.members = newMembership(s.name, nodeMeta{RPC: s.rpcAddr}, s.membershipChanged)
	s.metrics, err = newMetrics(cfg.Registerer, cfg.NodeName, func() float64 { return float64(len(s.members.live(false))) })
	if err != nil {
		cancel()
		ln.Close()
		return nil, err
	}
	s.rpcSrv = newRPCServer(s, ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.rpcSrv.serve()
	}()
	mlc := memberlistConfig(cfg, host, port, gossipKeys, s.members)
	if cfg.faults != nil {
		t, err := newFaultTransport(host, port, cfg.NodeName, cfg.faults, mlc.Logger)
		if err != nil {
			s.shutdownPartial()
			return nil, fmt.Errorf("replstore: start memberlist on %s: %w", cfg.BindAddr, err)
		}
		mlc.Transport = t
	}
	s.ml, err = memberlist.Create(mlc)
	if err != nil {
		s.shutdownPartial()
		return nil, fmt.Errorf("replstore: start memberlist on %s: %w", cfg.BindAddr, err)
	}
	if cfg.Async && cfg.Quorum != QuorumOne {
		s.log.Warn("replstore: Async has no effect under a write quorum above one copy: writes wait for the backups the quorum needs", "quorum", QuorumString(cfg.Quorum))
	}
	s.log.Info("replstore: replica started", "cluster_addr", s.ClusterAddr(), "rpc_addr", s.rpcAddr,
		"backups", cfg.Backups, "async", cfg.Async, "quorum", QuorumString(cfg.Quorum))

	if len(cfg.Peers) == 0 {
		s.members.joined.Store(true) // the first replica of a new cluster
	} else if err := s.join(ctx); err != nil {
		s.log.Warn("replstore: no peer answered yet; retrying in the background", "peers", cfg.Peers, "err", err)
	}
	s.wg.Add(3)
	go s.every(s.cfg.JoinRetry, s.joinOnce)
	go s.rebalanceLoop()
	go s.every(s.cfg.TidyInterval, s.tidyOnce)
	return s, nil
}

// resolveHost turns a bind host into an IP literal, as memberlist needs: an
// empty host means every interface, a name is looked up.
func resolveHost(ctx context.Context, host string) (string, error) {
	if host == "" {
		return "0.0.0.0", nil
	}
	if net.ParseIP(host) != nil {
		return host, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return ips[0].String(), nil
}

// advertiseIP picks the IP to advertise for a wildcard bind host.
func advertiseIP(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return host, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "127.0.0.1", nil
}

// join tries once to join the cluster through the configured peers.
func (s *Store) join(ctx context.Context) error { return s.joinAddrs(ctx, s.cfg.Peers) }

// joinAddrs tries once to join the cluster through addrs.
func (s *Store) joinAddrs(ctx context.Context, addrs []string) error {
	done := make(chan error, 1)
	go func() {
		_, err := s.ml.Join(addrs)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("replstore: join %v: %w", addrs, err)
		}
		s.log.Info("replstore: joined cluster", "through", addrs, "members", s.ml.NumMembers())
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replstore: join %v: %w", addrs, ctx.Err())
	}
}

// joinOnce runs every JoinRetry until the store stops or leaves: it tries
// to join the configured peers if no other member has been seen yet, and
// otherwise to reach the known members that are not alive: a member
// declared dead may be alive behind a partition that has healed, and
// memberlist stops talking to dead members after a few seconds, so without
// this the two sides would never meet again. It returns false once the
// store is leaving.
func (s *Store) joinOnce() bool {
	if s.leaving.Load() {
		return false
	}
	addrs := s.cfg.Peers
	if len(s.members.live(true)) > 0 || len(addrs) == 0 {
		addrs = s.members.missing()
	}
	if len(addrs) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RPCTimeout)
	err := s.joinAddrs(ctx, addrs)
	cancel()
	if err != nil {
		s.log.Debug("replstore: join failed, will retry", "addrs", addrs, "err", err)
	}
	return true
}

// every calls fn every interval until the store stops or fn returns
// false. It runs as a goroutine counted in s.wg.
func (s *Store) every(interval time.Duration, fn func() bool) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}

// ClusterAddr returns the address peers join this replica through (the
// BindAddr, with the port memberlist actually bound).
func (s *Store) ClusterAddr() string {
	n := s.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members returns the live members of the cluster as this replica sees them,
// sorted by name.
func (s *Store) Members() []Member { return s.members.list() }

// Get returns the live record under key: from this replica's copy when it
// owns the key, otherwise from the owners, primary first, and when none of
// them holds it from the other members. It returns session.ErrNotFound only
// when every member answered and none holds a live copy; an owner that
// could not be asked makes it an error wrapping session.ErrUnavailable.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	if err := s.check(ctx, key); err != nil {
		return session.Record{}, err
	}
	// One view of the members for the majority check and the placement.
	leaving := s.leaving.Load()
	nodes, alive, known := s.members.view(leaving)
	if s.cfg.Quorum != QuorumOne && !leaving {
		if err := minority(alive, known); err != nil {
			s.metrics.refusedReads.Inc()
			return session.Record{}, fmt.Errorf("replstore: get: %w", err)
		}
	}
	own := owners(key, nodes, s.cfg.Backups)
	if len(own) == 0 {
		return session.Record{}, fmt.Errorf("replstore: get: no live member: %w", session.ErrUnavailable)
	}
	mine := s.ownsLocally(own)
	local, held := s.tab.get(key)
	settling := s.settling()
	if mine && held && !settling {
		return result(local)
	}
	// Not held here, held as an async backup that may lag, or possibly
	// stale because members just came back: ask the other owners.
	remote, found, asked, errs := s.askOwners(ctx, key, own, settling)
	if found {
		if settling && held && local.newer(remote) {
			remote = local
		}
		if mine {
			s.tab.merge(key, remote, time.Now()) // read repair
		}
		return result(remote)
	}
	if ctx.Err() != nil {
		return session.Record{}, fmt.Errorf("replstore: get: %w", errors.Join(errs...))
	}
	if held && slices.ContainsFunc(own, func(n node) bool { return n.Name == s.name }) {
		return result(local)
	}
	if len(errs) > 0 {
		// An owner that could not be asked may hold the record (the
		// primary that died before failure detection noticed, the one
		// backup that has it): the answer is unknown, not "no session".
		return session.Record{}, fmt.Errorf("replstore: get: %d of %d owners did not answer and none of the others holds the key: %w",
			len(errs), asked, errors.Join(errs...))
	}
	// No owner holds the key. Until the rebalance after a membership
	// change (a partition healing, replicas that started apart meeting, a
	// member joining) has moved the records, one may still live only on a
	// member that is no longer its owner: ask the others before answering
	// that there is no session, which would make the session manager issue
	// a new one and the client lose its cart.
	e, found, err := s.findElsewhere(ctx, key, own)
	if held && (!found || local.newer(e)) {
		// This replica was an owner and has not handed its copy over yet.
		e, found = local, true
	}
	if found {
		if mine {
			s.tab.merge(key, e, time.Now()) // read repair
		}
		return result(e)
	}
	if err != nil {
		return session.Record{}, fmt.Errorf("replstore: get: no owner holds the key and %w", err)
	}
	return session.Record{}, fmt.Errorf("replstore: get %s: %w", key, session.ErrNotFound)
}

// askOwners asks the owners of key other than this replica for their copy,
// in rank order: the first that holds one answers, or, while settling, the
// newest of all their copies. It returns that copy, whether one was found,
// how many owners were asked and the errors of those that did not answer.
func (s *Store) askOwners(ctx context.Context, key string, own []node, settling bool) (entry, bool, int, []error) {
	var best entry
	found, asked := false, 0
	var errs []error
	for _, o := range own {
		if o.Name == s.name {
			continue
		}
		asked++
		resp, err := s.rpcGet(ctx, o.RPCAddr, key)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		s.metrics.forwarded.WithLabelValues("get").Inc()
		if !resp.Held {
			continue
		}
		if !found || resp.Entry.newer(best) {
			best, found = resp.Entry, true
		}
		if !settling {
			break
		}
	}
	return best, found, asked, errs
}

// settling reports whether a member came back recently enough that copies
// may still be stale: a replica that was cut off or paused holds the
// versions from before, and is a key's primary again the moment it is
// seen, before the rebalance has brought it the newer copies. Until every
// side has noticed the return (a few probe intervals), waited out the
// rebalance debounce and finished a rebalance pass (bounded by four RPC
// timeouts), reads ask every owner and take the newest copy.
func (s *Store) settling() bool {
	at := s.members.returned.Load()
	window := 4*s.cfg.ProbeInterval + rebalanceDebounce + 4*s.cfg.RPCTimeout
	return at != 0 && time.Now().UnixNano()-at < int64(window)
}

// findElsewhere asks every live member other than this replica and the
// owners already asked for its copy of key, all at once, and returns the
// newest copy held. It returns an error wrapping session.ErrUnavailable
// when none holds a copy and some did not answer.
func (s *Store) findElsewhere(ctx context.Context, key string, asked []node) (entry, bool, error) {
	var others []node
	for _, n := range s.members.live(true) {
		if !slices.ContainsFunc(asked, func(o node) bool { return o.Name == n.Name }) {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return entry{}, false, nil
	}
	type answer struct {
		resp getResponse
		err  error
	}
	answers := make([]answer, len(others))
	var wg sync.WaitGroup
	for i, n := range others {
		wg.Go(func() {
			answers[i].resp, answers[i].err = s.rpcGet(ctx, n.RPCAddr, key)
		})
	}
	wg.Wait()
	var newest entry
	found := false
	var errs []error
	for _, a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
		case a.resp.Held && (!found || a.resp.Entry.newer(newest)):
			newest, found = a.resp.Entry, true
		}
	}
	if found {
		s.metrics.forwarded.WithLabelValues("get").Inc()
		return newest, true, nil
	}
	if len(errs) > 0 {
		return entry{}, false, fmt.Errorf("%d other members did not answer: %w", len(errs), errors.Join(errs...))
	}
	return entry{}, false, nil
}

// ownsLocally reports whether reads of a key with owner set own may be
// served from the local copy: when this replica is an owner (in Async mode,
// only its primary, since backups may lag).
func (s *Store) ownsLocally(own []node) bool {
	if s.cfg.Async {
		return len(own) > 0 && own[0].Name == s.name
	}
	for _, o := range own {
		if o.Name == s.name {
			return true
		}
	}
	return false
}

func result(e entry) (session.Record, error) {
	if !e.live(time.Now()) {
		return session.Record{}, session.ErrNotFound
	}
	rec := e.Rec
	rec.Data = append([]byte(nil), rec.Data...)
	return rec, nil
}

// Put writes rec under key if the stored version is rec.Version, through
// the key's primary, and returns the new version.
func (s *Store) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if err := s.check(ctx, key); err != nil {
		return 0, err
	}
	rec.Data = append([]byte(nil), rec.Data...)
	return s.write(ctx, opPut, key, rec, 0)
}

// Touch moves the idle expiry of the live record under key, through the
// key's primary.
func (s *Store) Touch(ctx context.Context, key string, idleExpiry time.Time) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	_, err := s.write(ctx, opTouch, key, session.Record{IdleExpiry: idleExpiry}, 0)
	return err
}

// Delete removes the record under key on every owner. Deleting a missing
// key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	_, err := s.write(ctx, opDelete, key, session.Record{}, 0)
	return err
}

// Ping returns nil while the replica runs and knows at least itself as a
// member, otherwise an error wrapping session.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replstore: ping: %w", err)
	}
	if s.closed.Load() || s.leaving.Load() {
		return fmt.Errorf("replstore: ping: %w: %w", session.ErrUnavailable, ErrClosed)
	}
	if len(s.members.live(false)) == 0 {
		return fmt.Errorf("replstore: ping: no live member: %w", session.ErrUnavailable)
	}
	if !s.members.joined.Load() {
		return fmt.Errorf("replstore: ping: not joined to peers %v yet: %w: %w", s.cfg.Peers, session.ErrUnavailable, ErrNoQuorum)
	}
	if _, _, err := s.writeNodes(); err != nil {
		return fmt.Errorf("replstore: ping: %w", err)
	}
	return nil
}

// writeNodes returns the live members keys are placed on for a write and
// the write quorum, or an error wrapping ErrNoQuorum and
// session.ErrUnavailable when this replica may not accept writes at all
// (Config.Quorum): under any quorum but QuorumOne, while it has not joined
// its Peers, and while it sees no more than half of the members it knows
// alive. The second check is what stops a minority side that has W members
// of its own from placing keys on them (placement follows the live
// members, so that the majority side keeps every key writable); the copy
// count (writeQuorum) is what makes an acknowledged write durable on W
// copies, also before failure detection has noticed a partition.
func (s *Store) writeNodes() ([]node, writeQuorum, error) {
	leaving := s.leaving.Load()
	nodes, alive, known := s.members.view(leaving)
	wq := quorumFor(s.cfg.Quorum, s.cfg.Backups, known)
	if s.cfg.Quorum == QuorumOne || leaving {
		// A leaving replica only forwards; the primary decides.
		return nodes, wq, nil
	}
	if !s.members.joined.Load() {
		return nil, wq, fmt.Errorf("replstore: not joined to peers %v yet: %w: %w", s.cfg.Peers, session.ErrUnavailable, ErrNoQuorum)
	}
	if err := minority(alive, known); err != nil {
		return nil, wq, err
	}
	if wq.need > wq.copies {
		return nil, wq, wq.reachable(0)
	}
	return nodes, wq, nil
}

// minority returns an error wrapping ErrNoQuorum and session.ErrUnavailable
// when a replica sees no more than half of the members it knows alive. It
// is then on the minority side of a partition (or most members died): the
// other side may have changed any key since, so it neither writes (its
// writes would vanish at the heal) nor reads (its copies may be stale, and
// a key it holds no copy of may exist over there: answering "no session"
// would make the session manager issue a new, empty one). Under QuorumOne
// neither is checked.
func minority(alive, known int) error {
	if majority := known/2 + 1; alive < majority {
		return fmt.Errorf("replstore: %d of %d known members alive, fewer than a majority (%d): %w: %w", alive, known, majority, session.ErrUnavailable, ErrNoQuorum)
	}
	return nil
}

// Count returns how many live records this replica holds a copy of.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("replstore: count: %w", err)
	}
	if s.closed.Load() {
		return 0, fmt.Errorf("replstore: count: %w: %w", session.ErrUnavailable, ErrClosed)
	}
	return s.tab.countLive(time.Now()), nil
}

// check validates a call's context, key and the store's state.
func (s *Store) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("replstore: %w", err)
	}
	if s.closed.Load() {
		return fmt.Errorf("replstore: %w: %w", session.ErrUnavailable, ErrClosed)
	}
	return validKey(key)
}

// validKey enforces the session.Store key format.
func validKey(key string) error {
	if err := storekey.Check(key); err != nil {
		return fmt.Errorf("replstore: %w: %w", ErrInvalidKey, err)
	}
	return nil
}

// nodes returns the live members keys are placed on: all of them, or all
// but this replica once it is leaving.
func (s *Store) nodes() []node { return s.members.live(s.leaving.Load()) }

// write runs op on key: as the primary, or by forwarding it to the primary.
// hops counts how often the request was forwarded already.
func (s *Store) write(ctx context.Context, op byte, key string, rec session.Record, hops int) (uint64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	nodes, wq, err := s.writeNodes()
	if err != nil {
		s.metrics.refused.Inc()
		return 0, fmt.Errorf("replstore: %s: %w", opName(op), err)
	}
	own := owners(key, nodes, s.cfg.Backups)
	if len(own) == 0 {
		return 0, fmt.Errorf("replstore: %s: no live member: %w", opName(op), session.ErrUnavailable)
	}
	if own[0].Name == s.name {
		if err := wq.reachable(len(own)); err != nil {
			s.metrics.refused.Inc()
			return 0, fmt.Errorf("replstore: %s: %w", opName(op), err)
		}
		return s.primaryWrite(ctx, op, key, rec, own, wq)
	}
	if op == opPut && rec.Version != 0 {
		// A backup's copy is never older than what its primary acknowledged,
		// so a held version above the expected one is a final conflict:
		// answer it here rather than at the primary.
		if cur, ok := s.tab.get(key); ok && cur.Rec.Version > rec.Version && !s.cfg.Async {
			return 0, fmt.Errorf("replstore: put: stored version is not %d: %w", rec.Version, session.ErrConflict)
		}
	}
	if hops >= maxHops {
		return 0, fmt.Errorf("replstore: %s: members disagree on the primary of the key (membership changing): %w", opName(op), session.ErrUnavailable)
	}
	s.metrics.forwarded.WithLabelValues(opName(op)).Inc()
	req := writeRequest{Op: op, Key: key, Entry: entry{Rec: rec}, Hops: byte(hops + 1)}
	// The primary may wait for the key's lock and then for its backups, each
	// bounded by RPCTimeout.
	resp, err := s.rpcWrite(ctx, 3*s.cfg.RPCTimeout, own[0].RPCAddr, req)
	if err != nil {
		return 0, fmt.Errorf("replstore: %s via primary %s: %w", opName(op), own[0].Name, err)
	}
	if resp.Code != 0 {
		return 0, fmt.Errorf("replstore: %s via primary %s: %w", opName(op), own[0].Name, codeError(resp.Code, resp.Message))
	}
	return resp.Version, nil
}

// maxStaleRetries bounds how often a primary retries a write after a backup
// showed it a newer copy than its own.
const maxStaleRetries = 3

// primaryWrite applies op as the key's primary: compare-and-swap against the
// local copy, copy to the backups, then apply locally once wq.need copies
// (this one included) have the write, all under the key's lock so that
// writes to one key reach the backups in order.
func (s *Store) primaryWrite(ctx context.Context, op byte, key string, rec session.Record, own []node, wq writeQuorum) (uint64, error) {
	if op == opPut {
		// Fail a compare-and-swap that cannot succeed without queueing for
		// the lock: versions only grow, so a held version above the
		// expected one (or a live record for a create) is final.
		if cur, ok := s.tab.get(key); ok && cur.live(time.Now()) && (rec.Version == 0 || cur.Rec.Version > rec.Version) {
			return 0, fmt.Errorf("replstore: put: stored version is not %d: %w", rec.Version, session.ErrConflict)
		}
	}
	lockCtx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
	unlock, err := s.locks.Lock(lockCtx, key)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("replstore: %s: %w", opName(op), ctx.Err())
		}
		return 0, fmt.Errorf("replstore: %s: key busy for %v: %w", opName(op), s.cfg.RPCTimeout, session.ErrUnavailable)
	}
	defer unlock()
	backups := own[1:]
	for attempt := 0; ; attempt++ {
		now := time.Now()
		cur, held, err := s.primaryCopy(ctx, op, key, rec, own)
		if err != nil {
			return 0, err
		}
		next, skip, err := apply(op, cur, held, rec, now)
		if err != nil || skip {
			return cur.Rec.Version, err
		}
		prev := uint64(0)
		if held {
			prev = cur.Rec.Version
		}
		if s.cfg.Async && wq.need == 1 {
			s.tab.set(key, next)
			s.enqueue(ctx, key, next, backups)
			return next.Rec.Version, nil
		}
		stale, acked, missed, err := s.replicate(ctx, key, prev, next, backups)
		if stale != nil && attempt < maxStaleRetries {
			// A backup holds a newer record than this primary did: adopt
			// it and decide again.
			s.tab.merge(key, *stale, now)
			continue
		}
		if stale != nil {
			return 0, fmt.Errorf("replstore: %s: backups keep showing newer copies: %w", opName(op), session.ErrConflict)
		}
		if 1+acked < wq.need {
			// Fewer than W copies have the write (typically a backup
			// behind a partition that failure detection has not noticed
			// yet, or one that died). Leave it undone here, so that the
			// primary's copy, and every read and write decided by it,
			// stay at the acknowledged version: a version applied here
			// now would be newer than what the majority side
			// acknowledges meanwhile, and win over it when the partition
			// heals. A backup that did apply it (its answer was lost)
			// holds an unacknowledged version, as after any write whose
			// answer was lost; it refuses this primary's next write with
			// that copy, which the primary then adopts.
			s.metrics.refused.Inc()
			return 0, fmt.Errorf("replstore: %s: %w", opName(op), wq.refused(1+acked, err))
		}
		s.tab.set(key, next)
		if len(missed) > 0 {
			// Enough copies have it; send it once more, in the
			// background, to the backups that missed it, rather than
			// leave them stale until the next write to the key or the
			// next membership change.
			s.log.Debug("replstore: write acknowledged by a quorum; repairing the backups that missed it",
				"key", key, "copies", 1+acked, "quorum", wq.need, "err", err)
			s.enqueue(ctx, key, next, missed)
		}
		return next.Rec.Version, nil
	}
}

// primaryCopy returns the primary's copy of key before op. A new primary
// (after a death, or a restart with empty memory) may not have the record
// yet: for a touch or a compare-and-swap it gets it from the backups (or,
// failing them, the other members) before deciding, rather than failing
// against nothing.
func (s *Store) primaryCopy(ctx context.Context, op byte, key string, rec session.Record, own []node) (entry, bool, error) {
	cur, held := s.tab.get(key)
	if held || !(op == opTouch || (op == opPut && rec.Version != 0)) {
		return cur, held, nil
	}
	e, ok, err := s.fetchFrom(ctx, key, own[1:])
	if err == nil && !ok {
		// Nor do the backups, yet: see Get.
		e, ok, err = s.findElsewhere(ctx, key, own)
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("replstore: %s: new primary could not fetch the record: %w", opName(op), err)
	}
	if ok {
		s.tab.merge(key, e, time.Now())
		cur, held = s.tab.get(key)
	}
	return cur, held, nil
}

// apply computes the entry op makes of cur. skip means there is nothing to
// write (deleting what is already deleted).
func apply(op byte, cur entry, held bool, rec session.Record, now time.Time) (next entry, skip bool, err error) {
	live := held && cur.live(now)
	var prev uint64
	if held {
		prev = cur.Rec.Version
	}
	switch op {
	case opPut:
		if rec.Version == 0 && live {
			return entry{}, false, fmt.Errorf("replstore: put: create-only write found a live record: %w", session.ErrConflict)
		}
		if rec.Version != 0 && (!live || cur.Rec.Version != rec.Version) {
			return entry{}, false, fmt.Errorf("replstore: put: stored version is not %d: %w", rec.Version, session.ErrConflict)
		}
		rec.Version = nextVersion(prev, now)
		return entry{Rec: rec}, false, nil
	case opTouch:
		if !live {
			return entry{}, false, fmt.Errorf("replstore: touch: %w", session.ErrNotFound)
		}
		cur.Rec.IdleExpiry = rec.IdleExpiry
		return cur, false, nil
	case opDelete:
		if held && cur.Deleted {
			return entry{}, true, nil
		}
		return entry{Deleted: true, DeletedAt: now, Rec: session.Record{Version: nextVersion(prev, now)}}, false, nil
	default:
		return entry{}, false, fmt.Errorf("replstore: unknown operation %d", op)
	}
}

// replicate sends a primary's write to every backup at once and waits for
// all. It returns the newest copy a backup refused the write with, if any,
// how many backups applied the write (acked), the backups that did not
// answer (missed), and an error wrapping session.ErrUnavailable if a backup
// could not be reached. A call whose answer was lost after it was sent is
// made once more (applying a write twice is harmless), so that a backup
// that is alive ends up with the write and one that died is known not to
// count.
func (s *Store) replicate(ctx context.Context, key string, prev uint64, next entry, backups []node) (stale *entry, acked int, missed []node, err error) {
	if len(backups) == 0 {
		return nil, 0, nil, nil
	}
	start := time.Now()
	defer func() { s.metrics.replication.Observe(time.Since(start).Seconds()) }()
	type answer struct {
		resp replicateResponse
		err  error
	}
	answers := make([]answer, len(backups))
	req := replicateRequest{Key: key, Prev: prev, Entry: next}
	if len(backups) == 1 {
		answers[0].resp, answers[0].err = s.rpcReplicate(ctx, backups[0].RPCAddr, req)
	} else {
		var wg sync.WaitGroup
		for i, b := range backups {
			wg.Go(func() {
				answers[i].resp, answers[i].err = s.rpcReplicate(ctx, b.RPCAddr, req)
			})
		}
		wg.Wait()
	}
	for i, a := range answers {
		if a.err != nil && !noEffect(a.err) && !errors.Is(a.err, context.DeadlineExceeded) && ctx.Err() == nil {
			answers[i].resp, answers[i].err = s.rpcReplicate(ctx, backups[i].RPCAddr, req)
		}
	}
	var errs []error
	for i, a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
			missed = append(missed, backups[i])
		case !a.resp.OK:
			e := a.resp.Current
			if stale == nil || e.newer(*stale) {
				stale = &e
			}
		default:
			acked++
		}
	}
	if len(errs) > 0 {
		return stale, acked, missed, fmt.Errorf("replstore: replicate to backups: %w", errors.Join(errs...))
	}
	return stale, acked, missed, nil
}

// fetchFrom asks nodes in order for their copy of key. It returns an error
// when none of the nodes that answered holds one and some did not answer.
func (s *Store) fetchFrom(ctx context.Context, key string, nodes []node) (entry, bool, error) {
	var errs []error
	for _, n := range nodes {
		resp, err := s.rpcGet(ctx, n.RPCAddr, key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.Held {
			return resp.Entry, true, nil
		}
	}
	return entry{}, false, errors.Join(errs...)
}

// enqueue hands an async write to the background replicators of backups.
// A full queue slows the writer down (until ctx ends) rather than dropping
// the copy.
func (s *Store) enqueue(ctx context.Context, key string, e entry, backups []node) {
	for _, b := range backups {
		q := s.queue(b)
		select {
		case q <- mergeItem{Key: key, Entry: e}:
		case <-ctx.Done():
			s.log.Warn("replstore: async replication queue full; copy left to the next rebalance", "backup", b.Name)
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// queue returns the async replication queue for backup b, starting its
// sender on first use.
func (s *Store) queue(b node) chan mergeItem {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	q, ok := s.queues[b.Name]
	if ok {
		return q
	}
	q = make(chan mergeItem, 4096)
	s.queues[b.Name] = q
	s.wg.Add(1)
	go s.asyncSender(b, q)
	return q
}

// asyncSender sends queued writes to one backup in batches.
func (s *Store) asyncSender(b node, q chan mergeItem) {
	defer s.wg.Done()
	for {
		var first mergeItem
		select {
		case first = <-q:
		case <-s.ctx.Done():
			return
		}
		batch := []mergeItem{first}
	drain:
		for len(batch) < mergeBatch {
			select {
			case it := <-q:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		addr := ""
		for _, n := range s.members.live(false) {
			if n.Name == b.Name {
				addr = n.RPCAddr
			}
		}
		if addr == "" {
			// The backup left or died: its copies are moot, and the
			// rebalance after its departure places them on new owners.
			s.queuesMu.Lock()
			delete(s.queues, b.Name)
			s.queuesMu.Unlock()
			return
		}
		if err := s.rpcMerge(s.ctx, addr, batch); err != nil {
			s.log.Warn("replstore: async replication failed; the next rebalance repairs it", "backup", b.Name, "records", len(batch), "err", err)
		}
	}
}

// membershipChanged asks the rebalancer for a pass; it never blocks.
func (s *Store) membershipChanged() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Close hands this replica's records over to their new owners, leaves the
// cluster and stops. It returns after the handover or after
// Config.LeaveTimeout; records that could not be handed over are reported in
// the error and the log.
func (s *Store) Close() error {
	var err error
	s.stop.Do(func() { err = s.close(true) })
	return err
}

// kill stops the replica abruptly, as a crash would: no handover, no leave
// message; peers find out through failure detection. Tests use it.
func (s *Store) kill() {
	s.stop.Do(func() { s.close(false) })
}

func (s *Store) close(graceful bool) error {
	var errs []error
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaveTimeout)
		defer cancel()
		s.leaving.Store(true)
		if err := s.ml.Leave(s.cfg.LeaveTimeout / 2); err != nil {
			errs = append(errs, fmt.Errorf("replstore: leave: %w", err))
		}
		for {
			err := s.rebalance(ctx, true)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				s.log.Error("replstore: handover incomplete", "err", err)
				errs = append(errs, fmt.Errorf("replstore: handover: %w", err))
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	s.closed.Store(true)
	s.cancel()
	if err := s.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("replstore: memberlist shutdown: %w", err))
	}
	s.rpcSrv.close()
	s.client.close()
	s.wg.Wait()
	s.unregister()
	s.log.Info("replstore: replica stopped", "graceful", graceful)
	return errors.Join(errs...)
}

// shutdownPartial undoes a New that failed after starting the RPC server.
func (s *Store) shutdownPartial() {
	s.closed.Store(true)
	s.cancel()
	s.rpcSrv.close()
	s.wg.Wait()
	s.unregister()
}

func (s *Store) unregister() {
	if s.reg == nil || s.metrics == nil {
		return
	}
	s.reg.Unregister(s.metrics.replication)
	s.reg.Unregister(s.metrics.rereplicated)
	s.reg.Unregister(s.metrics.forwarded)
	s.reg.Unregister(s.metrics.members)
	s.reg.Unregister(s.metrics.refused)
	s.reg.Unregister(s.metrics.refusedReads)
	s.reg.Unregister(s.metrics.replicatedBytes)
}
