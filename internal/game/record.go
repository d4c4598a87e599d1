package game

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/statelab/statelab/session"
)

// Errors of the owner lease. The server answers them as 503s with
// Retry-After: the room is between owners.
var (
	// ErrLeaseHeld is returned when another replica holds the room's lease
	// and it has not expired yet.
	ErrLeaseHeld = errors.New("game: room leased by another replica")
	// ErrFenced is returned when a write carried an older epoch than the
	// store's: a newer owner took the room over, so this one must drop it.
	ErrFenced = errors.New("game: fenced by a newer owner")
)

// recordTTL is how long a room record lives in the store without being
// written; rooms idle that long are forgotten.
const recordTTL = 24 * time.Hour

// Record is a room as the store keeps it: the owner lease and the game
// state in one value, so that one compare-and-swap writes both and a
// write from a fenced owner can never land.
type Record struct {
	// Epoch increases by one at every change of owner; it is the fencing
	// token.
	Epoch uint64 `json:"epoch"`
	// Owner is the replica holding the lease ("" for the external
	// strategy, which has none).
	Owner string `json:"owner,omitempty"`
	// LeaseUntil is when the lease expires, unix milliseconds; 0 means
	// released.
	LeaseUntil int64 `json:"lease_until,omitempty"`
	// State is the room's game state as of the write.
	State *State `json:"state"`
}

// roomKey is the store key of a room's record.
func roomKey(room string) string { return "game-" + room }

// recordStore reads and writes room records with version CAS on a
// session.Store.
type recordStore struct {
	store   session.Store
	timeout time.Duration
	metrics *metrics
}

// get returns room's record and its version; a missing room returns
// ErrNotFound (wrapped from session).
func (rs *recordStore) get(ctx context.Context, room string) (Record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, rs.timeout)
	defer cancel()
	raw, err := rs.store.Get(ctx, roomKey(room))
	rs.metrics.storeOp("get", err)
	if err != nil {
		return Record{}, 0, err
	}
	var rec Record
	if err := json.Unmarshal(raw.Data, &rec); err != nil || rec.State == nil || rec.State.Room != room {
		return Record{}, 0, fmt.Errorf("game: room %s: corrupt record in the store: %v", room, err)
	}
	return rec, raw.Version, nil
}

// put writes rec over version (0: create) and returns the new version; a
// concurrent write returns session.ErrConflict.
func (rs *recordStore) put(ctx context.Context, room string, rec Record, version uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	v, err := rs.putRaw(ctx, session.BatchPut{Key: roomKey(room), Record: session.Record{Data: data, Version: version, IdleExpiry: time.Now().Add(recordTTL)}})
	rs.metrics.storeOp("put", err)
	return v, err
}

// lease is an owner's hold on a room: the record version it last wrote and
// until when (on this process's monotonic clock) it may act as owner.
type lease struct {
	epoch   uint64
	version uint64
	// validUntil is the start of the last successful write plus the lease
	// duration: the store's LeaseUntil can only be later.
	validUntil time.Time
}

// acquire takes room's lease for owner if it is free, expired, released or
// already owner's (a restarted replica), bumping the epoch, and returns the
// lease with the state to resume from (a fresh state for a new room).
func (rs *recordStore) acquire(ctx context.Context, room, owner string, d time.Duration) (lease, *State, error) {
	for attempt := 0; ; attempt++ {
		rec, version, err := rs.get(ctx, room)
		switch {
		case errors.Is(err, session.ErrNotFound):
			rec, version = Record{State: NewState(room)}, 0
		case err != nil:
			return lease{}, nil, err
		}
		now := time.Now()
		if rec.Owner != owner && rec.LeaseUntil > now.UnixMilli() {
			return lease{}, nil, fmt.Errorf("%w %s until %s", ErrLeaseHeld, rec.Owner, time.UnixMilli(rec.LeaseUntil).UTC().Format(time.RFC3339Nano))
		}
		next := Record{Epoch: rec.Epoch + 1, Owner: owner, LeaseUntil: now.Add(d).UnixMilli(), State: rec.State}
		v, err := rs.put(ctx, room, next, version)
		if errors.Is(err, session.ErrConflict) && attempt < 2 {
			continue // someone else wrote meanwhile: look again
		}
		if err != nil {
			return lease{}, nil, err
		}
		return lease{epoch: next.Epoch, version: v, validUntil: now.Add(safe(d))}, rec.State, nil
	}
}

// write renews l (for d more, or releases it when d is 0) and stores
// state with it. A conflict means someone else wrote the record: if its
// epoch is newer the owner is fenced (ErrFenced); l is updated on success.
func (rs *recordStore) write(ctx context.Context, room, owner string, l *lease, state *State, d time.Duration) error {
	return rs.writeMany(ctx, owner, []saveReq{{room: room, l: l, st: state}}, d)[0]
}

// saveReq is one room's write in a writeMany: its state under its lease,
// which the write renews.
type saveReq struct {
	room string
	l    *lease
	st   *State
}

// putBatchSize bounds how many records one store round trip carries.
const putBatchSize = 256

// writeMany is write for several rooms at once: one store round trip per
// putBatchSize records when the store is a session.BatchPutter (Redis),
// one per record otherwise. Each record is still its own compare-and-swap
// on its own version, so a fenced room fails alone. It returns one error
// per request, in order.
func (rs *recordStore) writeMany(ctx context.Context, owner string, reqs []saveReq, d time.Duration) []error {
	start := time.Now()
	errs := make([]error, len(reqs))
	puts := make([]session.BatchPut, 0, len(reqs))
	var idx []int
	for i, q := range reqs {
		rec := Record{Epoch: q.l.epoch, Owner: owner, State: q.st}
		if d > 0 {
			rec.LeaseUntil = start.Add(d).UnixMilli()
		}
		data, err := json.Marshal(rec)
		if err != nil {
			errs[i] = err
			continue
		}
		puts = append(puts, session.BatchPut{Key: roomKey(q.room), Record: session.Record{Data: data, Version: q.l.version, IdleExpiry: start.Add(recordTTL)}})
		idx = append(idx, i)
	}
	for off := 0; off < len(puts); off += putBatchSize {
		chunk := puts[off:min(off+putBatchSize, len(puts))]
		for j, res := range rs.putBatch(ctx, chunk) {
			rs.metrics.storeOp("put", res.Err)
			i := idx[off+j]
			errs[i] = rs.settle(ctx, reqs[i], res, start, d)
		}
	}
	return errs
}

// putBatch writes puts, in one round trip when the store can.
func (rs *recordStore) putBatch(ctx context.Context, puts []session.BatchPut) []session.BatchResult {
	if b, ok := rs.store.(session.BatchPutter); ok {
		ctx, cancel := context.WithTimeout(ctx, rs.timeout)
		defer cancel()
		return b.PutBatch(ctx, puts)
	}
	out := make([]session.BatchResult, len(puts))
	for i, p := range puts {
		out[i].Version, out[i].Err = rs.putRaw(ctx, p)
	}
	return out
}

// putRaw is one store Put, bounded by the store timeout.
func (rs *recordStore) putRaw(ctx context.Context, p session.BatchPut) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, rs.timeout)
	defer cancel()
	return rs.store.Put(ctx, p.Key, p.Record)
}

// settle applies the result of q's write, started at start for a lease of
// d: on success it moves q's lease on; on a conflict it finds out whether
// a newer owner fenced this one.
func (rs *recordStore) settle(ctx context.Context, q saveReq, res session.BatchResult, start time.Time, d time.Duration) error {
	if errors.Is(res.Err, session.ErrConflict) {
		cur, _, gerr := rs.get(ctx, q.room)
		if gerr == nil && cur.Epoch > q.l.epoch {
			return fmt.Errorf("%w: room %s is at epoch %d (owner %s), this owner holds %d", ErrFenced, q.room, cur.Epoch, cur.Owner, q.l.epoch)
		}
		// Not a newer owner (the record expired, or the read failed): the
		// lease cannot be proven, which is as good as lost.
		return fmt.Errorf("%w: room %s record changed under epoch %d", ErrFenced, q.room, q.l.epoch)
	}
	if res.Err != nil {
		return res.Err
	}
	q.l.version = res.Version
	if d > 0 {
		q.l.validUntil = start.Add(safe(d))
	} else {
		q.l.validUntil = time.Time{}
	}
	return nil
}

// safe is how long after the start of a write its lease of d may be relied
// on: a tenth less, so that the owner stops acknowledging before any other
// replica (reading the store's millisecond LeaseUntil on its own clock) can
// take the room over.
func safe(d time.Duration) time.Duration { return d - d/10 }
