// Package memstore is a session.Store that keeps records in this process's
// memory: a sharded map with per-record versions and a background sweeper that
// frees expired records.
//
// It owns nothing outside the process: records die with it and are not shared
// with other replicas (session/replstore copies them to peers; redisstore,
// pgstore and sqlitestore share them through a backend). Expiry is checked on
// every read, so correctness never depends on the sweeper having run; the
// sweeper only returns memory.
//
// Options.MaxSessions bounds the memory one client can make the store hold.
// The policy when the store is full is to refuse new sessions, not to evict:
// creating one more record fails with an error wrapping ErrFull and
// session.ErrUnavailable (the cart answers 503 with Retry-After), while
// every existing session goes on being read, updated and touched. Evicting
// instead would let whoever floods the store push real users' carts out;
// refusing costs new visitors until the flood's records expire (their idle
// timeout) — the failure stays visible and nobody loses data.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/internal/storekey"
	"github.com/statelab/statelab/session/internal/sweeper"
)

// shardCount is the number of independently locked maps; a power of two so
// the shard is the hash's low bits.
const shardCount = 64

// DefaultSweepInterval is how often the sweeper of a Store made by New frees
// expired records.
const DefaultSweepInterval = 30 * time.Second

// ErrFull is wrapped (together with session.ErrUnavailable) by the error
// of a Put that would create a record beyond Options.MaxSessions.
var ErrFull = errors.New("memstore: full")

// Options configures a Store made by NewWithOptions. The zero value is valid.
type Options struct {
	// SweepInterval is how often expired records are freed; zero means
	// DefaultSweepInterval, and a negative value disables the sweeper (as
	// in every store of this module: expired records are never returned,
	// a sweep only frees their memory).
	SweepInterval time.Duration

	// MaxSessions caps the records held; zero means no cap. When the cap is
	// reached, expired records are freed at once (at most once a second)
	// and, if the store is still full, creating a record fails with ErrFull
	// (see the package documentation for why it refuses rather than
	// evicts). Concurrent creations may overshoot the cap by a few.
	MaxSessions int
}

// Store is an in-memory session.Store. Create it with New; call Close to stop
// its sweeper. It is safe for concurrent use.
type Store struct {
	shards [shardCount]shard

	// lastVersion is the newest version handed out by any Put. Versions are
	// unique across all keys, so a record created after another was deleted
	// or expired under the same key never reuses one of its versions.
	lastVersion atomic.Uint64

	sweeper *sweeper.Sweeper

	max       int
	n         atomic.Int64 // records in the maps, expired or not
	lastFreed atomic.Int64 // unix nanos of the last sweep forced by a full store
}

type shard struct {
	mu      sync.Mutex
	records map[string]entry
}

// entry is one stored record. Its data slice is owned by the store: it is
// copied in by Put and out by Get and never handed to callers.
type entry struct {
	data     []byte
	version  uint64
	idle     time.Time
	absolute time.Time
}

func (e entry) expired(now time.Time) bool {
	return session.Record{IdleExpiry: e.idle, AbsoluteExpiry: e.absolute}.Expired(now)
}

// Compile-time checks that Store implements the contracts it claims.
var (
	_ session.Store   = (*Store)(nil)
	_ session.Counter = (*Store)(nil)
	_ session.Pinger  = (*Store)(nil)
)

// New returns an empty Store whose sweeper runs every DefaultSweepInterval.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty Store configured by opts.
func NewWithOptions(opts Options) *Store {
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	s := &Store{max: max(opts.MaxSessions, 0)}
	for i := range s.shards {
		s.shards[i].records = make(map[string]entry)
	}
	s.sweeper = sweeper.Start(interval, func(context.Context) { s.sweep(time.Now()) })
	return s
}

// Close stops the sweeper and waits for it to exit. The records stay readable;
// Close only ends the background work. It is safe to call more than once.
func (s *Store) Close() error {
	s.sweeper.Stop()
	return nil
}

func (s *Store) shard(key string) *shard {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &s.shards[h.Sum32()&(shardCount-1)]
}

// check is the precondition of every method: a live ctx and a valid key.
func check(ctx context.Context, op, key string) error {
	return storekey.CheckCall(ctx, "memstore", op, key)
}

// Get returns the live record under key, or an error wrapping
// session.ErrNotFound when it is missing or expired.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	if err := check(ctx, "get", key); err != nil {
		return session.Record{}, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	e, ok := sh.records[key]
	sh.mu.Unlock()
	if !ok || e.expired(time.Now()) {
		return session.Record{}, fmt.Errorf("memstore: get: %w", session.ErrNotFound)
	}
	return session.Record{
		Data:           clone(e.data),
		Version:        e.version,
		IdleExpiry:     e.idle,
		AbsoluteExpiry: e.absolute,
	}, nil
}

// Put stores rec under key if the stored version is rec.Version (zero: no live
// record), and returns the new version. A mismatch returns an error wrapping
// session.ErrConflict and changes nothing.
func (s *Store) Put(ctx context.Context, key string, rec session.Record) (uint64, error) {
	if err := check(ctx, "put", key); err != nil {
		return 0, err
	}
	if rec.Version == 0 && s.max > 0 && !s.room(time.Now()) {
		return 0, fmt.Errorf("memstore: put: %d sessions held: %w: %w", s.max, ErrFull, session.ErrUnavailable)
	}
	data := clone(rec.Data) // copy outside the lock
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.records[key]
	live := ok && !cur.expired(time.Now())
	switch {
	case rec.Version == 0 && live:
		return 0, fmt.Errorf("memstore: put: create-only but a live record exists: %w", session.ErrConflict)
	case rec.Version != 0 && !live:
		return 0, fmt.Errorf("memstore: put: version %d expected but no live record: %w", rec.Version, session.ErrConflict)
	case rec.Version != 0 && cur.version != rec.Version:
		return 0, fmt.Errorf("memstore: put: version %d expected, stored %d: %w", rec.Version, cur.version, session.ErrConflict)
	}
	v := s.lastVersion.Add(1)
	if !ok {
		s.n.Add(1)
	}
	sh.records[key] = entry{data: data, version: v, idle: rec.IdleExpiry, absolute: rec.AbsoluteExpiry}
	return v, nil
}

// Touch moves the idle expiry of the live record under key to idleExpiry,
// keeping its data and version. A missing or expired record returns an error
// wrapping session.ErrNotFound.
func (s *Store) Touch(ctx context.Context, key string, idleExpiry time.Time) error {
	if err := check(ctx, "touch", key); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.records[key]
	if !ok || e.expired(time.Now()) {
		return fmt.Errorf("memstore: touch: %w", session.ErrNotFound)
	}
	e.idle = idleExpiry
	sh.records[key] = e
	return nil
}

// Delete removes the record under key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, "delete", key); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	if _, ok := sh.records[key]; ok {
		delete(sh.records, key)
		s.n.Add(-1)
	}
	sh.mu.Unlock()
	return nil
}

// room reports whether a new record may be created under the MaxSessions
// cap, freeing expired records first (at most once a second) when the
// store looks full.
func (s *Store) room(now time.Time) bool {
	if s.n.Load() < int64(s.max) {
		return true
	}
	last := s.lastFreed.Load()
	if now.UnixNano()-last >= int64(time.Second) && s.lastFreed.CompareAndSwap(last, now.UnixNano()) {
		s.sweep(now)
	}
	return s.n.Load() < int64(s.max)
}

// Count returns the number of live records.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: count: %w", err)
	}
	now := time.Now()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.records {
			if !e.expired(now) {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n, nil
}

// Ping reports whether the store can serve: always, unless ctx is done.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: ping: %w", err)
	}
	return nil
}

// sweep frees the records expired at now and returns how many it freed. It
// holds one shard's lock at a time, so readers of other shards never wait.
func (s *Store) sweep(now time.Time) int {
	freed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.records {
			if e.expired(now) {
				delete(sh.records, k)
				freed++
			}
		}
		sh.mu.Unlock()
	}
	s.n.Add(-int64(freed))
	return freed
}

// held returns how many records are in memory, expired or not.
func (s *Store) held() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.records)
		sh.mu.Unlock()
	}
	return n
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
