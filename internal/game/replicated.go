package game

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/statelab/statelab/internal/httpapi"
)

// The replicated strategy: the owner keeps the room in memory and, before
// acknowledging the inputs of a tick, streams them to the room's backup
// (the second member in the room's rendezvous order), which applies them
// to its copy with the same deterministic rules. When the owner dies the
// backup becomes the owner by placement, takes the lease at the next epoch
// and resumes from its copy. The lease and a fallback checkpoint live in
// the store exactly as for the checkpoint strategy.

// StrategyReplicated keeps a room in its owner's memory and a synchronous
// copy in one backup replica's memory.
const StrategyReplicated Strategy = "replicated"

// replicationPath is the internal endpoint backups receive copies on.
const replicationPath = "/internal/replica"

// replicationKeyHeader carries the replication key derived from the
// shared secret: only replicas given the same --secret can write copies.
const replicationKeyHeader = "X-Statelab-Replication-Key"

// ErrNotReplicated is returned for the inputs of a tick the backup did
// not confirm: they are neither applied nor acknowledged.
var ErrNotReplicated = errors.New("game: the backup did not confirm the tick")

// replicaMsg is one message of the stream from an owner to a backup:
// either a full state, or the inputs of one tick on top of the state the
// backup has at tick Base.
type replicaMsg struct {
	Room   string  `json:"room"`
	Epoch  uint64  `json:"epoch"`
	Base   uint64  `json:"base,omitempty"`
	Tick   uint64  `json:"tick"`
	Inputs []Input `json:"inputs,omitempty"`
	Full   *State  `json:"full,omitempty"`
}

// replica is a backup's copy of a room.
type replica struct {
	epoch uint64
	state *State
}

// replicaSet is a replica's side of replication: the copies it holds as a
// backup and the streams it sends its own rooms' ticks on.
type replicaSet struct {
	key     string // hex replication key
	client  *http.Client
	timeout time.Duration
	metrics *metrics
	quit    chan struct{}

	mu      sync.Mutex
	copies  map[string]*replica
	streams map[string]*stream // by backup address
	closed  bool
}

func newReplicaSet(secret string, timeout time.Duration, m *metrics) (*replicaSet, error) {
	if secret == "" {
		return nil, errors.New("game: strategy replicated needs Config.Secret")
	}
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, "statelab game replication v1", 32)
	if err != nil {
		return nil, err
	}
	return &replicaSet{key: hex.EncodeToString(k), client: &http.Client{Timeout: timeout}, timeout: timeout,
		metrics: m, quit: make(chan struct{}), copies: make(map[string]*replica), streams: make(map[string]*stream)}, nil
}

// take removes and returns the copy of room if it was made under epoch.
func (rs *replicaSet) take(room string, epoch uint64) *State {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	c := rs.copies[room]
	delete(rs.copies, room)
	if c == nil || c.epoch != epoch {
		return nil
	}
	return c.state
}

// apply applies m to the copies and reports whether it fitted; a message
// that does not continue the copy (or comes from an older epoch) needs a
// full state.
func (rs *replicaSet) apply(m replicaMsg) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	c := rs.copies[m.Room]
	if c != nil && m.Epoch < c.epoch {
		return false // a stale owner
	}
	if m.Full != nil {
		rs.copies[m.Room] = &replica{epoch: m.Epoch, state: m.Full}
		return true
	}
	if c == nil || c.epoch != m.Epoch || c.state.Tick != m.Base || m.Tick <= m.Base {
		return false
	}
	c.state.Tick = m.Tick - 1
	c.state.Step(m.Inputs)
	return true
}

var errNeedFull = errors.New("game: backup needs the full state")

// handleReplica serves POST /internal/replica on a backup: a batch of
// messages, answered with one result per message (false: send the full
// state). A backup never accepts copies of a room it owns itself.
func (s *Server) handleReplica(w http.ResponseWriter, r *http.Request) {
	if s.replicas == nil || !hmac.Equal([]byte(r.Header.Get(replicationKeyHeader)), []byte(s.replicas.key)) {
		httpapi.WriteError(w, apiErr(http.StatusForbidden, "forbidden", "replication needs the cluster's key"))
		return
	}
	var b replBatch
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReplBatchBytes)).Decode(&b); err != nil {
		httpapi.WriteError(w, apiErr(http.StatusBadRequest, "bad_json", "not a replication batch"))
		return
	}
	res := replResults{Results: make([]bool, len(b.Messages))}
	for i, m := range b.Messages {
		if ValidateID(m.Room) != nil {
			continue
		}
		s.mu.Lock()
		_, owned := s.rooms[m.Room]
		s.mu.Unlock()
		res.Results[i] = !owned && s.replicas.apply(m)
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
}

// replicatedKeeper is the checkpoint keeper (lease, fallback checkpoint)
// whose activation prefers the backup's copy of the previous epoch.
type replicatedKeeper struct {
	checkpointKeeper
	copies    *replicaSet
	placement Placement
	log       *slog.Logger
}

// activate takes the lease and resumes from the newest of the store's
// checkpoint, this replica's own copy and the live peers' copies made
// under the previous epoch (see replfetch.go).
func (k *replicatedKeeper) activate(ctx context.Context, room string) (lease, *State, bool, error) {
	l, st, err := k.rs.acquire(ctx, room, k.owner, k.lease)
	if err != nil {
		return l, nil, false, err
	}
	cands, ferr := k.peerCopies(ctx, room, l.epoch-1)
	if ferr != nil {
		k.log.Warn("game: a peer's copy of the room could not be read", "room", room, "epoch", l.epoch-1, "err", ferr)
	}
	if c := k.copies.take(room, l.epoch-1); c != nil {
		cands = append(cands, c)
	}
	for _, c := range cands {
		if c.Tick >= st.Tick {
			st = c
		}
	}
	return l, st, st.Tick > 0, nil
}

// replicate sends the tick that turned the state at base into next (under
// epoch) to the
// room's backup (the full state when the backup is new or asks for it),
// and returns nil once the backup has it or when there is no backup.
func (r *room) replicate(epoch, base uint64, next *State, inputs []Input) error {
	members := Owners(r.id, r.srv.placement.Members())
	if len(members) < 2 || members[0].Name != r.srv.id {
		r.backup = ""
		return nil // alone (or about to hand the room over): no copy to keep
	}
	b := members[1]
	m := replicaMsg{Room: r.id, Epoch: epoch, Base: base, Tick: next.Tick, Inputs: inputs}
	if b.Name != r.backup {
		m.Full = next
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.srv.replTimeout)
	defer cancel()
	err := r.srv.replicas.send(ctx, b.HTTP, m)
	if errors.Is(err, errNeedFull) {
		m.Full = next
		err = r.srv.replicas.send(ctx, b.HTTP, m)
	}
	if err != nil {
		r.backup = ""
		return err
	}
	r.backup = b.Name
	return nil
}
