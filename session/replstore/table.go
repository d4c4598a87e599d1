package replstore

import (
	"sync"
	"time"

	"github.com/statelab/statelab/session"
)

// entry is one key's state on a replica: a record, or a tombstone left by
// Delete so that a stale copy cannot bring the key back.
type entry struct {
	Rec     session.Record
	Deleted bool
	// DeletedAt is when the tombstone was made (zero for records).
	DeletedAt time.Time
}

// live reports whether e is a record that a Get may return at now.
func (e entry) live(now time.Time) bool {
	return !e.Deleted && !e.Rec.Expired(now)
}

// newer reports whether e should replace cur when both are copies of one key:
// a higher version wins; at equal versions the later idle expiry wins (a
// Touch), and a tombstone beats a record.
func (e entry) newer(cur entry) bool {
	switch {
	case e.Rec.Version != cur.Rec.Version:
		return e.Rec.Version > cur.Rec.Version
	case e.Deleted != cur.Deleted:
		return e.Deleted
	default:
		return e.Rec.IdleExpiry.After(cur.Rec.IdleExpiry)
	}
}

// nextVersion returns a version strictly greater than prev. Versions follow
// the wall clock where they can, so that a key deleted and created again on
// another primary still gets a version above its old tombstone.
func nextVersion(prev uint64, now time.Time) uint64 {
	v := uint64(now.UnixNano())
	if v <= prev {
		v = prev + 1
	}
	return v
}

// table is a replica's copies of session entries.
type table struct {
	mu sync.RWMutex
	m  map[string]entry
}

func newTable() *table { return &table{m: make(map[string]entry)} }

// get returns the entry held for key.
func (t *table) get(key string) (entry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.m[key]
	return e, ok
}

// set stores e under key unconditionally.
func (t *table) set(key string, e entry) {
	t.mu.Lock()
	t.m[key] = e
	t.mu.Unlock()
}

// merge stores e under key if it is newer than the held copy, and reports
// whether it did. An entry that is already dead is not stored over nothing.
func (t *table) merge(key string, e entry, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[key]
	if !ok {
		if !e.Deleted && e.Rec.Expired(now) {
			return false
		}
		t.m[key] = e
		return true
	}
	if !e.newer(cur) {
		return false
	}
	t.m[key] = e
	return true
}

// replicate applies a primary's write of e, made over the version prev, as a
// backup. It refuses (returning the held entry and false) when it holds a
// live record the primary did not know of: a version above prev that is not
// e itself. That happens only when the primary's copy is stale, during a
// membership change.
func (t *table) replicate(key string, prev uint64, e entry, now time.Time) (entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[key]
	if ok && cur.Rec.Version > prev && cur.Rec.Version != e.Rec.Version &&
		(cur.live(now) || cur.Rec.Version > e.Rec.Version) {
		return cur, false
	}
	if ok && cur.Rec.Version == e.Rec.Version && !e.newer(cur) && !e.Deleted && !cur.Deleted {
		// Equal versions: a Touch may move the expiry either way.
		cur.Rec.IdleExpiry = e.Rec.IdleExpiry
		t.m[key] = cur
		return cur, true
	}
	t.m[key] = e
	return e, true
}

// dropIf removes key if it still holds the entry version v.
func (t *table) dropIf(key string, v uint64, deleted bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.m[key]
	if !ok || cur.Rec.Version != v || cur.Deleted != deleted {
		return false
	}
	delete(t.m, key)
	return true
}

// snapshot returns a copy of every entry.
func (t *table) snapshot() map[string]entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]entry, len(t.m))
	for k, e := range t.m {
		out[k] = e
	}
	return out
}

// countLive returns how many live records the table holds at now.
func (t *table) countLive(now time.Time) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, e := range t.m {
		if e.live(now) {
			n++
		}
	}
	return n
}

// sweep removes expired records and tombstones older than ttl.
func (t *table) sweep(now time.Time, ttl time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, e := range t.m {
		if (e.Deleted && now.Sub(e.DeletedAt) > ttl) || (!e.Deleted && e.Rec.Expired(now.Add(-ttl))) {
			delete(t.m, k)
			n++
		}
	}
	return n
}
