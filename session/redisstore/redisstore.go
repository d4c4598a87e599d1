// Package redisstore is a session.Store kept in Redis, through go-redis v9.
//
// Each record is one Redis hash under Prefix+key, with the fields d (data),
// v (version), i and a (idle and absolute expiry, Unix milliseconds; a=0 means
// no absolute limit) and t (the token of the Put that wrote it). Because a
// record is a single key it lives in a single hash slot, so the store works on
// a redis.ClusterClient as well as on a single node or a Sentinel failover
// client: it only needs a redis.UniversalClient.
//
// Put is one atomic compare-and-swap in one round trip: a Lua script (sent as
// EVALSHA, falling back to EVAL when the server does not have it cached)
// checks the version and writes the record. Expiry is Redis's own: every
// write sets PEXPIREAT to the earlier of the idle and absolute expiries, so a
// record that has expired is gone for every command at once, in the server's
// clock, with no sweeper. Touch changes the idle field and the key's expiry
// and never rewrites the data.
//
// The package owns the record layout and the scripts. It does not own the
// client's configuration (timeouts, pool, TLS, retries) unless the Store was
// made by OpenURL.
package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/storekey"
)

// DefaultPrefix is the key prefix of a Store whose Options.Prefix is empty.
const DefaultPrefix = "statelab:session:"

// Timeouts and pool size OpenURL applies when the URL does not set them.
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 2 * time.Second
	DefaultPoolTimeout  = 2 * time.Second

	// DefaultPoolSize is enough connections for about 1000 requests a second
	// of sub-millisecond commands with bursts, per process.
	DefaultPoolSize = 32

	// DefaultMinIdleConns keeps a few connections open so the first requests
	// after a quiet spell do not pay for a dial.
	DefaultMinIdleConns = 4

	// DefaultDialerRetries is how many times one command attempt dials
	// before it fails.
	DefaultDialerRetries = 2
)

// DefaultWaitTimeout is how long a write waits for Options.Wait replicas
// when Options.WaitTimeout is zero.
const DefaultWaitTimeout = time.Second

// ErrNotReplicated is wrapped (together with session.ErrUnavailable) by the
// error of a write that the master applied but fewer than Options.Wait
// replicas confirmed within Options.WaitTimeout: it may be lost if the
// master fails now, so it is not acknowledged.
var ErrNotReplicated = errors.New("redisstore: write not confirmed by enough replicas")

// Options configures a Store. The zero value is valid.
type Options struct {
	// Prefix is prepended to every key; empty means DefaultPrefix. Give each
	// application (or test run) its own prefix; Count counts the keys under
	// it. It must not contain Redis hash-tag braces, so that the cluster
	// slot is chosen by the whole key.
	Prefix string

	// Wait, when above zero, makes every write (Put, Touch, Delete) wait
	// until that many replicas of the master that took it have it (Redis
	// WAIT, on the write's own connection) before it is acknowledged.
	// Redis replicates asynchronously: without Wait, a master that fails
	// right after acknowledging a write can lose it when its replica is
	// promoted. A write that fewer replicas confirm within WaitTimeout
	// fails with an error wrapping ErrNotReplicated and
	// session.ErrUnavailable (it may or may not survive). Wait needs a
	// single-node, Sentinel or Cluster client (redis.Client or
	// redis.ClusterClient).
	Wait int

	// WaitTimeout bounds the wait for replicas; zero means
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// Store is a session.Store in Redis. It is safe for concurrent use by many
// goroutines and many processes.
type Store struct {
	client      redis.UniversalClient
	prefix      string
	owned       bool // Close closes client: OpenURL made it
	wait        int
	waitTimeout time.Duration
}

// Compile-time checks that Store implements the contracts it claims.
var (
	_ session.Store       = (*Store)(nil)
	_ session.Counter     = (*Store)(nil)
	_ session.Pinger      = (*Store)(nil)
	_ session.BatchPutter = (*Store)(nil)
)

// New returns a Store that keeps records in client under opts.Prefix. The
// caller keeps ownership of client: Close does not close it. For ctx
// deadlines to bound every call, client should be configured with
// ContextTimeoutEnabled (OpenURL does this).
func New(client redis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	wt := opts.WaitTimeout
	if wt <= 0 {
		wt = DefaultWaitTimeout
	}
	return &Store{client: client, prefix: prefix, wait: max(opts.Wait, 0), waitTimeout: wt}
}

// OpenURL connects to the Redis server named by a redis:// or rediss:// URL
// (see redis.ParseURL for its parameters), checks it with a PING bounded by
// ctx, and returns a Store that owns the client. Timeouts and pool size the URL
// leaves unset get the Default values of this package. An unreachable server
// returns an error wrapping session.ErrUnavailable.
func OpenURL(ctx context.Context, url string, opts Options) (*Store, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: parse URL: %w", err)
	}
	u := &redis.UniversalOptions{
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolTimeout: o.PoolTimeout, PoolSize: o.PoolSize, MinIdleConns: o.MinIdleConns, DialerRetries: o.DialerRetries,
	}
	withDefaults(u)
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = u.DialTimeout, u.ReadTimeout, u.WriteTimeout
	o.PoolTimeout, o.PoolSize, o.MinIdleConns, o.DialerRetries = u.PoolTimeout, u.PoolSize, u.MinIdleConns, u.DialerRetries
	o.ContextTimeoutEnabled = true
	if o.MaintNotificationsConfig == nil {
		o.MaintNotificationsConfig = u.MaintNotificationsConfig
	}
	return open(ctx, redis.NewClient(o), opts)
}

// OpenCluster connects to the Redis Cluster that any of addrs (host:port of
// some of its nodes) belongs to, checks it with a PING bounded by
// ctx, and returns a Store that owns the client. Timeouts and pool size are
// this package's Default values. An unreachable cluster returns an error
// wrapping session.ErrUnavailable.
func OpenCluster(ctx context.Context, addrs []string, opts Options) (*Store, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("redisstore: cluster: no node address")
	}
	u := &redis.UniversalOptions{Addrs: addrs}
	withDefaults(u)
	return open(ctx, redis.NewClusterClient(u.Cluster()), opts)
}

// OpenSentinel connects to the master that Redis Sentinel monitors under a
// name, through a spec "MASTER@ADDR,ADDR,..." (the master's name, then
// host:port of some sentinels; see ParseSentinel), checks it with a PING
// bounded by ctx, and returns a Store that owns the client. The client asks
// the sentinels for the current master and follows failovers. An
// unreachable master returns an error wrapping session.ErrUnavailable.
func OpenSentinel(ctx context.Context, spec string, opts Options) (*Store, error) {
	master, addrs, err := ParseSentinel(spec)
	if err != nil {
		return nil, err
	}
	u := &redis.UniversalOptions{MasterName: master, Addrs: addrs}
	withDefaults(u)
	return open(ctx, redis.NewFailoverClient(u.Failover()), opts)
}

// ParseSentinel splits a sentinel spec "MASTER@ADDR,ADDR,..." into the
// master's name and the sentinels' host:port addresses.
func ParseSentinel(spec string) (master string, addrs []string, err error) {
	master, list, ok := strings.Cut(spec, "@")
	if !ok || master == "" || list == "" {
		return "", nil, fmt.Errorf("redisstore: sentinel spec %q: want MASTER@HOST:PORT[,HOST:PORT...]", spec)
	}
	for _, a := range strings.Split(list, ",") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", nil, fmt.Errorf("redisstore: sentinel spec %q: address %q: %w", spec, a, err)
		}
		addrs = append(addrs, a)
	}
	return master, addrs, nil
}

// withDefaults fills the timeouts and pool settings o leaves unset with this
// package's Default values.
func withDefaults(o *redis.UniversalOptions) {
	o.DialTimeout = cmp.Or(o.DialTimeout, DefaultDialTimeout)
	o.ReadTimeout = cmp.Or(o.ReadTimeout, DefaultReadTimeout)
	o.WriteTimeout = cmp.Or(o.WriteTimeout, DefaultWriteTimeout)
	o.PoolTimeout = cmp.Or(o.PoolTimeout, DefaultPoolTimeout)
	o.PoolSize = cmp.Or(o.PoolSize, DefaultPoolSize)
	o.MinIdleConns = cmp.Or(o.MinIdleConns, DefaultMinIdleConns)
	// A stopped server refuses at once; five dial attempts per command
	// attempt only delay the 503 the caller should give.
	o.DialerRetries = cmp.Or(o.DialerRetries, DefaultDialerRetries)
	o.ContextTimeoutEnabled = true
	if o.MaintNotificationsConfig == nil {
		// The maintenance-notification handshake is for Redis Cloud and
		// Redis Enterprise; on a plain server its "auto" fallback rewrites
		// the client's options, which races when Options.Wait takes
		// connections of its own (go-redis v9.23 Client.Conn shares them).
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
}

// open returns a Store owning client once it answers a PING bounded by ctx.
func open(ctx context.Context, client redis.UniversalClient, opts Options) (*Store, error) {
	s := New(client, opts)
	s.owned = true
	if err := s.Ping(ctx); err != nil {
		_ = s.client.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the client if the Store made it (OpenURL); a client passed to
// New stays open for its owner to close.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// putScript is Put's compare-and-swap. KEYS[1] is the record; ARGV is the
// expected version ("0": create-only), data, idle and absolute expiry (Unix
// ms), the PEXPIREAT time, and the write's random token. It returns the new
// version as a decimal string (Lua numbers are doubles, so versions never pass
// through one), or the integer -1 on a version mismatch.
//
// The token makes a retried Put safe: if go-redis resends the script after
// the first run committed but its reply was lost, the version no longer
// matches, but the stored token is this write's, so the script reports the
// version that write made instead of a conflict (which would make the caller
// apply its change twice).
//
// A new record's version is the server's clock in microseconds, and updates
// add one, so a record re-created after a delete or expiry does not reuse a
// version of its predecessor (that would need over a million updates a
// second to one key).
var putScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
local v
if ARGV[1] == '0' then
  if cur[1] then
    if cur[2] == ARGV[6] then return cur[1] end
    return -1
  end
  local now = redis.call('TIME')
  v = now[1] .. string.format('%06d', tonumber(now[2]))
  redis.call('HSET', KEYS[1], 'v', v)
else
  if cur[1] ~= ARGV[1] then
    if cur[1] and cur[2] == ARGV[6] then return cur[1] end
    return -1
  end
  redis.call('HINCRBY', KEYS[1], 'v', 1)
  v = redis.call('HGET', KEYS[1], 'v')
end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'i', ARGV[3], 'a', ARGV[4], 't', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return v
`)

// touchScript moves a live record's idle expiry. KEYS[1] is the record;
// ARGV[1] is the new idle expiry (Unix ms). The key's PEXPIREAT becomes the
// earlier of it and the record's absolute expiry. It returns 0 when the
// record is missing (Redis has already dropped expired keys), else 1.
var touchScript = redis.NewScript(`
local a = redis.call('HGET', KEYS[1], 'a')
if not a then return 0 end
redis.call('HSET', KEYS[1], 'i', ARGV[1])
local at = ARGV[1]
if a ~= '0' and tonumber(a) < tonumber(at) then at = a end
redis.call('PEXPIREAT', KEYS[1], at)
return 1
`)

// Get returns the live record under key, or an error wrapping
// session.ErrNotFound. It is one HMGET.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	if err := s.check(ctx, "get", key); err != nil {
		return session.Record{}, err
	}
	vals, err := s.client.HMGet(ctx, s.prefix+key, "d", "v", "i", "a").Result()
	if err != nil {
		return session.Record{}, s.fail(ctx, "get", err)
	}
	if len(vals) != 4 || vals[1] == nil {
		return session.Record{}, fmt.Errorf("redisstore: get: %w", session.ErrNotFound)
	}
	var rec session.Record
	fields := make([]string, 4)
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			return session.Record{}, fmt.Errorf("redisstore: get %s: field %d is %T, not a string (a foreign key under the store's prefix?)", key, i, v)
		}
		fields[i] = str
	}
	rec.Data = []byte(fields[0])
	if rec.Version, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return session.Record{}, fmt.Errorf("redisstore: get %s: version: %w", key, err)
	}
	idle, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: get %s: idle expiry: %w", key, err)
	}
	abs, err := strconv.ParseInt(fields[3], 10, 64)
	if err != nil {
		return session.Record{}, fmt.Errorf("redisstore: get %s: absolute expiry: %w", key, err)
	}
	rec.IdleExpiry = time.UnixMilli(idle)
	if abs != 0 {
		rec.AbsoluteExpiry = time.UnixMilli(abs)
	}
	return rec, nil
}

// Put writes rec under key if the stored version is rec.Version (zero: no live
// record) and returns the new version; a mismatch returns an error wrapping
// session.ErrConflict. It is one script call, atomic on the server.
func (s *Store) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if err := s.check(ctx, "put", key); err != nil {
		return 0, err
	}
	args, err := putArgs(rec)
	if err != nil {
		return 0, err
	}
	var res any
	err = s.write(ctx, "put", key, func(c writer) (err error) {
		res, err = putScript.Run(ctx, c, []string{s.prefix + key}, args...).Result()
		return err
	})
	if err != nil {
		return 0, err
	}
	return putResult(rec, res)
}

// putArgs returns putScript's ARGV for rec, with a fresh random token.
func putArgs(rec session.Record) ([]any, error) {
	idle := unixMilli(rec.IdleExpiry)
	var abs int64
	if !rec.AbsoluteExpiry.IsZero() {
		abs = unixMilli(rec.AbsoluteExpiry)
	}
	expireAt := idle
	if abs != 0 && abs < expireAt {
		expireAt = abs
	}
	var tok [12]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("redisstore: put: token: %w", err)
	}
	return []any{strconv.FormatUint(rec.Version, 10), rec.Data, idle, abs, expireAt, hex.EncodeToString(tok[:])}, nil
}

// putResult turns putScript's reply to the write of rec into Put's result.
func putResult(rec session.Record, res any) (uint64, error) {
	switch r := res.(type) {
	case int64:
		if rec.Version == 0 {
			return 0, fmt.Errorf("redisstore: put: create-only but a live record exists: %w", session.ErrConflict)
		}
		return 0, fmt.Errorf("redisstore: put: version %d is not the stored one: %w", rec.Version, session.ErrConflict)
	case string:
		v, err := strconv.ParseUint(r, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redisstore: put: script returned version %q: %w", r, err)
		}
		return v, nil
	default:
		return 0, fmt.Errorf("redisstore: put: script returned %T", res)
	}
}

// Touch moves the idle expiry of the live record under key to idleExpiry
// without rewriting its data or version; a missing or expired record returns
// an error wrapping session.ErrNotFound.
func (s *Store) Touch(ctx context.Context, key string, idleExpiry time.Time) error {
	if err := s.check(ctx, "touch", key); err != nil {
		return err
	}
	var n int64
	err := s.write(ctx, "touch", key, func(c writer) (err error) {
		n, err = touchScript.Run(ctx, c, []string{s.prefix + key}, unixMilli(idleExpiry)).Int64()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("redisstore: touch: %w", session.ErrNotFound)
	}
	return nil
}

// Delete removes the record under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, "delete", key); err != nil {
		return err
	}
	return s.write(ctx, "delete", key, func(c writer) error {
		return c.Del(ctx, s.prefix+key).Err()
	})
}

// writer is what a write needs of a client or a connection.
type writer interface {
	redis.Scripter
	Del(ctx context.Context, keys ...string) *redis.IntCmd
}

// write runs fn, one write to key, on the client. With Options.Wait it runs
// it on a connection of its own to the master that holds key, and then
// WAITs there for the replicas. Errors come back through fail.
func (s *Store) write(ctx context.Context, op, key string, fn func(c writer) error) error {
	if s.wait == 0 {
		if err := fn(s.client); err != nil {
			return s.fail(ctx, op, err)
		}
		return nil
	}
	var node *redis.Client
	switch c := s.client.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		var err error
		if node, err = c.MasterForKey(ctx, s.prefix+key); err != nil {
			return s.fail(ctx, op, err)
		}
	default:
		return fmt.Errorf("redisstore: %s: Options.Wait needs a redis.Client or redis.ClusterClient, not %T", op, s.client)
	}
	conn := node.Conn()
	defer conn.Close()
	err := fn(conn)
	var n int64
	if err == nil {
		n, err = conn.Wait(ctx, s.wait, s.waitTimeout).Result()
	}
	if err != nil {
		if cc, ok := s.client.(*redis.ClusterClient); ok && stale(err) {
			// This path bypasses the cluster client's redirect handling:
			// after a failover its slot map is stale until reloaded.
			cc.ReloadState(ctx)
		}
		return s.fail(ctx, op, err)
	}
	if n < int64(s.wait) {
		return fmt.Errorf("redisstore: %s: %d of %d replicas confirmed the write within %v: %w: %w",
			op, n, s.wait, s.waitTimeout, session.ErrUnavailable, ErrNotReplicated)
	}
	return nil
}

// stale reports whether err from a cluster node may come from a slot map
// that no longer matches the cluster: a redirect, or a node that is gone
// or no longer a master.
func stale(err error) bool {
	if redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK") || redis.HasErrorPrefix(err, "READONLY") {
		return true
	}
	var rerr redis.Error
	return !errors.As(err, &rerr) // a transport error: the node may be down
}

// Count returns the number of live records under the store's prefix. It
// SCANs the keyspace (every master of a cluster), which is fine for the lab's
// scale but costs O(keys in the database): do not call it per request.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redisstore: count: %w", err)
	}
	pattern := escapeGlob(s.prefix) + "*"
	count := func(ctx context.Context, c redis.UniversalClient) (int, error) {
		n := 0
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		return n, iter.Err()
	}
	var (
		n   int
		err error
	)
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		var total atomic.Int64
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			m, err := count(ctx, c)
			total.Add(int64(m))
			return err
		})
		n = int(total.Load())
	} else {
		n, err = count(ctx, s.client)
	}
	if err != nil {
		return 0, s.fail(ctx, "count", err)
	}
	return n, nil
}

// Ping returns nil when Redis answers PING, otherwise an error wrapping
// session.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		// A deadline that passed before the PING (opening a sentinel
		// set can spend it all asking unreachable sentinels) means
		// unavailable, as it does during one; a cancel stays a cancel.
		return s.fail(ctx, "ping", err)
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

func (s *Store) check(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if err := storekey.Check(key); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return nil
}

// unavailablePrefixes are the Redis error replies that mean the server cannot
// serve right now, rather than that the command was wrong. (A redirect
// reaches the store only on the Options.Wait path, which talks to one
// cluster node directly; the next call follows the reloaded slot map.)
var unavailablePrefixes = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "OOM", "MISCONF", "MOVED", "ASK"}

// fail wraps err from a Redis call. A cancelled ctx gives ctx's error alone;
// an error reply of a working server stays a plain error; everything else
// (refused, reset, timed out, pool exhausted, client closed, server loading
// or down) wraps session.ErrUnavailable, and ctx's error too when its deadline
// passed.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch ctxErr := ctx.Err(); {
	case errors.Is(ctxErr, context.Canceled):
		return fmt.Errorf("redisstore: %s: %w", op, ctxErr)
	case ctxErr != nil:
		// The caller's deadline passed while the backend worked: whatever
		// err says (a timeout, a cancelled statement), the backend was too
		// slow to serve.
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("redisstore: %s: %w: %w", op, session.ErrUnavailable, err)
		}
		return fmt.Errorf("redisstore: %s: %w: %w (%w)", op, session.ErrUnavailable, err, ctxErr)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		unavailable := false
		for _, p := range unavailablePrefixes {
			if redis.HasErrorPrefix(err, p) {
				unavailable = true
				break
			}
		}
		if !unavailable {
			return fmt.Errorf("redisstore: %s: %w", op, err)
		}
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, session.ErrUnavailable, err)
}

// unixMilli returns t in Unix milliseconds, at least 1: PEXPIREAT rejects
// some out-of-range times, and any time before 1970 has expired anyway.
func unixMilli(t time.Time) int64 {
	return max(t.UnixMilli(), 1)
}

// escapeGlob escapes the characters SCAN MATCH treats as a pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
