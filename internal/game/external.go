package game

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/statelab/statelab/session"
)

// The external strategy keeps no room in memory: a snapshot is a store
// read and every input is one read-modify-CAS transaction on the room's
// record, retried on conflict. Each transaction is one tick of the room.

// externalSnapshot reads room's snapshot from the store; a room never
// written is its initial state.
func (s *Server) externalSnapshot(ctx context.Context, roomID string) (Snapshot, error) {
	rec, _, err := s.records.get(ctx, roomID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		rec = Record{State: NewState(roomID)}
	case err != nil:
		return Snapshot{}, err
	}
	return snapshotOf(rec.State, "", rec.Epoch, s.strategy), nil
}

// externalInput applies in to room as one compare-and-swap transaction,
// retrying with jittered backoff while other replicas win the race, until
// the store timeout.
func (s *Server) externalInput(ctx context.Context, roomID string, in Input) (Ack, error) {
	ctx, cancel := context.WithTimeout(ctx, s.storeTimeout)
	defer cancel()
	backoff := time.Millisecond
	for {
		ack, err := s.externalTry(ctx, roomID, in)
		if !errors.Is(err, session.ErrConflict) {
			if err != nil && !errors.Is(err, ErrSeqGap) && !errors.Is(err, ErrBadID) && !errors.Is(err, ErrBadMove) && !errors.Is(err, ErrRoomFull) {
				s.metrics.inputs.WithLabelValues("unavailable").Inc()
			}
			return ack, err
		}
		select {
		case <-ctx.Done():
			return Ack{}, err
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// externalTry is one attempt of externalInput.
func (s *Server) externalTry(ctx context.Context, roomID string, in Input) (Ack, error) {
	rec, version, err := s.records.get(ctx, roomID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		rec, version = Record{State: NewState(roomID)}, 0
	case err != nil:
		return Ack{}, err
	}
	res := rec.State.Step([]Input{in})[0]
	if res.Err != nil {
		s.metrics.inputs.WithLabelValues("refused").Inc()
		return Ack{}, res.Err
	}
	p := rec.State.Player(in.Player)
	ack := Ack{Room: roomID, Player: in.Player, Seq: in.Seq, Tick: res.Tick, Epoch: rec.Epoch,
		Duplicate: res.Duplicate, Applied: p.Applied, Score: p.Score}
	if res.Duplicate {
		// Nothing changed but the tick: no write needed; the duplicate
		// was applied at or before the stored tick.
		s.metrics.inputs.WithLabelValues("duplicate").Inc()
		ack.Tick--
		return ack, nil
	}
	if _, err := s.records.put(ctx, roomID, rec, version); err != nil {
		return Ack{}, err
	}
	s.metrics.inputs.WithLabelValues("applied").Inc()
	return ack, nil
}
