package game

import (
	"context"
	"errors"
	"time"
)

// persistLoop renews the leases and writes the checkpoints of all the
// rooms this replica owns, every keeper interval, until quit is closed:
// one round of writes for all rooms, sent to the store together (one
// round trip per putBatchSize rooms on Redis) rather than one timer,
// goroutine wake-up and round trip per room. A room whose write is refused
// for a newer epoch is stopped.
func (s *Server) persistLoop(quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.persistEvery())
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		s.persistRound()
	}
}

// persistRound writes every active room once. Each room's writeMu is held
// from the moment its lease and state are read until the write's result is
// applied, so that stop's final write (which takes it too) always follows
// on the version this one made.
func (s *Server) persistRound() {
	_, checkpoint := s.keeper.interval()
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	var (
		reqs  []saveReq
		held  []*room
		fresh []bool
	)
	for _, r := range rooms {
		select {
		case <-r.ready:
		default:
			continue // still activating
		}
		if r.err != nil {
			continue
		}
		r.writeMu.Lock()
		q, f, ok := r.saveRequest(checkpoint)
		if !ok {
			r.writeMu.Unlock()
			continue
		}
		reqs, held, fresh = append(reqs, q), append(held, r), append(fresh, f)
	}
	if len(reqs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	errs := s.keeper.saveMany(ctx, reqs)
	cancel()
	for i, r := range held {
		r.afterSave(reqs[i], fresh[i], errs[i])
		r.writeMu.Unlock()
	}
}

// saveRequest returns the room's next periodic write: its lease, and its
// current state when a checkpoint is due (fresh), else the last checkpoint
// again so that the loss window stays the checkpoint interval. ok is false
// for a stopped room.
func (r *room) saveRequest(checkpoint time.Duration) (q saveReq, fresh, ok bool) {
	every, _ := r.srv.keeper.interval()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped != nil {
		return saveReq{}, false, false
	}
	l := r.lease
	q = saveReq{room: r.id, l: &l, st: r.saved}
	if fresh = time.Since(r.lastCheckpoint) >= checkpoint-every/2; fresh {
		q.st = r.state.Clone()
	}
	return q, fresh, true
}

// afterSave applies the outcome of the room's periodic write q: a renewed
// lease (and checkpoint), a logged failure (the lease runs out unless a
// later write succeeds), or, fenced by a newer epoch, the room's stop.
func (r *room) afterSave(q saveReq, fresh bool, err error) {
	switch {
	case errors.Is(err, ErrFenced):
		go r.stop(err, false, "fenced") // not here: stop waits for the write lock the caller holds
		return
	case err != nil:
		r.srv.log.Warn("game: lease renewal failed", "room", r.id, "epoch", q.l.epoch, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lease = *q.l
	if fresh {
		r.saved, r.lastCheckpoint = q.st, time.Now()
	}
}
