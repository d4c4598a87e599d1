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
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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

// Options configures a Store. The zero value is valid.
type Options struct {
	// Prefix is prepended to every key; empty means DefaultPrefix. Give each
	// application (or test run) its own prefix; Count counts the keys under
	// it. It must not contain Redis hash-tag braces, so that the cluster
	// slot is chosen by the whole key.
	Prefix string
}

// Store is a session.Store in Redis. It is safe for concurrent use by many
// goroutines and many processes.
type Store struct {
	client redis.UniversalClient
	prefix string
	owned  bool // Close closes client: OpenURL made it
}

// Compile-time checks that Store implements the contracts it claims.
var (
	_ session.Store   = (*Store)(nil)
	_ session.Counter = (*Store)(nil)
	_ session.Pinger  = (*Store)(nil)
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
	return &Store{client: client, prefix: prefix}
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
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = DefaultPoolTimeout
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.MinIdleConns == 0 {
		o.MinIdleConns = DefaultMinIdleConns
	}
	if o.DialerRetries == 0 {
		// A stopped server refuses at once; five dial attempts per command
		// attempt only delay the 503 the caller should give.
		o.DialerRetries = DefaultDialerRetries
	}
	o.ContextTimeoutEnabled = true
	s := New(redis.NewClient(o), opts)
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
		return 0, fmt.Errorf("redisstore: put: token: %w", err)
	}
	res, err := putScript.Run(ctx, s.client, []string{s.prefix + key},
		strconv.FormatUint(rec.Version, 10), rec.Data, idle, abs, expireAt, hex.EncodeToString(tok[:])).Result()
	if err != nil {
		return 0, s.fail(ctx, "put", err)
	}
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
	n, err := touchScript.Run(ctx, s.client, []string{s.prefix + key}, unixMilli(idleExpiry)).Int64()
	if err != nil {
		return s.fail(ctx, "touch", err)
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
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return s.fail(ctx, "delete", err)
	}
	return nil
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
		return fmt.Errorf("redisstore: ping: %w", err)
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
// serve right now, rather than that the command was wrong.
var unavailablePrefixes = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "OOM", "MISCONF"}

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
