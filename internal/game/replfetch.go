package game

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/statelab/statelab/internal/httpapi"
)

// Activation under the replicated strategy gathers the copies of the
// previous epoch from every live peer, not only from this replica's own
// memory: the replica that activates a room is not always the backup that
// holds its newest copy. The owner restarted (same --id) before its backup
// took the room over is the case that matters: placement gives it the room
// back at once and its lease is free to take, but its memory is empty and
// the store only has the last checkpoint, while the backup still holds
// every acknowledged tick. A copy is accepted only when it was made under
// the epoch just before the new lease's: that epoch's owner was the only
// one streaming it, so its copies and its checkpoints are points on one
// history and the one with the highest tick holds every acknowledged input.

// replicaCopy is the answer of GET /internal/replica/{room}: a backup's
// copy of the room and the epoch it was made under.
type replicaCopy struct {
	Epoch uint64 `json:"epoch"`
	State *State `json:"state"`
}

// peek returns a clone of the copy of room if it was made under epoch. The
// copy stays: the new owner's first tick replaces it with a full state of
// the new epoch, and no later activation accepts an epoch this old.
func (rs *replicaSet) peek(room string, epoch uint64) *State {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	c := rs.copies[room]
	if c == nil || c.epoch != epoch {
		return nil
	}
	return c.state.Clone()
}

// handleReplicaCopy serves GET /internal/replica/{room}?epoch=N: this
// replica's copy of the room made under epoch N, or 404.
func (s *Server) handleReplicaCopy(w http.ResponseWriter, r *http.Request) {
	if s.replicas == nil || !hmac.Equal([]byte(r.Header.Get(replicationKeyHeader)), []byte(s.replicas.key)) {
		httpapi.WriteError(w, apiErr(http.StatusForbidden, "forbidden", "replication needs the cluster's key"))
		return
	}
	room := r.PathValue("room")
	epoch, err := strconv.ParseUint(r.URL.Query().Get("epoch"), 10, 64)
	if ValidateID(room) != nil || err != nil {
		httpapi.WriteError(w, apiErr(http.StatusBadRequest, "bad_request", "want a room id and ?epoch=N"))
		return
	}
	st := s.replicas.peek(room, epoch)
	if st == nil {
		httpapi.WriteError(w, apiErr(http.StatusNotFound, "not_found", "no copy of this room under that epoch"))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, replicaCopy{Epoch: epoch, State: st})
}

// fetch asks the replica at addr for its copy of room made under epoch;
// nil without error when it has none.
func (rs *replicaSet) fetch(ctx context.Context, addr, room string, epoch uint64) (*State, error) {
	ctx, cancel := context.WithTimeout(ctx, rs.timeout)
	defer cancel()
	u := "http://" + addr + replicationPath + "/" + url.PathEscape(room) + "?epoch=" + strconv.FormatUint(epoch, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(replicationKeyHeader, rs.key)
	res, err := rs.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		io.Copy(io.Discard, res.Body)
		return nil, nil
	default:
		io.Copy(io.Discard, res.Body)
		return nil, fmt.Errorf("game: %s answered %d for its copy of %s", addr, res.StatusCode, room)
	}
	var c replicaCopy
	if err := json.NewDecoder(io.LimitReader(res.Body, maxReplBatchBytes)).Decode(&c); err != nil {
		return nil, fmt.Errorf("game: bad copy of %s from %s: %w", room, addr, err)
	}
	if c.Epoch != epoch || c.State == nil || c.State.Room != room {
		return nil, fmt.Errorf("game: %s sent a copy of %s that does not match epoch %d", addr, room, epoch)
	}
	return c.State, nil
}

// peerCopies asks every live peer at once for its copy of room made under
// epoch and returns the copies found. A peer that does not answer in time
// is skipped (its copy, if any, dies with it); its error is returned
// joined for the log.
func (k *replicatedKeeper) peerCopies(ctx context.Context, room string, epoch uint64) ([]*State, error) {
	var (
		mu    sync.Mutex
		found []*State
		errs  []error
		wg    sync.WaitGroup
	)
	for _, m := range k.placement.Members() {
		if m.Name == k.owner {
			continue
		}
		wg.Go(func() {
			st, err := k.copies.fetch(ctx, m.HTTP, room, epoch)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
			} else if st != nil {
				found = append(found, st)
			}
		})
	}
	wg.Wait()
	return found, errors.Join(errs...)
}
